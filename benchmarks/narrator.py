"""A narrator and private knowledge: the game master at scale, and iAgents tasks per second.

1. 1,000 scenes of the open-ended village council (5 players and an LLM game master each:
   6,000 agents), every agent played by the offline stand-in ``moot/simulated`` through litellm
   and the gateway, on 2 Ray hosts: seconds per step (a step is every player's call, then every
   GM's), and LLM calls per second against the bound the gateway's own measurement gives (one
   litellm call costs about 6 ms of CPU here; benchmarks/results/llm_concurrency.md).
2. InformativeBench-sized information asymmetry (140 people, 588 relations, 139 tasks, one per
   person with neighbours): tasks solved per second, the breadth-first baseline and the InfoNav
   agent (stand-in), in-process.

    python benchmarks/narrator.py
    python benchmarks/narrator.py --scenes 100   # quick
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_io import in_fresh_process, per_round, today, write


def scenes(count: int) -> dict[str, float]:
    from orchestrator import launch, query
    from protocols.game_master import GameMaster

    where = Path(tempfile.mkdtemp())
    proto = GameMaster("village_council", scenes=count)
    run = launch(
        proto.default_population(proto.agents),
        proto,
        rounds=proto.rounds_needed,
        seed=1,
        log=where / "gm.duckdb",
        runtime="ray",
        hosts=2,
        state_every=0,
        checkpoint_every=0,
    )
    calls = (
        query(where / "gm.duckdb", "SELECT count(*) AS n FROM llm_calls", run_id=run.run_id)
        .column("n")[0]
        .as_py()
    )
    played = sum(per_round(run, "seconds")[1:])  # after the opening
    shutil.rmtree(where, ignore_errors=True)
    steps = proto.spec.steps
    return {
        "agents": proto.agents,
        "steps": steps,
        "seconds_per_step": played / steps,
        "calls": calls,
        "calls_per_s": calls / played,
    }


def tasks(agent: str) -> dict[str, float]:
    from orchestrator import launch, query
    from protocols.info_asymmetry import InfoAsymmetry

    where = Path(tempfile.mkdtemp())
    proto = InfoAsymmetry(tasks=139, agent=agent)
    t0 = time.perf_counter()
    run = launch(
        proto.default_population(140),
        proto,
        rounds=20,
        seed=1,
        log=where / "ia.duckdb",
        runtime="local",
        state_every=1,
        checkpoint_every=0,
    )
    took = time.perf_counter() - t0
    solved = (
        query(
            where / "ia.duckdb",
            "SELECT count(*) FILTER (solved) AS n FROM info_task_results",
            run_id=run.run_id,
        )
        .column("n")[0]
        .as_py()
    )
    shutil.rmtree(where, ignore_errors=True)
    return {
        "tasks": 139,
        "solved": solved,
        "rounds": run.rounds,
        "seconds": took,
        "tasks_per_s": solved / took,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", type=int, default=1000)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        kind, _, arg = args.case.partition(":")
        out = scenes(int(arg)) if kind == "scenes" else tasks(arg)
        print("RESULT " + json.dumps(out))
        return
    gm = in_fresh_process(__file__, "--case", f"scenes:{args.scenes}")
    rule = in_fresh_process(__file__, "--case", "tasks:rule")
    llm = in_fresh_process(__file__, "--case", "tasks:llm")
    bound = 2 / 0.006  # two hosts, each paying ~6 ms of litellm CPU a call
    data = {
        "date": today(),
        "machine": f"{platform.machine()}, 2 CPUs",
        "game_master": gm,
        "gateway_bound_calls_per_s": bound,
        "info_rule": rule,
        "info_llm": llm,
    }
    rows = [
        [
            f"game master: {args.scenes:,} scenes x 5 players, seconds per step",
            f"{gm['seconds_per_step']:.1f}",
            "—",
        ],
        [
            "  LLM calls per second (stand-in through litellm)",
            f"{gm['calls_per_s']:.0f}",
            f"~{bound:.0f} (litellm CPU bound)",
        ],
        ["iAgents, 140 people, 139 tasks: tasks/s, breadth-first", f"{rule['tasks_per_s']:.1f}", "—"],
        ["  tasks/s, InfoNav agent (stand-in through litellm)", f"{llm['tasks_per_s']:.2f}", "—"],
    ]
    print(
        write(
            "narrator", data, f"narrator and private knowledge ({today()})", ["case", "result", "bound"], rows
        )
    )


if __name__ == "__main__":
    main()
