"""When the provider fails: the run says so (never `finished` on silence), keys stay out of
every record, bad answers are not cached, and an unpriced model's cost is unknown, not $0.

Every call is a real HTTP request through litellm to the local stub server (a STUB, not a model).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agents.population import Population, Uniform
from orchestrator import ConfigError, LLMConfig, LLMError, launch, query
from orchestrator.llm.stub import StubServer
from protocols.gossip import Gossip, LLMOpinionAgent
from protocols.stop import Stationary

MODEL = "openai/stub"
KEY = "sk-canary-" + "7f3a9c1e5b" * 4


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOOT_TEST_KEY", KEY)


def _run(stub: StubServer, log: Path, rounds: int = 3, n: int = 8, **llm: Any) -> Any:
    llm.setdefault("cache", "")
    return launch(
        Population.of(LLMOpinionAgent, n, opinion=Uniform(0.0, 1.0)),
        Gossip(graph="ring_lattice:k=2", fanout=1),
        rounds=rounds,
        seed=5,
        log=log,
        runtime="local",
        llm=LLMConfig(
            model=MODEL, api_base=stub.url, api_key_env="MOOT_TEST_KEY", max_attempts=2, backoff=0.0, **llm
        ),
    )


def _rows(log: Path, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r.values()) for r in query(log, sql).to_pylist()]


def test_an_outage_fails_the_run_after_its_first_round_not_finished_as_stationary(log_path: Path) -> None:
    with StubServer(error_status=500) as stub, pytest.raises(LLMError) as caught:
        _run(stub, log_path)
    assert str(caught.value).startswith(
        "8 of 8 LLM calls failed in round 0 (server_error 8), over the limit of 50%; the run stops as "
        "failed rather than read the silence as agreement. First error: InternalServerError: "
    )
    assert stub.served == 16  # 8 calls, each tried twice: a 500 may pass
    assert _rows(log_path, "SELECT status, rounds, left(stop_reason, 30) FROM runs") == [
        ("failed", 1, "LLMError: 8 of 8 LLM calls fai")
    ]


def test_with_the_limit_off_an_outage_spends_the_budget_and_stationary_never_fires(log_path: Path) -> None:
    with StubServer(error_status=500) as stub:
        run = launch(
            Population.of(LLMOpinionAgent, 8, opinion=Uniform(0.0, 1.0)),
            Gossip(graph="ring_lattice:k=2", fanout=1),
            rounds=4,
            seed=5,
            log=log_path,
            runtime="local",
            stop=Stationary(),
            llm=LLMConfig(
                model=MODEL,
                api_base=stub.url,
                api_key_env="MOOT_TEST_KEY",
                max_attempts=1,
                cache="",
                max_error_rate=None,
            ),
        )
    # Nothing moved because nothing acted: that is not a state that settled.
    assert (run.stop_reason, run.rounds, run.messages) == ("rounds", 4, 0)


def _half_broken(body: dict[str, Any]) -> str:
    agent = int(re.search(r"You are agent (\d+)\.", body["messages"][1]["content"]).group(1))  # type: ignore[union-attr]
    return "not json at all" if agent % 4 == 0 else json.dumps({"opinion": 0.5, "reason": "fine"})


@pytest.mark.parametrize(("limit", "fails"), [(0.5, False), (0.2, True)])
def test_a_share_of_failed_calls_fails_the_run_only_above_the_limit(
    log_path: Path, limit: float, fails: bool
) -> None:
    # Agents 0 and 4 of 8 answer garbage twice each: 4 of 10 calls in a round fail (40%).
    with StubServer(reply=_half_broken) as stub:
        if fails:
            with pytest.raises(
                LLMError,
                match=r"^4 of 10 LLM calls failed in round 0 \(invalid_json 4\), over the limit of 20%",
            ):
                _run(stub, log_path, max_error_rate=limit)
        else:
            run = _run(stub, log_path, max_error_rate=limit)
            assert run.rounds == 3
    status = _rows(log_path, "SELECT status FROM runs")
    assert status == [("failed",)] if fails else status == [("finished",)]


def test_a_missing_key_is_refused_before_anything_starts(
    log_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MOOT_TEST_KEY")
    with (
        StubServer() as stub,
        pytest.raises(
            ConfigError,
            match=re.escape(
                "LLMConfig.api_key_env names MOOT_TEST_KEY, which is not set in this environment; export MOOT_TEST_KEY=... before the run."
            ),
        ),
    ):
        _run(stub, log_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    pop = Population.of(LLMOpinionAgent, 8, opinion=Uniform(0.0, 1.0))
    with (
        StubServer() as stub,
        pytest.raises(
            ConfigError, match=re.escape("Model 'openai/stub' needs OPENAI_API_KEY, which is not set")
        ),
    ):
        launch(pop, Gossip(), log=log_path, runtime="local", llm=LLMConfig(model=MODEL, api_base=stub.url))
    assert stub.served == 0
    assert not log_path.exists()


def test_a_provider_that_echoes_the_key_never_gets_it_into_the_log_or_the_error(
    log_path: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "replies.cache"
    with StubServer(error_status=401, echo_auth=True) as stub, pytest.raises(LLMError) as caught:
        _run(stub, log_path, cache=str(cache))
    assert {r.headers["Authorization"] for r in stub.requests} == {f"Bearer {KEY}"}  # it was sent
    assert stub.served == 8  # 401 is not retried: no attempt can mend a key
    assert _rows(log_path, "SELECT DISTINCT error_type, attempts FROM llm_calls") == [("auth", 1)]
    errors = _rows(log_path, "SELECT DISTINCT error FROM llm_calls UNION ALL SELECT detail FROM events")
    assert all(KEY not in str(e) for (e,) in errors)
    assert any("Bearer [REDACTED]" in str(e) for (e,) in errors)
    assert KEY not in str(caught.value)
    for path in (log_path, cache):
        assert KEY.encode() not in path.read_bytes()


def _cached(cache: Path) -> int:
    con = sqlite3.connect(cache)
    try:
        return int(con.execute("SELECT count(*) FROM responses").fetchone()[0])
    finally:
        con.close()


def test_answers_that_do_not_validate_are_never_cached(log_path: Path, tmp_path: Path) -> None:
    cache = tmp_path / "replies.cache"
    with StubServer(mode="not_json") as stub, pytest.raises(LLMError):
        _run(stub, log_path, cache=str(cache))
    assert _cached(cache) == 0
    with StubServer() as healthy:  # a rerun asks again instead of replaying the garbage
        run = _run(healthy, log_path, cache=str(cache))
    assert healthy.served == 8 * 3
    assert _cached(cache) == 8 * 3
    assert run.sql("SELECT count(*) FROM llm_calls WHERE error_type IS NOT NULL").to_pylist() == [
        {"count_star()": 0}
    ]


def test_a_huge_answer_is_a_failed_call_never_kept(log_path: Path, tmp_path: Path) -> None:
    cache = tmp_path / "replies.cache"
    with StubServer(mode="huge") as stub, pytest.raises(LLMError, match=r"\(too_long 8\)"):
        _run(stub, log_path, cache=str(cache))
    assert _cached(cache) == 0
    assert _rows(log_path, "SELECT DISTINCT error FROM llm_calls") == [
        ("the answer has 1,000,000 characters, over moot's 65,536",)
    ]


def test_an_unpriced_model_under_a_budget_is_said_and_its_cost_is_unknown(
    log_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with StubServer() as stub:
        run = _run(stub, log_path, rounds=2, budget=1.0)
    err = capsys.readouterr().err
    assert "moot: litellm has no price for 'openai/stub', so --budget cannot count its calls" in err
    assert math.isnan(run.summary()["llm_cost"])
    assert _rows(log_path, "SELECT count(*), count(cost) FROM llm_calls") == [(16, 0)]
    assert _rows(log_path, "SELECT kind FROM events WHERE kind = 'llm_unpriced'") == [("llm_unpriced",)]
    with StubServer() as stub:  # priced: a number again
        priced = _run(stub, log_path, rounds=1, budget=1.0, prices={MODEL: (1e-6, 2e-6)})
    assert priced.summary()["llm_cost"] > 0


def _switch_for_agent_0(body: dict[str, Any]) -> str:
    agent = int(re.search(r"You are agent (\d+)\.", body["messages"][1]["content"]).group(1))  # type: ignore[union-attr]
    return json.dumps({"action": "SWITCH" if agent == 0 else "UP"})


def test_an_action_the_task_lacks_is_an_invalid_reply_not_a_crash(log_path: Path) -> None:
    from agents.llm import LLMAgent
    from protocols.swarm_grid import SwarmGrid

    with StubServer(reply=_switch_for_agent_0) as stub:
        run = launch(
            Population.of(LLMAgent, 4),
            SwarmGrid(task="pursuit"),
            rounds=2,
            seed=3,
            log=log_path,
            runtime="local",
            llm=LLMConfig(
                model=MODEL, api_base=stub.url, api_key_env="MOOT_TEST_KEY", cache="", reply_attempts=2
            ),
        )
    assert run.rounds == 2
    assert _rows(
        log_path,
        "SELECT agent, count(*), min(error_type) FROM llm_calls WHERE error_type IS NOT NULL GROUP BY 1",
    ) == [
        (0, 4, "schema")  # asked twice a round, the error shown, in both rounds
    ]
    assert _rows(
        log_path, "SELECT count(*) FROM events WHERE kind = 'llm_reply_invalid' AND detail LIKE 'agent 0 %'"
    ) == [(2,)]
    moves = _rows(log_path, "SELECT sender, count(*) FROM messages WHERE kind = 'move' GROUP BY 1 ORDER BY 1")
    assert moves == [(1, 2), (2, 2), (3, 2)]  # agent 0 stayed put, logged as no move


def test_latency_counts_the_provider_and_queued_the_wait_for_the_limits(log_path: Path) -> None:
    with StubServer(latency=0.2) as stub:  # 30 calls, paced ~0.1 s apart: the last waits ~3 s
        _run(stub, log_path, rounds=1, n=30, rpm=10, window=1.0, max_in_flight=30)
    (n, latency_min, latency_max, queued_max, total_ok) = _rows(
        log_path,
        "SELECT count(*), min(latency_s), max(latency_s), max(queued_s), bool_and(queued_s >= 0) FROM llm_calls",
    )[0]
    assert n == 30 and total_ok
    assert latency_min >= 0.2  # the stub's own latency: the wait is not in it
    assert queued_max >= 2.5 and latency_max < 1.5
