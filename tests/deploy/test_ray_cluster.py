"""deploy/README.md's path, for real: `ray start --head` and a second node with `ray start
--address` on this machine, a study with `moot run --address auto`, another through the
Ray Jobs API (`ray job submit`), both logs checked, then only this cluster stopped."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psutil
import pytest

from tests.conftest import ROOT
from tests.orchestrator.helpers import messages_hash

pytestmark = [pytest.mark.slow, pytest.mark.ray]  # it starts a Ray cluster of its own
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TOKEN = secrets.token_hex(32)
"""This cluster's own token: a fresh machine has no ~/.ray/auth_token, and `ray start` with
token authentication on refuses to start without one."""


def ray_env() -> dict[str, str]:
    # Not PYTEST_*: Ray changes its own behaviour when it sees it runs under pytest, and these
    # processes are a user's cluster, not a test fixture.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAY_ADDRESS", "MOOT_ADDRESS", "MOOT_RUNTIME", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
        and not k.startswith("PYTEST_")
    }
    env.update(
        RAY_AUTH_MODE="token",  # as deploy/README.md says: token authentication on, explicitly
        RAY_AUTH_TOKEN=TOKEN,
        RAY_USAGE_STATS_ENABLED="0",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # the job's entrypoint finds `moot`
        PYTHONPATH=str(ROOT),
    )
    return env


def alive(listing: str) -> int:
    """Alive nodes in `ray list nodes --format=json` output (0 while it is not JSON yet)."""
    start = listing.find("[")
    try:
        nodes = json.loads(listing[start:]) if start >= 0 else []
    except ValueError:
        return 0
    return sum(n.get("state") == "ALIVE" for n in nodes)


class StartedCluster:
    """Two `ray start --block` processes; stopping them stops exactly this cluster."""

    def __init__(self, tmp: Path) -> None:
        self.gcs, self.dashboard = free_port(), free_port()
        self.env = ray_env()
        self.head_log = tmp / "head.log"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.session = "session_unknown"
        try:
            self.procs.append(
                self._start(
                    [
                        "--head",
                        f"--port={self.gcs}",
                        "--dashboard-host=127.0.0.1",
                        f"--dashboard-port={self.dashboard}",
                    ],
                    self.head_log,
                )
            )
            self._wait_for(1)
            self.session = re.search(r"(session_[0-9_-]+)", self.head_log.read_text()).group(1)  # type: ignore[union-attr]
            self.procs.append(self._start([f"--address=127.0.0.1:{self.gcs}"], tmp / "worker.log"))
            self._wait_for(2)
        except BaseException:
            self.stop()
            raise

    def _start(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        # Each node's agents on ports of their own: the defaults (52365, ...) may be held by
        # another Ray on this machine (the session's test cluster), and a head whose agent
        # cannot bind answers every `ray job submit` with "No available agent".
        agents = [
            f"--{flag}={free_port()}"
            for flag in (
                "dashboard-agent-listen-port",
                "dashboard-agent-grpc-port",
                "metrics-export-port",
                "runtime-env-agent-port",
            )
        ]
        with log.open("wb") as out:
            return subprocess.Popen(
                [str(BIN / "ray"), "start", "--num-cpus=1", "--block", *agents, *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_for(self, nodes: int) -> None:
        """Until the dashboard (which `ray job submit` needs) lists `nodes` alive nodes."""
        deadline = time.monotonic() + 180
        listed = ""
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise AssertionError(f"`ray start` exited ({p.returncode}); see {p.args}")
            out = subprocess.run(
                [
                    str(BIN / "ray"),
                    "list",
                    "nodes",
                    f"--address=http://127.0.0.1:{self.dashboard}",
                    "--format=json",
                ],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            listed = out.stdout + out.stderr
            if out.returncode == 0 and alive(out.stdout) >= nodes:
                return
            time.sleep(2)
        raise AssertionError(
            f"the cluster never had {nodes} nodes ({listed[-500:]}):\n{self.head_log.read_text()[-2000:]}"
        )

    def ours(self) -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if any(self.session in part for part in p.info["cmdline"] or []):
                    found.append(p)
            except psutil.Error:
                continue
        return found

    def stop(self) -> None:
        for p in self.procs:  # `ray start --block` drains and stops its node on SIGTERM
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(90)
            except subprocess.TimeoutExpired:
                p.kill()
        for (
            p
        ) in self.ours():  # anything of this session still there (never `ray stop`: other clusters live here)
            p.kill()


@pytest.fixture
def started(tmp_path: Path) -> Iterator[StartedCluster]:
    cluster = StartedCluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()
    assert cluster.ours() == []


def check_log(path: Path, agents: int, expected: tuple[int, str]) -> None:
    con = duckdb.connect(str(path), read_only=True)
    try:
        ((status, n_hosts, rounds, run_id),) = con.execute(
            "SELECT status, n_hosts, rounds, run_id FROM runs"
        ).fetchall()
        nodes, hosts, n = con.execute(
            "SELECT count(DISTINCT node), count(DISTINCT host), count(*) FROM agents"
        ).fetchall()[0]
    finally:
        con.close()
    assert (status, n_hosts, rounds) == ("finished", 2, 3)
    assert (nodes, hosts, n) == (2, 2, agents)  # hosts on both nodes
    assert messages_hash(path, run_id) == expected  # the very messages the study logs in-process


def test_ray_start_then_moot_run_address_auto_and_ray_job_submit(
    started: StartedCluster, tmp_path: Path
) -> None:
    study = ["run", "--agents", "3000", "--rounds", "3", "--stop", "never", "--hosts", "2"]
    direct = subprocess.Popen(
        [str(BIN / "moot"), *study, "--address", "auto", "--log", str(tmp_path / "direct.duckdb")],
        env=started.env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    submit = [
        str(BIN / "ray"),
        "job",
        "submit",
        f"--address=http://127.0.0.1:{started.dashboard}",
        "--submission-id=moot-deploy-test",
        "--",
        "moot",
        *study,
        "--log",
        str(tmp_path / "job.duckdb"),
    ]
    deadline = time.monotonic() + 120
    while True:  # the head's job agent may come up after its dashboard: Ray says to try again
        job = subprocess.run(
            submit, env=started.env, cwd=tmp_path, capture_output=True, text=True, timeout=240
        )
        job_out = job.stdout + job.stderr
        if "No available agent to submit job" not in job_out or time.monotonic() > deadline:
            break
        time.sleep(3)
    direct_out = direct.communicate(timeout=240)[0].decode()
    assert direct.returncode == 0, direct_out[-3000:]
    assert job.returncode == 0 and "Job 'moot-deploy-test' succeeded" in job_out, job_out[-3000:]
    # The same study in-process, on one host: the same seed gives the same messages anywhere.
    local = subprocess.run(
        [str(BIN / "moot"), *study, "--local", "--log", str(tmp_path / "local.duckdb")],
        env=started.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert local.returncode == 0, local.stderr[-2000:]
    con = duckdb.connect(str(tmp_path / "local.duckdb"), read_only=True)
    (local_id,) = con.execute("SELECT run_id FROM runs").fetchall()[0]
    con.close()
    expected = messages_hash(tmp_path / "local.duckdb", local_id)
    assert expected[0] > 3 * 3000  # every agent sends to two neighbours each round
    check_log(tmp_path / "direct.duckdb", 3000, expected)
    check_log(tmp_path / "job.duckdb", 3000, expected)
