"""examples/society_of_minds.py runs as a user runs it; its table is the log's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
MOOT = str(Path(sys.executable).parent / "moot")


def test_society_of_minds_example(tmp_path: Path) -> None:
    log = tmp_path / "som.duckdb"
    env = dict(os.environ, MOOT_EXAMPLE_LOG=str(log), COLUMNS="200")
    out = subprocess.run(
        [
            MOOT,
            "run",
            str(ROOT / "examples" / "society_of_minds.py"),
            "--local",
            "-p",
            "questions=3",
            "-p",
            "debaters=llm",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "offline stand-in, not a language model" in " ".join(out.stdout.split())
    con = duckdb.connect(str(log), read_only=True)
    acc = dict(
        con.execute(
            "SELECT strategy, sum(accuracy * societies) / sum(societies) FROM debate_accuracy_by_round "
            "WHERE round = 3 GROUP BY strategy"
        ).fetchall()
    )
    societies = con.execute("SELECT count(DISTINCT society) FROM debate_answers").fetchall()[0][0]
    con.close()
    assert societies == 3 * 8 * 4
    assert sorted(acc) == ["000", "001", "010", "011", "100", "101", "110", "111"]
    for strategy, value in acc.items():
        assert any(
            line.split("│")[1].strip() == strategy and f"{value:.3f}" in line
            for line in out.stdout.splitlines()
            if line.count("│") > 3
        )
