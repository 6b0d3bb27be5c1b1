"""Scale: the whole `moot run` process at 1M and 10M agents, every message routed and logged.

Each case runs ``moot run --agents N --rounds R`` (the built-in study: vectorised
OpinionAgents, small world k=6 p=0.3, push-pull gossip fanout 2, every message
logged (by the hosts, as segments), initial and final states logged, no early stop) as a fresh process
and times it from start to exit, so Ray's start, graph building, the state
snapshots and the log's catch-up after the last round all count. Peak memory is
the summed RSS of that process tree (Ray's object store pages may be counted
twice, so it is an upper bound).

The marginal rate takes two runs of the same size, R1 and R2 rounds: (messages
R2 - messages R1) / (seconds R2 - seconds R1). Start-up cancels out; the
per-round costs, logging included, remain.

    python benchmarks/scale.py            # 1M at 2 and 12 rounds, 10M at 3 and 30 rounds
    python benchmarks/scale.py --quick    # 1M only
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

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
from results_io import today, write

MOOT = str(Path(sys.executable).parent / "moot")


def whole_run(agents: int, rounds: int) -> dict[str, object]:
    """One `moot run` process: wall time, messages, peak RSS of its process tree."""
    import psutil

    log = Path(tempfile.mkdtemp()) / "scale.duckdb"
    cmd = [MOOT, "run", "--agents", str(agents), "--rounds", str(rounds), "--state-every", "0"]
    cmd += ["--stop", "never", "--seed", "1", "--log", str(log)]
    t0 = time.perf_counter()
    errors = log.with_suffix(".stderr")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors.open("w"))
    top = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        total = 0
        try:
            for p in [top, *top.children(recursive=True)]:
                total += p.memory_info().rss
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    if proc.wait() != 0:
        raise SystemExit(f"moot run failed:\n{errors.read_text()[-3000:]}")
    con = duckdb.connect(str(log), read_only=True)
    messages, seconds = con.execute("SELECT messages, seconds FROM runs").fetchone()  # type: ignore[misc]
    rows = con.execute("SELECT count(*) FROM messages").fetchone()[0]  # type: ignore[index]
    con.close()
    assert rows == messages, (rows, messages)
    parts = log.with_name(log.name + ".parts")  # the hosts' segments count as the log
    size = log.stat().st_size + sum(f.stat().st_size for f in parts.rglob("*.parquet"))
    log.unlink()
    shutil.rmtree(parts, ignore_errors=True)
    return {
        "agents": agents,
        "rounds": rounds,
        "messages": int(messages),
        "wall_s": round(wall, 2),
        "run_s": round(float(seconds), 2),
        "messages_per_s_whole": round(messages / wall),
        "peak_rss_gb": round(peak / 2**30, 2),
        "log_gb": round(size / 2**30, 2),
    }


def marginal(a: dict[str, object], b: dict[str, object]) -> int:
    return round((int(b["messages"]) - int(a["messages"])) / (float(b["wall_s"]) - float(a["wall_s"])))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1M agents only")
    args = parser.parse_args()
    pairs = [(1_000_000, 2, 12)] + ([] if args.quick else [(10_000_000, 3, 30)])
    cases, rows = [], []
    for agents, r1, r2 in pairs:
        a, b = whole_run(agents, r1), whole_run(agents, r2)
        print(a, b, flush=True)
        rate = marginal(a, b)
        cases.append({"short": a, "long": b, "marginal_messages_per_s": rate})
        for c in (a, b):
            rows.append(
                [
                    c["agents"],
                    c["rounds"],
                    c["messages"],
                    c["wall_s"],
                    c["messages_per_s_whole"],
                    rate,
                    c["peak_rss_gb"],
                    c["log_gb"],
                ]
            )
    data = {
        "date": today(),
        "machine": f"{platform.machine()}, 2 CPUs",
        "python": platform.python_version(),
        "cases": cases,
    }
    print(
        write(
            "scale",
            data,
            f"scale: whole moot run process ({today()})",
            [
                "agents",
                "rounds",
                "messages",
                "wall s",
                "msg/s whole",
                "msg/s marginal",
                "peak RSS GB",
                "log GB",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
