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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from agents.message import KINDS
from orchestrator.errors import ConfigError, LogError, QueryRefused

__all__ = [
    "MACROS",
    "SCHEMA_VERSION",
    "TABLES",
    "VIEWS",
    "Column",
    "LogWriter",
    "Table",
    "check_log_path",
    "ensure_kinds",
    "open_log",
    "query",
    "query_error",
    "run_query",
    "schema_sql",
    "scope_to_run",
    "text_table",
]

SCHEMA_VERSION = 2


_KIND_TYPE = "ENUM(" + ", ".join(f"'{k}'" for k in KINDS) + ")"
_KIND_TABLES = ("messages", "message_aggregates")


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a log table: name, DuckDB type, and what it means."""

    name: str
    type: str
    doc: str


@dataclass(frozen=True, slots=True)
class Table:
    """One table of the log, with what a row is and its columns."""

    name: str
    doc: str
    columns: tuple[Column, ...]


def _cols(*spec: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*c) for c in spec)


_RUN_ID = ("run_id", "VARCHAR", "The run this row belongs to (runs.run_id).")

TABLES: tuple[Table, ...] = (
    Table(
        "runs",
        "One row per run.",
        _cols(
            ("run_id", "VARCHAR", "Key of the run; every other table refers to it."),
            ("started_at", "TIMESTAMP WITH TIME ZONE", "When the run started (UTC)."),
            ("finished_at", "TIMESTAMP WITH TIME ZONE", "When it finished or failed; NULL while running."),
            ("seed", "BIGINT", "The run's seed: same seed, same log."),
            ("protocol", "VARCHAR", "Protocol name (as registered under moot.protocols)."),
            (
                "config",
                "JSON",
                "Everything that defines the run: protocol settings (with the graph's nodes, edges, "
                "content hash and generator), population (classes, counts, column specs), rounds, "
                "hosts, stop rule, message logging, params.",
            ),
            ("versions", "JSON", "Versions of Python, moot and its dependencies."),
            ("n_agents", "BIGINT", "Population size."),
            ("n_hosts", "INTEGER", "Host actors (shards) the agents ran on."),
            (
                "rounds",
                "INTEGER",
                "Rounds played and logged (a failed run counts only rounds whose rows reached the log).",
            ),
            ("messages", "BIGINT", "Messages delivered, whether or not each has a row in messages."),
            ("seconds", "DOUBLE", "Wall time of the run, set-up included."),
            (
                "status",
                "VARCHAR",
                "running, finished, failed, interrupted (Ctrl-C or SIGTERM) or crashed (its process "
                "ended without closing the run; set by the next process that opens the log to write).",
            ),
            ("stop_reason", "VARCHAR", "Why it stopped: the stop rule that fired, rounds, or the error."),
            ("params", "JSON", "The user's parameters and tags (launch(params=...), moot run -p k=v)."),
            (
                "message_log",
                "VARCHAR",
                "How messages were logged: all, sample, every, aggregate or none.",
            ),
            (
                "message_rate",
                "DOUBLE",
                "Fraction of delivered messages (in logged rounds) that have a row in messages: 1 for "
                "all and every, the rate for sample, 0 for aggregate and none. Divide counts by it.",
            ),
            (
                "message_every",
                "INTEGER",
                "Messages are logged in rounds where round % message_every = 0 (1: every round).",
            ),
        ),
    ),
    Table(
        "agents",
        "One row per agent.",
        _cols(
            _RUN_ID,
            ("agent", "BIGINT", "Global agent id (0..n_agents-1)."),
            ("class", "VARCHAR", "The agent's class name."),
            ("host", "INTEGER", "Index of the host that ran it."),
            ("node", "VARCHAR", "Ray node id of that host ('local' in-process)."),
        ),
    ),
    Table(
        "messages",
        "One row per delivered message (a broadcast to three receivers is three rows), and one per "
        "action an agent took on its protocol's world.",
        _cols(
            _RUN_ID,
            (
                "round",
                "INTEGER",
                "Round the message was sent in; its receiver reads it in round + 1.",
            ),
            ("sender", "BIGINT", "Sending agent id."),
            (
                "seq",
                "INTEGER",
                "Index among the sender's messages that round; (round, sender, seq) is its id.",
            ),
            ("receiver", "BIGINT", "Receiving agent id; NULL for an action (a message to the world)."),
            ("topic", "VARCHAR", "Topic or group, where the protocol uses one."),
            ("protocol", "VARCHAR", "Protocol that routed it."),
            (
                "kind",
                _KIND_TYPE,
                "What the message is: a core kind (opinion, argument, vote, post, move, reply, signal) "
                "or one its protocol declares (the ENUM grows when a run brings new kinds).",
            ),
            ("value", "DOUBLE", "Its number (an opinion, a vote), or NULL."),
            ("text", "VARCHAR", "Its text, or NULL."),
            ("payload", "JSON", "Its JSON payload, or NULL."),
        ),
    ),
    Table(
        "message_aggregates",
        "One row per round and kind, when messages are logged as aggregates only.",
        _cols(
            _RUN_ID,
            ("round", "INTEGER", "Round the messages were sent in."),
            ("kind", _KIND_TYPE, "Message kind."),
            ("messages", "BIGINT", "Messages delivered."),
            ("senders", "BIGINT", "Distinct agents that sent them."),
            ("receivers", "BIGINT", "Distinct agents that received them."),
            ("value_mean", "DOUBLE", "Mean of their values (NULL if none has one)."),
        ),
    ),
    Table(
        "states",
        "One row per agent, numeric or text state field and logged round.",
        _cols(
            _RUN_ID,
            (
                "round",
                "INTEGER",
                "Round after which the state was taken; -1 is the initial state.",
            ),
            ("agent", "BIGINT", "Agent id."),
            ("field", "VARCHAR", "State field name."),
            ("value", "DOUBLE", "Its value (booleans as 0/1); NULL for a text field."),
            ("text", "VARCHAR", "The value of a text field (a party, a group); NULL for a number."),
        ),
    ),
    Table(
        "metrics",
        "One row per round and metric.",
        _cols(
            _RUN_ID,
            ("round", "INTEGER", "Round the metric describes (after the agents acted)."),
            (
                "name",
                "VARCHAR",
                "Metric: agents, messages, seconds; mean, variance, min, max, spread of the watched "
                "field (other fields as field.stat); max_change; the protocol's own.",
            ),
            ("value", "DOUBLE", "Its value."),
            (
                "trace_id",
                "VARCHAR",
                "OpenTelemetry trace id (32 hex digits) of the run, when it was traced; else NULL.",
            ),
            (
                "span_id",
                "VARCHAR",
                "Span id (16 hex digits) of this round's moot.round span, when traced; else NULL.",
            ),
        ),
    ),
    Table(
        "llm_calls",
        "One row per LLM call.",
        _cols(
            _RUN_ID,
            ("round", "INTEGER", "Round of the call."),
            ("agent", "BIGINT", "Calling agent."),
            ("model", "VARCHAR", "Model string (as litellm takes it, e.g. openai/gpt-4o-mini)."),
            ("prompt_tokens", "INTEGER", "Prompt tokens (as the provider reported them)."),
            ("completion_tokens", "INTEGER", "Completion tokens."),
            ("cost", "DOUBLE", "Cost in dollars (0 for a cache hit; NULL when litellm has no price)."),
            (
                "latency_s",
                "DOUBLE",
                "Seconds from the first request sent to the answer (retries and their back-off included).",
            ),
            (
                "queued_s",
                "DOUBLE",
                "Seconds the call waited before its first request: the in-flight bound and the rate limits.",
            ),
            ("cache_hit", "BOOLEAN", "Whether the reply came from the response cache (no provider called)."),
            ("error", "VARCHAR", "What went wrong, in words; NULL when the answer was used."),
            ("call", "INTEGER", "Index of the call among the agent's calls this round (re-asks count)."),
            ("host", "INTEGER", "Host that made the call."),
            ("attempts", "INTEGER", "HTTP attempts (retries after 429/5xx/timeouts included; 0: none made)."),
            ("finish_reason", "VARCHAR", "The provider's finish reason (stop, length, ...)."),
            (
                "error_type",
                "VARCHAR",
                "timeout, rate_limited, server_error, connection, budget, invalid_json, schema, "
                "truncated, ...; NULL when the answer was used.",
            ),
        ),
    ),
    Table(
        "events",
        "One row per event: hosts started, the run stopped, an error.",
        _cols(
            _RUN_ID,
            ("ts", "TIMESTAMP WITH TIME ZONE", "When it happened (UTC)."),
            ("round", "INTEGER", "Round it happened in, if any."),
            (
                "kind",
                "VARCHAR",
                "host_started, stopped, error; llm_call_failed, llm_reply_invalid, llm_unpriced; ...",
            ),
            ("host", "INTEGER", "Host concerned, if any."),
            ("detail", "VARCHAR", "What happened, in words."),
        ),
    ),
)

VIEWS: dict[str, tuple[str, str]] = {
    "consensus_by_round": (
        "Per run and round: messages, and the watched field's mean, variance, min, max and spread.",
        """SELECT run_id, round,
        max(value) FILTER (name = 'agents')::BIGINT AS agents,
        max(value) FILTER (name = 'messages')::BIGINT AS messages,
        max(value) FILTER (name = 'mean') AS mean,
        max(value) FILTER (name = 'variance') AS variance,
        max(value) FILTER (name = 'min') AS min,
        max(value) FILTER (name = 'max') AS max,
        max(value) FILTER (name = 'spread') AS spread,
        max(value) FILTER (name = 'seconds') AS seconds
    FROM metrics GROUP BY run_id, round ORDER BY run_id, round""",
    ),
    "run_summary": (
        "Per run: protocol, size, rounds, messages, time, why it stopped, and the final spread and mean.",
        """SELECT r.run_id, r.protocol, r.n_agents, r.n_hosts, r.rounds, r.messages, r.seconds,
        r.stop_reason, r.status, c.spread AS final_spread, c.mean AS final_mean
    FROM runs r LEFT JOIN consensus_by_round c ON c.run_id = r.run_id AND c.round = r.rounds - 1""",
    ),
}

VIEWS["llm_cost_by_round"] = (
    "Per run and round: LLM calls, errors, cache hits, tokens, dollars, and latency (mean, p50, p95).",
    """SELECT run_id, round, count(*) AS calls,
        count(*) FILTER (error_type IS NOT NULL) AS errors,
        count(*) FILTER (cache_hit) AS cache_hits,
        sum(attempts) - count(*) FILTER (attempts > 0) AS retries,
        sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
        sum(cost) AS cost, sum(sum(cost)) OVER (PARTITION BY run_id ORDER BY round) AS cumulative_cost,
        avg(latency_s) AS latency_mean, quantile_cont(latency_s, 0.5) AS latency_p50,
        quantile_cont(latency_s, 0.95) AS latency_p95
    FROM llm_calls GROUP BY run_id, round""",
)
VIEWS["llm_cost_by_model"] = (
    "Per run and model: calls, errors, cache hits, tokens, dollars, and latency (mean, p50, p95).",
    """SELECT run_id, model, count(*) AS calls,
        count(*) FILTER (error_type IS NOT NULL) AS errors,
        count(*) FILTER (cache_hit) AS cache_hits,
        sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
        sum(cost) AS cost, avg(latency_s) AS latency_mean,
        quantile_cont(latency_s, 0.5) AS latency_p50, quantile_cont(latency_s, 0.95) AS latency_p95
    FROM llm_calls GROUP BY run_id, model""",
)

MACROS: dict[str, tuple[str, str]] = {
    "agreement_by_round(rid, fld, tol)": (
        "Per logged round: agents, the field's median, and the share of agents within tol of it.",
        """WITH s AS (SELECT round, value FROM states WHERE run_id = rid AND field = fld),
         m AS (SELECT round, median(value) AS med FROM s GROUP BY round)
    SELECT s.round, count(*) AS agents, m.med AS median,
        avg(CASE WHEN abs(s.value - m.med) <= tol THEN 1.0 ELSE 0.0 END) AS share
    FROM s JOIN m USING (round) GROUP BY s.round, m.med ORDER BY s.round""",
    ),
    "rounds_to_agreement(rid, fld, tol, target)": (
        "The first logged round where at least target of the agents are within tol of the median.",
        "SELECT min(round) AS round FROM agreement_by_round(rid, fld, tol) WHERE share >= target",
    ),
    "opinion_clusters(rid, fld, tol)": (
        "Per logged round, each cluster of the field's values (sorted values split where a gap exceeds "
        "tol): its agents, share, low, high and mean.",
        """WITH s AS (SELECT round, value FROM states
                   WHERE run_id = rid AND field = fld AND value IS NOT NULL),
         g AS (SELECT round, value,
                      CASE WHEN value - lag(value) OVER (PARTITION BY round ORDER BY value) > tol
                           THEN 1 ELSE 0 END AS gap FROM s),
         c AS (SELECT round, value, sum(gap) OVER (PARTITION BY round ORDER BY value
                                                   ROWS UNBOUNDED PRECEDING) AS cluster FROM g)
    SELECT round, cluster::INTEGER AS cluster, count(*) AS agents,
        count(*) / sum(count(*)) OVER (PARTITION BY round) AS share,
        min(value) AS low, max(value) AS high, avg(value) AS mean
    FROM c GROUP BY round, cluster ORDER BY round, cluster""",
    ),
    "clusters_by_round(rid, fld, tol, major)": (
        "Per logged round: agents, opinion clusters (gaps over tol), clusters holding at least a share "
        "major of the agents, and the largest cluster's share.",
        """SELECT round, sum(agents)::BIGINT AS agents, count(*) AS clusters,
        count(*) FILTER (share >= major) AS major_clusters, max(share) AS largest_share
    FROM opinion_clusters(rid, fld, tol) GROUP BY round ORDER BY round""",
    ),
    "majority_by_round(rid, fld)": (
        "Per logged round (discrete opinions): distinct values, the most held value, the share holding "
        "it, and the magnetisation (mean value; for -1/+1 opinions, m).",
        """WITH s AS (SELECT round, value FROM states
                   WHERE run_id = rid AND field = fld AND value IS NOT NULL),
         v AS (SELECT round, value, count(*) AS n FROM s GROUP BY round, value),
         r AS (SELECT round, count(*) AS opinions, sum(n) AS agents, arg_max(value, n) AS majority,
                      max(n) AS top, sum(value * n) / sum(n) AS magnetisation FROM v GROUP BY round)
    SELECT round, agents::BIGINT AS agents, opinions, majority, top / agents AS majority_share, magnetisation
    FROM r ORDER BY round""",
    ),
    "consensus_time(rid, tol)": (
        "Rounds to consensus, from the metrics logged every round. Two columns: rounds (read this "
        "one: rounds played until the watched field's spread was at most tol) and round (the "
        "0-based round that reached it, rounds - 1); both NULL if it never was.",
        """SELECT min(round) + 1 AS rounds, min(round) AS round FROM metrics
    WHERE run_id = rid AND name = 'spread' AND value <= tol""",
    ),
}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def schema_sql() -> str:
    """The DDL of a log: tables (with columns added to older logs), comments, views, macros."""
    out: list[str] = []
    for t in TABLES:
        cols = ", ".join(
            f"{c.name} {c.type}{' PRIMARY KEY' if (t.name, c.name) == ('runs', 'run_id') else ''}"
            for c in t.columns
        )
        out.append(f"CREATE TABLE IF NOT EXISTS {t.name} ({cols});")
        out.extend(f"ALTER TABLE {t.name} ADD COLUMN IF NOT EXISTS {c.name} {c.type};" for c in t.columns)
        out.append(f"COMMENT ON TABLE {t.name} IS {_quote(t.doc)};")
        out.extend(f"COMMENT ON COLUMN {t.name}.{c.name} IS {_quote(c.doc)};" for c in t.columns)
    for name, (doc, sql) in VIEWS.items():
        out.append(f"CREATE OR REPLACE VIEW {name} AS {sql};")
        out.append(f"COMMENT ON VIEW {name} IS {_quote(doc)};")
    for sig, (_doc, sql) in MACROS.items():
        out.append(f"CREATE OR REPLACE MACRO {sig} AS TABLE {sql};")
    return "\n".join(out)


def ensure_kinds(con: duckdb.DuckDBPyConnection, kinds: tuple[str, ...]) -> None:
    """Widen the ``kind`` ENUM of the message tables to hold `kinds` (a no-op when it does).

    Kinds are an ENUM because appending a million rows into one is about 10%
    faster than into VARCHAR, and the log's appends bound the throughput of big
    runs. A run whose protocol brings new kinds rewrites the column once, in
    this file.
    """
    for table in _KIND_TABLES:
        current = _enum_values(con, table)
        missing = [k for k in kinds if k not in current]
        if missing:
            wider = "ENUM(" + ", ".join(_quote(k) for k in (*current, *missing)) + ")"
            con.execute(f"ALTER TABLE {table} ALTER COLUMN kind SET DATA TYPE {wider}")


def _enum_values(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    (dtype,) = con.execute(
        "SELECT data_type FROM duckdb_columns() WHERE table_name = ? AND column_name = 'kind'", [table]
    ).fetchall()[0]
    if not str(dtype).startswith("ENUM("):
        return []
    return re.findall(r"'((?:[^']|'')*)'", str(dtype))


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
    if "file too large" in text.lower():  # a file-size limit (ulimit -f, a quota)
        return LogError(
            f"The log {str(path)!r} reached the largest file this process may write (ulimit -f or a "
            "quota); rows already appended are kept. Raise the limit, or log less (--messages sample:0.1)."
        )
    if "not a valid duckdb" in text.lower() or "unable to open" in text.lower():
        return LogError(f"{str(path)!r} is not a DuckDB log ({text.splitlines()[0]}); pass a .duckdb file.")
    return LogError(f"DuckDB failed on {str(path)!r}: {text.splitlines()[0]}")


def _connect(path: Path, **kwargs: object) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), **kwargs)  # type: ignore[arg-type]
    except duckdb.Error as exc:
        raise _translate(exc, path) from exc


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
        con.execute(
            """UPDATE runs SET status = 'crashed', stop_reason = $1,
                   rounds = (SELECT count(DISTINCT round) FROM metrics WHERE run_id = $2),
                   messages = (SELECT coalesce(sum(value), 0)::BIGINT FROM metrics
                               WHERE run_id = $2 AND name = 'messages')
               WHERE run_id = $2""",
            [CRASHED, run_id],
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
            self.con.execute(schema_sql())
            ensure_kinds(self.con, KINDS)
            self.crashed = mark_crashed(self.con, self.path)
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

    def ensure_kinds(self, kinds: tuple[str, ...]) -> None:
        """Make the message tables able to hold a run's kinds (see `ensure_kinds`)."""
        try:
            ensure_kinds(self.con, kinds)
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


def scope_to_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Shadow every log table, on this connection only, with a view of one run's rows.

    The views and macros that ship with the log then answer about that run too.
    Temporary views live in the connection's own catalog: nothing is written.
    """
    db = con.sql("SELECT current_database()").fetchall()[0][0]
    rid = _quote(run_id)
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
        from orchestrator.live import ask

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


def text_table(rel: duckdb.DuckDBPyRelation) -> pa.Table:
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
    table = (rel.project(", ".join(cols)) if cols else rel).to_arrow_table()
    fields = [f.with_metadata({"moot_json": "1"}) if f.name in nested else f for f in table.schema]
    return table.cast(pa.schema(fields))


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
    return LogError(
        f"Query failed: {text}"
    )  # whole text: DuckDB's hints (did you mean ...) follow the first line


def run_query(con: duckdb.DuckDBPyConnection, sql: str, *, text: bool = False) -> pa.Table:
    """Run `sql` on a locked-down connection, translating refusals and keeping DuckDB's hints."""
    try:
        rel = con.sql(sql)
        if rel is None:
            return pa.table({})
        return text_table(rel) if text else rel.to_arrow_table()
    except duckdb.Error as exc:
        raise query_error(exc) from exc
