"""OpenTelemetry traces and metrics of a run: one trace per run, across the driver and every host.

Off by default, and then nothing of OpenTelemetry is imported and nothing is timed.
When on (``launch(trace=...)``, ``moot run --trace``, ``MOOT_TRACE``), the driver
opens a span for the run, one per round and one for the log's write of each
round; it hands each host the round span's context (W3C ``traceparent``) with
the step call, and the host opens its step span under it, in its own process,
with one child span per LLM call. Hosts do not export: their finished spans
travel back with the round's statistics, so one exporter in the driver sends
the whole trace, and a host on a node with no route to the collector still
appears in it. The ``metrics`` rows of a round carry its trace and span ids.

Exporters: ``console`` (stdout), ``otlp`` (OTLP over HTTP/protobuf, configured by
the standard ``OTEL_EXPORTER_OTLP_*`` variables), ``jsonl`` (spans and metrics
as JSON lines in files beside the log).
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from orchestrator.errors import ConfigError

__all__ = [
    "MODES",
    "HostTracer",
    "RunHooks",
    "TracedRun",
    "Tracing",
    "jsonl_paths",
    "mark_error",
    "trace_mode",
]

MODES = ("none", "console", "otlp", "jsonl")
SCOPE = "moot"

SpanRecord = dict[str, Any]
"""A finished host span as plain data (SDK spans do not pickle)."""


def trace_mode(given: object = None) -> Any:
    """The exporter to use: `given`, else ``MOOT_TRACE``, else ``OTEL_TRACES_EXPORTER``, else none.

    `given` may also be an OpenTelemetry ``SpanExporter`` of the caller's (spans go to it,
    metrics nowhere); it is returned as it is.
    """
    if given is not None and not isinstance(given, str):
        if callable(getattr(given, "export", None)) and callable(getattr(given, "shutdown", None)):
            return given
        raise ConfigError(
            f"trace must be one of {', '.join(MODES)} or an OpenTelemetry SpanExporter, "
            f"got {type(given).__name__}; e.g. trace='otlp'."
        )
    source = "trace"
    mode = given
    if mode is None and os.environ.get("MOOT_TRACE"):
        mode, source = os.environ["MOOT_TRACE"], "MOOT_TRACE"
    if mode is None and os.environ.get("OTEL_TRACES_EXPORTER"):
        mode, source = os.environ["OTEL_TRACES_EXPORTER"], "OTEL_TRACES_EXPORTER"
    mode = (mode or "none").strip().lower()
    if mode not in MODES:
        raise ConfigError(
            f"Unknown trace exporter {mode!r} (from {source}); use one of {', '.join(MODES)}: "
            "e.g. --trace otlp with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318."
        )
    if mode == "otlp":
        _otlp_protocol()
    return mode


def mark_error(span: Any, text: str) -> None:
    """Set `span`'s status to ERROR with `text` (cut to 300 characters)."""
    from opentelemetry.trace import Status, StatusCode

    span.set_status(Status(StatusCode.ERROR, text[:300]))


def _span_line(span: Any) -> str:
    """A span as one JSON line, its ids as plain hex (as ``metrics.trace_id`` holds them, and
    as OTLP/JSON writes them), not the SDK's ``0x``-prefixed text."""
    record = json.loads(span.to_json(indent=None))
    for part in ("context", "parent"):
        ids = record.get(part)
        if isinstance(ids, dict):
            for key in ("trace_id", "span_id"):
                if isinstance(ids.get(key), str) and ids[key].startswith("0x"):
                    ids[key] = ids[key][2:]
    if isinstance(record.get("parent_id"), str) and record["parent_id"].startswith("0x"):
        record["parent_id"] = record["parent_id"][2:]
    return json.dumps(record, separators=(",", ":")) + "\n"


def jsonl_paths(log: Path) -> tuple[Path, Path]:
    """Where ``jsonl`` writes spans and metrics: beside the log."""
    return log.with_name(log.name + ".traces.jsonl"), log.with_name(log.name + ".metrics.jsonl")


def _resource(role: str, extra: Mapping[str, Any]) -> Any:
    from opentelemetry.sdk.resources import Resource

    return Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", "moot"),
            "moot.process": role,
            "process.pid": os.getpid(),
            "host.name": socket.gethostname(),
            **extra,
        }
    )


def _otlp_protocol() -> str:
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol != "http/protobuf":
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: moot exports OTLP over http/protobuf (port 4318 "
            "of a collector); set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf."
        )
    return protocol


class Tracing:
    """The driver's side: its tracer, the exporters, the run's metric instruments.

    Args:
        mode: ``console``, ``otlp`` or ``jsonl``, or a ``SpanExporter`` (see `trace_mode`).
        log: The run's log file (``jsonl`` writes beside it).
        attributes: Resource attributes of the driver (the run id, ...).
    """

    def __init__(self, mode: Any, log: Path, attributes: Mapping[str, Any]) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        self.mode = mode
        self._files: list[IO[str]] = []
        span_exporter: Any
        metric_exporter: Any = None
        if not isinstance(mode, str):
            span_exporter = mode  # the caller's own
        elif mode == "console":
            span_exporter, metric_exporter = ConsoleSpanExporter(), ConsoleMetricExporter()
        elif mode == "jsonl":
            spans, metrics = (p.open("a", encoding="utf-8") for p in jsonl_paths(log))
            self._files = [spans, metrics]
            span_exporter = ConsoleSpanExporter(out=spans, formatter=_span_line)
            metric_exporter = ConsoleMetricExporter(
                out=metrics, formatter=lambda m: m.to_json(indent=None) + "\n"
            )
        elif mode == "otlp":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            span_exporter, metric_exporter = OTLPSpanExporter(), OTLPMetricExporter()
        else:
            raise ConfigError(f"Tracing needs an exporter, got mode {mode!r}; use one of {MODES[1:]}.")
        resource = _resource("driver", attributes)
        self.provider = TracerProvider(resource=resource)
        self.processor = BatchSpanProcessor(span_exporter)
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer(SCOPE)
        readers = (
            [PeriodicExportingMetricReader(metric_exporter, export_interval_millis=10_000)]
            if metric_exporter is not None
            else []
        )
        self.meters = MeterProvider(resource=resource, metric_readers=readers)
        meter = self.meters.get_meter(SCOPE)
        self._messages = meter.create_counter(
            "moot.messages", unit="{message}", description="Messages delivered"
        )
        self._rate = meter.create_gauge("moot.messages_per_second", unit="{message}/s")
        self._round = meter.create_histogram("moot.round.duration", unit="s", description="Round wall time")
        self._in_flight = meter.create_gauge(
            "moot.llm.in_flight", unit="{call}", description="Peak LLM calls in flight in a round, all hosts"
        )
        self._tokens = meter.create_counter("moot.llm.tokens", unit="{token}")
        self._cost = meter.create_counter("moot.llm.cost", unit="USD")
        self._calls = meter.create_counter("moot.llm.calls", unit="{call}")

    # -- spans --

    def start(self, name: str, parent: Any = None, attributes: Mapping[str, Any] | None = None) -> Any:
        """Start a span (a child of `parent`, a span, or a root); the caller ends it."""
        from opentelemetry import trace

        context = trace.set_span_in_context(parent) if parent is not None else None
        return self.tracer.start_span(name, context=context, attributes=attributes)

    @contextmanager
    def span(
        self, name: str, parent: Any = None, attributes: Mapping[str, Any] | None = None
    ) -> Iterator[Any]:
        """A span around a block, recording an exception that leaves it."""
        s = self.start(name, parent, attributes)
        try:
            yield s
        except BaseException as exc:
            s.record_exception(exc)
            mark_error(s, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            s.end()

    @staticmethod
    def carrier(span: Any) -> dict[str, str]:
        """`span`'s context as W3C trace-context headers, for a host to continue the trace."""
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        headers: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(headers, context=trace.set_span_in_context(span))
        return headers

    @staticmethod
    def ids(span: Any) -> tuple[str, str]:
        """(trace id, span id) of `span` in hex, as the ``metrics`` table stores them."""
        ctx = span.get_span_context()
        return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"

    def ingest(self, records: Sequence[SpanRecord]) -> None:
        """Export spans that hosts finished (they keep their own process's resource)."""
        for record in records:
            self.processor.on_end(_rebuild(record))

    # -- metrics --

    def record_round(self, metrics: Mapping[str, float], peak_in_flight: int | None) -> None:
        """Feed a round's numbers to the metric instruments."""
        seconds = metrics.get("seconds", 0.0)
        messages = metrics.get("messages", 0.0)
        self._messages.add(int(messages))
        self._round.record(seconds)
        if seconds > 0:
            self._rate.set(messages / seconds)
        if "llm_calls" in metrics:
            self._calls.add(int(metrics["llm_calls"]))
            self._tokens.add(int(metrics["llm_tokens"]))
            if math.isfinite(metrics["llm_cost"]):  # NaN: a model with no price (cost unknown)
                self._cost.add(metrics["llm_cost"])
        if peak_in_flight is not None:
            self._in_flight.set(peak_in_flight)

    def close(self) -> None:
        """Export everything still held, then release the exporters."""
        self.provider.shutdown()  # flushes the span batch
        self.meters.shutdown()
        for f in self._files:
            f.close()


class HostTracer:
    """A host's side: spans made in the host's process, drained after each step.

    Args:
        host: The host's index.
        node: The node it runs on.
    """

    def __init__(self, host: int, node: str = "") -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.host = host
        self._finished = InMemorySpanExporter()
        self.provider = TracerProvider(resource=_resource("host", {"moot.host": host, "moot.node": node}))
        self.provider.add_span_processor(SimpleSpanProcessor(self._finished))
        self.tracer = self.provider.get_tracer(SCOPE)

    def start_step(self, carrier: Mapping[str, str], attributes: Mapping[str, Any]) -> Any:
        """The step span, a child of the driver's round span that `carrier` names."""
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent = TraceContextTextMapPropagator().extract(dict(carrier))
        return self.tracer.start_span("moot.host.step", context=parent, attributes=attributes)

    def llm_spans(self, step: Any, calls: Any, times: Sequence[tuple[int, int]]) -> int:
        """One ``moot.llm.call`` child of `step` per row of `calls` (a round's ``llm_calls``), timed
        as the call was in flight (`times`, ns); returns the peak number in flight at once."""
        from opentelemetry import trace

        context = trace.set_span_in_context(step)
        edges: list[tuple[int, int]] = []
        for row, (start, end) in zip(calls.to_pylist(), times):
            edges += [(start, 1), (end, -1)]
            attributes = {
                "gen_ai.request.model": row["model"] or "",
                "gen_ai.usage.input_tokens": int(row["prompt_tokens"] or 0),
                "gen_ai.usage.output_tokens": int(row["completion_tokens"] or 0),
                "moot.agent": int(row["agent"]),
                "moot.round": int(row["round"]),
                "moot.llm.attempts": int(row["attempts"] or 0),
                "moot.llm.cache_hit": bool(row["cache_hit"]),
                "moot.llm.cost": float(row["cost"] or 0.0),
            }
            span = self.tracer.start_span(
                "moot.llm.call", context=context, attributes=attributes, start_time=start
            )
            if row["error_type"]:
                mark_error(span, f"{row['error_type']}: {row['error'] or ''}")
            span.end(end_time=end)
        peak = level = 0
        for _, delta in sorted(edges):  # an end before a start at the same instant
            level += delta
            peak = max(peak, level)
        return peak

    def drain(self) -> tuple[SpanRecord, ...]:
        """The spans finished since the last drain, as plain data."""
        spans = self._finished.get_finished_spans()
        self._finished.clear()
        return tuple(_record(s) for s in spans)


def _record(span: Any) -> SpanRecord:
    ctx, parent = span.context, span.parent
    return {
        "name": span.name,
        "trace_id": ctx.trace_id,
        "span_id": ctx.span_id,
        "parent_id": parent.span_id if parent is not None else None,
        "start": span.start_time,
        "end": span.end_time,
        "attributes": dict(span.attributes or {}),
        "status": (span.status.status_code.value, span.status.description),
        "resource": dict(span.resource.attributes),
    }


def _rebuild(record: SpanRecord) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, TraceFlags
    from opentelemetry.trace.status import Status, StatusCode

    sampled = TraceFlags(TraceFlags.SAMPLED)
    parent = record["parent_id"]
    code, description = record["status"]
    return ReadableSpan(
        name=record["name"],
        context=SpanContext(record["trace_id"], record["span_id"], is_remote=False, trace_flags=sampled),
        parent=SpanContext(record["trace_id"], parent, is_remote=True, trace_flags=sampled)
        if parent is not None
        else None,
        resource=Resource(record["resource"]),
        attributes=record["attributes"],
        status=Status(StatusCode(code), description),
        start_time=record["start"],
        end_time=record["end"],
        instrumentation_scope=InstrumentationScope(SCOPE),
    )


class RunHooks:
    """What a run tells an observer as it goes: the run loop calls these, and the default does
    nothing (an untraced run). `TracedRun` turns them into OpenTelemetry spans and metrics."""

    def setup_done(self, timings: Mapping[str, float]) -> None:
        """Set-up is over (graph, hosts, agents, initial state), with its timings."""

    def round_started(self, round: int) -> dict[str, str] | None:
        """A round begins; returns the context hosts continue the trace from (None: untraced)."""
        return None

    def round_ended(self, stats: Sequence[Any], metrics: Mapping[str, float]) -> None:
        """The round's hosts reported; its metrics are known."""

    def ids(self) -> tuple[str | None, str | None]:
        """(trace id, span id) of the round in progress, for its metric rows (None: untraced)."""
        return None, None

    def logging(self, round: int, job: Callable[[], None]) -> Callable[[], None]:
        """`job` (round `round`'s log write), wrapped as the observer wants it timed."""
        return job

    def run_ended(self, rounds: int, reason: str | None = None, error: str | None = None) -> None:
        """The run is over: stopped for `reason`, or failed with `error`."""


class TracedRun(RunHooks):
    """`RunHooks` as one trace: ``moot.run`` with ``moot.setup`` and a ``moot.round`` per round
    (the hosts' steps and LLM calls inside it, and each round's ``moot.log.write``)."""

    def __init__(self, tracing: Tracing, attributes: Mapping[str, Any]) -> None:
        self.tracing = tracing
        self.run_id = attributes.get("moot.run_id")
        self.run = tracing.start("moot.run", attributes=attributes)
        self.setup = tracing.start("moot.setup", self.run)
        self.round: Any = None

    def setup_done(self, timings: Mapping[str, float]) -> None:
        self.setup.set_attributes({f"moot.seconds.{k}": v for k, v in timings.items()})
        self.setup.end()

    def round_started(self, round: int) -> dict[str, str] | None:
        self.round = self.tracing.start(
            "moot.round", self.run, {"moot.run_id": self.run_id, "moot.round": round}
        )
        return self.tracing.carrier(self.round)

    def round_ended(self, stats: Sequence[Any], metrics: Mapping[str, float]) -> None:
        """Take in the hosts' spans, close the round's span, feed the round's metrics."""
        span = self.round
        self.tracing.ingest([rec for s in stats for rec in s.spans])
        span.set_attribute("moot.messages", int(metrics["messages"]))
        span.set_attribute("moot.agents", int(metrics.get("agents", 0)))
        for key in ("llm_calls", "llm_tokens", "llm_cost"):
            if key in metrics and math.isfinite(metrics[key]):  # an unpriced model's cost is unknown
                span.set_attribute(f"moot.{key}", metrics[key])
        span.end()
        peaks = [s.peak_in_flight for s in stats if s.peak_in_flight is not None]
        self.tracing.record_round(metrics, sum(peaks) if peaks else None)

    def ids(self) -> tuple[str | None, str | None]:
        return self.tracing.ids(self.round)

    def logging(self, round: int, job: Callable[[], None]) -> Callable[[], None]:
        span, tracing, run_id = self.round, self.tracing, self.run_id

        def traced() -> None:
            with tracing.span("moot.log.write", span, {"moot.run_id": run_id, "moot.round": round}):
                job()

        return traced

    def run_ended(self, rounds: int, reason: str | None = None, error: str | None = None) -> None:
        """End the run's span (with the error, if any) and export what is left; never raises."""
        try:
            if reason is not None:
                self.run.set_attribute("moot.stop_reason", reason)
            self.run.set_attribute("moot.rounds", rounds)
            if error is not None:
                mark_error(self.run, error)
            self.run.end()
            self.tracing.close()
        except Exception as exc:  # an exporter that fails must not hide the run's outcome
            print(f"moot: trace export failed: {type(exc).__name__}: {exc}", file=sys.stderr)
