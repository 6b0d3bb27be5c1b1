"""`moot sql` on a log that a live run holds: the run answers, read-only."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from orchestrator import LogError, QueryRefused
from orchestrator.cli import app
from orchestrator.log import live_file, query
from protocols import Gossip

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


def _messages(log: Path) -> int:
    return int(query(log, "SELECT count(*) AS n FROM messages").column("n")[0].as_py())


def _until(check, what: str, seconds: float = 60):  # type: ignore[no-untyped-def]
    """Poll `check()` until it returns something true (no fixed sleep: a loaded machine is slow)."""
    deadline = time.monotonic() + seconds
    while not (got := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return got


def test_moot_sql_asks_the_live_run(live_run) -> None:  # type: ignore[no-untyped-def]
    log, proc = live_run
    first = _until(lambda: _messages(log), "no messages logged")
    _until(lambda: _messages(log) > first, "the log does not grow")  # the run goes on, and we see it
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


def _background_run(log: Path):  # type: ignore[no-untyped-def]
    """An endless in-process run with `wait=False`, a few ms per round."""
    from agents import OpinionAgent, Population, Uniform
    from orchestrator import launch

    return launch(
        Population.of(OpinionAgent, 3000, opinion=Uniform()),
        Gossip(tolerance=0.0),
        rounds=10**6,
        log=log,
        runtime="local",
        progress=lambda r, m: time.sleep(0.005),
        wait=False,
    )


def test_launch_without_waiting_and_query_the_run_as_it_goes(tmp_path: Path) -> None:
    from agents import OpinionAgent, Population
    from orchestrator import launch

    log = tmp_path / "bg.duckdb"
    launch(Population.of(OpinionAgent, 100), Gossip(), rounds=3, log=log, runtime="local")  # another run
    run = _background_run(log)
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


def _raw_ask(log: Path, request: dict[str, object]) -> bytes:
    """Send `request` to the live run as a client would, with whatever token it carries."""
    import json
    import socket

    from orchestrator.log.wire import recv, send

    port = json.loads(live_file(log).read_text())["port"]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        send(sock, json.dumps(request).encode())
        return recv(sock)


def test_a_live_run_answers_only_holders_of_its_token(live_run) -> None:  # type: ignore[no-untyped-def]
    import json
    import stat

    log, _ = live_run
    announced = live_file(log)
    assert stat.S_IMODE(announced.stat().st_mode) == 0o600  # its owner alone can read the token
    token = json.loads(announced.read_text())["token"]
    sql = "SELECT count(*) AS n FROM runs"
    refused = b"RQuery refused: wrong token for this live run."
    assert _raw_ask(log, {"sql": sql}) == refused
    assert _raw_ask(log, {"sql": sql, "token": "0" * len(token)}) == refused
    assert _raw_ask(log, {"sql": sql, "token": token}).startswith(b"T")  # the same query, with it


RUNAWAY = "SELECT count(*) AS n FROM range(100000000000) a, range(1000) b"


def test_a_runaway_live_query_is_stopped_and_the_run_goes_on(live_run) -> None:  # type: ignore[no-untyped-def]
    log, proc = live_run
    started = time.monotonic()
    with pytest.raises(LogError, match=r"^Query stopped after 1 s \(its time limit\)"):
        query(log, RUNAWAY, timeout=1.0)
    assert time.monotonic() - started < 20
    assert proc.poll() is None
    assert query(log, "SELECT count(*) AS n FROM runs").column("n")[0].as_py() == 1


def test_a_live_query_with_a_huge_result_is_refused_and_the_run_goes_on(live_run) -> None:  # type: ignore[no-untyped-def]
    log, proc = live_run
    huge = "SELECT range AS a, range AS b FROM range(20000000)"  # 320 MB as Arrow; the cap is 256 MiB
    with pytest.raises(LogError) as info:
        query(log, huge)
    assert str(info.value) == (
        "Query stopped: its result passed 256 MiB, the most a live run's log answers (the run's own "
        "process holds it). Aggregate, add a LIMIT, or query the log once the run has ended."
    )
    assert proc.poll() is None
    assert query(log, huge + " LIMIT 3").column("b").to_pylist() == [0, 1, 2]
    # The same result from a closed log is not capped (the reader's own process holds it).
    closed = log.with_name("closed.duckdb")
    duckdb.connect(str(closed)).close()  # an empty DuckDB file
    assert query(closed, huge).num_rows == 20_000_000


def test_moot_sql_on_a_closed_log_honours_timeout_and_ctrl_c(tmp_path: Path) -> None:
    import signal

    from agents import OpinionAgent, Population
    from orchestrator import launch

    log = tmp_path / "closed.duckdb"
    launch(Population.of(OpinionAgent, 100), "gossip", rounds=2, log=log, runtime="local")
    result = CliRunner().invoke(app, ["sql", str(log), RUNAWAY, "--timeout", "1"])
    assert result.exit_code == 2
    assert "Query stopped after 1 s (its time limit)" in result.output
    moot = str(Path(sys.executable).with_name("moot"))
    proc = subprocess.Popen([moot, "sql", str(log), RUNAWAY], stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # well into the query
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "moot sql: query stopped (Ctrl-C)" in err


def test_a_query_in_flight_when_the_run_ends_does_not_crash_it(tmp_path: Path) -> None:
    import threading

    log = tmp_path / "ending.duckdb"
    run = _background_run(log)
    _until(lambda: live_file(log).exists(), "the run did not announce itself")
    outcome: list[BaseException] = []

    def runaway() -> None:
        try:
            query(log, RUNAWAY)
        except BaseException as exc:
            outcome.append(exc)

    asker = threading.Thread(target=runaway)
    asker.start()
    time.sleep(1)  # the query is running inside the run's process
    run.stop()
    run.wait(timeout=60)  # no ResourceInUse from closing a busy log
    asker.join(timeout=60)
    assert run.stop_reason == "stopped by user"
    assert len(outcome) == 1 and isinstance(outcome[0], LogError)
    assert query(log, "SELECT status FROM runs").to_pylist() == [{"status": "finished"}]
