"""How do push, pull and push-pull gossip compare in reaching consensus?

20,000 opinion agents on a small-world graph; each mode runs from the same seed
(same graph, same initial opinions) until every opinion lies within 0.01 of
every other. The answer comes from SQL over the log.

    moot run examples/gossip_consensus.py                  # local Ray
    moot run examples/gossip_consensus.py --address auto   # a running cluster
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agents import OpinionAgent, Population, Uniform
from orchestrator import launch, query
from protocols import Gossip, SmallWorld

AGENTS = int(os.environ.get("MOOT_EXAMPLE_AGENTS", "20000"))
log = Path(os.environ.get("MOOT_EXAMPLE_LOG", Path(tempfile.gettempdir()) / "gossip_consensus.duckdb"))
log.unlink(missing_ok=True)

population = Population.of(OpinionAgent, AGENTS, opinion=Uniform(0.0, 1.0))
runs = {
    mode: launch(
        population,
        Gossip(SmallWorld(k=6, p=0.3), fanout=2, mode=mode, tolerance=0.01),
        rounds=300,
        seed=7,
        log=log,
    )
    for mode in ("push", "pull", "push-pull")
}
log = runs["push"].log  # where the runs went (`moot run --log` may have moved it)
ids = ", ".join(f"'{run.run_id}'" for run in runs.values())

# Rounds until 90% of the initial variance is gone, and until consensus: one query
# over the three runs of the file.
rows = query(
    log,
    f"""
    SELECT r.run_id,
           min(c.round) FILTER (WHERE c.variance < 0.1 * first.variance) AS rounds_to_90pct,
           max(c.round) + 1 AS rounds, sum(c.messages) AS messages, arg_max(c.spread, c.round) AS final_spread
    FROM runs r JOIN consensus_by_round c USING (run_id)
    JOIN (SELECT run_id, variance FROM consensus_by_round WHERE round = 0) first USING (run_id)
    WHERE r.run_id IN ({ids})
    GROUP BY r.run_id
    """,
).to_pylist()
by_id = {row["run_id"]: row for row in rows}

table = Table(title=f"gossip to consensus, {AGENTS:,} agents")
for col in ("mode", "rounds to 90% less variance", "rounds", "messages", "final spread", "stop"):
    table.add_column(col)
for mode, run in runs.items():
    row = by_id[run.run_id]
    table.add_row(
        mode,
        str(row["rounds_to_90pct"]),
        str(row["rounds"]),
        f"{row['messages']:,}",
        f"{row['final_spread']:.4f}",
        run.stop_reason,
    )
Console().print(table)
print(f"log: {log}")
