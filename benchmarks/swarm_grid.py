"""Swarm grid throughput: agent-steps per second (an agent deciding and moving, the world's
update and the log included) and peak memory.

Each configuration runs in a fresh process on a fresh local Ray instance (one
host per CPU), every move logged: 12 heuristic agents on SwarmBench's 10x10
Pursuit (plain `act`, exact physics); 10^4 and 10^6 vectorised foragers
(`VectorForager`, fast physics) on 200x200 and 2000x2000 grids. Peak memory is
the summed RSS of the driver and every Ray process it started.

    python benchmarks/swarm_grid.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_io import PeakRss, today, write

CONFIGS = [  # (agents, task, grid side, rounds)
    (12, "pursuit", 10, 100),
    (10_000, "foraging", 200, 20),
    (1_000_000, "foraging", 2000, 5),
]


def one(agents: int, task: str, side: int, rounds: int) -> dict[str, object]:
    from orchestrator import launch
    from protocols.swarm_grid import SwarmGrid

    proto = SwarmGrid(task, size=(side, side), max_round=rounds)  # type: ignore[arg-type]
    log = Path(tempfile.mkdtemp()) / "swarm.duckdb"
    with PeakRss() as peak:
        run = launch(proto.default_population(agents), proto, rounds=rounds, seed=1, log=log, state_every=0)
    rounds_s = run.seconds - run.setup_seconds
    moves = run.sql("SELECT count(*) AS n FROM messages WHERE kind = 'move'").column("n")[0].as_py()
    assert moves == agents * run.rounds, (moves, agents, run.rounds)
    return {
        "agents": agents,
        "task": task,
        "grid": f"{side}x{side}",
        "hosts": run.hosts,
        "rounds": run.rounds,
        "agent_steps_per_s": round(agents * run.rounds / rounds_s),
        "setup_s": round(run.setup_seconds, 2),
        "rounds_s": round(rounds_s, 2),
        "score": run.final.get("score"),
        "peak_rss_gb": peak.gb,
    }


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--one":
        print(json.dumps(one(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))))
        return
    rows = []
    for agents, task, side, rounds in CONFIGS:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(agents), task, str(side), str(rounds)],
            capture_output=True,
            text=True,
            env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0"),
        )
        if out.returncode != 0:
            raise SystemExit(out.stderr[-3000:])
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    stamp = today()
    header = [
        "agents",
        "task",
        "grid",
        "hosts",
        "rounds",
        "agent-steps/s",
        "setup s",
        "rounds s",
        "peak RSS GB",
    ]
    table = [
        [
            r["agents"],
            r["task"],
            r["grid"],
            r["hosts"],
            r["rounds"],
            r["agent_steps_per_s"],
            r["setup_s"],
            r["rounds_s"],
            r["peak_rss_gb"],
        ]
        for r in rows
    ]
    print(
        write("swarm_grid", {"date": stamp, "rows": rows}, f"swarm grid throughput ({stamp})", header, table)
    )


if __name__ == "__main__":
    main()
