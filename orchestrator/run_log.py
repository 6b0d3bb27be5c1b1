"""`RunLog`: every row the run loop writes about a run, and every SQL statement that writes it.

The run loop (`orchestrator.coordinator.run_rounds`) says what happened (the run started, a
round was played, the run ended); this object turns it into rows of ``runs``, ``events``,
``agents``, ``messages``, ``states``, ``metrics`` and ``llm_calls``, appended in bulk by the
log's writer thread (`orchestrator.log.LogWriter`), so that logging round r overlaps
computing round r+1.
"""

from __future__ import annotations

import contextlib
import json
import platform
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from agents.batch import MessageBatch
from orchestrator.errors import ConfigError, MootError
from orchestrator.host import HostStats
from orchestrator.log import LogWriter, logged_counts
from orchestrator.message_log import aggregates_table, const_column, messages_table
from orchestrator.runtime import Runtime

if TYPE_CHECKING:
    from orchestrator.coordinator import RunPlan

__all__ = ["RunLog", "check_new_run_id"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("moot", "ray", "duckdb", "pyarrow", "numpy", "networkx", "pydantic"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def check_new_run_id(writer: LogWriter, run_id: str) -> None:
    """Refuse a run id the log already holds (a rerun must pick another, or leave it out)."""
    rows = writer.con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if rows[0][0]:
        raise ConfigError(
            f"run_id {run_id!r} is already in the log {str(writer.path)!r}; pick another run_id, "
            "or leave it out for a fresh one."
        )


class RunLog:
    """The rows of one run (see the module docstring).

    Args:
        plan: The run.
        writer: The log's writer.
    """

    def __init__(self, plan: RunPlan, writer: LogWriter) -> None:
        self.plan = plan
        self.writer = writer
        self.run_id = plan.run_id
        self.kinds = plan.protocol.kind_table()

    # -- the run's row ------------------------------------------------------------------------

    def start(self) -> None:
        """The ``runs`` row (status ``running``) and the protocol's own views."""
        plan, writer = self.plan, self.writer
        check_new_run_id(writer, self.run_id)
        writer.ensure_kinds(self.kinds)
        writer.claim(self.run_id)
        writer.execute(
            "INSERT INTO runs (run_id, started_at, seed, protocol, config, versions, n_agents, n_hosts, "
            "status, params, message_log, message_rate, message_every) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
            [
                self.run_id,
                _now(),
                plan.seed,
                plan.protocol.name,
                json.dumps(dict(plan.config), default=str),
                json.dumps(_versions()),
                len(plan.population),
                plan.hosts,
                json.dumps(dict(plan.params), default=str),
                plan.messages.mode,
                plan.messages.rate,
                plan.messages.period,
            ],
        )
        for name, sql in plan.protocol.views().items():  # the protocol's own questions, as SQL
            writer.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")

    def config(self, config: Mapping[str, object]) -> None:
        """Replace ``runs.config`` (with what the protocol compiled: the graph's size and hash)."""
        self.writer.execute(
            "UPDATE runs SET config = ? WHERE run_id = ?",
            [json.dumps(dict(config), default=str), self.run_id],
        )

    def event(self, kind: str, detail: str, round: int | None = None, host: int | None = None) -> None:
        """One ``events`` row, now."""
        self.writer.execute(
            "INSERT INTO events (run_id, ts, round, kind, host, detail) VALUES (?, ?, ?, ?, ?, ?)",
            [self.run_id, _now(), round, kind, host, detail],
        )

    def finish(self, rounds: int, messages: int, seconds: float, reason: str) -> None:
        """The run ended as it should: status ``finished``, with why it stopped."""
        self.event("stopped", reason, round=rounds - 1)
        self._close("finished", rounds, messages, seconds, reason)

    def _close(self, status: str, rounds: int, messages: int, seconds: float, reason: str) -> None:
        self.writer.execute(
            "UPDATE runs SET finished_at = ?, rounds = ?, messages = ?, seconds = ?, status = ?, "
            "stop_reason = ? WHERE run_id = ?",
            [_now(), rounds, messages, seconds, status, reason, self.run_id],
        )

    def end(self, runtime: Runtime, exc: BaseException, played: int, total: int, seconds: float) -> int:
        """Record a run that did not finish: ``interrupted`` (Ctrl-C, SIGTERM) or ``failed``.

        Whatever is logged stays: pending appends are finished first, an interrupted run
        also logs its last round's states, and ``rounds``/``messages`` count what reached
        the log (fewer than were played when appends failed, say on a full disk).

        Returns:
            The rounds logged.
        """
        writer, run_id = self.writer, self.run_id
        interrupted = isinstance(exc, KeyboardInterrupt)
        with contextlib.suppress(MootError):
            writer.flush()
        rounds, messages = played, total
        with contextlib.suppress(Exception):
            got = logged_counts(writer.con, run_id)
            rounds, messages = min(played, got[0]), min(total, got[1])
        if interrupted and rounds == played > 0:  # (the agents' state is that of the last round logged)
            with contextlib.suppress(Exception):
                logged = writer.con.execute(
                    "SELECT count(*) FROM states WHERE run_id = ? AND round = ?", [run_id, played - 1]
                ).fetchall()[0][0]
                if not logged:  # unless `state_every` logged that round already
                    self.states(runtime, played - 1)
                    writer.flush()
        detail = f"interrupted ({str(exc) or 'Ctrl-C'})" if interrupted else f"{type(exc).__name__}: {exc}"
        status = "interrupted" if interrupted else "failed"
        with contextlib.suppress(MootError):
            self.event("interrupted" if interrupted else "error", detail, round=played)
            self._close(status, rounds, messages, seconds, detail[:500])
        return rounds

    def release(self) -> None:
        """This process no longer plays the run (its row says how it ended)."""
        self.writer.release(self.run_id)

    # -- rows the hosts made --------------------------------------------------------------------

    def agents(self, runtime: Runtime, placement: list[tuple[int, str]], bounds: np.ndarray) -> None:
        """Every agent's class, host and node; a ``host_started`` event per host."""
        nodes = dict(placement)
        for host, blocks in runtime.blocks():
            for cls, a, b in blocks:
                n = b - a
                self.writer.append(
                    "agents",
                    pa.table(
                        {
                            "run_id": const_column(self.run_id, n),
                            "agent": pa.array(np.arange(a, b, dtype=np.int64)),
                            "class": const_column(cls, n),
                            "host": pa.array(np.full(n, host, np.int32)),
                            "node": const_column(nodes.get(host, ""), n),
                        }
                    ),
                )
        for h, node in placement:
            self.event("host_started", f"agents {bounds[h]}..{bounds[h + 1] - 1} on node {node}", host=h)

    def states(self, runtime: Runtime, round: int) -> None:
        """Every agent's state after `round` (-1: before the first), on the writer thread."""
        fetch = runtime.states(round)
        run_id, writer = self.run_id, self.writer

        def job() -> None:
            for t in fetch():
                writer.append("states", t.append_column("run_id", const_column(run_id, t.num_rows)))

        writer.submit(job)

    def round(
        self,
        r: int,
        fetch: Callable[[], list[MessageBatch]],
        metrics: Mapping[str, float],
        ids: tuple[str | None, str | None],
        wrap: Callable[[Callable[[], None]], Callable[[], None]] | None = None,
    ) -> None:
        """Round `r`'s messages (as the plan's message log says) and metrics, on the writer thread.

        Args:
            ids: The round's (trace id, span id) for its metric rows (None: untraced).
            wrap: Wraps the writer-thread job (a trace span around it).
        """
        plan, writer, kinds = self.plan, self.writer, self.kinds
        run_id, mlog, protocol = self.run_id, plan.messages, plan.protocol.name
        trace_id, span_id = ids

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
                        messages_table(mlog.select(p, r, plan.seed), r, run_id, protocol, kinds)
                        for p in parts
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

        writer.submit(wrap(write) if wrap is not None else write)

    def host_events(self, stats: list[HostStats]) -> None:
        """The events the hosts reported this round (on the writer thread)."""
        events = [(h, e) for h, s in enumerate(stats) for e in s.events]
        if not events:
            return
        table = pa.table(
            {
                "run_id": const_column(self.run_id, len(events)),
                "ts": pa.array([_now()] * len(events), pa.timestamp("us", tz="UTC")),
                "round": pa.array([e[0] for _, e in events], pa.int32()),
                "kind": pa.array([e[1] for _, e in events], pa.string()),
                "host": pa.array([h for h, _ in events], pa.int32()),
                "detail": pa.array([e[2] for _, e in events], pa.string()),
            }
        )
        writer = self.writer
        writer.submit(lambda: writer.append("events", table))

    def llm_calls(self, stats: list[HostStats]) -> pa.Table | None:
        """The round's LLM calls (on the writer thread); returns them, sorted, or None."""
        calls = [s.llm_calls for s in stats if s.llm_calls is not None]
        if not calls:
            return None
        table = pa.concat_tables(calls).sort_by([("agent", "ascending"), ("call", "ascending")])
        rows = table.append_column("run_id", const_column(self.run_id, table.num_rows))
        writer = self.writer
        writer.submit(lambda: writer.append("llm_calls", rows))
        return table
