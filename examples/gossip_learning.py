"""Does averaging uncorrelated models stall gossip learning, and does variance correction fix it?

100 agents, each with a two-layer perceptron (Xavier-initialised on its own) and 40 training
examples of a seeded 10-class set, on a ring lattice where each agent hears its 8 neighbours
every round. Three runs from the same seed: plain averaging, variance-corrected averaging,
and federated averaging (everyone averaged every round, from one shared start). The numbers
come from SQL over the log (view ``learning_by_round``).

    moot run examples/gossip_learning.py --local
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from orchestrator import launch, query
from protocols import RingLattice
from protocols.gossip_learning import GossipLearning

AGENTS = int(os.environ.get("MOOT_EXAMPLE_LEARNERS", "100"))  # federated: every pair talks (n^2)
ROUNDS = int(os.environ.get("MOOT_EXAMPLE_ROUNDS", "40"))
TARGET = 0.6
log = Path(os.environ.get("MOOT_EXAMPLE_LOG", Path(tempfile.gettempdir()) / "gossip_learning.duckdb"))
log.unlink(missing_ok=True)

runs = {}
for merge in ("average", "corrected", "federated"):
    proto = GossipLearning(graph=RingLattice(k=8), fanout=None, merge=merge, lr=0.2)
    runs[merge] = launch(proto.default_population(AGENTS), proto, rounds=ROUNDS, seed=1, log=log)
log = runs["average"].log  # where the runs went (`moot run --log` may have moved it)

table = Table(title=f"gossip learning, {AGENTS} agents, k = 8 neighbours heard per round")
for col in (
    "merge",
    "layer-1 variance / Xavier after the 1st merge",
    f"rounds to {TARGET:.0%} accuracy",
    f"accuracy after {ROUNDS} rounds",
    "consensus distance",
):
    table.add_column(col)
for merge, run in runs.items():
    rows = query(log, "SELECT * FROM learning_by_round ORDER BY round", run_id=run.run_id).to_pylist()
    reached = [r["round"] for r in rows if r["accuracy"] >= TARGET]
    table.add_row(
        merge,
        f"{rows[1]['layer_1_variance_ratio']:.3f}",
        str(reached[0]) if reached else f"> {ROUNDS}",
        f"{rows[-1]['accuracy']:.3f}",
        f"{rows[-1]['consensus_distance']:.2f}",
    )
console = Console()
console.print(table)
console.print(
    "Plain averaging of k + 1 = 9 independent models leaves 1/9 of the Xavier variance (0.111): the "
    "vanishing variance. The correction restores it and learns sooner; it also keeps the agents' "
    "models apart (their consensus distance stays near its start), so plain averaging, which does "
    f"reach consensus, can end higher. Log: {log}"
)
