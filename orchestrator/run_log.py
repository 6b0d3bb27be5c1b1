"""`RunLog`: every row the run loop writes about a run, and every SQL statement that writes it.

The run loop (`orchestrator.coordinator.run_rounds`) says what happened (the run started, a
round was played, the run ended); this object turns it into rows of ``runs``, ``events``,
``metrics``, ``llm_calls`` and the ``segments`` manifest (the hosts write ``agents``,
``messages`` and ``states`` themselves), appended in bulk by the log's writer thread
(`orchestrator.log.LogWriter`), so that logging round r overlaps computing round r+1.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

import orchestrator.aggregates as aggregates
from orchestrator.checkpoint import checkpoint_dir, drop_after
from orchestrator.errors import ConfigError, LogError, MootError
from orchestrator.host import HostStats, RoundResult
from orchestrator.log import LogWriter, logged_counts
from orchestrator.log.segments import Segment, SegmentSink, gather, link_run, run_folder
from orchestrator.log.writer import discard_after
from orchestrator.message_log import const_column
from orchestrator.runtime import Runtime

if TYPE_CHECKING:
    from orchestrator.coordinator import RunPlan

__all__ = ["COMPACT_ROWS", "RunLog", "check_new_run_id"]

_STORY = ("interrupted", "resumed", "restarted", "forked", "crashed", "error")
"""Event kinds that tell what happened to a run (not what happened in it): a rewind keeps them."""

COMPACT_ROWS = int(os.environ.get("MOOT_COMPACT_ROWS", "1000000"))
"""A run that wrote at most this many segment rows is compacted into the file when it ends
(about a third of a second here: compaction runs at about 3M rows/s); bigger runs keep their
segments, which is what lets every host write its own rows (`orchestrator.log.segments`;
`moot compact` moves them later).
``MOOT_COMPACT_ROWS`` sets it (0: never)."""


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
        self.driver_rows = 0  # message rows fetched into this process (aggregate logging only)

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
        self._protocol_views()

    def _protocol_views(self) -> None:
        """The protocol's own questions, as SQL views."""
        for name, sql in self.plan.protocol.views().items():
            self.writer.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
        for signature, sql in self.plan.protocol.macros().items():
            self.writer.execute(f"CREATE OR REPLACE MACRO {signature} AS TABLE {sql}")

    def reopen(self, round: int, kind: str, detail: str) -> None:
        """The run goes on after `round` (resumed, restarted, forked): its rows after that round
        go (`rewind`), its row says ``running`` again, and an ``events`` row says why."""
        writer = self.writer
        writer.ensure_kinds(self.kinds)
        writer.claim(self.run_id)
        self.rewind(round)
        writer.execute(
            "UPDATE runs SET status = 'running', finished_at = NULL, stop_reason = NULL WHERE run_id = ?",
            [self.run_id],
        )
        self._protocol_views()
        self.event(kind, detail, round=round + 1)

    def rewind(self, round: int) -> None:
        """Delete the run's rows after `round`, which a run going on from the checkpoint after
        `round` writes again, and the states of `round` itself unless its schedule logs them
        (a run that stopped there logged them as its last). Events that tell the run's story
        (interrupted, resumed, restarted) stay."""
        con, run_id = self.writer.con, self.run_id
        drop_states = not self.plan.state_round(round)
        discard_after(con, self.writer.parts, run_id, round, drop_states)
        for table in ("metrics", "llm_calls", "message_aggregates", "_messages"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ? AND round > ?", [run_id, round])
        con.execute(
            "DELETE FROM _states WHERE run_id = ? AND (round > ? OR (? AND round = ?))",
            [run_id, round, drop_states, round],
        )
        con.execute(
            "DELETE FROM events WHERE run_id = ? AND round > ? AND kind NOT IN (SELECT unnest(?))",
            [run_id, round, list(_STORY)],
        )
        drop_after(checkpoint_dir(self.writer.path, run_id), round)

    def copy_history(self, parent: str, round: int) -> None:
        """A fork's rows up to `round`: the parent's, copied under this run's id (segments as
        hard links), so that every query on the fork sees its whole history."""
        con, run_id = self.writer.con, self.run_id
        link_run(self.writer.parts, parent, run_id, round)
        con.execute(
            "INSERT INTO segments SELECT ? AS run_id, table_name, round, host, "
            "replace(file, ?, ?) AS file, rows, bytes, crc32 FROM segments WHERE run_id = ? AND round <= ?",
            [run_id, run_folder(parent), run_folder(run_id), parent, round],
        )
        for table in (
            "metrics",
            "llm_calls",
            "message_aggregates",
            "_messages",
            "_states",
            "_agents",
            "events",
        ):
            cols = [
                c[0]
                for c in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
                    [table],
                ).fetchall()
            ]
            picked = ", ".join("? AS run_id" if c == "run_id" else f'"{c}"' for c in cols)
            where = "" if table == "_agents" else " AND round <= ?"  # (agents: the set-up's rows)
            if table == "events":  # what happened in the rounds, not to the parent run
                where += " AND kind NOT IN (SELECT unnest(?))"
            args = [run_id, parent] + ([] if table == "_agents" else [round])
            con.execute(
                f"INSERT INTO {table} SELECT {picked} FROM {table} WHERE run_id = ?{where}",
                args + ([list(_STORY)] if table == "events" else []),
            )

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
        self.compact_if_small()

    def compact_if_small(self) -> None:
        """A run of few rows goes into the file itself (`LogWriter.compact`): a small study
        leaves one self-contained file rather than a folder of small segments."""
        written = self.writer.con.execute(
            "SELECT coalesce(sum(rows), 0) FROM segments WHERE run_id = ?", [self.run_id]
        ).fetchall()[0][0]
        if 0 < written <= COMPACT_ROWS:
            try:
                self.writer.compact(self.run_id)
            except MootError as exc:  # the rows stay in their segments, which the views read
                print(
                    f"moot: note: run {self.run_id} stays in segments ({exc}); `moot compact` later.",
                    file=sys.stderr,
                )

    def _close(self, status: str, rounds: int, messages: int, seconds: float, reason: str) -> None:
        self.writer.execute(
            "UPDATE runs SET finished_at = ?, rounds = ?, messages = ?, seconds = ?, status = ?, "
            "stop_reason = ?, driver_rows = ? WHERE run_id = ?",
            [_now(), rounds, messages, seconds, status, reason, self.driver_rows, self.run_id],
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
        with contextlib.suppress(OSError, duckdb.Error):  # a round is whole in the log, or not at all
            discard_after(writer.con, writer.parts, run_id, rounds - 1)
        if self.plan.segments_uri:  # the store outlives the hosts: keep the rounds that reached it
            with contextlib.suppress(MootError, OSError, duckdb.Error):
                self.gather(runtime)
        detail = f"interrupted ({str(exc) or 'Ctrl-C'})" if interrupted else f"{type(exc).__name__}: {exc}"
        status = "interrupted" if interrupted else "failed"
        with contextlib.suppress(MootError):
            self.event("interrupted" if interrupted else "error", detail, round=played)
            self._close(status, rounds, messages, seconds, detail[:500])
            if not isinstance(exc, LogError):  # (not onto a disk that just filled)
                self.compact_if_small()
        return rounds

    def release(self) -> None:
        """This process no longer plays the run (its row says how it ended)."""
        self.writer.release(self.run_id)

    # -- rows the hosts made --------------------------------------------------------------------

    def agents(self, runtime: Runtime, placement: list[tuple[int, str]], bounds: np.ndarray) -> None:
        """Every agent's class, host and node (written by the hosts); a ``host_started`` event per host."""
        self.segments([s for s in runtime.write_agents() if s is not None])
        for h, node in placement:
            self.event("host_started", f"agents {bounds[h]}..{bounds[h + 1] - 1} on node {node}", host=h)

    def states(self, runtime: Runtime, round: int) -> None:
        """Every agent's state after `round` (-1: before the first): the hosts write it; the
        manifest rows follow on the writer thread."""
        written = runtime.states(round)
        self.writer.submit(lambda: self.segments([s for s in written() if s is not None]))

    @property
    def sink(self) -> SegmentSink:
        """Where the run's hosts write their segments."""
        return SegmentSink(str(self.writer.parts), self.run_id, self.plan.segments_uri)

    def gather(self, runtime: Runtime) -> int:
        """Copy beside the log the segments that hosts wrote where the driver does not see them
        (an object store, or a node's own disk: ``MOOT_NODE_PARTS``), in bulk and checked against
        the manifest, once the rounds are over; returns how many. An object store is read by
        this process and then emptied of the run; a node's disk through its hosts."""
        sink = self.sink
        if sink.uri:
            got = gather(self.writer.con, self.writer.parts, self.run_id, lambda h, files: sink.read(files))
            sink.forget()
            return got
        return gather(
            self.writer.con,
            self.writer.parts,
            self.run_id,
            lambda h, files: runtime.read_segments({h: files})[h],
        )

    def segments(self, written: list[Segment]) -> None:
        """The manifest rows (``segments``) of the segment files the hosts wrote."""
        if not written:
            return
        n = len(written)
        self.writer.append(
            "segments",
            pa.table(
                {
                    "run_id": const_column(self.run_id, n),
                    "table_name": pa.array([s.table for s in written], pa.string()),
                    "round": pa.array([s.round for s in written], pa.int32()),
                    "host": pa.array([s.host for s in written], pa.int32()),
                    "file": pa.array([s.file for s in written], pa.string()),
                    "rows": pa.array([s.rows for s in written], pa.int64()),
                    "bytes": pa.array([s.bytes for s in written], pa.int64()),
                    "crc32": pa.array([s.crc32 for s in written], pa.int64()),
                }
            ),
        )

    def round(
        self,
        r: int,
        played: RoundResult,
        metrics: Mapping[str, float],
        ids: tuple[str | None, str | None],
        wrap: Callable[[Callable[[], None]], Callable[[], None]] | None = None,
    ) -> None:
        """Round `r`'s metrics, the manifest of the rows the hosts wrote, and with aggregated
        messages their counts, on the writer thread.

        Args:
            ids: The round's (trace id, span id) for its metric rows (None: untraced).
            wrap: Wraps the writer-thread job (a trace span around it).
        """
        writer, kinds, run_id, mlog = self.writer, self.kinds, self.run_id, self.plan.messages
        trace_id, span_id = ids

        def write() -> None:
            self.segments(played.written())
            if mlog.mode == "aggregate" and mlog.logs_round(r):  # counted in the hosts
                writer.append("message_aggregates", aggregates.table(*played.tally(), r, run_id, kinds))
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
