"""The log's schema, and the locked-down connection user queries go through."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents import OpinionAgent, Population, Uniform
from orchestrator import ConfigError, LogError, QueryRefused, launch
from orchestrator.cli import app
from orchestrator.log import LogWriter, query
from protocols import Gossip

HOSTILE = {
    "INSERT INTO runs (run_id) VALUES ('x')": "read-only mode",
    "COPY messages TO '/tmp/moot-stolen.csv'": "file system operations are disabled",
    "SELECT * FROM read_csv('/etc/passwd')": "file system operations are disabled",
    "ATTACH '/tmp/other.duckdb' AS other": "file system operations are disabled",
    "INSTALL httpfs": "file system operations are disabled",
    "SET threads = 1": "the configuration has been locked",
    "DROP TABLE messages": "read-only mode",
    "LOAD httpfs": "disabled through configuration",
}


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("log") / "run.duckdb"
    launch(
        Population.of(OpinionAgent, 300, opinion=Uniform()),
        "gossip",
        rounds=5,
        seed=1,
        log=path,
        runtime="local",
    )
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("sql", list(HOSTILE))
def test_moot_sql_refuses_hostile_queries_and_changes_nothing(small_log: Path, sql: str) -> None:
    before = digest(small_log)
    result = CliRunner().invoke(app, ["sql", str(small_log), sql])
    assert result.exit_code == 2
    assert "Query refused" in result.output and HOSTILE[sql] in result.output
    assert "may only read it" in result.output
    assert digest(small_log) == before
    assert not Path("/tmp/moot-stolen.csv").exists()


def test_query_error_types(small_log: Path) -> None:
    with pytest.raises(QueryRefused):
        query(small_log, "CREATE TABLE t (a INT)")
    with pytest.raises(LogError, match="Query failed: Catalog Error: Table with name nope does not exist"):
        query(small_log, "SELECT * FROM nope")
    with pytest.raises(ConfigError, match="No log at"):
        query(small_log.parent / "missing.duckdb", "SELECT 1")


def test_moot_sql_reads(small_log: Path) -> None:
    result = CliRunner().invoke(
        app, ["sql", str(small_log), "SELECT count(*) AS n FROM messages", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    n = query(small_log, "SELECT sum(messages) AS m FROM consensus_by_round").column("m")[0].as_py()
    assert result.output.strip() == f'[{{"n": {n}}}]'


def test_many_runs_share_a_file(tmp_path: Path) -> None:
    path = tmp_path / "two.duckdb"
    a, b = (
        launch(
            Population.of(OpinionAgent, 100, opinion=Uniform()),
            "gossip",
            rounds=r,
            seed=r,
            log=path,
            runtime="local",
        )
        for r in (3, 4)
    )
    rows = query(path, "SELECT run_id, rounds, messages FROM run_summary ORDER BY rounds").to_pylist()
    assert rows == [
        {"run_id": a.run_id, "rounds": 3, "messages": a.messages},
        {"run_id": b.run_id, "rounds": 4, "messages": b.messages},
    ]


def test_writer_reports_a_failed_background_append(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "w.duckdb")

    def boom() -> None:
        raise LogError("disk full (simulated)")

    writer.submit(boom)
    with pytest.raises(LogError, match="simulated"):
        writer.flush()
    writer.close()


@pytest.fixture
def tiny_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 1 MiB filesystem (tmpfs), so the log really runs out of space."""
    import subprocess

    mnt = tmp_path / "tiny"
    mnt.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mnt)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_is_a_clear_error_and_keeps_earlier_rounds(tiny_disk: Path, tmp_path: Path) -> None:
    import shutil

    import duckdb

    log = tiny_disk / "full.duckdb"
    with pytest.raises(LogError) as info:
        launch(
            Population.of(OpinionAgent, 3000, opinion=Uniform()),
            Gossip(tolerance=0.0),
            rounds=500,
            log=log,
            runtime="local",
        )
    assert str(info.value) == (
        f"The disk holding '{log}' is full; rows already appended are kept. "
        "Free space, or pass a log path on another disk."
    )
    copy = tmp_path / "copy.duckdb"
    shutil.copy(log, copy)
    if log.with_suffix(".duckdb.wal").exists():
        shutil.copy(log.with_suffix(".duckdb.wal"), tmp_path / "copy.duckdb.wal")
    con = duckdb.connect(str(copy))
    rounds, rows = con.execute("SELECT count(DISTINCT round), count(*) FROM messages").fetchone()  # type: ignore[misc]
    per_round = con.execute("SELECT count(*) FROM messages GROUP BY round").fetchall()
    con.close()
    assert rounds >= 1 and rows == sum(r[0] for r in per_round) and min(r[0] for r in per_round) >= 3000


def test_agreement_macros_match_numpy(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "agree.duckdb"
    run = launch(
        Population.of(OpinionAgent, 500, opinion=Uniform()),
        Gossip(fanout=2, mode="push-pull"),
        rounds=60,
        seed=4,
        log=path,
        runtime="local",
        state_every=5,
    )
    got = query(path, f"SELECT * FROM agreement_by_round('{run.run_id}', 'opinion', 0.05)").to_pylist()
    states = query(
        path, "SELECT round, value FROM states WHERE field = 'opinion' ORDER BY round, agent"
    ).to_pandas()
    expected = []
    for rnd, group in states.groupby("round"):
        v = group["value"].to_numpy()
        expected.append((rnd, float(np.mean(np.abs(v - np.median(v)) <= 0.05))))
    assert [r["round"] for r in got] == [r for r, _ in expected]
    assert [r["share"] for r in got] == pytest.approx([share for _, share in expected])
    assert got[0]["round"] == -1 and got[0]["agents"] == 500
    first = next(r for r, share in expected if share >= 0.9)
    rounds = query(
        path, f"SELECT * FROM rounds_to_agreement('{run.run_id}', 'opinion', 0.05, 0.9)"
    ).to_pylist()
    assert rounds == [{"round": first}]
