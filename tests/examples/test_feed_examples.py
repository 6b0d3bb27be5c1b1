"""examples/information_spread.py and examples/herd_effect.py run as a user runs them; their
tables are what the log says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
MOOT = str(Path(sys.executable).parent / "moot")


def moot(script: str, log: Path, *args: str) -> str:
    env = dict(os.environ, MOOT_EXAMPLE_ROUNDS="6", MOOT_EXAMPLE_LOG=str(log), COLUMNS="200")
    out = subprocess.run(
        [MOOT, "run", str(ROOT / "examples" / script), "--local", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_information_spread_prints_the_seeded_posts_cascade(tmp_path: Path) -> None:
    log = tmp_path / "spread.duckdb"
    out = moot("information_spread.py", log, "-p", "users=3000")
    con = duckdb.connect(str(log), read_only=True)
    last = con.execute(
        "SELECT r.params->>'recommender', c.scale, c.depth, c.max_breadth FROM cascade_by_round c "
        "JOIN runs r USING (run_id) WHERE c.root = 0 AND c.round = 5"
    ).fetchall()
    con.close()
    line = next(x for x in out.splitlines() if x.strip().startswith("│") and x.split("│")[1].strip() == "5")
    assert sorted(r[0] for r in last) == ["hot", "interest"]  # one row per recommender: the loop checks both
    for _, scale, depth, breadth in last:
        assert f"{scale} / {depth} / {breadth}" in line


def test_herd_effect_prints_each_groups_final_score(tmp_path: Path) -> None:
    log = tmp_path / "herd.duckdb"
    out = moot("herd_effect.py", log, "-p", "users=1500")
    con = duckdb.connect(str(log), read_only=True)
    means = con.execute("SELECT grp, avg(score), count(*) FROM herd_by_post GROUP BY grp").fetchall()
    con.close()
    assert sorted((g, n) for g, _, n in means) == [("control", 20), ("down", 20), ("up", 20)]
    for grp, mean, _ in means:
        assert any(
            x.split("│")[1].strip() == grp and f"{mean:.2f}" in x
            for x in out.splitlines()
            if x.count("│") > 3
        )
