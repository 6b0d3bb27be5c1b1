"""`moot sql` on a log that a live run holds: the run answers, read-only."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator import QueryRefused
from orchestrator.cli import app
from orchestrator.live import live_file
from orchestrator.log import query

RUN = """
import sys
from agents import OpinionAgent, Population, Uniform
from orchestrator import launch
from protocols import Gossip
launch(Population.of(OpinionAgent, 2000, opinion=Uniform()), Gossip(tolerance=0.0), rounds=10**6,
       log=sys.argv[1], runtime="local", progress=lambda r, m: __import__("time").sleep(0.01))
"""


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    log = tmp_path_factory.mktemp("live") / "live.duckdb"
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(log)])
    try:
        deadline = time.monotonic() + 60
        while not live_file(log).exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
        yield log, proc
    finally:
        proc.kill()
        proc.wait()


def test_moot_sql_asks_the_live_run(live_run) -> None:  # type: ignore[no-untyped-def]
    log, proc = live_run
    time.sleep(0.5)
    first = query(log, "SELECT count(*) AS n FROM messages").column("n")[0].as_py()
    time.sleep(0.5)
    second = query(log, "SELECT count(*) AS n, max(round) AS r FROM messages").to_pylist()[0]
    assert 0 < first < second["n"]  # the run is going on, and we see it grow
    assert proc.poll() is None
    result = CliRunner().invoke(
        app, ["sql", str(log), "SELECT count(*) AS runs FROM runs", "--format", "json"]
    )
    assert result.exit_code == 0 and result.output.strip() == '[{"runs": 1}]'


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("INSERT INTO runs (run_id) VALUES ('x')", "INSERT statements cannot run on a live run's log"),
        ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
        ("SET threads = 1", "SET statements cannot run"),
        ("COPY messages TO '/tmp/moot-live.csv'", "COPY statements cannot run"),
        ("SELECT 1; DROP TABLE messages", "DROP statements cannot run"),
    ],
)
def test_live_queries_are_read_only(live_run, sql: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    log, _ = live_run
    with pytest.raises(QueryRefused) as info:
        query(log, sql)
    assert reason in str(info.value)
    assert query(log, "SELECT count(*) AS n FROM runs").column("n")[0].as_py() == 1
    assert not Path("/tmp/moot-live.csv").exists()
