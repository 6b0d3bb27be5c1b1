"""Durability: what checkpoints cost a run, and how soon a resumed run plays again.

The issue's targets: checkpointing 1M vectorised agents every 5 rounds costs at most 10% of
the run's time; resuming a 1M-agent run reaches its next round in at most the time of a
fresh set-up.

Cases (the built-in opinion study: 1M vectorised OpinionAgents, small world k=6 p=0.3,
push-pull gossip fanout 2, every message logged, 2 hosts on local Ray, 10 rounds):

- ``none``: ``checkpoint_every=0``, the baseline; ``every5``: a checkpoint after rounds 4
  and 9 (the last round always gets one). Each is run ``--repeat`` times, alternating, and
  the ratio of medians reported: ``rounds`` (the loop, checkpoints included) and ``whole``
  (the run's own wall time, set-up included).
- ``resume``: in each repeat, a run that fails after round 7 (its progress callback raises) is resumed
  from the checkpoint after round 4 on new hosts; its set-up (log rewound, hosts started,
  checkpoint read) and its first round are set beside the fresh run's set-up and first
  round.

    python benchmarks/durability.py            # 1M agents
    python benchmarks/durability.py --agents 100000 --repeat 1   # quick
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from results_io import today, write

import orchestrator
from orchestrator import launch
from protocols import Gossip
from protocols.registry import get_protocol


def study(n: int) -> tuple[Any, Any]:
    proto = Gossip(graph="small_world", fanout=2, mode="push-pull", tolerance=0.0)
    return get_protocol("gossip")().default_population(n), proto


def one(n: int, every: int, log: Path, run_id: str, **kw: Any) -> orchestrator.Run:
    pop, proto = study(n)
    return launch(
        pop,
        proto,
        rounds=10,
        seed=1,
        log=log,
        hosts=2,
        run_id=run_id,
        state_every=0,
        checkpoint_every=every,
        **kw,
    )


def round_seconds(run: orchestrator.Run, r: int) -> float:
    """Wall time of round `r` of the run (its ``seconds`` metric)."""
    got = run.sql(f"SELECT value FROM metrics WHERE name = 'seconds' AND round = {r}").to_pylist()
    return float(got[0]["value"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.agents
    where = Path(tempfile.mkdtemp())
    times: dict[str, list[tuple[float, float, float]]] = {"none": [], "every5": []}
    firsts: dict[str, list[tuple[float, float]]] = {"fresh": [], "resumed": []}  # (set-up, to round)

    def fail(r: int, metrics: object) -> None:
        if r == 7:
            raise RuntimeError("stop here")

    for k in range(args.repeat):
        for name, every in (("none", 0), ("every5", 5)):
            log = where / f"{name}{k}.duckdb"
            run = one(n, every, log, f"{name}{k}")
            times[name].append((run.result.timings["rounds"], run.seconds, run.result.timings["checkpoints"]))
            firsts["fresh"].append((run.setup_seconds, run.setup_seconds + round_seconds(run, 0)))
            print(name, times[name][-1], flush=True)
        # A run that fails after round 7, resumed from the checkpoint after round 4.
        log = where / f"resume{k}.duckdb"
        with contextlib.suppress(RuntimeError):
            one(n, 5, log, "cut", progress=fail)
        resumed = orchestrator.resume(log, "cut", hosts=2)
        firsts["resumed"].append((resumed.setup_seconds, resumed.setup_seconds + round_seconds(resumed, 5)))
        print("resumed", firsts["resumed"][-1], flush=True)
    med = {name: [statistics.median(t[i] for t in ts) for i in range(3)] for name, ts in times.items()}
    first = {name: [statistics.median(t[i] for t in ts) for i in range(2)] for name, ts in firsts.items()}
    shutil.rmtree(where, ignore_errors=True)
    data = {
        "date": today(),
        "machine": f"{platform.machine()}, 2 CPUs",
        "agents": n,
        "runs": times,
        "first_rounds": firsts,
        "checkpoint_cost_rounds": med["every5"][0] / med["none"][0] - 1,
        "checkpoint_cost_whole": med["every5"][1] / med["none"][1] - 1,
    }
    (fresh_setup, fresh_first), (resumed_setup, resumed_first) = first["fresh"], first["resumed"]
    rows = [
        [
            "rounds (loop) s, median",
            round(med["none"][0], 2),
            round(med["every5"][0], 2),
            f"{data['checkpoint_cost_rounds']:+.1%}",
        ],
        [
            "whole run s, median",
            round(med["none"][1], 2),
            round(med["every5"][1], 2),
            f"{data['checkpoint_cost_whole']:+.1%}",
        ],
        [
            "hosts writing checkpoints s, median",
            0.0,
            round(med["every5"][2], 2),
            f"{med['every5'][2] / med['every5'][0]:.1%} of the loop",
        ],
        [
            "set-up s, median (fresh / resumed)",
            round(fresh_setup, 2),
            round(resumed_setup, 2),
            f"{resumed_setup / fresh_setup:.2f}x",
        ],
        [
            "set-up and next round s, median (fresh / resumed)",
            round(fresh_first, 2),
            round(resumed_first, 2),
            f"{resumed_first / fresh_first:.2f}x",
        ],
    ]
    print(
        write(
            "durability",
            data,
            f"durability: {n:,} vectorised agents, 10 rounds, 2 hosts ({today()})",
            ["measure", "no checkpoints / fresh", "every 5 rounds / resumed", "ratio"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
