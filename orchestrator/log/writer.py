"""The one writer of a log: appends Arrow tables in bulk, on a thread of its own; marks the runs
of dead processes crashed when it opens a log."""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import re
import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa

from agents.message import KINDS
from orchestrator.errors import ConfigError, LogError, MootError
from orchestrator.log.schema import TABLES, ensure_kinds, quote, schema_sql, segmented_view_sql
from orchestrator.log.segments import (
    SegmentSink,
    compact_run,
    disk_error,
    gather,
    has_segments,
    parts_dir,
    prune,
    recover,
    write_schema_files,
)

__all__ = [
    "ACTIVE",
    "CRASHED",
    "LogWriter",
    "check_log_path",
    "connect",
    "discard_after",
    "base_tables",
    "live_file",
    "lock_down",
    "logged_counts",
    "mark_crashed",
]


def check_log_path(path: str | os.PathLike[str]) -> Path:
    """Resolve a log path, refusing a missing directory before anything runs."""
    p = Path(path).expanduser()
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(
            f"Log directory {str(parent)!r} does not exist (log path {str(p)!r}); "
            f"create it (mkdir -p {parent}) or pick another log path."
        )
    if p.is_dir():
        raise ConfigError(f"Log path {str(p)!r} is a directory; give a file name such as {p / 'run.duckdb'}.")
    return p


def _translate(exc: duckdb.Error, path: Path) -> LogError:
    text = str(exc)
    if "lock" in text.lower() and ("conflicting" in text.lower() or "could not set lock" in text.lower()):
        pid = re.search(r"PID (\d+)", text)
        holder = f"process {pid.group(1)}" if pid else "another process"
        return LogError(
            f"The log {str(path)!r} is locked by {holder} (a live moot run or another DuckDB "
            "client); wait for it to finish, query through that run's handle, or use another log path."
        )
    if "no space left" in text.lower() or "disk is full" in text.lower():
        return disk_error(path, errno.ENOSPC, text)
    if "file too large" in text.lower():
        return disk_error(path, errno.EFBIG, text)
    if "not a valid duckdb" in text.lower() or "unable to open" in text.lower():
        return LogError(f"{str(path)!r} is not a DuckDB log ({text.splitlines()[0]}); pass a .duckdb file.")
    return LogError(f"DuckDB failed on {str(path)!r}: {text.splitlines()[0]}")


STORAGE = "v1.0.0"
"""The oldest DuckDB that can read a log moot creates: any client from 1.0 on opens it."""


def connect(path: Path, **kwargs: object) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to `path`, its errors translated (a lock names its holder).

    A new file is written in a storage format that DuckDB 1.0 and later read (DuckDB 2
    otherwise writes one that only 2.x reads, and the duckdb CLI a user has may be older).
    """
    if not kwargs.get("read_only"):
        config = dict(kwargs.pop("config", None) or {})  # type: ignore[call-overload]
        config.setdefault("storage_compatibility_version", STORAGE)
        kwargs["config"] = config
    try:
        return duckdb.connect(str(path), **kwargs)  # type: ignore[arg-type]
    except duckdb.Error as exc:
        raise _translate(exc, path) from exc


def base_tables(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The names of the base tables in the connection's own database."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
    ).fetchall()
    return frozenset(str(r[0]) for r in rows)


def lock_down(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """No files but the log's own segments, no settings: safe for a user's query."""
    parts = str(parts_dir(path.resolve()))
    con.execute(f"SET allowed_directories = [{quote(parts + '/')}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET enable_progress_bar = false")  # (drawn on stdout, it would corrupt JSON and CSV output)
    con.execute("SET lock_configuration = true")


def live_file(log: Path) -> Path:
    """Where a live run announces its query server (see `orchestrator.live`)."""
    return log.with_name(log.name + ".live")


ACTIVE: set[tuple[Path, str]] = set()
"""(log, run_id) of the runs this process is playing now (`LogWriter.claim`)."""

CRASHED = (
    "crashed: its process ended without closing the run (killed, out of memory, or the disk "
    "filled before the end was written); the log keeps every round logged so far"
)


def mark_crashed(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """Mark ``crashed`` every run left ``running`` by a process that is gone; clear its stale files.

    Holding the writer's lock proves that no other process writes the file, so a
    ``running`` run that this process is not playing has lost its process.
    Its ``rounds`` and ``messages`` become what its logged rounds hold.

    Returns:
        The run ids marked.
    """
    ours = [run for log, run in ACTIVE if log == path]
    rows = con.execute(
        "SELECT run_id FROM runs WHERE status = 'running' AND NOT list_contains(?, run_id)", [ours]
    ).fetchall()
    lost = [str(r[0]) for r in rows]
    for run_id in lost:
        _gather_from_store(con, path, run_id)
        rounds, messages = logged_counts(con, run_id)
        discard_after(con, parts_dir(path.resolve()), run_id, rounds - 1)
        con.execute(
            "UPDATE runs SET status = 'crashed', stop_reason = ?, rounds = ?, messages = ? WHERE run_id = ?",
            [CRASHED, rounds, messages, run_id],
        )
        con.execute(
            "INSERT INTO events (run_id, ts, round, kind, host, detail) "
            "VALUES (?, now(), NULL, 'crashed', NULL, ?)",
            [run_id, f"found by process {os.getpid()} opening the log"],
        )
    stale = live_file(path)
    if not ours and stale.exists():  # announced by a process that no longer holds the log
        stale.unlink(missing_ok=True)
    return lost


def _gather_from_store(con: duckdb.DuckDBPyConnection, path: Path, run_id: str) -> None:
    """A dead run whose hosts wrote to an object store (``--segments-uri``): its segments come
    beside the log before its rounds are counted. A store that cannot be read leaves them there,
    with an event that says so."""
    (uri,) = con.execute("SELECT config->>'segments_uri' FROM runs WHERE run_id = ?", [run_id]).fetchall()[0]
    if not uri:
        return
    sink = SegmentSink(str(parts_dir(path.resolve())), run_id, uri)
    try:
        gather(con, Path(sink.parts), run_id, lambda h, files: sink.read(files))
        sink.forget()
    except (MootError, OSError) as exc:
        con.execute(
            "INSERT INTO events (run_id, ts, round, kind, host, detail) "
            "VALUES (?, now(), NULL, 'error', NULL, ?)",
            [run_id, f"its segments in {uri} could not be gathered: {exc}"],
        )


def discard_after(
    con: duckdb.DuckDBPyConnection, parts: Path, run_id: str, last_round: int, states_too: bool = False
) -> None:
    """Keep whole rounds only: delete the run's segments of rounds after `last_round` (and any
    unfinished one) with their manifest rows. A round is in the log when its metrics are.
    `states_too`: the states of `last_round` go as well (see `prune`)."""
    prune(parts, run_id, last_round, states_too)
    con.execute(
        "DELETE FROM segments WHERE run_id = ? "
        "AND (round > ? OR (? AND table_name = 'states' AND round = ?))",
        [run_id, last_round, states_too, last_round],
    )


def logged_counts(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[int, int]:
    """(rounds, messages) that reached the log for `run_id`: what its ``metrics`` rows hold."""
    rounds, messages = con.execute(
        "SELECT count(DISTINCT round), coalesce(sum(value) FILTER (name = 'messages'), 0) "
        "FROM metrics WHERE run_id = ?",
        [run_id],
    ).fetchall()[0]
    return int(rounds), int(messages)


class LogWriter:
    """The one writer of a log file. Appends Arrow tables; a background thread can do it.

    Args:
        path: The DuckDB file (created if missing; reused if it holds other runs).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = check_log_path(path)
        self.con = connect(self.path)
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=3)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.parts = parts_dir(self.path.resolve())
        try:
            write_schema_files(self.parts)
        except OSError as exc:
            self.con.close()
            raise LogError(
                f"Cannot write the segment folder {str(self.parts)!r} beside the log ({exc.strerror}); "
                "the hosts write their rows there. Pass a log path in a writable directory."
            ) from exc
        try:
            self.con.execute(schema_sql(base_tables(self.con)))
            ensure_kinds(self.con, KINDS)
            recover(self.con, self.parts)
            self.crashed = mark_crashed(self.con, self.path)
            # The writer only appends Arrow it was handed: no files but the segments, no
            # settings. This makes its cursors safe to answer users' read-only queries.
            lock_down(self.con, self.path)
        except duckdb.Error as exc:
            self.con.close()
            raise _translate(exc, self.path) from exc

    def append(self, table: str, rows: pa.Table) -> None:
        """Append `rows` (columns named as in the table, any order) to `table`."""
        if rows.num_rows == 0:
            return
        cols = ", ".join(f'"{c}"' for c in rows.column_names)
        try:
            self.con.register("_moot_rows", rows)
            try:
                self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _moot_rows")
            finally:
                self.con.unregister("_moot_rows")
        except duckdb.Error as exc:
            raise _translate(exc, self.path) from exc

    def execute(self, sql: str, params: list[object] | None = None) -> None:
        """Run one statement on the writer's connection (moot's own statements only)."""
        try:
            self.con.execute(sql, params or [])
        except duckdb.Error as exc:
            raise _translate(exc, self.path) from exc

    def ensure_kinds(self, kinds: tuple[str, ...]) -> None:
        """Make the message tables able to hold a run's kinds (see `ensure_kinds`)."""
        try:
            ensure_kinds(self.con, kinds)
        except duckdb.Error as exc:
            raise _translate(exc, self.path) from exc

    def compact(self, run_id: str) -> int:
        """Move a run's segment rows into the file's own tables (see `compact_run`): the file
        then holds the run whole, to be copied alone or ATTACHed. Returns the rows moved."""
        try:
            kinds = self.con.execute(
                "SELECT DISTINCT kind FROM messages WHERE run_id = ? AND kind IS NOT NULL", [run_id]
            ).fetchall()
            ensure_kinds(self.con, tuple(str(k[0]) for k in kinds))
            return compact_run(self.con, self.parts, run_id)
        except duckdb.Error as exc:
            raise _translate(exc, self.path) from exc

    def claim(self, run_id: str) -> None:
        """Note that this process plays `run_id` (so another writer here does not mark it crashed)."""
        ACTIVE.add((self.path, run_id))

    def release(self, run_id: str) -> None:
        """The run has ended (finished, failed or interrupted): its row says so."""
        ACTIVE.discard((self.path, run_id))

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the writer's connection: how a live run answers queries."""
        return self.con.cursor()

    # -- background appends: overlap logging round r with computing round r+1 --

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job` (which appends) on the writer thread; raises an earlier job's error."""
        self.raise_if_failed()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="moot-log-writer", daemon=True)
            self._thread.start()
        self._queue.put(job)

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            if self._error is None:
                try:
                    job()
                except BaseException as exc:  # handed to the coordinator, not lost
                    self._error = exc
            self._queue.task_done()
        self._queue.task_done()

    def flush(self) -> None:
        """Wait for every submitted job; raise the first error one of them hit."""
        if self._thread is not None:
            self._queue.join()
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def close(self) -> None:
        """Finish pending appends (errors are dropped here; call `flush` first) and close.

        With no segments left (every run compacted, or small), the segmented views read the file
        only, so that it stands alone; the next writer to open it reads segments again."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        with contextlib.suppress(duckdb.Error, OSError):
            if not has_segments(self.parts):
                self.con.execute("\n".join(segmented_view_sql(t, False) for t in TABLES if t.segmented))
        self.con.close()
