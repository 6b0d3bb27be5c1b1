"""Vectors: 16-dimensional opinions against scalar ones, and gossip learning's rounds per second.

1. The built-in gossip study (small world k=6 p=0.3, push-pull, fanout 2, 2 Ray hosts, every
   message logged), 1M agents: `OpinionAgent` (one number per message) against `VectorDeGroot`
   with dim=16 (sixteen per message), same seed, each in a fresh process. Messages per second
   over the rounds after the first (the log's own `seconds` metric), and the bytes the
   messages' segments take per message. The issue's target: the vector rate at least a quarter
   of the scalar one.
2. Gossip learning, 1,000 agents, a two-layer perceptron of 9,985 parameters (64-133-10), each
   agent pushing its model to one neighbour a round (messages aggregated): rounds per second
   in-process and on 2 Ray hosts.

    python benchmarks/vectors.py                 # 1M agents
    python benchmarks/vectors.py --agents 100000 # quick
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_io import in_fresh_process, per_round, today, write


def opinions(agents: int, dim: int, rounds: int) -> dict[str, float]:
    from agents import OpinionAgent, Population, Uniform, VectorDeGroot
    from orchestrator import launch, query
    from protocols import Gossip, SmallWorld

    where = Path(tempfile.mkdtemp())
    log = where / "v.duckdb"
    pop = (
        Population.of(VectorDeGroot, agents, dim=dim, opinion=Uniform())
        if dim
        else Population.of(OpinionAgent, agents, opinion=Uniform())
    )
    run = launch(
        pop,
        Gossip(SmallWorld(k=6, p=0.3), fanout=2, mode="push-pull"),
        rounds=rounds,
        seed=1,
        log=log,
        runtime="ray",
        hosts=2,
        stop="never",
        state_every=0,
        checkpoint_every=0,
    )
    secs, sent = per_round(run, "seconds")[1:], per_round(run, "messages")[1:]
    parts = where / "v.duckdb.parts" / "messages"
    size = sum(f.stat().st_size for f in parts.rglob("*.parquet") if "run_id=_" not in str(f))
    rows = query(log, "SELECT count(*) AS n FROM messages", run_id=run.run_id).column("n")[0].as_py()
    shutil.rmtree(where, ignore_errors=True)
    # The messages' segments: a small run is compacted into the file when it ends, and then there is
    # no per-message size to read (None).
    per_message = size / rows if size else None
    return {"messages_per_s": sum(sent) / sum(secs), "bytes_per_message": per_message, "rows": rows}


def learning(agents: int, rounds: int, runtime: str) -> dict[str, float]:
    from orchestrator import launch
    from protocols.gossip_learning import GossipLearning

    where = Path(tempfile.mkdtemp())
    proto = GossipLearning(hidden=133, samples=40 * agents, test_samples=200)
    kw = {"hosts": 2} if runtime == "ray" else {}
    run = launch(
        proto.default_population(agents),
        proto,
        rounds=rounds,
        seed=1,
        log=where / "l.duckdb",
        runtime=runtime,
        state_every=0,
        checkpoint_every=0,
        **kw,
    )
    secs = per_round(run, "seconds")[1:]
    shutil.rmtree(where, ignore_errors=True)
    return {"rounds_per_s": len(secs) / sum(secs), "parameters": proto.layout.size}


def _shown(value: float | None) -> str:
    return "— (compacted)" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # one case, in this fresh process
        kind, *rest = args.case.split(":")
        out = (
            opinions(args.agents, int(rest[0]), args.rounds)
            if kind == "opinions"
            else learning(1000, 8, rest[0])
        )
        print("RESULT " + json.dumps(out))
        return
    me = __file__
    scalar = in_fresh_process(me, "--agents", args.agents, "--rounds", args.rounds, "--case", "opinions:0")
    vector = in_fresh_process(me, "--agents", args.agents, "--rounds", args.rounds, "--case", "opinions:16")
    local = in_fresh_process(me, "--case", "learning:local")
    ray = in_fresh_process(me, "--case", "learning:ray")
    ratio = vector["messages_per_s"] / scalar["messages_per_s"]
    data = {
        "date": today(),
        "machine": f"{platform.machine()}, 2 CPUs",
        "agents": args.agents,
        "rounds": args.rounds,
        "scalar": scalar,
        "vector16": vector,
        "vector_over_scalar": ratio,
        "gossip_learning_local": local,
        "gossip_learning_ray2": ray,
    }
    rows = [
        ["scalar opinions: messages/s (every one logged)", f"{scalar['messages_per_s']:,.0f}", "—"],
        ["16-d opinions: messages/s (every one logged)", f"{vector['messages_per_s']:,.0f}", "—"],
        ["16-d over scalar", f"{ratio:.2f}", ">= 0.25"],
        ["bytes per logged message, scalar", _shown(scalar["bytes_per_message"]), "—"],
        ["bytes per logged message, 16-d", _shown(vector["bytes_per_message"]), "—"],
        [
            f"gossip learning, 1,000 agents, {local['parameters']:,} parameters: rounds/s in-process",
            f"{local['rounds_per_s']:.2f}",
            "—",
        ],
        ["the same on 2 Ray hosts: rounds/s", f"{ray['rounds_per_s']:.2f}", "—"],
    ]
    print(
        write(
            "vectors",
            data,
            f"vectors: {args.agents:,} agents ({today()})",
            ["case", "result", "target"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
