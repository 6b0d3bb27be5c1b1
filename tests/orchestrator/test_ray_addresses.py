"""Which Ray `moot run` uses: a fresh local instance by default, a running cluster when asked."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import psutil
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cluster_processes(session: str, gcs: str) -> list[psutil.Process]:
    """Processes of one Ray cluster: named by its session directory or its GCS address."""
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if session in (line := " ".join(p.info["cmdline"] or [])) or gcs in line
    ]


def _stop_session(session: str, gcs: str) -> None:
    """Stop one Ray cluster's processes (`ray stop` would stop every cluster here)."""
    procs = _cluster_processes(session, gcs)
    family = {q for p in procs for q in [p, *p.children(recursive=True)]}
    for p in family:
        with contextlib.suppress(psutil.Error):
            p.send_signal(signal.SIGKILL)
    psutil.wait_procs(list(family), timeout=10)


CURRENT = Path("/tmp/ray/ray_current_cluster")  # what `auto` (and a bare ray.init) joins


def test_address_auto_joins_ray_start_head(tmp_path: Path) -> None:
    before = CURRENT.read_text() if CURRENT.exists() else None
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    port = _free_port()
    started = subprocess.run(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=1",
            "--node-ip-address=127.0.0.1",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--ray-client-server-port={_free_port()}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    session = os.path.basename(os.path.realpath("/tmp/ray/session_latest"))
    try:
        log = tmp_path / "auto.duckdb"
        out = subprocess.run(
            [
                str(BIN / "moot"),
                "run",
                "--address",
                "auto",
                "--agents",
                "3000",
                "--rounds",
                "200",
                "--log",
                str(log),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        assert "Connected to Ray cluster" in out.stderr + out.stdout and "consensus" in out.stdout
        con = duckdb.connect(str(log), read_only=True)
        runtime, nodes = con.execute(
            "SELECT config->>'runtime', (SELECT count(DISTINCT node) FROM agents) FROM runs"
        ).fetchone()  # type: ignore[misc]
        con.close()
        assert runtime == "ray" and nodes == 1
    finally:
        _stop_session(session, f"127.0.0.1:{port}")
        # Leave no pointer to the stopped cluster: a bare ray.init() would wait on it forever.
        if before is None:
            CURRENT.unlink(missing_ok=True)
        else:
            CURRENT.write_text(before)
    assert not _cluster_processes(session, f"127.0.0.1:{port}")


def test_no_address_starts_a_fresh_local_ray_despite_a_stale_cluster_file(tmp_path: Path) -> None:
    """A bare ray.init() would join the dead cluster named in ray_current_cluster and wait forever."""
    before = CURRENT.read_text() if CURRENT.exists() else None
    CURRENT.parent.mkdir(parents=True, exist_ok=True)
    CURRENT.write_text(f"127.0.0.1:{_free_port()}")  # nothing listens there
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MOOT_ADDRESS")}
    try:
        log = tmp_path / "fresh.duckdb"
        out = subprocess.run(
            [str(BIN / "moot"), "run", "--agents", "2000", "--rounds", "5", "--log", str(log)],
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
        )
    finally:
        if before is None:
            CURRENT.unlink(missing_ok=True)
        else:
            CURRENT.write_text(before)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Started a local Ray instance" in out.stderr + out.stdout
    con = duckdb.connect(str(log), read_only=True)
    assert con.execute("SELECT rounds, config->>'runtime' FROM runs").fetchone() == (5, "ray")
    con.close()
