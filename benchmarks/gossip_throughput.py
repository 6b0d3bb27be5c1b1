"""Gossip throughput: messages routed *and logged* per second, end to end, and peak memory.

Each configuration runs in a fresh process on a fresh local Ray instance (one
host per CPU): OpinionAgents (vectorised `act_batch`) and the same agents on
the plain-Python `act` path, on a small-world graph (k=6, p=0.3), push-pull,
fanout 2, no early stop. Peak memory is the summed RSS of the driver and every
Ray process it started, sampled every 100 ms.

    python benchmarks/gossip_throughput.py            # the full table
    python benchmarks/gossip_throughput.py --quick    # 10^4 and 10^5 only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_io import RESULTS, PeakRss

CONFIGS = [  # (agents, path, rounds)
    (10_000, "vectorised", 50),
    (100_000, "vectorised", 30),
    (1_000_000, "vectorised", 10),
    (10_000, "plain", 20),
    (100_000, "plain", 5),
    (1_000_000, "plain", 2),
]


def one(agents: int, path: str, rounds: int) -> dict[str, object]:
    from agents import OpinionAgent, Population, Uniform
    from orchestrator import launch
    from protocols import Gossip, SmallWorld

    class PlainOpinion(OpinionAgent):
        vectorised = False

    cls = OpinionAgent if path == "vectorised" else PlainOpinion
    log = Path(tempfile.mkdtemp()) / "bench.duckdb"
    t0 = time.perf_counter()
    with PeakRss() as peak:
        run = launch(
            Population.of(cls, agents, opinion=Uniform()),
            Gossip(SmallWorld(k=6, p=0.3), fanout=2, mode="push-pull", tolerance=0.0),
            rounds=rounds,
            seed=1,
            log=log,
            state_every=0,
        )
    wall = time.perf_counter() - t0
    rows = run.sql("SELECT count(*) AS n FROM messages").column("n")[0].as_py()
    assert rows == run.messages, (rows, run.messages)
    rounds_s = run.seconds - run.setup_seconds
    return {
        "agents": agents,
        "path": path,
        "hosts": run.hosts,
        "rounds": run.rounds,
        "messages": run.messages,
        "messages_per_s": round(run.messages / rounds_s),
        "messages_per_s_incl_setup": round(run.messages / run.seconds),
        "setup_s": round(run.setup_seconds, 2),
        "rounds_s": round(rounds_s, 2),
        "wall_s_incl_ray_start": round(wall, 2),
        "peak_rss_gb": peak.gb,
        "log_mb": round(log.stat().st_size / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip the 10^6 configurations")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1], int(args.one[2]))))
        return
    rows = []
    for agents, path, rounds in CONFIGS:
        if args.quick and agents >= 1_000_000:
            continue
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(agents), path, str(rounds)],
            capture_output=True,
            text=True,
            env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0"),
        )
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"benchmark {agents} {path} failed")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{row['agents']:>9,} {row['path']:<10} {row['messages_per_s']:>12,} msg/s  "
            f"peak {row['peak_rss_gb']} GB  ({row['messages']:,} messages, {row['rounds']} rounds)",
            flush=True,
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    meta = {
        "date": stamp,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    (RESULTS / "gossip_throughput.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        f"# gossip throughput ({stamp}, {meta['cpus']} CPUs, Python {meta['python']})",
        "",
        "| agents | path | hosts | rounds | messages | msg/s (rounds) | msg/s (incl. setup) "
        "| setup s | peak RSS GB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['agents']:,} | {r['path']} | {r['hosts']} | {r['rounds']} | {r['messages']:,} | "
            f"{r['messages_per_s']:,} | {r['messages_per_s_incl_setup']:,} | {r['setup_s']} "
            f"| {r['peak_rss_gb']} |"
        )
    (RESULTS / "gossip_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
