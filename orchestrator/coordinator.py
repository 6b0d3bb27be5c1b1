"""The coordinator: drives rounds, combines metrics, decides when to stop, owns the writer.

It runs in the driver process. Each round it waits for every host's statistics
(the barrier), hands that round's messages to the log writer's thread (so
logging round r overlaps computing round r+1), and asks the protocol whether the
run is done.
"""

from __future__ import annotations

import contextlib
import json
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from agents.batch import MessageBatch
from agents.message import KINDS
from agents.population import Population
from orchestrator.errors import MootError
from orchestrator.host import ChunkStats, HostSpec, shard_bounds
from orchestrator.log import LogWriter
from orchestrator.runtime import Runtime
from protocols.base import MessageProtocol

__all__ = ["RoundMetrics", "RunResult", "combine_stats", "run_rounds"]

RoundMetrics = dict[str, float]
ProgressFn = Callable[[int, RoundMetrics], None]

_KIND_DICT = pa.array(list(KINDS), pa.string())


def combine_stats(stats: list[ChunkStats]) -> RoundMetrics:
    """Combine per-chunk statistics in chunk order (pairwise, Chan et al.).

    Chunks have a fixed layout, so the result is bit-for-bit the same whatever
    the number of hosts.
    """
    sent = sum(s.sent for s in stats)
    count = np.concatenate([s.count for s in stats]).astype(np.float64)
    out: RoundMetrics = {"messages": float(sent), "agents": float(count.sum())}
    if len(count) == 0:
        return out
    mean = np.concatenate([s.mean for s in stats])
    m2 = np.concatenate([s.m2 for s in stats])
    lo = float(np.min(np.concatenate([s.min for s in stats])))
    hi = float(np.max(np.concatenate([s.max for s in stats])))
    while len(count) > 1:
        if len(count) % 2:
            count, mean, m2 = np.r_[count, 0.0], np.r_[mean, 0.0], np.r_[m2, 0.0]
        na, nb = count[0::2], count[1::2]
        n = na + nb
        delta = mean[1::2] - mean[0::2]
        safe = np.maximum(n, 1.0)
        mean = mean[0::2] + delta * nb / safe
        m2 = m2[0::2] + m2[1::2] + delta * delta * na * nb / safe
        count = n
    out.update(
        mean=float(mean[0]),
        variance=float(m2[0] / count[0]),
        min=lo,
        max=hi,
        spread=hi - lo,
    )
    return out


def _const(value: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array([value]))


def messages_table(batch: MessageBatch, round: int, run_id: str, protocol: str) -> pa.Table:
    """A round's delivered messages as an Arrow table shaped like the ``messages`` table."""
    n = len(batch)

    def strings(a: pa.Array | None) -> pa.Array:
        return pa.nulls(n, pa.string()) if a is None else a

    value = pa.array(batch.value, mask=np.isnan(batch.value))
    return pa.table(
        {
            "run_id": _const(run_id, n),
            "round": pa.array(np.full(n, round, np.int32)),
            "sender": pa.array(batch.sender),
            "seq": pa.array(batch.seq),
            "receiver": pa.array(batch.receiver),
            "topic": strings(batch.topic),
            "protocol": _const(protocol, n),
            "kind": pa.DictionaryArray.from_arrays(pa.array(batch.kind.astype(np.int8)), _KIND_DICT),
            "value": value,
            "text": strings(batch.text),
            "payload": strings(batch.payload),
        }
    )


@dataclass
class RunResult:
    """What a finished run reports (also written to the ``runs`` table)."""

    run_id: str
    rounds: int
    messages: int
    seconds: float
    stop_reason: str
    final: RoundMetrics
    nodes: list[str] = field(default_factory=list)
    setup_seconds: float = 0.0


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("moot", "ray", "duckdb", "pyarrow", "numpy", "networkx", "pydantic"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def _now() -> datetime:
    return datetime.now(timezone.utc)


def run_rounds(
    *,
    population: Population,
    protocol: MessageProtocol,
    runtime: Runtime,
    writer: LogWriter,
    run_id: str,
    seed: int,
    rounds: int,
    hosts: int,
    state_every: int,
    max_concurrency: int,
    config: Mapping[str, object],
    progress: ProgressFn | None = None,
) -> RunResult:
    """Play a run to its end, logging everything; see `orchestrator.launch`."""
    n = len(population)
    started = time.perf_counter()
    writer.execute(
        "INSERT INTO runs (run_id, started_at, seed, protocol, config, versions, n_agents, n_hosts, status) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running')",
        [
            run_id,
            _now(),
            seed,
            protocol.name,
            json.dumps(config, default=str),
            json.dumps(_versions()),
            n,
            hosts,
        ],
    )
    total = 0
    done_rounds = 0
    reason = "rounds"
    final: RoundMetrics = {}
    placement: list[tuple[int, str]] = []
    setup = 0.0

    def event(kind: str, detail: str, round: int | None = None, host: int | None = None) -> None:
        writer.execute(
            "INSERT INTO events (run_id, ts, round, kind, host, detail) VALUES (?, ?, ?, ?, ?, ?)",
            [run_id, _now(), round, kind, host, detail],
        )

    try:
        bounds = shard_bounds(n, hosts)
        router = protocol.build(n, seed)
        spec = HostSpec(
            population, bounds, router, seed, protocol.field, protocol.instructions, max_concurrency
        )
        placement = runtime.start(spec)
        _log_agents(writer, run_id, runtime, dict(placement))
        for h, node in placement:
            event("host_started", f"agents {bounds[h]}..{bounds[h + 1] - 1} on node {node}", host=h)
        _log_states(writer, run_id, runtime, -1)
        setup = time.perf_counter() - started
        for r in range(rounds):
            t0 = time.perf_counter()
            stats, fetch = runtime.step(r)
            metrics = combine_stats(stats)
            metrics["seconds"] = time.perf_counter() - t0
            total += int(metrics["messages"])
            done_rounds = r + 1
            final = metrics

            def log_round(
                r: int = r, fetch: Callable[[], MessageBatch] = fetch, m: RoundMetrics = metrics
            ) -> None:
                writer.append("messages", messages_table(fetch(), r, run_id, protocol.name))
                writer.append(
                    "metrics",
                    pa.table(
                        {
                            "run_id": [run_id] * len(m),
                            "round": pa.array([r] * len(m), pa.int32()),
                            "name": list(m),
                            "value": list(m.values()),
                        }
                    ),
                )

            writer.submit(log_round)
            if progress is not None:
                progress(r, metrics)
            stop = protocol.stop_reason(r, metrics)
            if stop is not None:
                reason = stop
                break
            if state_every and (r + 1) % state_every == 0 and r + 1 < rounds:
                _log_states(writer, run_id, runtime, r)
        _log_states(writer, run_id, runtime, done_rounds - 1)  # the loop never logs the last round
        writer.flush()
    except BaseException as exc:
        # Keep what is logged: finish pending appends, then record the failure.
        with contextlib.suppress(MootError):
            writer.flush()
        detail = f"{type(exc).__name__}: {exc}"
        try:
            event("error", detail, round=done_rounds)
            writer.execute(
                "UPDATE runs SET finished_at = ?, rounds = ?, messages = ?, seconds = ?, status = 'failed', "
                "stop_reason = ? WHERE run_id = ?",
                [_now(), done_rounds, total, time.perf_counter() - started, detail[:500], run_id],
            )
        except MootError:
            pass
        raise
    seconds = time.perf_counter() - started
    event("stopped", reason, round=done_rounds - 1)
    writer.execute(
        "UPDATE runs SET finished_at = ?, rounds = ?, messages = ?, seconds = ?, status = 'finished', "
        "stop_reason = ? WHERE run_id = ?",
        [_now(), done_rounds, total, seconds, reason, run_id],
    )
    nodes = sorted({n for _, n in placement})
    return RunResult(run_id, done_rounds, total, seconds, reason, final, nodes, setup)


def _log_states(writer: LogWriter, run_id: str, runtime: Runtime, round: int) -> None:
    fetch = runtime.states(round)

    def job() -> None:
        for t in fetch():
            writer.append("states", t.append_column("run_id", _const(run_id, t.num_rows)))

    writer.submit(job)


def _log_agents(writer: LogWriter, run_id: str, runtime: Runtime, nodes: dict[int, str]) -> None:
    for host, blocks in runtime.blocks():
        for cls, a, b in blocks:
            n = b - a
            writer.append(
                "agents",
                pa.table(
                    {
                        "run_id": _const(run_id, n),
                        "agent": pa.array(np.arange(a, b, dtype=np.int64)),
                        "class": _const(cls, n),
                        "host": pa.array(np.full(n, host, np.int32)),
                        "node": _const(nodes.get(host, ""), n),
                    }
                ),
            )
