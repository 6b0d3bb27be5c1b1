"""Does looking for food beat wandering? Two foraging policies on SwarmBench's grid, five seeds each.

12 agents on the 10x10 Foraging map (a maze wall between food and nest), 100
rounds. The built-in heuristic maps the walls it sees, tells the agents in view
where food and nest are, and walks the shortest path it knows; the baseline
walks at random. Each run is tagged with its policy, and
one SQL query over the log compares final scores.

    moot run examples/swarm_foraging.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agents import Agent, Context, Message, Population
from orchestrator import launch, query
from protocols.swarm_grid import SwarmGrid, SwarmMove
from protocols.swarm_grid.agents import ForageHeuristic

ROUNDS = int(os.environ.get("MOOT_EXAMPLE_ROUNDS", "100"))
log = Path(os.environ.get("MOOT_EXAMPLE_LOG", Path(tempfile.gettempdir()) / "swarm_foraging.duckdb"))
log.unlink(missing_ok=True)


class RandomWalker(Agent):
    """The baseline: a random step every round, whatever it sees."""

    def act(self, inbox: list[Message], ctx: Context) -> SwarmMove:
        return SwarmMove(action=("UP", "DOWN", "LEFT", "RIGHT")[ctx.integers(4)])  # type: ignore[arg-type]


protocol = SwarmGrid("foraging", size=(10, 10), view=5, max_round=ROUNDS)
ids = []
for policy in (ForageHeuristic, RandomWalker):
    for seed in range(5):
        run = launch(
            Population.of(policy, 12),
            protocol,
            rounds=ROUNDS,
            seed=seed,
            log=log,
            runtime=os.environ.get("MOOT_RUNTIME", "local"),
            params={"policy": policy.__name__},
        )
        ids.append(f"'{run.run_id}'")
log = run.log  # where the runs went (`moot run --log` may have moved it)

rows = query(
    log,
    f"""
    SELECT r.params->>'policy' AS policy, count(*) AS runs,
           avg(m.value) AS mean_score, stddev_pop(m.value) AS sd, min(m.value) AS worst, max(m.value) AS best
    FROM runs r JOIN metrics m ON m.run_id = r.run_id AND m.name = 'score' AND m.round = r.rounds - 1
    WHERE r.run_id IN ({", ".join(ids)})
    GROUP BY 1 ORDER BY mean_score DESC
    """,
).to_pylist()

table = Table(title=f"foraging, 12 agents, {ROUNDS} rounds, 5 seeds (deliveries)")
for col in ("policy", "runs", "mean score", "sd", "worst", "best"):
    table.add_column(col)
for r in rows:
    table.add_row(
        r["policy"],
        str(r["runs"]),
        f"{r['mean_score']:.1f}",
        f"{r['sd']:.1f}",
        f"{r['worst']:.0f}",
        f"{r['best']:.0f}",
    )
Console().print(table)
print(f"log: {log}")
