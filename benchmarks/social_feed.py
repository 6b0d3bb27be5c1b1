"""Social feed at scale: seconds per round (feeds, actions, world update, logging) and peak memory.

Rule-based users (`RuleUser`), X mode: the interest recommender, 10% of users active per
round, a Barabasi-Albert follow graph, every action and notice logged. Each size runs in a
fresh process on a fresh local Ray instance (one host per CPU); peak memory is the driver
plus every Ray process. One more case runs LLM users on ``moot/simulated`` (an offline
stand-in, not a language model) through litellm and the gateway.

    python benchmarks/social_feed.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_io import PeakRss, in_fresh_process, today, write

CASES = [(10_000, "rule", 10), (100_000, "rule", 10), (1_000_000, "rule", 5), (10_000, "llm", 3)]


def one(n: int, kind: str, rounds: int) -> dict[str, object]:
    from agents import Population
    from orchestrator import LLMConfig, launch
    from protocols.social_feed import LLMUser, RuleUser, SocialFeed

    log = Path(tempfile.mkdtemp()) / "feed.duckdb"
    proto = SocialFeed(posts=1000, activation=0.1)
    extra = {"llm": LLMConfig(max_in_flight=1000, cache="")} if kind == "llm" else {}
    pop = Population.of(LLMUser if kind == "llm" else RuleUser, n)
    with PeakRss() as peak:
        run = launch(pop, proto, rounds=rounds, seed=1, log=log, state_every=0, **extra)
    per_round = (run.seconds - run.setup_seconds) / rounds
    return {
        "users": n,
        "kind": kind,
        "rounds": rounds,
        "hosts": run.hosts,
        "setup_seconds": round(run.setup_seconds, 2),
        "seconds_per_round": round(per_round, 2),
        "rows": run.messages,
        "peak_rss_gb": peak.gb,
    }


def main() -> None:
    results = [in_fresh_process(__file__, n, kind, rounds) for n, kind, rounds in CASES]
    rows: list[list[object]] = [
        [
            f"{r['users']:,} {'LLM users (moot/simulated)' if r['kind'] == 'llm' else 'rule-based users'}",
            r["hosts"],
            r["setup_seconds"],
            r["seconds_per_round"],
            r["peak_rss_gb"],
        ]
        for r in results
    ]
    data = {"date": today(), "machine": f"{os.cpu_count()} cores", "results": results}
    print(
        write(
            "social_feed",
            data,
            f"Social feed, X mode, interest recommender, 10% active ({today()}, {os.cpu_count()} cores)",
            ["users", "hosts", "setup s", "s per round", "peak RSS GB"],
            rows,
        )
    )


if __name__ == "__main__":
    if len(sys.argv) == 4:
        print("RESULT " + json.dumps(one(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))), flush=True)
    else:
        main()
