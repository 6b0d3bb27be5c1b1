"""Do LLM agents talk themselves into agreement? 200 of them gossip about a proposal.

Each agent holds an opinion in [0, 1] and answers, every round, a new opinion and
a one-sentence reason (gossip's `OpinionReply`), having read what its neighbours
said. Half are told they are open-minded, half that they are stubborn. The run
logs every message (the opinion and its reason), every LLM call (tokens, cost,
latency) and the opinions, and SQL prints how the two halves moved.

Offline by default: ``moot/simulated`` is a seeded stand-in, not a language model
(it moves halfway toward what it heard). Give a real model to ask one:

    moot run examples/llm_gossip.py
    moot run examples/llm_gossip.py --model openai/gpt-4o-mini --rpm 500 --budget 2
    moot run examples/llm_gossip.py --model hosted_vllm/Qwen2.5-7B --api-base http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agents import Population, Uniform
from orchestrator import launch, params, query
from orchestrator.llm.offline import model_label
from protocols import Gossip, SmallWorld
from protocols.gossip import LLMOpinionAgent

N = int(params().get("agents", 200))
ROUNDS = int(os.environ.get("MOOT_EXAMPLE_ROUNDS", "8"))
log = Path(os.environ.get("MOOT_EXAMPLE_LOG", Path(tempfile.gettempdir()) / "llm_gossip.duckdb"))

OPEN = "You are open-minded: you weigh what your neighbours say and change your mind when they convince you."
STUBBORN = "You are stubborn: you rarely change your mind, whatever your neighbours say."

population = Population.of(LLMOpinionAgent, N // 2, persona=OPEN, opinion=Uniform(0.0, 1.0)) + Population.of(
    LLMOpinionAgent, N - N // 2, persona=STUBBORN, opinion=Uniform(0.0, 1.0)
)
run = launch(
    population,
    Gossip(SmallWorld(k=4, p=0.1), fanout=2, mode="push"),
    rounds=ROUNDS,
    seed=11,
    log=log,
    runtime=os.environ.get("MOOT_RUNTIME", "local"),
    stop="stationary:1e-4",
)
log = run.log  # where the run went (`moot run --log` may have moved it)

rows = query(
    log,
    f"""
    SELECT c.round, c.mean, c.spread, l.calls, l.errors, l.prompt_tokens + l.completion_tokens AS tokens,
           l.cost, l.latency_p50
    FROM consensus_by_round c JOIN llm_cost_by_round l USING (run_id, round)
    WHERE run_id = '{run.run_id}' ORDER BY round
    """,
).to_pylist()
model = (
    rows
    and query(log, f"SELECT any_value(model) AS m FROM llm_calls WHERE run_id = '{run.run_id}'").to_pylist()
)
shown = model[0]["m"] if model else "?"
table = Table(title=f"{N} LLM agents gossiping; model {model_label(shown)}")
for col in ("round", "mean opinion", "spread", "calls", "errors", "tokens", "cost $", "p50 latency s"):
    table.add_column(col, justify="right")
for r in rows:
    table.add_row(
        str(r["round"]),
        f"{r['mean']:.3f}",
        f"{r['spread']:.3f}",
        str(r["calls"]),
        str(r["errors"]),
        str(r["tokens"]),
        f"{r['cost'] or 0:.4f}",
        f"{r['latency_p50']:.3f}",
    )
Console().print(table)

halves = query(
    log,
    f"""
    SELECT CASE WHEN s.agent < {N // 2} THEN 'open-minded' ELSE 'stubborn' END AS half,
           avg(abs(s.value - f.value)) AS moved
    FROM states s JOIN states f ON f.run_id = s.run_id AND f.agent = s.agent AND f.field = s.field
    WHERE s.run_id = '{run.run_id}' AND s.field = 'opinion' AND s.round = -1
      AND f.round = (SELECT max(round) FROM states WHERE run_id = '{run.run_id}')
    GROUP BY 1 ORDER BY 1
    """,
).to_pylist()
for h in halves:
    print(f"{h['half']}: mean |final - initial opinion| = {h['moved']:.3f}")
print(f"log: {log} (run_id {run.run_id}); reasons: SELECT sender, value, text FROM messages LIMIT 10")
