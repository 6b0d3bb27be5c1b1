"""A protocol package from outside this repo adds its own kinds and a world, and runs by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tests" / "plugins" / "tiny_world_plugin"
MOOT = str(Path(sys.executable).parent / "moot")


def moot(*args: str, plugin: bool = True) -> subprocess.CompletedProcess[str]:
    path = [str(PLUGIN)] if plugin else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*path, str(ROOT)]))
    return subprocess.run([MOOT, *args], capture_output=True, text=True, env=env, timeout=120)


def test_the_plugin_is_found_only_where_it_is_installed() -> None:
    assert "tiny_world" in moot("protocols").stdout.split()
    assert "tiny_walker" in moot("agents").stdout.split()
    assert "tiny_world" not in moot("protocols", plugin=False).stdout.split()


def test_a_plugin_protocol_runs_by_name_with_its_kinds_world_and_views(tmp_path: Path) -> None:
    log = tmp_path / "plugin.duckdb"
    gossip = moot("run", "--agents", "200", "--rounds", "3", "--local", "--log", str(log))
    assert gossip.returncode == 0, gossip.stderr[-2000:]
    out = moot(
        "run",
        "--protocol",
        "tiny_world",
        "-o",
        "cells=5",
        "--agents",
        "60",
        "--rounds",
        "6",
        "--local",
        "--log",
        str(log),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "crowded" in out.stdout
    con = duckdb.connect(str(log), read_only=True)
    kinds = dict(con.execute("SELECT kind::VARCHAR, count(*) FROM messages GROUP BY 1").fetchall())
    steps = con.execute("SELECT count(*) FROM tiny_steps").fetchall()[0][0]
    crowded = con.execute("SELECT count(*) FROM metrics WHERE name = 'crowded'").fetchall()[0][0]
    actions = con.execute(
        "SELECT count(*) FROM messages WHERE kind = 'step' AND receiver IS NULL"
    ).fetchall()[0][0]
    runs = con.execute("SELECT protocol FROM runs ORDER BY started_at").fetchall()
    con.close()
    assert set(kinds) == {"opinion", "step", "shout"}  # one file: the core kinds and the plugin's
    assert steps == actions == 60 * 6 and crowded == 6 and kinds["shout"] > 0
    assert runs == [("gossip",), ("tiny_world",)]
