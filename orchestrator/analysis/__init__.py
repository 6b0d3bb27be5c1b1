"""What happened in a run, without writing SQL: agent-society diagnostics (`analyze`), a report
with plots (`orchestrator.analysis.report`) and export (`export`)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from orchestrator.analysis.diagnostics import METRICS, analyze_connection, gini, hill_alpha
from orchestrator.errors import ConfigError
from orchestrator.log.query import open_log, scope_to_run

__all__ = ["EXPORTED", "METRICS", "analyze", "export", "gini", "hill_alpha", "latest_run", "overall"]


def latest_run(con: Any, path: Path, run_id: str | None) -> dict[str, Any]:
    """The run `run_id` (default: the log's latest) as its ``runs`` row."""
    rows = con.execute(
        "SELECT run_id, n_agents, rounds, config, status, protocol FROM runs "
        + ("WHERE run_id = ? " if run_id else "")
        + "ORDER BY started_at DESC LIMIT 1",
        [run_id] if run_id else [],
    ).fetchall()
    if not rows:
        known = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY started_at").fetchall()]
        raise ConfigError(
            f"No run {run_id!r} in {str(path)!r}; its runs: {', '.join(known) or '(none)'}."
            if run_id
            else f"The log {str(path)!r} holds no run yet."
        )
    rid, n, rounds, config, status, protocol = rows[0]
    return {
        "run_id": rid,
        "n_agents": int(n),
        "rounds": int(rounds or 0),
        "config": json.loads(config or "{}"),
        "status": status,
        "protocol": protocol,
    }


def analyze(log: str | os.PathLike[str], run_id: str | None = None, window: int | None = None) -> pa.Table:
    """The agent-society diagnostics of a run (`METRICS`): one row per metric and window.

    Args:
        run_id: The run (default: the log's latest).
        window: Rounds per window (default: a tenth of the run, at least 1).

    Returns:
        Arrow: metric, window (its first round; NULL for the whole run), value, definition
        (JSON: what was counted).
    """
    path = Path(log)
    con = open_log(path)
    try:
        run = latest_run(con, path, run_id)
        if window is not None and (isinstance(window, bool) or window < 1):
            raise ConfigError(f"--window must be a whole number of rounds >= 1, got {window!r}.")
        k = window or max(1, math.ceil(run["rounds"] / 10))
        scope_to_run(con, run["run_id"])
        fields = run["config"].get("watched_fields") or []
        return analyze_connection(con, run["n_agents"], run["rounds"], fields[0] if fields else None, k)
    finally:
        con.close()


def overall(table: pa.Table) -> dict[str, Any]:
    """The diagnostics as JSON: each metric's whole-run value under its name, and its values per
    window under ``<name>_by_window`` ({first round: value})."""
    out: dict[str, Any] = {}
    for row in table.to_pylist():
        value = None if math.isnan(row["value"]) else row["value"]
        if row["window"] is None:
            out[row["metric"]] = value
        else:
            out.setdefault(f"{row['metric']}_by_window", {})[str(row["window"])] = value
    return out


EXPORTED = (
    "runs",
    "agents",
    "messages",
    "states",
    "metrics",
    "llm_calls",
    "events",
    "message_aggregates",
    "interviews",
)
"""The tables `export` writes (each scoped to the run)."""


def export(
    log: str | os.PathLike[str],
    run_id: str | None,
    to: str | os.PathLike[str],
    fmt: str = "parquet",
    views: tuple[str, ...] = (),
) -> dict[str, int]:
    """Write every table of a run (`EXPORTED`), and any named view, to files in `to`:
    ``<table>.parquet`` or ``.csv``, each holding that run's rows only. moot writes them itself,
    through a read-only connection (user SQL stays locked down).

    Returns:
        Rows written per file name.
    """
    import duckdb

    from orchestrator.log.schema import quote
    from orchestrator.log.writer import connect

    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"--format must be parquet or csv, got {fmt!r}.")
    path = Path(log)
    if not path.is_file():
        raise ConfigError(
            f"No log at {str(path)!r}; pass the path given to launch(log=...) or `moot run --log`."
        )
    out = Path(to)
    out.mkdir(parents=True, exist_ok=True)
    con = connect(path, read_only=True)
    written: dict[str, int] = {}
    try:
        run = latest_run(con, path, run_id)
        scope_to_run(con, run["run_id"])
        known = {
            r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        }
        for view in views:
            if view not in known:
                raise ConfigError(f"No view {view!r} in the log; its views: {', '.join(sorted(known))}.")
        for name in (*EXPORTED, *views):
            target = out / f"{name}.{fmt}"
            options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
            con.execute(f"COPY (SELECT * FROM {name}) TO {quote(str(target))} ({options})")
            written[target.name] = int(con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])
    except duckdb.Error as exc:
        raise ConfigError(f"Export of {str(path)!r} to {str(out)!r} failed: {exc}") from exc
    finally:
        con.close()
    return written
