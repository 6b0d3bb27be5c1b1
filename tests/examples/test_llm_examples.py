"""examples/llm_gossip.py and examples/llm_swarm.py run as a user runs them: offline by
default, and against an HTTP endpoint with --model/--api-base."""

from __future__ import annotations

import os
import re
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


def test_estimate_of_llm_gossip_is_within_a_tenth_of_the_tokens_the_run_then_uses(tmp_path: Path) -> None:
    log = tmp_path / "gossip.duckdb"
    env = dict(os.environ, MOOT_EXAMPLE_ROUNDS="4", MOOT_EXAMPLE_LOG=str(log), COLUMNS="200")
    example = str(ROOT / "examples" / "llm_gossip.py")
    out = moot(example, "-p", "agents=80", "--estimate", "--price", "moot/simulated=1e-6,2e-6", env=env)
    text = " ".join(out.stdout.split())
    assert "model moot/simulated (offline stand-in, not a language model) (no model called)" in text
    got = {
        key: float(re.search(rf"{key}: \$?([\d,.]+)", text).group(1).replace(",", ""))  # type: ignore[union-attr]
        for key in ("calls", "prompt tokens", "completion tokens", "cost")
    }
    assert not log.exists()  # nothing ran
    assert got["cost"] == round(got["prompt tokens"] * 1e-6 + got["completion tokens"] * 2e-6, 4)
    moot(example, "-p", "agents=80", env=env)
    con = duckdb.connect(str(log), read_only=True)
    calls, used = con.execute(
        "SELECT count(*), sum(prompt_tokens + completion_tokens) FROM llm_calls"
    ).fetchall()[0]
    con.close()
    assert calls == got["calls"] == 80 * 4
    assert abs(got["prompt tokens"] + got["completion tokens"] - used) <= 0.1 * used
