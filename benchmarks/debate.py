"""Debate societies at scale: agent-rounds per second, wall time, peak memory.

1. 1,000,000 rule-based debaters (333,333 societies of 3, Du et al.'s arithmetic),
   4 rounds, every answer logged, local Ray, one host per CPU.
2. 10,000 LLM debaters on ``moot/simulated`` (an offline stand-in, not a language
   model) through the whole litellm + gateway path, 4 rounds, 2 Ray hosts, 1,000 in flight.

Each case runs in a fresh process; peak memory is the driver plus every Ray process.

    python benchmarks/debate.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_io import PeakRss, in_fresh_process, today, write


def one(kind: str) -> dict[str, object]:
    from agents import Population
    from orchestrator import LLMConfig, launch
    from protocols.debate import Debate, LLMDebater, RuleDebater

    log = Path(tempfile.mkdtemp()) / "debate.duckdb"
    study = Debate(strategies=["000"])
    if kind == "rule":
        n, pop, extra = 999_999, Population.of(RuleDebater, 999_999), {}
    else:
        n = 9_999
        pop = Population.of(LLMDebater, n)
        extra = {"hosts": 2, "llm": LLMConfig(max_in_flight=1000, cache="")}
    t0 = time.perf_counter()
    with PeakRss() as peak:
        run = launch(pop, study, rounds=4, seed=1, log=log, state_every=0, stop=lambda r, m: False, **extra)
    wall = time.perf_counter() - t0
    rounds_s = run.seconds - run.setup_seconds
    return {
        "case": kind,
        "agents": n,
        "rounds": 4,
        "hosts": run.hosts,
        "wall_seconds": round(wall, 2),
        "rounds_seconds": round(rounds_s, 2),
        "agent_rounds_per_second": round(n * 4 / rounds_s),
        "accuracy_final": round(run.final["accuracy"], 4),
        "peak_rss_gb": peak.gb,
    }


def main() -> None:
    results = [in_fresh_process(__file__, kind) for kind in ("rule", "llm")]
    rows: list[list[object]] = [
        [
            "1,000,000 rule-based debaters"
            if r["case"] == "rule"
            else "10,000 LLM debaters (moot/simulated)",
            r["hosts"],
            r["wall_seconds"],
            r["rounds_seconds"],
            r["agent_rounds_per_second"],
            r["peak_rss_gb"],
        ]
        for r in results
    ]
    data = {"date": today(), "machine": f"{os.cpu_count()} cores", "results": results}
    print(
        write(
            "debate",
            data,
            f"Debate societies, 4 rounds ({today()}, {os.cpu_count()} cores)",
            ["case", "hosts", "wall s", "rounds s", "agent-rounds/s", "peak RSS GB"],
            rows,
        )
    )


if __name__ == "__main__":
    if len(sys.argv) == 2:
        print("RESULT " + json.dumps(one(sys.argv[1])), flush=True)
    else:
        main()
