"""Reading a log: a read-only, locked-down connection, one query at a time, as Arrow; a live run's
log is asked through the run itself (`orchestrator.log.wire`)."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from orchestrator.errors import ConfigError, LogError, QueryRefused
from orchestrator.log.schema import TABLES, quote
from orchestrator.log.wire import ask
from orchestrator.log.writer import connect, lock_down

__all__ = ["interruptible", "open_log", "query", "query_error", "run_query", "scope_to_run", "text_table"]

_LOCKED_DOWN = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}  # then `lock_down`: no files but the log's segments, and no settings


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
    con = connect(p, read_only=True, config=dict(_LOCKED_DOWN))
    try:
        lock_down(con, p)
    except BaseException:
        con.close()
        raise
    return con


def scope_to_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Shadow every log table, on this connection only, with a view of one run's rows.

    The views and macros that ship with the log then answer about that run too.
    Temporary views live in the connection's own catalog: nothing is written.
    """
    db = con.sql("SELECT current_database()").fetchall()[0][0]
    rid = quote(run_id)
    for t in TABLES:
        con.execute(
            f'CREATE OR REPLACE TEMP VIEW {t.name} AS SELECT * FROM "{db}".main.{t.name} WHERE run_id = {rid}'
        )


def interruptible(
    con: duckdb.DuckDBPyConnection, work: Callable[[], pa.Table], timeout: float | None
) -> pa.Table:
    """Run `work` (a query on `con`) so that Ctrl-C and a `timeout` (seconds) stop it.

    DuckDB holds the GIL only between its own steps, so the query runs on a helper
    thread while this one waits; either way out calls ``con.interrupt()``.

    Raises:
        LogError: The query ran past `timeout`.
    """
    box: dict[str, Any] = {}
    done = threading.Event()  # not Thread.join: an interrupted join can wrongly report the end

    def run() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="moot-query", daemon=True).start()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while not done.wait(0.05):
            if deadline is not None and time.monotonic() > deadline:
                con.interrupt()
                done.wait()
                raise LogError(
                    f"Query stopped after {timeout:g} s (its time limit); narrow it (a WHERE on run_id "
                    "or round, a LIMIT) or give more time with --timeout."
                )
    except KeyboardInterrupt:
        con.interrupt()
        done.wait()
        raise
    if "error" in box:
        raise box["error"]
    result: pa.Table = box["result"]
    return result


def query(
    path: str | os.PathLike[str],
    sql: str,
    *,
    run_id: str | None = None,
    text: bool = False,
    timeout: float | None = None,
) -> pa.Table:
    """Run one read-only query on a log and return Arrow.

    Works on a log that a live run holds, too (the run answers it).

    Args:
        path: The log file.
        sql: One read-only query.
        run_id: Scope every table to this run (see `scope_to_run`); None sees every run.
        text: Return every non-numeric column as text (nested types as JSON),
            which any output format can print.
        timeout: Seconds the query may take (None: no limit; a live run applies its own,
            `orchestrator.live.LIVE_TIMEOUT`, at most). Ctrl-C stops it either way.

    Raises:
        QueryRefused: The query tried to write, touch files, or change settings.
        LogError: The log is locked by another process, or the query is invalid.
    """
    try:
        con = open_log(path)
    except LogError:
        live = ask(Path(path).expanduser(), sql, run_id=run_id, text=text, timeout=timeout)
        if live is None:  # no live run holds the log
            raise
        return live
    try:
        if run_id is not None:
            scope_to_run(con, run_id)
        return interruptible(con, lambda: run_query(con, sql, text=text), timeout)
    finally:
        con.close()


_NESTED = ("list", "struct", "map", "union", "array")
_NUMERIC = (
    "boolean",
    "tinyint",
    "smallint",
    "integer",
    "bigint",
    "hugeint",
    "utinyint",
    "usmallint",
    "uinteger",
    "ubigint",
    "uhugeint",
    "float",
    "double",
    "decimal",
)


def text_table(rel: duckdb.DuckDBPyRelation, max_bytes: int | None = None) -> pa.Table:
    """`rel` as Arrow with numbers and booleans kept, nested values as JSON text, the rest as text.

    DuckDB prints its own types, so every type it has (out-of-range dates,
    intervals, blobs, bignums, unions) comes out printable in any format. The
    fields that hold JSON carry the metadata ``moot_json: 1``.
    """
    cols: list[str] = []
    nested: list[str] = []
    for name, typ in zip(rel.columns, rel.types):
        q = '"' + name.replace('"', '""') + '"'
        kind = str(typ.id).lower()
        if kind in _NUMERIC:
            cols.append(q)
        elif kind in _NESTED:
            cols.append(f"to_json({q})::VARCHAR AS {q}")
            nested.append(name)
        else:
            cols.append(f"{q}::VARCHAR AS {q}")
    table = fetch(rel.project(", ".join(cols)) if cols else rel, max_bytes)
    fields = [f.with_metadata({"moot_json": "1"}) if f.name in nested else f for f in table.schema]
    return table.cast(pa.schema(fields))


def fetch(rel: duckdb.DuckDBPyRelation, max_bytes: int | None = None) -> pa.Table:
    """`rel`'s rows as Arrow; with `max_bytes`, streamed and refused once they pass it.

    Raises:
        LogError: The result passed `max_bytes`.
    """
    if max_bytes is None:
        return rel.to_arrow_table()
    reader = rel.to_arrow_reader()
    batches, size = [], 0
    for batch in reader:
        size += batch.nbytes
        if size > max_bytes:
            raise LogError(
                f"Query stopped: its result passed {max_bytes / 2**20:g} MiB, the most a live run's log "
                "answers (the run's own process holds it). Aggregate, add a LIMIT, or query the log "
                "once the run has ended."
            )
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=reader.schema)


def query_error(exc: duckdb.Error) -> LogError:
    """A DuckDB error on a user's query as `QueryRefused` (it tried to write) or `LogError`."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, (duckdb.PermissionException, duckdb.InvalidInputException)) and (
        "read-only" in first or "locked" in first or "disabled" in first or "Permission" in first
    ):
        return QueryRefused(
            f"Query refused: {first}. Queries on a moot log may only read it: "
            "no writes, no files, no settings, no extensions."
        )
    missing = re.search(r'No files found that match the pattern "(.*?\.parts)/', first)
    if missing:
        return LogError(
            f"The log's segment folder {missing.group(1)!r} is missing: the hosts' rows live there. "
            "Keep it beside the .duckdb file (move or copy them together), or run `moot compact` "
            "where both are, after which the file stands alone."
        )
    return LogError(
        f"Query failed: {text}"
    )  # whole text: DuckDB's hints (did you mean ...) follow the first line


def run_query(
    con: duckdb.DuckDBPyConnection, sql: str, *, text: bool = False, max_bytes: int | None = None
) -> pa.Table:
    """Run `sql` on a locked-down connection, translating refusals and keeping DuckDB's hints.

    Args:
        con: The connection.
        sql: The query.
        text: Non-numeric columns as text (see `text_table`).
        max_bytes: Refuse a result larger than this (a `LogError`).
    """
    try:
        rel = con.sql(sql)
        if rel is None:
            return pa.table({})
        return text_table(rel, max_bytes) if text else fetch(rel, max_bytes)
    except duckdb.Error as exc:
        raise query_error(exc) from exc
