"""How far can agents that each know one person's facts reach, and at what cost?

InformativeBench's setting (iAgents): 140 people and 588 relations, each agent knowing only its
own person's facts and messaging only its neighbours, 60 tasks (lookups, joins of two facts,
schedules that need everyone's free slots) whose facts lie 1 to 4 hops away. The breadth-first
baseline, then the InfoNav agent (an LLM with a what-is-known / what-is-missing / whom-to-ask plan
in its prompt; the offline stand-in ``moot/simulated`` unless ``MOOT_EXAMPLE_MODEL`` names one).
Success, rounds, messages and facts retrieved, by hop distance, come from the log's view
``info_success_by_hops``.

    moot run examples/informative_tasks.py --local
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from orchestrator import launch, query
from protocols.info_asymmetry import InfoAsymmetry

TASKS = int(os.environ.get("MOOT_EXAMPLE_TASKS", "60"))
MODEL = os.environ.get("MOOT_EXAMPLE_MODEL", "moot/simulated")
log = Path(os.environ.get("MOOT_EXAMPLE_LOG", Path(tempfile.gettempdir()) / "informative_tasks.duckdb"))
log.unlink(missing_ok=True)

runs = {}
for agent in ("rule", "llm"):
    proto = InfoAsymmetry(tasks=TASKS, agent=agent, model=MODEL)
    rounds = int(os.environ.get("MOOT_EXAMPLE_ROUNDS", "20"))
    runs[agent] = launch(proto.default_population(140), proto, rounds=rounds, seed=0, log=log, state_every=1)
log = runs["rule"].log  # where the runs went (`moot run --log` may have moved it)

table = Table(title=f"{TASKS} tasks on a 140-person, 588-relation network")
for col in ("agents", "hops", "tasks", "solved", "rounds", "messages per task", "facts retrieved"):
    table.add_column(col)
for agent, run in runs.items():
    name = "breadth-first" if agent == "rule" else f"InfoNav ({MODEL})"
    for r in query(log, "SELECT * FROM info_success_by_hops ORDER BY hops", run_id=run.run_id).to_pylist():
        table.add_row(
            name,
            str(r["hops"]),
            str(r["tasks"]),
            f"{r['success_rate']:.0%}",
            f"{r['rounds']:.1f}" if r["rounds"] is not None else "-",
            f"{r['messages']:,.0f}",
            f"{r['facts_retrieved']:.2f}",
        )
Console().print(table)
Console().print(
    "A fact h hops away takes 2h rounds (the ask goes out, the tell comes back). The baseline floods "
    f"the network for every task, which is what the messages column counts. Log: {log}"
)
