"""The interaction log: one DuckDB file and the hosts' segments beside it, read with SQL.

Four parts: `schema` (tables, views, macros as SQL), `writer` (the one writer of a file),
`segments` (the rows each host writes as Parquet, and their manifest), `query` (read-only
queries; a live run's log through `wire`).

Tables: ``runs``, ``agents``, ``messages``, ``states``, ``metrics``,
``llm_calls``, ``events``; views: ``consensus_by_round``, ``run_summary``; table
macros: ``agreement_by_round(run_id, field, tol)`` (share of agents within `tol`
of the median, per logged round) and ``rounds_to_agreement(run_id, field, tol,
share)``. A
file can hold many runs, keyed by ``run_id``. ``agents``, ``messages`` and ``states`` rows are
written by the hosts as segments; the driver's rows reach the writer as Arrow tables and are
appended in bulk (never row by row).

User queries go through `open_log`/`query`: a read-only connection with external
access disabled and the configuration locked, so a query that tries to write,
read files or change settings is refused (`QueryRefused`) and changes nothing.
"""

from orchestrator.log.query import (
    interruptible,
    open_log,
    query,
    query_error,
    run_query,
    scope_to_run,
    text_table,
)
from orchestrator.log.schema import (
    MACROS,
    SCHEMA_VERSION,
    TABLES,
    VIEWS,
    Column,
    Table,
    ensure_kinds,
    schema_sql,
)
from orchestrator.log.writer import (
    ACTIVE,
    CRASHED,
    LogWriter,
    check_log_path,
    live_file,
    logged_counts,
    mark_crashed,
)

__all__ = [
    "ACTIVE",
    "CRASHED",
    "MACROS",
    "SCHEMA_VERSION",
    "TABLES",
    "VIEWS",
    "Column",
    "LogWriter",
    "Table",
    "check_log_path",
    "ensure_kinds",
    "interruptible",
    "live_file",
    "logged_counts",
    "mark_crashed",
    "open_log",
    "query",
    "query_error",
    "run_query",
    "schema_sql",
    "scope_to_run",
    "text_table",
]
