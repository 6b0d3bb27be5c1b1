"""LLM agents on SwarmBench's grid: 10 of them hunt a prey, seeing only their 5x5 window.

Each round every agent gets SwarmBench's prompt (the task, its window now and
over the last steps, what it heard, anonymously), answers a `SwarmMove` (an
action and an optional short message to the agents within view), and the grid
moves them. SQL then prints the task score per round with the calls, tokens
and cost of each round, and a few of the messages the agents exchanged.

Offline by default: ``moot/simulated`` is a seeded stand-in, not a language model
(it steps toward the prey when it sees it). Give a real model to ask one:

    moot run examples/llm_swarm.py
    moot run examples/llm_swarm.py --model openai/gpt-4o-mini --rpm 500 --budget 1
    moot run examples/llm_swarm.py --model ollama/llama3.1 --api-base http://127.0.0.1:11434
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agents import LLMAgent, Population
from orchestrator import launch, params, query
from orchestrator.llm.offline import model_label
from protocols.swarm_grid import SwarmGrid

TASK = str(params().get("task", "pursuit"))
ROUNDS = int(os.environ.get("MOOT_EXAMPLE_ROUNDS", "60"))
log = Path(os.environ.get("MOOT_EXAMPLE_LOG", Path(tempfile.gettempdir()) / "llm_swarm.duckdb"))

persona = (
    "You are one agent of a swarm on a grid. You see only a small window around you. Cooperate with "
    "the others through short messages; keep them useful."
)
run = launch(
    Population.of(LLMAgent, 10, persona=persona, temperature=0.2, memory=3),
    SwarmGrid(task=TASK, max_round=ROUNDS),  # type: ignore[arg-type]
    rounds=ROUNDS,
    seed=3,
    log=log,
    runtime=os.environ.get("MOOT_RUNTIME", "local"),
)
log = run.log  # where the run went (`moot run --log` may have moved it)

rid = run.run_id
rows = query(
    log,
    f"""
    SELECT m.round, m.value AS score, l.calls, l.errors, l.prompt_tokens + l.completion_tokens AS tokens,
           l.cost, l.latency_p50
    FROM metrics m JOIN llm_cost_by_round l USING (run_id, round)
    WHERE run_id = '{rid}' AND m.name = 'score' ORDER BY round
    """,
).to_pylist()
model = query(log, f"SELECT any_value(model) AS m FROM llm_calls WHERE run_id = '{rid}'").to_pylist()[0]["m"]
table = Table(title=f"{TASK}: 10 LLM agents, model {model_label(model)}")
for col in ("round", "score", "calls", "errors", "tokens", "cost $", "p50 latency s"):
    table.add_column(col, justify="right")
for r in rows:
    table.add_row(
        str(r["round"]),
        f"{r['score']:.0f}",
        str(r["calls"]),
        str(r["errors"]),
        str(r["tokens"]),
        f"{r['cost'] or 0:.4f}",
        f"{r['latency_p50']:.3f}",
    )
Console().print(table)
said = query(
    log,
    f"SELECT DISTINCT round, sender, text FROM messages WHERE run_id = '{rid}' AND kind = 'say' "
    "ORDER BY round, sender LIMIT 5",
).to_pylist()
for s in said:
    print(f"round {s['round']}, agent {s['sender']}: {s['text']}")
print(f'log: {log} (run_id {rid}); moot sql {log} "SELECT * FROM swarm_moves LIMIT 10"')
