"""Who earns what in a public-goods game, and does the order of play change it?

200 scenes of the shipped public_goods scenario (4 players: a cooperator, a defector and two
conditional cooperators, 5 steps, a rule-based game master), played simultaneously and then in
turn order; and the shipped market (a shortage shared pro rata, or first come first served).
Payoffs by strategy come from the log's view ``gm_payoffs_by_strategy``.

    moot run examples/public_goods.py --local
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from orchestrator import launch, query
from protocols.game_master import GameMaster

SCENES = int(os.environ.get("MOOT_EXAMPLE_SCENES", "200"))
log = Path(os.environ.get("MOOT_EXAMPLE_LOG", Path(tempfile.gettempdir()) / "public_goods.duckdb"))
log.unlink(missing_ok=True)

runs = {}
for scenario in ("public_goods", "market"):
    for engine in ("simultaneous", "sequential"):
        proto = GameMaster(scenario, scenes=SCENES, engine=engine)
        run = launch(proto.default_population(proto.agents), proto, rounds=proto.rounds_needed, log=log)
        runs[(scenario, engine)] = run
log = runs[("market", "sequential")].log  # where the runs went (`moot run --log` may have moved it)

table = Table(title=f"{SCENES} scenes each, rule-based game master")
for col in ("scenario", "engine", "strategy", "players", "payoff per player", "payoff per step"):
    table.add_column(col)
for (scenario, engine), run in runs.items():
    for r in query(log, "SELECT * FROM gm_payoffs_by_strategy", run_id=run.run_id).to_pylist():
        strategy = r["strategy"] if scenario == "public_goods" else "buyer"
        table.add_row(
            scenario,
            engine,
            strategy,
            str(r["players"]),
            f"{r['payoff_per_player']:.2f}",
            f"{r['payoff_per_step']:.2f}",
        )
Console().print(table)
Console().print(
    "Public goods: the defector out-earns the cooperator whatever the order (a share of the pot "
    "without paying in). Market: when buyers ask for more than the stock, turn order gives the first "
    f"ones all they asked and the last ones nothing; together, everyone gets a rounded-down share. Log: {log}"
)
