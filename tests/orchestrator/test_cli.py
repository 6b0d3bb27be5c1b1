"""The `moot` command, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

ROOT = Path(__file__).resolve().parents[2]
MOOT = str(Path(sys.executable).parent / "moot")


def test_run_builtin_study_in_process(tmp_path: Path) -> None:
    log = tmp_path / "cli.duckdb"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--local",
            "--agents",
            "3000",
            "--rounds",
            "200",
            "--seed",
            "3",
            "--state-every",
            "0",
            "--log",
            str(log),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "stop reason" in result.output and "consensus" in result.output and str(log) in result.output
    con = duckdb.connect(str(log), read_only=True)
    spread, messages = con.execute("SELECT final_spread, messages FROM run_summary").fetchone()  # type: ignore[misc]
    assert spread < 0.01 and f"{messages:,}" in result.output
    assert con.execute("SELECT count(DISTINCT round), count(*) FROM states").fetchone() == (2, 2 * 2 * 3000)
    con.close()


def test_run_unknown_protocol_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--local", "--protocol", "gosip", "--log", str(tmp_path / "x.duckdb")]
    )
    assert result.exit_code == 2
    assert (
        "Unknown protocol 'gosip'; known:" in result.output and "Is its package installed?" in result.output
    )
    result = CliRunner().invoke(
        app, ["run", "--local", "-o", "fanout=0", "--log", str(tmp_path / "x.duckdb")]
    )
    assert result.exit_code == 2 and "fanout must be >= 1 or None" in result.output


def test_protocols_lists_gossip() -> None:
    result = CliRunner().invoke(app, ["protocols"])
    assert result.exit_code == 0 and "gossip" in result.output.split()


@pytest.mark.ray
@pytest.mark.slow
def test_example_script_joins_a_running_cluster(ray_cluster: object, tmp_path: Path) -> None:
    """`moot run script --address ...`: the same script, no code change, on the cluster."""
    env = dict(os.environ, MOOT_EXAMPLE_AGENTS="3000", MOOT_EXAMPLE_LOG=str(tmp_path / "ex.duckdb"))
    address = ray_cluster.address  # type: ignore[attr-defined]
    out = subprocess.run(
        [MOOT, "run", str(ROOT / "examples" / "gossip_consensus.py"), "--address", address],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "push-pull" in out.stdout and "consensus" in out.stdout
    con = duckdb.connect(str(tmp_path / "ex.duckdb"), read_only=True)
    rows = con.execute("SELECT count(*), count(DISTINCT n_hosts), min(stop_reason) FROM runs").fetchone()
    nodes = con.execute("SELECT count(DISTINCT node) FROM agents").fetchone()
    con.close()
    assert rows == (3, 1, "consensus") and nodes == (2,)
