"""What tracing costs: round time at 100,000 agents on 2 Ray hosts, untraced and traced.

Push-pull gossip (fanout 2), every message logged, 20 rounds, the same seed for
every case. The cases alternate (none, jsonl, otlp, none, ...) three times, so
drift on the machine falls on all of them. The OTLP case exports to a real
OTLP/HTTP receiver on 127.0.0.1 (the tests' receiver). The figure is the median
of the rounds' own ``seconds`` (rounds 1-19; round 0 warms up).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results_io import today, write

AGENTS, ROUNDS, HOSTS, REPEATS = 100_000, 20, 2, 3


def round_seconds(mode: str, directory: Path, index: int, endpoint: str) -> list[float]:
    import os

    from agents import OpinionAgent, Population, Uniform
    from orchestrator import launch, query
    from protocols import Gossip

    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    log = directory / f"{mode}-{index}.duckdb"
    run = launch(
        Population.of(OpinionAgent, AGENTS, opinion=Uniform()),
        Gossip(fanout=2, mode="push-pull"),
        rounds=ROUNDS,
        seed=11,
        log=log,
        hosts=HOSTS,
        stop="never",
        trace=mode,
    )
    rows = query(
        log, f"SELECT value FROM metrics WHERE run_id = '{run.run_id}' AND name = 'seconds' AND round > 0"
    ).to_pylist()
    return [r["value"] for r in rows]


def main() -> None:
    from orchestrator.ray_runtime import ensure_ray
    from tests.orchestrator.otlp_receiver import OTLPReceiver

    ensure_ray()
    modes = ["none", "jsonl", "otlp"]
    seconds: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp, OTLPReceiver() as receiver:
        for i in range(REPEATS):
            for mode in modes:
                seconds[mode] += round_seconds(mode, Path(tmp), i, receiver.endpoint)
        spans = len(receiver.spans)
    base = statistics.median(seconds["none"])
    rows = []
    data: dict[str, object] = {
        "date": today(),
        "agents": AGENTS,
        "hosts": HOSTS,
        "rounds": ROUNDS,
        "cases": {},
    }
    for mode in modes:
        med = statistics.median(seconds[mode])
        overhead = (med - base) / base
        rows.append([mode, f"{med:.3f}", f"{overhead:+.1%}", len(seconds[mode])])
        data["cases"][mode] = {"median_round_s": med, "overhead": overhead, "rounds": len(seconds[mode])}  # type: ignore[index]
    data["otlp_spans_received"] = spans
    print(
        write(
            "telemetry",
            data,
            f"Tracing overhead: {AGENTS:,} agents, {HOSTS} Ray hosts, push-pull gossip, {today()}",
            ["trace", "median round (s)", "vs none", "rounds measured"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
