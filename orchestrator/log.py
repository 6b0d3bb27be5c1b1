"""The interaction log: one DuckDB file, written by one writer, read with SQL.

Tables: ``runs``, ``agents``, ``messages``, ``states``, ``metrics``,
``llm_calls``, ``events``; views: ``consensus_by_round``, ``run_summary``; table
macros: ``agreement_by_round(run_id, field, tol)`` (share of agents within `tol`
of the median, per logged round) and ``rounds_to_agreement(run_id, field, tol,
share)``. A
file can hold many runs, keyed by ``run_id``. Rows reach the writer as Arrow
tables and are appended in bulk (never row by row).

User queries go through `open_log`/`query`: a read-only connection with external
access disabled and the configuration locked, so a query that tries to write,
read files or change settings is refused (`QueryRefused`) and changes nothing.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa

from agents.message import KINDS
from orchestrator.errors import ConfigError, LogError, QueryRefused

__all__ = ["LogWriter", "SCHEMA_VERSION", "check_log_path", "open_log", "query"]

SCHEMA_VERSION = 1

_KIND_ENUM = ", ".join(f"'{k}'" for k in KINDS)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
    seed BIGINT, protocol VARCHAR, config JSON, versions JSON, n_agents BIGINT,
    n_hosts INTEGER, rounds INTEGER, messages BIGINT, seconds DOUBLE,
    status VARCHAR, stop_reason VARCHAR);
CREATE TABLE IF NOT EXISTS agents (
    run_id VARCHAR, agent BIGINT, class VARCHAR, host INTEGER, node VARCHAR);
CREATE TABLE IF NOT EXISTS messages (
    run_id VARCHAR, round INTEGER, sender BIGINT, seq INTEGER, receiver BIGINT,
    topic VARCHAR, protocol VARCHAR, kind message_kind, value DOUBLE, text VARCHAR,
    payload JSON);
CREATE TABLE IF NOT EXISTS states (
    run_id VARCHAR, round INTEGER, agent BIGINT, field VARCHAR, value DOUBLE);
CREATE TABLE IF NOT EXISTS metrics (
    run_id VARCHAR, round INTEGER, name VARCHAR, value DOUBLE);
CREATE TABLE IF NOT EXISTS llm_calls (
    run_id VARCHAR, round INTEGER, agent BIGINT, model VARCHAR, prompt_tokens INTEGER,
    completion_tokens INTEGER, cost DOUBLE, latency_s DOUBLE, cache_hit BOOLEAN, error VARCHAR);
CREATE TABLE IF NOT EXISTS events (
    run_id VARCHAR, ts TIMESTAMPTZ, round INTEGER, kind VARCHAR, host INTEGER, detail VARCHAR);
CREATE OR REPLACE VIEW consensus_by_round AS
    SELECT run_id, round,
        max(value) FILTER (name = 'agents')::BIGINT AS agents,
        max(value) FILTER (name = 'messages')::BIGINT AS messages,
        max(value) FILTER (name = 'mean') AS mean,
        max(value) FILTER (name = 'variance') AS variance,
        max(value) FILTER (name = 'min') AS min,
        max(value) FILTER (name = 'max') AS max,
        max(value) FILTER (name = 'spread') AS spread,
        max(value) FILTER (name = 'seconds') AS seconds
    FROM metrics GROUP BY run_id, round ORDER BY run_id, round;
CREATE OR REPLACE MACRO agreement_by_round(rid, fld, tol) AS TABLE
    WITH s AS (SELECT round, value FROM states WHERE run_id = rid AND field = fld),
         m AS (SELECT round, median(value) AS med FROM s GROUP BY round)
    SELECT s.round, count(*) AS agents, m.med AS median,
        avg(CASE WHEN abs(s.value - m.med) <= tol THEN 1.0 ELSE 0.0 END) AS share
    FROM s JOIN m USING (round) GROUP BY s.round, m.med ORDER BY s.round;
CREATE OR REPLACE MACRO rounds_to_agreement(rid, fld, tol, target) AS TABLE
    SELECT min(round) AS round FROM agreement_by_round(rid, fld, tol) WHERE share >= target;
CREATE OR REPLACE VIEW run_summary AS
    SELECT r.run_id, r.protocol, r.n_agents, r.n_hosts, r.rounds, r.messages, r.seconds,
        r.stop_reason, r.status, c.spread AS final_spread, c.mean AS final_mean
    FROM runs r LEFT JOIN consensus_by_round c ON c.run_id = r.run_id AND c.round = r.rounds - 1;
"""


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
        return LogError(
            f"The disk holding {str(path)!r} is full; rows already appended are kept. "
            "Free space, or pass a log path on another disk."
        )
    if "not a valid duckdb" in text.lower() or "unable to open" in text.lower():
        return LogError(f"{str(path)!r} is not a DuckDB log ({text.splitlines()[0]}); pass a .duckdb file.")
    return LogError(f"DuckDB failed on {str(path)!r}: {text.splitlines()[0]}")


def _connect(path: Path, **kwargs: object) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), **kwargs)  # type: ignore[arg-type]
    except duckdb.Error as exc:
        raise _translate(exc, path) from exc


class LogWriter:
    """The one writer of a log file. Appends Arrow tables; a background thread can do it.

    Args:
        path: The DuckDB file (created if missing; reused if it holds other runs).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = check_log_path(path)
        self.con = _connect(self.path)
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=3)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        try:
            types = self.con.execute("SELECT type_name FROM duckdb_types() WHERE type_name = 'message_kind'")
            if not types.fetchall():
                self.con.execute(f"CREATE TYPE message_kind AS ENUM ({_KIND_ENUM})")
            self.con.execute(SCHEMA)
            # The writer only appends Arrow it was handed: no files, no settings. This
            # makes its cursors safe to answer users' read-only queries during a run.
            self.con.execute("SET enable_external_access = false")
            self.con.execute("SET lock_configuration = true")
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
        """Finish pending appends (errors are dropped here; call `flush` first) and close."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self.con.close()


_LOCKED_DOWN = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "lock_configuration": True,
}


def open_log(path: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection:
    """A read-only, locked-down connection to a log: the way to query it.

    Example:
        >>> con = open_log("run.duckdb")
        >>> con.sql("SELECT * FROM consensus_by_round").fetchall()
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(
            f"No log at {str(p)!r}; pass the path given to launch(log=...) or `moot run --log`."
        )
    return _connect(p, read_only=True, config=dict(_LOCKED_DOWN))


def query(path: str | os.PathLike[str], sql: str) -> pa.Table:
    """Run one read-only query on a log and return Arrow.

    Raises:
        QueryRefused: The query tried to write, touch files, or change settings.
        LogError: The log is locked by a live run, or the query is invalid.
    """
    try:
        con = open_log(path)
    except LogError:
        from orchestrator.live import ask

        live = ask(Path(path).expanduser(), sql)  # a live run holds the log: ask it
        if live is None:
            raise
        return live
    try:
        return run_query(con, sql)
    finally:
        con.close()


def run_query(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run `sql` on a locked-down connection, translating refusals."""
    try:
        rel = con.sql(sql)
        if rel is None:
            return pa.table({})
        return rel.to_arrow_table()
    except (duckdb.PermissionException, duckdb.InvalidInputException) as exc:
        first = str(exc).splitlines()[0]
        if "read-only" in first or "locked" in first or "disabled" in first or "Permission" in first:
            raise QueryRefused(
                f"Query refused: {first}. Queries on a moot log may only read it: "
                "no writes, no files, no settings, no extensions."
            ) from exc
        raise LogError(f"Query failed: {first}") from exc
    except duckdb.Error as exc:
        raise LogError(f"Query failed: {str(exc).splitlines()[0]}") from exc
