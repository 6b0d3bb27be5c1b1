"""Every shipped example honours `moot run --log`: it writes there and reads its results back from there.

Each runs as a user runs it, into a fresh directory, with the example's own default log
pointed at a second path that must stay untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
MOOT = str(Path(sys.executable).parent / "moot")

EXAMPLES = {  # example: (its -p options, runs it makes)
    "blackbox_consensus.py": ((), 3),
    "gossip_consensus.py": ((), 3),
    "gossip_learning.py": ((), 3),
    "herd_effect.py": (("-p", "users=600"), 1),
    "information_spread.py": (("-p", "users=600"), 2),
    "informative_tasks.py": ((), 2),
    "llm_gossip.py": (("-p", "agents=20"), 1),
    "llm_swarm.py": ((), 1),
    "society_of_minds.py": (("-p", "questions=1", "-p", "debaters=rule"), 1),
    "swarm_foraging.py": ((), 10),
}


@pytest.fixture(scope="module")
def other_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log that already holds another study (made once, copied into each test)."""
    log = tmp_path_factory.mktemp("other") / "mine.duckdb"
    subprocess.run(
        [MOOT, "run", "--agents", "200", "--rounds", "2", "--local", "--log", str(log)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return log


@pytest.mark.slow
@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_an_example_run_with_log_writes_and_reads_that_log(
    example: str, tmp_path: Path, other_study: Path
) -> None:
    options, runs = EXAMPLES[example]
    mine, default = tmp_path / "mine.duckdb", tmp_path / "default.duckdb"
    # A log that already holds another study: the example must read its own runs only.
    shutil.copy(other_study, mine)
    parts = other_study.with_name(other_study.name + ".parts")
    if parts.is_dir():
        shutil.copytree(parts, mine.with_name(mine.name + ".parts"))
    env = dict(
        os.environ,
        MOOT_EXAMPLE_LOG=str(default),
        MOOT_EXAMPLE_ROUNDS="3",
        MOOT_EXAMPLE_AGENTS="2000",
        MOOT_EXAMPLE_LEARNERS="30",
        COLUMNS="200",
    )
    out = subprocess.run(
        [MOOT, "run", str(ROOT / "examples" / example), *options, "--log", str(mine), "--local"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert not default.exists()
    con = duckdb.connect(str(mine), read_only=True)
    try:
        statuses = con.execute("SELECT status, count(*) FROM runs GROUP BY 1").fetchall()
    finally:
        con.close()
    assert statuses == [("finished", runs + 1)]
    assert str(mine) in " ".join(out.stdout.split())  # it says where its log is: the one given
