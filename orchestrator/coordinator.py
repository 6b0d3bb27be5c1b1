"""The coordinator: drives rounds, combines metrics, decides when to stop, owns the writer.

It runs in the driver process. Each round it waits for every host's statistics
(the barrier), hands that round's messages to the log writer's thread (so
logging round r overlaps computing round r+1), and asks the protocol whether the
run is done.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agents.batch import MessageBatch
from agents.population import Population
from orchestrator.errors import ConfigError, LLMError, MootError, RunInterrupted
from orchestrator.host import ChunkStats, HostSpec, HostStats, shard_bounds
from orchestrator.llm import LLMConfig, LLMSetup, ServiceHandle
from orchestrator.llm.config import forwarded_env
from orchestrator.log import LogWriter
from orchestrator.message_log import MessageLog, aggregates_table, const_column, messages_table
from orchestrator.runtime import Runtime
from protocols.base import MessageProtocol
from protocols.stop import StopRule

if TYPE_CHECKING:
    from orchestrator.telemetry import Tracing

__all__ = ["RoundMetrics", "RunControl", "RunPlan", "RunResult", "combine_stats", "run_rounds"]

RoundMetrics = dict[str, float]
ProgressFn = Callable[[int, RoundMetrics], None]

_STATS = ("mean", "variance", "min", "max", "spread")


def _combine_field(stats: list[ChunkStats]) -> dict[str, float]:
    """One field's statistics from per-chunk ones, combined in chunk order (pairwise, Chan et al.).

    Chunks have a fixed layout, so the result is bit-for-bit the same whatever
    the number of hosts.
    """
    count = np.concatenate([s.count for s in stats]).astype(np.float64)
    if len(count) == 0:
        return {}
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
    return {
        "count": float(count[0]),
        "mean": float(mean[0]),
        "variance": float(m2[0] / count[0]),
        "min": lo,
        "max": hi,
        "spread": hi - lo,
    }


def combine_stats(
    stats: list[HostStats], fields: tuple[str, ...], primary: str | None
) -> tuple[RoundMetrics, RoundMetrics]:
    """A round's metrics from every host's statistics.

    Returns:
        (logged, seen): the metrics written to the log (the primary field's
        statistics under bare names, others as ``field.stat``), and the same
        plus every field's statistics as ``field.stat``, which stop rules read.
    """
    logged: RoundMetrics = {"messages": float(sum(s.sent for s in stats))}
    seen: RoundMetrics = {}
    for i, name in enumerate(fields):
        combined = _combine_field([s.fields[i] for s in stats])
        if name == primary:
            logged["agents"] = combined.get("count", 0.0)
        for stat in _STATS:
            if stat in combined:
                seen[f"{name}.{stat}"] = combined[stat]
                logged[stat if name == primary else f"{name}.{stat}"] = combined[stat]
    if primary is None:
        logged["agents"] = 0.0
    changes = [s.max_change for s in stats if not np.isnan(s.max_change)]
    if changes:
        logged["max_change"] = max(changes)
    return logged, {**seen, **logged}


@dataclass(frozen=True)
class RunPlan:
    """Everything that defines a run, as `launch` resolved it."""

    population: Population
    protocol: MessageProtocol
    run_id: str
    seed: int
    rounds: int
    hosts: int
    state_every: int
    max_concurrency: int
    stop: StopRule | None
    primary: str | None
    fields: tuple[str, ...]
    messages: MessageLog
    params: Mapping[str, object]
    config: Mapping[str, object]
    llm: LLMConfig | None = None
    llm_cache: str | None = None
    trace: Any = "none"
    message_cap: int | None = None
    on_flood: str = "error"


class RunControl:
    """Shared between a running run and its handle: progress so far, and a stop request."""

    def __init__(self) -> None:
        self.round = -1
        self.metrics: RoundMetrics = {}
        self.stop_requested: str | None = None
        self.interrupted: str | None = None

    def request_stop(self, reason: str) -> None:
        self.stop_requested = reason

    def interrupt(self, how: str) -> None:
        """End the run ``interrupted`` once the round in progress is logged (Ctrl-C, SIGTERM)."""
        self.interrupted = how


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
    timings: dict[str, float] = field(default_factory=dict)
    llm: dict[str, float] = field(default_factory=dict)
    actions: int = 0
    """Actions on the protocol's world (moves, answers, posts), which are not messages."""


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("moot", "ray", "duckdb", "pyarrow", "numpy", "networkx", "pydantic"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def _now() -> datetime:
    return datetime.now(timezone.utc)


def check_new_run_id(writer: LogWriter, run_id: str) -> None:
    """Refuse a run id the log already holds (a rerun must pick another, or leave it out)."""
    rows = writer.con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if rows[0][0]:
        raise ConfigError(
            f"run_id {run_id!r} is already in the log {str(writer.path)!r}; pick another run_id, "
            "or leave it out for a fresh one."
        )


def run_rounds(
    plan: RunPlan,
    runtime: Runtime,
    writer: LogWriter,
    progress: ProgressFn | None = None,
    control: RunControl | None = None,
) -> RunResult:
    """Play a run to its end, logging everything; see `orchestrator.launch`."""
    n = len(plan.population)
    run_id = plan.run_id
    started = time.perf_counter()
    config = dict(plan.config)
    kinds = plan.protocol.kind_table()
    check_new_run_id(writer, run_id)
    writer.ensure_kinds(kinds)
    writer.claim(run_id)
    writer.execute(
        "INSERT INTO runs (run_id, started_at, seed, protocol, config, versions, n_agents, n_hosts, status, "
        "params, message_log, message_rate, message_every) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
        [
            run_id,
            _now(),
            plan.seed,
            plan.protocol.name,
            json.dumps(config, default=str),
            json.dumps(_versions()),
            n,
            plan.hosts,
            json.dumps(dict(plan.params), default=str),
            plan.messages.mode,
            plan.messages.rate,
            plan.messages.period,
        ],
    )
    for name, sql in plan.protocol.views().items():  # the protocol's own questions, as SQL
        writer.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    total = actions = 0
    done_rounds = 0
    reason = "rounds"
    final: RoundMetrics = {}
    placement: list[tuple[int, str]] = []
    setup = 0.0
    protocol_name = plan.protocol.name

    service: ServiceHandle | None = None
    llm_totals: dict[str, float] = {}
    tracing = _tracing(plan, writer)
    run_span: Any = (
        tracing.start(
            "moot.run",
            attributes={
                "moot.run_id": run_id,
                "moot.protocol": protocol_name,
                "moot.agents": n,
                "moot.hosts": plan.hosts,
                "moot.seed": plan.seed,
            },
        )
        if tracing is not None
        else None
    )
    setup_span = tracing.start("moot.setup", run_span) if tracing is not None else None

    def event(kind: str, detail: str, round: int | None = None, host: int | None = None) -> None:
        writer.execute(
            "INSERT INTO events (run_id, ts, round, kind, host, detail) VALUES (?, ?, ?, ?, ?, ?)",
            [run_id, _now(), round, kind, host, detail],
        )

    timings: dict[str, float] = {}
    mark = started

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - mark
        mark = now

    try:
        runtime.prepare(plan.hosts)  # host processes start while the graph is built
        lap("start")
        bounds = shard_bounds(n, plan.hosts)
        router = plan.protocol.build(n, plan.seed)
        lap("build")
        llm_setup = None
        if plan.llm is not None:
            cfg = plan.llm
            service = runtime.llm_service(
                rpm=cfg.rpm, tpm=cfg.tpm, window=cfg.window, budget=cfg.budget, cache=plan.llm_cache
            )
            extra = (cfg.api_key_env,) if cfg.api_key_env else ()
            llm_setup = LLMSetup(cfg, service.link, forwarded_env(extra))
        compiled = router.describe()
        notes = compiled.pop("notes", None)
        for note in notes if isinstance(notes, list) else ():  # what the protocol saw in its input
            print(f"moot: note: {note}", file=sys.stderr)
            event("note", str(note))
        if compiled:
            proto_conf = config.get("protocol")
            config["protocol"] = {**(proto_conf if isinstance(proto_conf, dict) else {}), **compiled}
            writer.execute(
                "UPDATE runs SET config = ? WHERE run_id = ?", [json.dumps(config, default=str), run_id]
            )
        spec = HostSpec(
            plan.population,
            bounds,
            router,
            plan.seed,
            plan.fields,
            plan.protocol.instructions,
            plan.max_concurrency,
            track_change=plan.stop is not None and plan.stop.needs_change(),
            kinds=kinds,
            action_kinds=plan.protocol.action_kinds,
            protocol=protocol_name,
            replies=plan.protocol.replies,
            llm=llm_setup,
            trace=tracing is not None,
            message_cap=plan.message_cap,
            on_flood=plan.on_flood,
        )
        placement = runtime.start(spec)
        lap("hosts")
        _log_agents(writer, run_id, runtime, dict(placement))
        for h, node in placement:
            event("host_started", f"agents {bounds[h]}..{bounds[h + 1] - 1} on node {node}", host=h)
        lap("agents")
        _log_states(writer, run_id, runtime, -1)
        lap("initial_state")
        setup = time.perf_counter() - started
        if setup_span is not None:
            setup_span.set_attributes({f"moot.seconds.{k}": v for k, v in timings.items()})
            setup_span.end()
        for r in range(plan.rounds):
            t0 = time.perf_counter()
            round_span = None
            if tracing is not None:
                round_span = tracing.start("moot.round", run_span, {"moot.run_id": run_id, "moot.round": r})
            stats, fetch, world = runtime.step(r, tracing.carrier(round_span) if tracing else None)
            metrics, seen = combine_stats(stats, plan.fields, plan.primary)
            metrics["messages"] += world.pop("heard", 0.0)  # messages the world delivered
            metrics.update(world)
            seen.update(world)
            metrics["seconds"] = time.perf_counter() - t0
            _log_events(writer, run_id, stats)
            if plan.llm is not None:
                calls = _log_llm(writer, run_id, stats)
                metrics.update(llm_metrics(calls))
                for k in _LLM_METRICS:
                    llm_totals[k] = llm_totals.get(k, 0.0) + metrics[k]
            total += int(metrics["messages"])
            actions += int(metrics.get("actions", 0))
            done_rounds = r + 1
            final = metrics
            if tracing is not None:
                _end_round(tracing, round_span, stats, metrics)
            writer.submit(_round_logger(plan, writer, r, fetch, metrics, kinds, tracing, round_span))
            if plan.llm is not None:  # after the round is logged: its rows show what failed
                _check_llm_errors(calls, r, plan.llm.max_error_rate)
            if control is not None and control.interrupted:  # the round is whole in the log
                raise KeyboardInterrupt(control.interrupted)
            if control is not None:
                control.round, control.metrics = r, metrics
            if progress is not None:
                progress(r, metrics)
            seen.update(total_messages=float(total), total_actions=float(actions))  # for rules on totals
            stop = plan.stop.check(r, seen) if plan.stop is not None else None
            if stop is None and control is not None and control.stop_requested is not None:
                stop = control.stop_requested
            if stop is None and service is not None and plan.llm is not None and plan.llm.budget is not None:
                spent = service.totals()["spent"]
                if spent >= plan.llm.budget:
                    stop = f"budget: ${spent:.4f} spent of ${plan.llm.budget:g}"
            if stop is not None:
                reason = stop
                break
            if plan.state_every and (r + 1) % plan.state_every == 0 and r + 1 < plan.rounds:
                _log_states(writer, run_id, runtime, r)
        lap("rounds")
        _log_states(writer, run_id, runtime, done_rounds - 1)  # the loop never logs the last round
        lap("final_state")
        writer.flush()
        lap("flush")
    except BaseException as exc:
        if tracing is not None:
            _close_tracing(tracing, run_span, done_rounds, f"{type(exc).__name__}: {exc}")
            tracing = None
        logged = _record_end(writer, run_id, runtime, exc, done_rounds, total, time.perf_counter() - started)
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, RunInterrupted):
            last = logged - 1
            kept = f"rounds 0..{last}" if last >= 0 else "its set-up only"
            raise RunInterrupted(
                f"moot: run {run_id} interrupted after round {last}; the log keeps {kept}: {writer.path}"
            ) from exc
        raise
    finally:
        writer.release(run_id)
        if service is not None:
            with contextlib.suppress(Exception):
                service.close()
    seconds = time.perf_counter() - started
    if tracing is not None:
        run_span.set_attribute("moot.stop_reason", reason)
        _close_tracing(tracing, run_span, done_rounds, None)
    event("stopped", reason, round=done_rounds - 1)
    writer.execute(
        "UPDATE runs SET finished_at = ?, rounds = ?, messages = ?, seconds = ?, status = 'finished', "
        "stop_reason = ? WHERE run_id = ?",
        [_now(), done_rounds, total, seconds, reason, run_id],
    )
    nodes = sorted({n for _, n in placement})
    return RunResult(
        run_id, done_rounds, total, seconds, reason, final, nodes, setup, timings, llm_totals, actions
    )


def _record_end(
    writer: LogWriter,
    run_id: str,
    runtime: Runtime,
    exc: BaseException,
    played: int,
    total: int,
    seconds: float,
) -> int:
    """Record a run that did not finish: ``interrupted`` (Ctrl-C, SIGTERM) or ``failed``.

    Whatever is logged stays: pending appends are finished first, an interrupted run
    also logs its last round's states, and ``rounds``/``messages`` count what reached
    the log (fewer than were played when appends failed, say on a full disk).

    Returns:
        The rounds logged.
    """
    interrupted = isinstance(exc, KeyboardInterrupt)
    with contextlib.suppress(MootError):
        writer.flush()
    rounds, messages = played, total
    with contextlib.suppress(Exception):
        got = writer.con.execute(
            "SELECT count(DISTINCT round), coalesce(sum(value) FILTER (name = 'messages'), 0) "
            "FROM metrics WHERE run_id = ?",
            [run_id],
        ).fetchall()[0]
        rounds, messages = min(played, int(got[0])), min(total, int(got[1]))
    if interrupted and rounds == played > 0:  # (the agents' state is that of the last round logged)
        with contextlib.suppress(Exception):
            logged = writer.con.execute(
                "SELECT count(*) FROM states WHERE run_id = ? AND round = ?", [run_id, played - 1]
            ).fetchall()[0][0]
            if not logged:  # unless `state_every` logged that round already
                _log_states(writer, run_id, runtime, played - 1)
                writer.flush()
    detail = f"{type(exc).__name__}: {exc}"
    if interrupted:
        detail = f"interrupted ({str(exc) or 'Ctrl-C'})"
    with contextlib.suppress(MootError):
        writer.execute(
            "INSERT INTO events (run_id, ts, round, kind, host, detail) VALUES (?, ?, ?, ?, NULL, ?)",
            [run_id, _now(), played, "interrupted" if interrupted else "error", detail],
        )
        writer.execute(
            "UPDATE runs SET finished_at = ?, rounds = ?, messages = ?, seconds = ?, status = ?, "
            "stop_reason = ? WHERE run_id = ?",
            [
                _now(),
                rounds,
                messages,
                seconds,
                "interrupted" if interrupted else "failed",
                detail[:500],
                run_id,
            ],
        )
    return rounds


def _round_logger(
    plan: RunPlan,
    writer: LogWriter,
    r: int,
    fetch: Callable[[], list[MessageBatch]],
    metrics: RoundMetrics,
    kinds: tuple[str, ...],
    tracing: Tracing | None = None,
    round_span: Any = None,
) -> Callable[[], None]:
    """The writer-thread job that logs round `r`: its messages (as the plan says) and metrics."""
    run_id, mlog, protocol = plan.run_id, plan.messages, plan.protocol.name
    trace_id, span_id = tracing.ids(round_span) if tracing is not None else (None, None)

    def job() -> None:
        if tracing is None:
            write()
            return
        with tracing.span("moot.log.write", round_span, {"moot.run_id": run_id, "moot.round": r}):
            write()

    def write() -> None:
        if mlog.logs_round(r):
            parts = [p for p in fetch() if len(p)]
            if mlog.mode == "aggregate":
                writer.append(
                    "message_aggregates", aggregates_table(MessageBatch.concat(parts), r, run_id, kinds)
                )
            elif parts:
                # One Arrow chunk per host part, one insert: no copy into one big batch first.
                tables = [
                    messages_table(mlog.select(p, r, plan.seed), r, run_id, protocol, kinds) for p in parts
                ]
                writer.append("messages", pa.concat_tables(tables))
        columns = {
            "run_id": [run_id] * len(metrics),
            "round": pa.array([r] * len(metrics), pa.int32()),
            "name": list(metrics),
            "value": list(metrics.values()),
        }
        if trace_id is not None:  # untraced runs leave them NULL
            columns["trace_id"] = [trace_id] * len(metrics)
            columns["span_id"] = [span_id] * len(metrics)
        writer.append("metrics", pa.table(columns))

    return job


def _tracing(plan: RunPlan, writer: LogWriter) -> Tracing | None:
    """The run's tracer, or None (then nothing of OpenTelemetry is even imported)."""
    if isinstance(plan.trace, str) and plan.trace == "none":
        return None
    from orchestrator.telemetry import Tracing

    return Tracing(plan.trace, writer.path, {"moot.run_id": plan.run_id})


def _end_round(tracing: Tracing, span: Any, stats: list[HostStats], metrics: RoundMetrics) -> None:
    """Take in the hosts' spans, close the round's span, feed the round's metrics."""
    tracing.ingest([rec for s in stats for rec in s.spans])
    span.set_attribute("moot.messages", int(metrics["messages"]))
    span.set_attribute("moot.agents", int(metrics.get("agents", 0)))
    for key in ("llm_calls", "llm_tokens", "llm_cost"):
        if key in metrics and math.isfinite(metrics[key]):  # an unpriced model's cost is unknown
            span.set_attribute(f"moot.{key}", metrics[key])
    span.end()
    peaks = [s.peak_in_flight for s in stats if s.peak_in_flight is not None]
    tracing.record_round(metrics, sum(peaks) if peaks else None)


def _close_tracing(tracing: Tracing, run_span: Any, rounds: int, error: str | None) -> None:
    """End the run's span (with the error, if any) and export what is left; never raises."""
    try:
        run_span.set_attribute("moot.rounds", rounds)
        if error is not None:
            from orchestrator.telemetry import mark_error

            mark_error(run_span, error)
        run_span.end()
        tracing.close()
    except Exception as exc:  # an exporter that fails must not hide the run's outcome
        print(f"moot: trace export failed: {type(exc).__name__}: {exc}", file=sys.stderr)


_LLM_METRICS = ("llm_calls", "llm_errors", "llm_tokens", "llm_cost")


def _log_llm(writer: LogWriter, run_id: str, stats: list[HostStats]) -> pa.Table | None:
    """Log the round's LLM calls (on the writer thread); return them, sorted, or None."""
    calls = [s.llm_calls for s in stats if s.llm_calls is not None]
    if not calls:
        return None
    table = pa.concat_tables(calls).sort_by([("agent", "ascending"), ("call", "ascending")])
    rows = table.append_column("run_id", const_column(run_id, table.num_rows))
    writer.submit(lambda: writer.append("llm_calls", rows))
    return table


def _log_events(writer: LogWriter, run_id: str, stats: list[HostStats]) -> None:
    """Log the events the hosts reported this round (on the writer thread)."""
    events = [(h, e) for h, s in enumerate(stats) for e in s.events]
    if not events:
        return
    table = pa.table(
        {
            "run_id": const_column(run_id, len(events)),
            "ts": pa.array([_now()] * len(events), pa.timestamp("us", tz="UTC")),
            "round": pa.array([e[0] for _, e in events], pa.int32()),
            "kind": pa.array([e[1] for _, e in events], pa.string()),
            "host": pa.array([h for h, _ in events], pa.int32()),
            "detail": pa.array([e[2] for _, e in events], pa.string()),
        }
    )
    writer.submit(lambda: writer.append("events", table))


def llm_metrics(calls: pa.Table | None) -> dict[str, float]:
    """A round's LLM metrics from its `llm_calls` rows: calls, errors, tokens, cost.

    ``llm_cost`` is NaN when some successful call had no price (litellm knows none for
    its model, and `LLMConfig.prices` gives none): unknown, not $0.
    """
    if calls is None:
        return dict.fromkeys(_LLM_METRICS, 0.0)
    tokens = pc.sum(pc.add(calls["prompt_tokens"], calls["completion_tokens"])).as_py() or 0
    ok = pc.is_null(calls["error_type"])
    unpriced = pc.sum(pc.and_(ok, pc.is_null(calls["cost"]))).as_py() or 0
    cost = math.nan if unpriced else float(pc.sum(calls["cost"]).as_py() or 0.0)
    return {
        "llm_calls": float(calls.num_rows),
        "llm_errors": float(calls.num_rows - calls["error_type"].null_count),
        "llm_tokens": float(tokens),
        "llm_cost": cost,
    }


def _check_llm_errors(calls: pa.Table | None, round: int, max_rate: float | None) -> None:
    """Stop a run whose LLM calls failed: all of a round's, or more than `max_rate` of them."""
    if calls is None or max_rate is None:
        return
    failed = calls.filter(pc.is_valid(calls["error_type"]))
    n, bad = calls.num_rows, failed.num_rows
    if bad == 0 or (bad < n and bad / n <= max_rate):
        return
    kinds = Counter(failed["error_type"].to_pylist()).most_common()
    shown = ", ".join(f"{k} {c}" for k, c in kinds)
    example = failed["error"][0].as_py() or ""
    raise LLMError(
        f"{bad} of {n} LLM calls failed in round {round} ({shown}), over the limit of "
        f"{max_rate:.0%}; the run stops as failed rather than read the silence as agreement. "
        f"First error: {example[:300]} "
        "Fix the model or endpoint (llm_calls holds every error), or raise --max-llm-error-rate."
    )


def _log_states(writer: LogWriter, run_id: str, runtime: Runtime, round: int) -> None:
    fetch = runtime.states(round)

    def job() -> None:
        for t in fetch():
            writer.append("states", t.append_column("run_id", const_column(run_id, t.num_rows)))

    writer.submit(job)


def _log_agents(writer: LogWriter, run_id: str, runtime: Runtime, nodes: dict[int, str]) -> None:
    for host, blocks in runtime.blocks():
        for cls, a, b in blocks:
            n = b - a
            writer.append(
                "agents",
                pa.table(
                    {
                        "run_id": const_column(run_id, n),
                        "agent": pa.array(np.arange(a, b, dtype=np.int64)),
                        "class": const_column(cls, n),
                        "host": pa.array(np.full(n, host, np.int32)),
                        "node": const_column(nodes.get(host, ""), n),
                    }
                ),
            )
