"""`moot sql` on a log that a live run holds: the run answers, read-only."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator import LogError, QueryRefused
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


def test_a_live_run_answers_scoped_and_text_queries_from_another_process(live_run) -> None:  # type: ignore[no-untyped-def]
    log, _ = live_run
    run_id = query(log, "SELECT run_id FROM runs").column("run_id")[0].as_py()
    scoped = query(log, "SELECT count(DISTINCT run_id) AS n FROM metrics", run_id=run_id)
    assert scoped.column("n")[0].as_py() == 1
    none = query(log, "SELECT count(*) AS n FROM metrics", run_id="no-such-run")
    assert none.column("n")[0].as_py() == 0
    text = query(log, "SELECT [1, 2] AS l", text=True)
    assert text.column("l").to_pylist() == ["[1,2]"]
    with pytest.raises(LogError, match='Did you mean "messages"'):
        query(log, "SELECT * FROM mesages")


def test_launch_without_waiting_and_query_the_run_as_it_goes(tmp_path: Path) -> None:
    from agents import OpinionAgent, Population, Uniform
    from orchestrator import launch
    from protocols import Gossip

    log = tmp_path / "bg.duckdb"
    launch(Population.of(OpinionAgent, 100), Gossip(), rounds=3, log=log, runtime="local")  # another run
    run = launch(
        Population.of(OpinionAgent, 3000, opinion=Uniform()),
        Gossip(tolerance=0.0),
        rounds=10**6,
        log=log,
        runtime="local",
        progress=lambda r, m: time.sleep(0.005),
        wait=False,
    )
    assert not run.done()
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < 3 and time.monotonic() < deadline:
        rounds = run.sql("SELECT count(*) AS n FROM consensus_by_round").column("n")[0].as_py()
        if not seen or rounds > seen[-1]:
            seen.append(rounds)
        time.sleep(0.05)
    assert len(seen) == 3 and seen == sorted(seen) and run.round >= 0 and "variance" in run.metrics
    # Scoped to this run while live; the whole file on request.
    assert run.sql("SELECT count(*) AS n FROM runs").column("n")[0].as_py() == 1
    assert run.sql("SELECT count(*) AS n FROM runs", all_runs=True).column("n")[0].as_py() == 2
    with pytest.raises(QueryRefused):
        run.sql("DELETE FROM messages")
    run.stop()
    run.wait(timeout=60)
    assert run.done() and run.stop_reason == "stopped by user"
    final = run.sql("SELECT max(round) AS r FROM consensus_by_round").column("r")[0].as_py()
    assert final == run.rounds - 1
