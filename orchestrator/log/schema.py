"""The log's schema: its tables (each column documented), views and table macros, as SQL."""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from agents.message import KINDS

__all__ = [
    "MACROS",
    "SCHEMA_VERSION",
    "TABLES",
    "VIEWS",
    "Column",
    "Table",
    "ensure_kinds",
    "quote",
    "schema_sql",
]

SCHEMA_VERSION = 2


_KIND_TYPE = "ENUM(" + ", ".join(f"'{k}'" for k in KINDS) + ")"
_KIND_TABLES = ("_messages", "message_aggregates")


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
    segmented: bool = False
    """Written by the hosts as Parquet segments (`orchestrator.log.segments`): to users a view
    over the rows compacted into the file (table ``_<name>``) and the segments."""


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
                "ended without closing the run; set by the next process that opens the log to write). "
                "All but finished can go on from their last checkpoint: moot resume.",
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
            (
                "driver_rows",
                "BIGINT",
                "Message rows that passed through the driver process: 0, since each host writes its own "
                "rows and counts its own aggregates (kept so that a run shows it; older logs counted "
                "aggregated messages here).",
            ),
            (
                "parent_run",
                "VARCHAR",
                "A fork's parent run (moot fork); NULL for a run started afresh.",
            ),
            (
                "fork_round",
                "INTEGER",
                "A fork's rows up to this round are its parent's (copied); its own start after it.",
            ),
        ),
    ),
    Table(
        "agents",
        "One row per agent (written by its host).",
        _cols(
            _RUN_ID,
            ("agent", "BIGINT", "Global agent id (0..n_agents-1)."),
            ("class", "VARCHAR", "The agent's class name."),
            ("host", "INTEGER", "Index of the host that ran it."),
            ("node", "VARCHAR", "Ray node id of that host ('local' in-process)."),
        ),
        segmented=True,
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
                "or one its protocol declares.",
            ),
            ("value", "DOUBLE", "Its number (an opinion, a vote), or NULL."),
            ("text", "VARCHAR", "Its text, or NULL."),
            ("payload", "JSON", "Its JSON payload, or NULL."),
            (
                "vector",
                "DOUBLE[]",
                "Its vector (a multidimensional opinion, a model's parameters), or NULL; "
                "list_distance(a.vector, b.vector), list_cosine_similarity, or cast to DOUBLE[d] "
                "for the array_ functions.",
            ),
        ),
        segmented=True,
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
            ("vector_mean", "DOUBLE[]", "Mean of their vectors, entry by entry (NULL if none has one)."),
        ),
    ),
    Table(
        "states",
        "One row per agent, numeric, text or vector state field and logged round.",
        _cols(
            _RUN_ID,
            (
                "round",
                "INTEGER",
                "Round after which the state was taken; -1 is the initial state.",
            ),
            ("agent", "BIGINT", "Agent id."),
            ("field", "VARCHAR", "State field name."),
            ("value", "DOUBLE", "Its value (booleans as 0/1); NULL for a text or vector field."),
            ("text", "VARCHAR", "The value of a text field (a party, a group); NULL for a number."),
            (
                "vector",
                "DOUBLE[]",
                "The value of a vector field (agents.vector.Vector: dim entries, float32 fields "
                "widened exactly); NULL for a number or text.",
            ),
        ),
        segmented=True,
    ),
    Table(
        "segments",
        "The manifest of the segment files the hosts wrote (agents, messages and states rows): one "
        "row per file, under the log's .parts folder.",
        _cols(
            _RUN_ID,
            ("table_name", "VARCHAR", "The table whose rows it holds: agents, messages or states."),
            ("round", "INTEGER", "The round of its rows (-1: before the first)."),
            ("host", "INTEGER", "The host that wrote it."),
            ("file", "VARCHAR", "Its path under the .parts folder beside the log."),
            ("rows", "BIGINT", "Rows in it."),
            ("bytes", "BIGINT", "Its size in bytes."),
            ("crc32", "BIGINT", "CRC-32 of its bytes (zlib.crc32), to check a copy."),
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
            (
                "cost",
                "DOUBLE",
                "Cost in dollars (NULL when litellm has no price; 0 for a cache hit, unless this run "
                "paid for it before it was resumed: then what it paid).",
            ),
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
                "host_started, stopped, error, interrupted, resumed, restarted, forked; llm_call_failed, "
                "llm_reply_invalid, llm_unpriced; ...",
            ),
            ("host", "INTEGER", "Host concerned, if any."),
            ("detail", "VARCHAR", "What happened, in words."),
        ),
    ),
    Table(
        "interviews",
        "One row per question put to an agent as it was at a round (moot interview); the run itself "
        "is not changed.",
        _cols(
            _RUN_ID,
            ("round", "INTEGER", "The round after which the agent was rebuilt and asked."),
            ("agent", "BIGINT", "The agent asked."),
            ("question", "VARCHAR", "The question."),
            ("answer", "VARCHAR", "Its answer; NULL when the call failed (see error)."),
            ("model", "VARCHAR", "The model that answered (moot/... is an offline stand-in)."),
            ("cached", "BOOLEAN", "Whether the answer came from the response cache."),
            ("error", "VARCHAR", "Why there is no answer, if there is none."),
            ("asked_at", "TIMESTAMP WITH TIME ZONE", "When it was asked (UTC)."),
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
    "activity_gini(rid, n)": (
        "Gini of messages and actions sent per agent over the whole run, n agents (zeros kept): "
        "moot analyze's gini_sent.",
        """WITH c AS (SELECT a.range AS agent, count(m.sender) AS x FROM range(n) a
                   LEFT JOIN messages m ON m.sender = a.range AND m.run_id = rid GROUP BY a.range),
         o AS (SELECT x, row_number() OVER (ORDER BY x) AS i FROM c)
    SELECT sum((2 * i - n - 1) * x) / (n * nullif(sum(x), 0)) AS gini FROM o""",
    ),
    "interaction_reciprocity(rid)": (
        "Share of the interaction graph's edges (sender -> receiver of delivered messages, self-loops "
        "dropped) whose reverse exists: moot analyze's reciprocity.",
        """WITH e AS (SELECT DISTINCT sender AS u, receiver AS v FROM messages
                   WHERE run_id = rid AND receiver IS NOT NULL AND sender >= 0 AND receiver >= 0
                     AND sender <> receiver)
    SELECT count(r.u) / nullif(count(*), 0) AS reciprocity
    FROM e LEFT JOIN e AS r ON r.u = e.v AND r.v = e.u""",
    ),
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


def quote(text: str) -> str:
    """`text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def schema_sql(base_tables: frozenset[str] = frozenset()) -> str:
    """The DDL of a log: tables (with columns added to older logs), comments, views, macros.

    Args:
        base_tables: The log's base tables now; a segmented table that is still one (a log
            written before segments) is renamed ``_<name>`` and keeps its rows there.
    """
    out: list[str] = []
    for t in TABLES:
        stored = f"_{t.name}" if t.segmented else t.name
        if t.segmented and t.name in base_tables and stored not in base_tables:
            out.append(f"ALTER TABLE {t.name} RENAME TO {stored};")
        cols = ", ".join(
            f"{c.name} {c.type}{' PRIMARY KEY' if (t.name, c.name) == ('runs', 'run_id') else ''}"
            for c in t.columns
        )
        out.append(f"CREATE TABLE IF NOT EXISTS {stored} ({cols});")
        out.extend(f"ALTER TABLE {stored} ADD COLUMN IF NOT EXISTS {c.name} {c.type};" for c in t.columns)
        if t.segmented:
            out.append(
                f"COMMENT ON TABLE {stored} IS {quote('Rows of ' + t.name + ' compacted into the file.')};"
            )
            out.append(segmented_view_sql(t))
        else:
            out.append(f"COMMENT ON TABLE {t.name} IS {quote(t.doc)};")
            out.extend(f"COMMENT ON COLUMN {t.name}.{c.name} IS {quote(c.doc)};" for c in t.columns)
    for name, (doc, sql) in VIEWS.items():
        out.append(f"CREATE OR REPLACE VIEW {name} AS {sql};")
        out.append(f"COMMENT ON VIEW {name} IS {quote(doc)};")
    for sig, (_doc, sql) in MACROS.items():
        out.append(f"CREATE OR REPLACE MACRO {sig} AS TABLE {sql};")
    return "\n".join(out)


PARTS_SQL = r"regexp_replace(current_setting('temp_directory'), '\.tmp$', '') || '.parts'"
"""The segment folder of the database a client opened, as a SQL expression: DuckDB's default
``temp_directory`` is the database's own path plus ``.tmp`` (`orchestrator.log.segments`)."""


def _view_type(sql_type: str) -> str:
    """A column's type in the view: an ENUM (the kinds, stored compactly) reads as VARCHAR."""
    return "VARCHAR" if sql_type.startswith("ENUM") else sql_type


def view_sql(t: Table, segments: bool = True) -> str:
    """The query that is segmented table `t` to users: its rows compacted into the file, then
    (with `segments`) every segment of every run. Without segments the view reads the file
    only, so the file stands alone (copied without its folder, opened anywhere)."""
    select = ", ".join(f'"{c.name}"::{_view_type(c.type)} AS "{c.name}"' for c in t.columns)
    stored = f"SELECT {select} FROM _{t.name}"
    if not segments:
        return stored
    return (
        f"{stored} UNION ALL SELECT {select} FROM read_parquet({PARTS_SQL} || '/{t.name}/*/*.parquet', "
        "hive_partitioning = true, hive_types = {'run_id': VARCHAR}, hive_types_autocast = false, "
        "union_by_name = true)"
    )


_ARROW = {
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "DOUBLE[]": pa.list_(pa.float64()),
}


def segment_schema(t: Table) -> pa.Schema:
    """The Arrow schema of segmented table `t`'s files: its columns but run_id (the folder's
    name), strings for VARCHAR, JSON and the kinds' ENUM."""
    return pa.schema([(c.name, _ARROW.get(c.type, pa.string())) for c in t.columns if c.name != "run_id"])


def segmented_view_sql(t: Table, segments: bool = True) -> str:
    """The view that is segmented table `t` to users, with its comments (see `view_sql`)."""
    out = [f"CREATE OR REPLACE VIEW {t.name} AS {view_sql(t, segments)};"]
    out.append(f"COMMENT ON VIEW {t.name} IS {quote(t.doc)};")
    out.extend(f"COMMENT ON COLUMN {t.name}.{c.name} IS {quote(c.doc)};" for c in t.columns)
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
            wider = "ENUM(" + ", ".join(quote(k) for k in (*current, *missing)) + ")"
            con.execute(f"ALTER TABLE {table} ALTER COLUMN kind SET DATA TYPE {wider}")


def _enum_values(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    (dtype,) = con.execute(
        "SELECT data_type FROM duckdb_columns() WHERE table_name = ? AND column_name = 'kind'", [table]
    ).fetchall()[0]
    if not str(dtype).startswith("ENUM("):
        return []
    return re.findall(r"'((?:[^']|'')*)'", str(dtype))
