"""Runs that end by a signal: Ctrl-C and SIGTERM end `interrupted` with one line on stderr; a
killed driver leaves `running`, which the next writer of the log marks `crashed`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.log import LogWriter, live_file, query
from tests.conftest import ROOT

MOOT = str(Path(sys.executable).with_name("moot"))
KILLED = """
import os, signal, sys
from agents import OpinionAgent, Population, Uniform
from orchestrator import launch
from protocols import Gossip

def die(round, metrics):
    if round == 4:
        os.kill(os.getpid(), signal.SIGKILL)

launch(Population.of(OpinionAgent, 5000, opinion=Uniform()), Gossip(tolerance=0.0), rounds=10**6,
       log=sys.argv[1], runtime="local", progress=die)
"""


def _rounds_logged(log: Path) -> int:
    """Rounds whose metrics the live run has logged so far (0 while it is not answering)."""
    try:
        got = query(log, "SELECT count(DISTINCT round) AS n FROM metrics").to_pylist()
    except Exception:  # not answering yet
        return 0
    return int(got[0]["n"])


def _interrupt(args: list[str], log: Path, sig: int) -> subprocess.CompletedProcess[str]:
    """Start `moot run ARGS`, wait until 3 rounds are logged, send `sig`, return its outcome."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [MOOT, "run", *args, "--log", str(log)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while _rounds_logged(log) < 3:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.1)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _check_interrupted(done: subprocess.CompletedProcess[str], log: Path, how: str) -> None:
    assert done.returncode == 130, done.stderr
    runs = query(log, "SELECT run_id, status, rounds, stop_reason FROM runs").to_pylist()
    assert len(runs) == 1 and runs[0]["status"] == "interrupted"
    assert runs[0]["stop_reason"] == f"interrupted ({how})"
    last = runs[0]["rounds"] - 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"moot: run {runs[0]['run_id']} interrupted after round {last}; the log keeps rounds 0..{last}: {log}; "
        f"go on with: moot resume {log} --run {runs[0]['run_id']}"
    )
    # Every played round is logged, and so is the state after the last one.
    rounds = query(log, "SELECT count(DISTINCT round) AS n, max(round) AS r FROM metrics").to_pylist()[0]
    assert rounds == {"n": last + 1, "r": last}
    states = query(log, f"SELECT count(*) AS n FROM states WHERE round = {last}").to_pylist()[0]["n"]
    assert states == 5000 * 2  # opinion and stubbornness of every agent
    assert not live_file(log).exists()


STUDY = ["--agents", "5000", "--rounds", "1000000", "-o", "tolerance=0", "--stop", "never"]


def test_ctrl_c_ends_the_run_interrupted_with_one_line(tmp_path: Path) -> None:
    log = tmp_path / "int.duckdb"
    _check_interrupted(_interrupt([*STUDY, "--local"], log, signal.SIGINT), log, "Ctrl-C")


@pytest.mark.ray
def test_sigterm_on_ray_ends_the_run_interrupted_not_aborted(ray_cluster: object, tmp_path: Path) -> None:
    log = tmp_path / "term.duckdb"
    address = ray_cluster.address  # type: ignore[attr-defined]
    done = _interrupt([*STUDY, "--address", address, "--hosts", "2"], log, signal.SIGTERM)
    assert "SIGTERM received" not in done.stderr  # Ray's abort handler did not run
    _check_interrupted(done, log, "SIGTERM")


def test_a_killed_driver_is_marked_crashed_by_the_next_writer(tmp_path: Path) -> None:
    log = tmp_path / "killed.duckdb"
    done = subprocess.run(
        [sys.executable, "-c", KILLED, str(log)], env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert done.returncode == -signal.SIGKILL
    assert live_file(log).exists()  # left behind by the dead process
    assert query(log, "SELECT status FROM runs").to_pylist() == [{"status": "running"}]
    (run_id,) = [r["run_id"] for r in query(log, "SELECT run_id FROM runs").to_pylist()]
    writer = LogWriter(log)
    try:
        assert writer.crashed == [run_id]
    finally:
        writer.close()
    assert not live_file(log).exists()
    row = query(log, "SELECT status, rounds, messages, stop_reason FROM runs").to_pylist()[0]
    logged = query(
        log, "SELECT count(DISTINCT round) AS r, sum(value)::BIGINT AS m FROM metrics WHERE name = 'messages'"
    ).to_pylist()[0]
    assert row["status"] == "crashed" and row["stop_reason"].startswith("crashed: its process ended")
    assert (row["rounds"], row["messages"]) == (logged["r"], logged["m"])
    assert 1 <= row["rounds"] <= 5  # killed in round 4's progress call
    assert query(log, "SELECT kind FROM events WHERE kind = 'crashed'").to_pylist() == [{"kind": "crashed"}]
    # A second writer finds nothing more to mark.
    again = LogWriter(log)
    try:
        assert again.crashed == []
    finally:
        again.close()
