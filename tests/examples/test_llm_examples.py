"""examples/llm_gossip.py and examples/llm_swarm.py run as a user runs them: offline by
default, and against an HTTP endpoint with --model/--api-base."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from orchestrator.llm.stub import StubServer

ROOT = Path(__file__).resolve().parents[2]
MOOT = str(Path(sys.executable).parent / "moot")


def moot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [MOOT, "run", *args, "--local"], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_llm_gossip_runs_offline_and_says_its_model_is_a_stand_in(tmp_path: Path) -> None:
    log = tmp_path / "gossip.duckdb"
    env = dict(os.environ, MOOT_EXAMPLE_ROUNDS="3", MOOT_EXAMPLE_LOG=str(log), COLUMNS="200")
    out = moot(str(ROOT / "examples" / "llm_gossip.py"), "-p", "agents=40", env=env)
    assert "model moot/simulated (offline stand-in, not a language model)" in " ".join(out.stdout.split())
    con = duckdb.connect(str(log), read_only=True)
    calls, errors = con.execute("SELECT count(*), count(error_type) FROM llm_calls").fetchall()[0]
    spread = con.execute("SELECT round, spread FROM consensus_by_round ORDER BY round").fetchall()
    con.close()
    assert (calls, errors) == (120, 0)
    for r, s in spread:  # the table printed is the log's
        assert any(
            line.split("│")[1:3] and line.split("│")[1].strip() == str(r) and f"{s:.3f}" in line
            for line in out.stdout.splitlines()
        )


def test_llm_swarm_switches_to_an_http_model_with_model_and_api_base(tmp_path: Path) -> None:
    log = tmp_path / "swarm.duckdb"
    env = dict(
        os.environ,
        MOOT_EXAMPLE_ROUNDS="4",
        MOOT_EXAMPLE_LOG=str(log),
        OPENAI_API_KEY="sk-local",
        COLUMNS="200",
    )
    with StubServer() as stub:
        out = moot(
            str(ROOT / "examples" / "llm_swarm.py"), "--model", "openai/stub", "--api-base", stub.url, env=env
        )
        served = stub.served
    assert served == 10 * 4
    assert "model openai/stub" in out.stdout and "stand-in" not in out.stdout
    assert "the command line sets" not in out.stderr  # the script gave no LLMConfig: nothing replaced
    con = duckdb.connect(str(log), read_only=True)
    assert con.execute("SELECT count(*), min(model), count(error_type) FROM llm_calls").fetchall() == [
        (40, "openai/stub", 0)
    ]
    con.close()
