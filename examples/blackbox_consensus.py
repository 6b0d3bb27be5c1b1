"""Does talking to neighbours help agents that can only query their own objective?

100 agents on a small world minimise the sum of their private, shifted Rastrigin functions in
5 dimensions, with the same number of objective queries each: once as a team (points and
gradient trackers averaged with neighbours), once isolated (no messages), and once as a team
guided every 20 rounds by a language model (the offline stand-in ``moot/simulated`` unless
``--model``/``MOOT_EXAMPLE_MODEL`` names one). The numbers come from the log.

    moot run examples/blackbox_consensus.py --local
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from orchestrator import launch, query
from protocols.blackbox_consensus import BlackboxConsensus, global_objective

AGENTS = int(os.environ.get("MOOT_EXAMPLE_OPTIMIZERS", "100"))
ROUNDS = int(os.environ.get("MOOT_EXAMPLE_ROUNDS", "200"))
MODEL = os.environ.get("MOOT_EXAMPLE_MODEL", "moot/simulated")
log = Path(os.environ.get("MOOT_EXAMPLE_LOG", Path(tempfile.gettempdir()) / "blackbox_consensus.duckdb"))
log.unlink(missing_ok=True)

setups = {
    "team": BlackboxConsensus(function="rastrigin", dim=5),
    "isolated": BlackboxConsensus(function="rastrigin", dim=5, isolated=True),
    f"team, guided every 20 rounds ({MODEL})": BlackboxConsensus(
        function="rastrigin", dim=5, guide_every=20, model=MODEL
    ),
}
runs = {
    name: launch(proto.default_population(AGENTS), proto, rounds=ROUNDS, seed=3, log=log, state_every=ROUNDS)
    for name, proto in setups.items()
}
log = runs["team"].log  # where the runs went (`moot run --log` may have moved it)


def vectors(run_id: str, field: str, round: int) -> np.ndarray:
    rows = query(
        log,
        f"SELECT vector FROM states WHERE field = '{field}' AND round = {round} ORDER BY agent",
        run_id=run_id,
    )
    return np.array(rows.column("vector").to_pylist())


table = Table(title=f"{AGENTS} agents, shifted Rastrigin in 5 dimensions, {ROUNDS} rounds")
for col in (
    "agents",
    "global objective at their mean point",
    "mean over agents at their own point",
    "consensus error",
    "queries",
    "messages",
    "LLM calls",
):
    table.add_column(col)
for name, run in runs.items():
    last = query(log, "SELECT * FROM optimisation_by_round ORDER BY round DESC LIMIT 1", run_id=run.run_id)
    row = last.to_pylist()[0]
    x, shifts = vectors(run.run_id, "x", ROUNDS - 1), vectors(run.run_id, "shift", -1)
    calls = query(log, "SELECT count(*) AS n FROM llm_calls", run_id=run.run_id).column("n")[0].as_py()
    table.add_row(
        name,
        f"{global_objective('rastrigin', x.mean(axis=0), shifts):,.0f}",
        f"{np.mean([global_objective('rastrigin', xi, shifts) for xi in x]):,.0f}",
        f"{row['consensus_error']:.3f}",
        f"{row['evaluations']:,}",
        f"{row['messages']:,}",
        str(calls),
    )
start = query(log, f"SELECT * FROM global_objective_by_round('{runs['team'].run_id}') ORDER BY round LIMIT 1")
Console().print(table)
Console().print(
    f"At the start (round -1) the global objective at the agents' mean point was "
    f"{start.column('global_objective')[0].as_py():,.0f}. Log: {log}"
)
