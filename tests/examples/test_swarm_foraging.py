"""examples/swarm_foraging.py runs as a user runs it, and its table is what the log says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
MOOT = str(Path(sys.executable).parent / "moot")


def test_swarm_foraging_example(tmp_path: Path) -> None:
    log = tmp_path / "forage.duckdb"
    env = dict(os.environ, MOOT_EXAMPLE_ROUNDS="30", MOOT_EXAMPLE_LOG=str(log))
    out = subprocess.run(
        [MOOT, "run", str(ROOT / "examples" / "swarm_foraging.py"), "--local"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    con = duckdb.connect(str(log), read_only=True)
    per_policy = con.execute(
        """SELECT r.params->>'policy', count(*), avg(m.value) FROM runs r
           JOIN metrics m ON m.run_id = r.run_id AND m.name = 'score' AND m.round = r.rounds - 1 GROUP BY 1"""
    ).fetchall()
    con.close()
    assert sorted(p for p, _, _ in per_policy) == ["ForageHeuristic", "RandomWalker"]
    for policy, runs, mean in per_policy:
        assert runs == 5
        assert any(policy in line and f"{mean:.1f}" in line for line in out.stdout.splitlines())
    means = {p: m for p, _, m in per_policy}
    assert means["ForageHeuristic"] > means["RandomWalker"]  # looking beats wandering, as asked
