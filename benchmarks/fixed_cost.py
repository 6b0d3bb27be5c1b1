"""Fixed cost of a run: where the wall time of a 1-round, 1,000,000-agent run goes.

A 1-round run measures almost nothing but fixed cost: importing moot, starting
Ray, building the graph, starting hosts and building their shards, logging the
agents and the initial state, then after the last round the final state, the
log's catch-up and shutdown. Each part is timed (the coordinator's own timings,
`Run.result.timings`), in a fresh process, three times; the medians are recorded.

    python benchmarks/fixed_cost.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_io import today, write

AGENTS = 1_000_000


def one() -> dict[str, float]:
    t0 = time.perf_counter()
    from agents import OpinionAgent, Population, Uniform
    from orchestrator import launch
    from orchestrator.ray_runtime import ensure_ray
    from protocols import Gossip

    t1 = time.perf_counter()
    ensure_ray()
    t2 = time.perf_counter()
    last: list[float] = []
    run = launch(
        Population.of(OpinionAgent, AGENTS, opinion=Uniform()),
        Gossip(fanout=2, mode="push-pull"),
        rounds=1,
        log=Path(tempfile.mkdtemp()) / "fixed.duckdb",
        progress=lambda r, m: last.append(time.perf_counter()),
    )
    t3 = time.perf_counter()
    out = {"import": t1 - t0, "ray_start": t2 - t1, "launch": t3 - t2}
    out.update({f"run.{k}": v for k, v in run.result.timings.items()})
    out["after_last_round"] = t3 - last[-1]
    out["shutdown"] = (t3 - t2) - run.seconds
    out["total"] = t3 - t0
    return out


def main() -> None:
    if "--one" in sys.argv:
        print(json.dumps(one()))
        return
    samples = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, __file__, "--one"],
            capture_output=True,
            text=True,
            env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0"),
        )
        if out.returncode != 0:
            raise SystemExit(out.stderr[-3000:])
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = list(samples[0])
    median = {k: round(statistics.median(s[k] for s in samples), 2) for k in keys}
    stamp = today()
    print(
        write(
            "fixed_cost",
            {"date": stamp, "agents": AGENTS, "median": median, "samples": samples},
            f"fixed cost of a 1-round run of {AGENTS:,} agents ({stamp}, median of 3)",
            ["part", "seconds"],
            [[k, v] for k, v in median.items()],
        )
    )


if __name__ == "__main__":
    main()
