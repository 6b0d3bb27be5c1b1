"""`moot analyze` and `moot report` on a big log: the issue's targets are, for a 1M-agent,
30-round gossip log on 2 cores, report under 30 s, analyze under 60 s, and an HTML under 5 MB.

The log is the built-in opinion study (vectorised OpinionAgents, small world k=6 p=0.3,
push-pull gossip fanout 2, every message logged, states every 10 rounds), made by `moot run`;
then `moot analyze --format json` and `moot report` each run as a process of their own and are
timed from start to exit (Python's start and imports included), beside the time `moot run`
took to make the log.

    python benchmarks/analysis.py                  # 1M agents, 30 rounds
    python benchmarks/analysis.py --agents 100000  # quick
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_io import today, write

MOOT = str(Path(sys.executable).parent / "moot")


def timed(*args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run([MOOT, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"moot {args[0]} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    where = Path(tempfile.mkdtemp())
    log = where / "big.duckdb"
    made, _ = timed(
        "run",
        "--agents",
        str(args.agents),
        "--rounds",
        str(args.rounds),
        "--stop",
        "never",
        "--seed",
        "1",
        "--log",
        str(log),
        "--checkpoint-every",
        "0",
    )
    analyzed, _ = timed("analyze", str(log), "--format", "json")
    reported, _ = timed("report", str(log), "--out", str(where / "report.html"))
    size = (where / "report.html").stat().st_size
    shutil.rmtree(where, ignore_errors=True)
    data = {
        "date": today(),
        "machine": f"{platform.machine()}, 2 CPUs",
        "agents": args.agents,
        "rounds": args.rounds,
        "moot_run_s": made,
        "moot_analyze_s": analyzed,
        "moot_report_s": reported,
        "report_bytes": size,
    }
    rows = [
        ["moot run (makes the log)", round(made, 1), "—"],
        ["moot analyze --format json", round(analyzed, 1), "60 s"],
        ["moot report", round(reported, 1), "30 s"],
        ["report size MB", round(size / 1e6, 2), "5 MB"],
    ]
    print(
        write(
            "analysis",
            data,
            f"analysis: {args.agents:,} agents, {args.rounds} rounds, whole processes ({today()})",
            ["step", "seconds (or MB)", "target"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
