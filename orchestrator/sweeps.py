"""Parameter sweeps: a study script run over a grid of parameters, concurrently, into one log.

Each point of the grid is one ``moot run script.py -p key=value ... --run-id ID`` in a
process of its own (a Ray driver joining the sweep's cluster, or in-process with
``local=True``), writing a part log of its own: DuckDB has one writer per file, and a
process per point keeps each script's globals and ``orchestrator.params()`` its own. As
each point finishes, its part is merged into the sweep's log and deleted, so the log
holds every finished run with its parameters in ``runs.params`` and ``runs.config``.

A point's run id is the sweep's name and its parameters (``sweep.fanout=2.seed=3``), so
running the same sweep again skips the points whose run finished, and redoes the rest.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from orchestrator.errors import ConfigError, LogError
from orchestrator.log import TABLES, LogWriter, check_log_path, ensure_kinds
from orchestrator.log.schema import segmented_view_sql
from orchestrator.log.segments import has_segments, move_run, parts_dir
from orchestrator.log.writer import connect

__all__ = ["SweepResult", "parse_values", "point_id", "sweep"]


def parse_values(key: str, text: str) -> list[Any]:
    """The values of ``--param key=TEXT``: ``1,2,4``, ``0..9`` (both ends included), or one value.

    Each value is read as JSON when it is JSON (numbers, true, "text"), else kept as text.
    """
    text = text.strip()
    if ".." in text and "," not in text:
        lo, _, hi = text.partition("..")
        try:
            a, b = int(lo), int(hi)
        except ValueError:
            raise ConfigError(
                f"--param {key}={text}: a range is two whole numbers, e.g. {key}=0..9 (0 to 9 included)."
            ) from None
        if b < a:
            raise ConfigError(f"--param {key}={text}: the range is empty; write the smaller end first.")
        return list(range(a, b + 1))
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ConfigError(f"--param {key}={text}: an empty value; e.g. {key}=1,2,4.")
        try:
            values.append(json.loads(part))
        except json.JSONDecodeError:
            values.append(part)
    return values


def point_id(name: str, point: Mapping[str, Any]) -> str:
    """A point's run id: the sweep's name, then each ``key=value`` in the grid's order."""
    return ".".join([name, *(f"{k}={v}" for k, v in point.items())])


@dataclass
class SweepResult:
    """What a sweep did.

    Attributes:
        log: The sweep's log (every run in it).
        run_ids: Every point's run id, in grid order.
        ran: Points run this time.
        skipped: Points already finished in the log (an earlier, interrupted sweep).
        failed: Points that failed: run id and the end of their output.
    """

    log: Path
    run_ids: list[str]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _finished(log: Path, run_ids: Sequence[str]) -> set[str]:
    if not log.exists():
        return set()
    con = duckdb.connect(str(log), read_only=True)
    try:
        rows = con.execute(
            "SELECT run_id FROM runs WHERE status = 'finished' AND run_id IN (SELECT unnest(?))",
            [list(run_ids)],
        ).fetchall()
    except duckdb.Error:
        return set()
    finally:
        con.close()
    return {r[0] for r in rows}


def _has_runs(part: Path) -> bool:
    """Whether a point's part log holds a run (a point may fail before it writes anything)."""
    if not part.exists():
        return False
    try:
        con = duckdb.connect(str(part), read_only=True)
    except duckdb.Error:
        return False
    try:
        return bool(con.execute("SELECT count(*) FROM runs").fetchall()[0][0])
    except duckdb.Error:
        return False
    finally:
        con.close()


def _create(log: Path) -> None:
    """Give the sweep's log moot's schema and segment folder (once per sweep; merges then only
    copy rows and move segments)."""
    LogWriter(log).close()


def merge_part(log: Path, part: Path) -> None:
    """Copy every run of the log `part` (every row of every table, and the views their protocol
    made) into `log`, a moot log, replacing rows of theirs from an earlier, unfinished attempt.

    Raises:
        LogError: The merge failed (e.g. another process holds `log` open); `log` is unchanged.
    """
    try:
        _merge(log, part)
    except (duckdb.Error, LogError) as exc:  # a lock names its holder (`connect`)
        reason = str(exc).rstrip(".")
        raise LogError(
            f"Could not merge {str(part)!r} into {str(log)!r}: {reason}; the part is kept."
        ) from exc


def _drop_log(log: Path) -> None:
    """Delete a log file and its segment folder."""
    log.unlink(missing_ok=True)
    shutil.rmtree(parts_dir(log), ignore_errors=True)


def _merge(log: Path, part: Path) -> None:
    """Move a point's runs from its own log into the sweep's: small tables row by row in one
    transaction, the hosts' segment files by renaming them into the sweep log's folder."""
    con = connect(log)
    try:
        con.execute(f"ATTACH '{part}' AS part (READ_ONLY)")
        ids = [r[0] for r in con.execute("SELECT run_id FROM part.main.runs").fetchall()]
        part_kinds: list[str] = []
        for table in ("_messages", "message_aggregates"):
            part_kinds += [
                r[0]
                for r in con.execute(f"SELECT DISTINCT kind::VARCHAR FROM part.main.{table}").fetchall()
                if r[0] is not None
            ]
        ensure_kinds(con, tuple(dict.fromkeys(part_kinds)))
        con.execute("BEGIN")
        for t in TABLES:
            stored = f"_{t.name}" if t.segmented else t.name
            con.execute(f"DELETE FROM main.{stored} WHERE run_id IN (SELECT unnest(?))", [ids])
            con.execute(
                f"INSERT INTO main.{stored} BY NAME SELECT * FROM part.main.{stored} "
                "WHERE run_id IN (SELECT unnest(?))",
                [ids],
            )
        for run_id in ids:  # the files move once the rows that name them are in
            move_run(parts_dir(part.resolve()), parts_dir(log.resolve()), run_id)
        if has_segments(parts_dir(log.resolve())):  # the views read segments again
            con.execute("\n".join(segmented_view_sql(t) for t in TABLES if t.segmented))
        con.execute("COMMIT")
        mine = {
            r[0]
            for r in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE database_name = current_database()"
            ).fetchall()
        }
        for name, sql in con.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE database_name = 'part' AND NOT internal"
        ).fetchall():
            if name not in mine:  # a protocol's own view, first seen in this part
                con.execute(sql)
    finally:
        con.close()


def sweep(
    script: str | os.PathLike[str],
    params: Mapping[str, Sequence[Any]],
    *,
    log: str | os.PathLike[str] = "sweep.duckdb",
    name: str | None = None,
    concurrency: int = 2,
    address: str | None = None,
    local: bool = False,
    extra_args: Sequence[str] = (),
    progress: Callable[[int, int, str], None] | bool = False,
) -> SweepResult:
    """Run `script` once per point of the grid `params`, `concurrency` points at a time, into `log`.

    Args:
        script: A study script calling `launch` (it reads its point with ``orchestrator.params()``).
        params: The grid: each key with its values; every combination is a point.
        log: The sweep's DuckDB log; every run lands in it.
        name: Prefix of the points' run ids (default: the log's file name without extension).
        concurrency: Points running at once.
        address: The Ray cluster the points join (default: a local instance the sweep starts).
        local: Run the points in-process (no Ray).
        extra_args: More ``moot run`` flags for every point (``["--rounds", "50"]``).
        progress: A callback ``(done, total, run_id)``, or True for a progress bar.

    Returns:
        What ran, what was already done, what failed.

    Example:
        >>> sweep("study.py", {"fanout": [1, 2, 4], "seed": range(10)}, log="sweep.duckdb")
    """
    path = check_log_path(log)
    if not Path(script).is_file():
        raise ConfigError(f"No script at {str(script)!r}; give the path of a .py study that calls launch().")
    if not params:
        raise ConfigError("A sweep needs at least one parameter; e.g. --param seed=0..9.")
    if concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}.")
    keys = list(params)
    grid = [dict(zip(keys, combo)) for combo in itertools.product(*(list(params[k]) for k in keys))]
    prefix = name or path.stem
    ids = [point_id(prefix, p) for p in grid]
    result = SweepResult(path, ids)
    done = _finished(path, ids)
    result.skipped = [i for i in ids if i in done]
    todo = [(i, p) for i, p in zip(ids, grid) if i not in done]
    _create(path)
    env = dict(os.environ)
    if not local:
        env["MOOT_ADDRESS"] = _cluster_address(address)
    parts = path.with_name(path.name + ".points")  # each point's own log, until merged
    parts.mkdir(exist_ok=True)
    report = _reporter(progress, len(ids))
    report(len(result.skipped), "")
    lock = threading.Lock()

    def one(run_id: str, point: Mapping[str, Any]) -> tuple[str, int, str]:
        part = parts / f"{run_id}.duckdb"
        _drop_log(part)  # an unfinished attempt's part: redo it
        cmd = [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "run",
            str(script),
            "--log",
            str(part),
            "--run-id",
            run_id,
        ]
        cmd += [a for k, v in point.items() for a in ("-p", f"{k}={json.dumps(v)}")]
        if "seed" in point:  # the run's seed itself, whether or not the script reads params()
            cmd += ["--seed", str(point["seed"])]
        cmd += ["--local"] if local else []
        cmd += list(extra_args)
        out = subprocess.run(cmd, env={**env, "MOOT_PROGRESS": "0"}, capture_output=True, text=True)
        said = (out.stdout + out.stderr)[-2000:]
        if out.returncode == 0 or _has_runs(part):  # a failed point's rows land too, marked failed
            if out.returncode != 0:
                LogWriter(part).close()  # a point whose process died: its run becomes `crashed`
            try:
                with lock:  # one writer of the sweep's log at a time
                    merge_part(path, part)
            except LogError as exc:  # e.g. someone holds the log open: this point fails, the others go on
                return run_id, out.returncode or 1, f"{exc} Run the sweep again to redo this point."
            _drop_log(part)
        return run_id, out.returncode, said

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(one, i, p) for i, p in todo]
        for fut in as_completed(futures):
            run_id, code, output = fut.result()
            if code == 0:
                result.ran.append(run_id)
            else:
                result.failed[run_id] = output
            report(len(result.skipped) + len(result.ran) + len(result.failed), run_id)
    if not any(parts.iterdir()):
        parts.rmdir()
    return result


def _cluster_address(address: str | None) -> str:
    """The address every point joins: `address`, or the local Ray instance started here."""
    from orchestrator.ray_runtime import local_cluster_address

    return address or local_cluster_address()


def _reporter(progress: Callable[[int, int, str], None] | bool, total: int) -> Callable[[int, str], None]:
    if callable(progress):
        return lambda done, run_id: progress(done, total, run_id)
    if not progress:
        return lambda done, run_id: None
    from rich.progress import Progress

    bar = Progress(transient=False)
    task = bar.add_task("sweep", total=total)
    bar.start()

    def update(done: int, run_id: str) -> None:
        bar.update(task, completed=done, description=f"sweep ({run_id})" if run_id else "sweep")
        if done >= total:
            bar.stop()

    return update
