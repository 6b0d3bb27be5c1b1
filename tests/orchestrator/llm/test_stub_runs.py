"""LLM agents calling a real local HTTP server through litellm: limits, retries, timeouts,
broken answers, the budget and the cache, in-process and on the session's Ray cluster."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from agents.llm import LLMAgent
from agents.population import Population, Uniform
from orchestrator import LLMConfig, LLMError, Run, launch, query
from orchestrator.llm.stub import StubServer
from protocols.gossip import Gossip, LLMOpinionAgent
from protocols.swarm_grid import SwarmGrid
from tests.orchestrator.helpers import messages_hash

STUB_MODEL = "openai/stub"


def opinions(n: int) -> Population:
    return Population.of(LLMOpinionAgent, n, opinion=Uniform(0.0, 1.0))


def config(stub: StubServer, **kw: object) -> LLMConfig:
    return LLMConfig(model=STUB_MODEL, api_base=stub.url, api_key_env="MOOT_TEST_KEY", **kw)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOOT_TEST_KEY", "sk-local")  # openai/ needs some key; a stub ignores it


def gossip(
    stub: StubServer,
    log: Path,
    n: int,
    rounds: int,
    seed: int,
    graph: str = "small_world",
    fanout: int = 2,
    **llm: object,
) -> Run:
    """`n` LLM opinion agents gossiping in-process, calling the stub."""
    return launch(
        opinions(n),
        Gossip(graph=graph, fanout=fanout),
        rounds=rounds,
        seed=seed,
        log=log,
        runtime="local",
        llm=config(stub, **llm),
    )


def rows(log: Path, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r.values()) for r in query(log, sql).to_pylist()]


def status(log: Path, run_id: str) -> object:
    return rows(log, f"SELECT status FROM runs WHERE run_id = '{run_id}'")[0][0]


def max_in_window(starts: list[float], window: float) -> int:
    s = np.sort(np.asarray(starts))
    return int(max(np.searchsorted(s, s + window, side="left") - np.arange(len(s))))


@pytest.mark.ray
def test_the_rate_limit_holds_across_two_ray_hosts(ray_cluster: object, log_path: Path) -> None:
    # 300 requests per minute, on a clock scaled 15x: the window is 4 s instead of 60 s.
    # (At 30x, 150 calls/s, litellm's client CPU on this 2-core machine becomes the limit.)
    with StubServer() as stub:
        run = launch(
            opinions(500),
            Gossip(fanout=1),
            rounds=1,
            seed=1,
            log=log_path,
            runtime="ray",
            hosts=2,
            llm=config(stub, rpm=300, window=4.0, max_in_flight=500, cache=""),
        )
        arrivals = [r.at for r in stub.requests]
    assert run.summary()["rounds"] == 1
    assert len(arrivals) == 500  # every agent answered, nothing retried
    assert max_in_window(arrivals, 4.0) <= 300  # the limit held in every window
    # And it was what set the pace: grants are spaced (4 s + 5%) / 300 apart, so 500 requests span
    # at least 499 spacings, 7.0 s (unlimited, they all arrive within about a second). A busy client
    # only delays requests; 1 s of slack covers a first request delayed more than the last.
    assert max(arrivals) - min(arrivals) >= 499 * (4.0 * 1.05 / 300) - 1.0
    assert rows(
        log_path, "SELECT count(DISTINCT host), count(*) FILTER (error_type IS NULL) FROM llm_calls"
    ) == [(2, 500)]


def test_429s_with_retry_after_are_waited_out_and_counted(log_path: Path) -> None:
    with StubServer(rate_limited=25, retry_after="1") as stub:
        started = time.perf_counter()
        run = gossip(stub, log_path, 40, 2, 2, fanout=2, cache="")
        took = time.perf_counter() - started
    assert stub.served == 80 + 25
    assert took >= 1.0  # the Retry-After was honoured
    assert rows(log_path, "SELECT count(*), sum(attempts), count(error_type) FROM llm_calls") == [
        (80, 105, 0)
    ]
    assert rows(log_path, "SELECT min(latency_s) >= 1.0 FROM llm_calls WHERE attempts > 1") == [(True,)]
    assert rows(log_path, "SELECT retries FROM llm_cost_by_round ORDER BY round") == [(25,), (0,)]
    assert run.summary()["messages"] == 160  # 40 agents x 2 rounds x fanout 2: nobody lost a turn


def test_a_server_that_never_answers_times_out_and_the_run_fails(log_path: Path) -> None:
    with StubServer(hang=True) as stub:
        started = time.perf_counter()
        with pytest.raises(LLMError, match=r"^8 of 8 LLM calls failed in round 0 \(timeout 8\)"):
            gossip(
                stub,
                log_path,
                8,
                2,
                3,
                graph="ring_lattice:k=2",
                fanout=1,
                timeout=1.0,
                max_attempts=2,
                backoff=0.0,
                cache="",
            )
        took = time.perf_counter() - started
    assert rows(log_path, "SELECT status, rounds FROM runs") == [("failed", 1)]
    assert took < 30
    assert rows(
        log_path,
        "SELECT count(*), min(attempts), max(attempts), min(error_type), max(error_type) FROM llm_calls",
    ) == [(8, 2, 2, "timeout", "timeout")]
    assert rows(log_path, "SELECT min(latency_s) >= 2.0 FROM llm_calls") == [(True,)]
    assert rows(log_path, "SELECT count(*) FROM events WHERE kind = 'llm_call_failed'") == [(8,)]
    assert rows(log_path, "SELECT count(*) FROM messages") == [(0,)]


@pytest.mark.parametrize(
    ("mode", "error_type"),
    [
        ("not_json", "invalid_json"),
        ("wrong_schema", "schema"),
        ("truncated", "truncated"),
    ],
)
def test_broken_answers_become_typed_error_rows_and_fail_the_run(
    mode: str, error_type: str, log_path: Path
) -> None:
    with (
        StubServer(mode=mode) as stub,
        pytest.raises(LLMError, match=rf"^8 of 8 LLM calls failed in round 0 \({error_type} 8\)"),
    ):
        gossip(stub, log_path, 4, 2, 4, graph="ring_lattice:k=2", fanout=1, reply_attempts=2, cache="")
    assert rows(log_path, "SELECT status FROM runs") == [("failed",)]
    # Each agent asked twice (the second time with the error shown), then gave up.
    assert rows(log_path, "SELECT count(*), count(DISTINCT error_type), min(error_type) FROM llm_calls") == [
        (8, 1, error_type)
    ]
    assert rows(log_path, "SELECT count(*) FROM events WHERE kind = 'llm_reply_invalid'") == [(4,)]
    assert rows(log_path, "SELECT count(*) FROM messages") == [(0,)]
    second = next(r.body["messages"] for r in stub.requests if len(r.body["messages"]) > 2)
    assert second[-1]["content"].startswith("That answer could not be used (")


def test_a_rerun_with_the_same_seed_replays_from_the_cache(log_path: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "replies.cache")
    with StubServer() as stub:
        first = gossip(stub, log_path, 30, 3, 5, fanout=2, cache=cache)
        served = stub.served
        second = gossip(stub, log_path, 30, 3, 5, fanout=2, cache=cache)
        assert stub.served == served == 90  # the rerun made no HTTP call
    assert messages_hash(log_path, first.run_id) == messages_hash(log_path, second.run_id)
    assert rows(
        log_path,
        f"SELECT count(*), bool_and(cache_hit), sum(cost) FROM llm_calls WHERE run_id = '{second.run_id}'",
    ) == [(90, True, 0.0)]


def test_the_budget_stops_the_run_at_the_round_it_is_crossed(log_path: Path) -> None:
    prices = {STUB_MODEL: (1e-4, 1e-4)}
    with StubServer() as stub:
        full = gossip(stub, log_path, 20, 6, 6, fanout=1, prices=prices, cache="", max_in_flight=20)
        per_round = [
            c
            for (c,) in rows(
                log_path, f"SELECT cost FROM llm_cost_by_round WHERE run_id = '{full.run_id}' ORDER BY round"
            )
        ]
        budget = sum(per_round[:3]) - per_round[2] / 2  # crossed during round 2
        capped = gossip(
            stub, log_path, 20, 6, 6, fanout=1, prices=prices, cache="", max_in_flight=20, budget=budget
        )
    summary = capped.summary()
    assert summary["rounds"] == 3 and summary["stop_reason"].startswith("budget: $")
    assert status(log_path, capped.run_id) == "finished"
    # The rows so far are intact: rounds 0-2 equal the unbudgeted run's.
    same = (
        "SELECT round, sender, receiver, value FROM messages WHERE run_id = '{}' AND round < 3 ORDER BY ALL"
    )
    assert rows(log_path, same.format(capped.run_id)) == rows(log_path, same.format(full.run_id))
    assert rows(log_path, f"SELECT count(*) FROM llm_calls WHERE run_id = '{capped.run_id}'") == [(60,)]


def test_llm_agents_play_the_swarm_grid_through_http(log_path: Path) -> None:
    with StubServer() as stub:
        run = launch(
            Population.of(LLMAgent, 6),
            SwarmGrid(task="foraging"),
            rounds=3,
            seed=7,
            log=log_path,
            runtime="local",
            llm=config(stub, cache=""),
        )
        body = stub.requests[0].body
    assert body["response_format"]["json_schema"]["name"] == "SwarmStep"  # foraging has no SWITCH
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["action"]["enum"] == ["UP", "DOWN", "LEFT", "RIGHT", "STAY"]
    assert "SWITCH" not in json.dumps(schema)
    assert "Current Step:" in body["messages"][1]["content"]
    assert rows(log_path, "SELECT count(*) FROM messages WHERE kind = 'move'") == [(18,)]
    assert status(log_path, run.run_id) == "finished"


@pytest.mark.ray
def test_a_planted_key_reaches_the_provider_and_nothing_else(
    ray_cluster: object,
    log_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import ray

    key = "sk-moot-PLANTED-" + "7f3a9c" * 6
    monkeypatch.setenv("OPENAI_API_KEY", key)  # litellm's own variable; hosts get it from the driver
    cache = tmp_path / "replies.cache"
    with StubServer(mode="not_json") as stub:  # failures too: error texts must not carry the key
        launch(
            opinions(200),
            Gossip(fanout=1),
            rounds=2,
            seed=8,
            log=log_path,
            runtime="ray",
            hosts=2,
            llm=LLMConfig(
                model=STUB_MODEL, api_base=stub.url, cache=str(cache), reply_attempts=1, max_error_rate=None
            ),
        )
        seen = {r.headers.get("Authorization") for r in stub.requests}
    assert seen == {f"Bearer {key}"}  # the key was used, from both hosts
    out, err = capfd.readouterr()
    places = {
        "stdout": out.encode(),
        "stderr": err.encode(),
        "log": log_path.read_bytes(),
        "cache": cache.read_bytes(),
    }
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    logs = [p for p in (session / "logs").rglob("*") if p.is_file()]
    assert logs  # the session's logs are there to search
    places.update({str(p): p.read_bytes() for p in logs})
    assert [where for where, data in places.items() if key.encode() in data] == []


def test_a_key_given_as_the_variable_name_is_refused() -> None:
    from orchestrator.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"api_key_env='sk-abc-123' must be the NAME of an environment variable"
    ):
        LLMConfig(api_key_env="sk-abc-123")


@pytest.mark.ray
def test_same_seed_same_log_with_the_offline_model_in_process_and_on_1_and_3_ray_hosts(
    ray_cluster: object, log_path: Path
) -> None:
    pop = opinions(150)
    runs = [
        launch(
            pop,
            Gossip(fanout=2),
            rounds=3,
            seed=9,
            log=log_path,
            runtime=rt,
            hosts=h,
            llm=LLMConfig(cache=""),
        )
        for rt, h in (("local", 1), ("ray", 1), ("ray", 3))
    ]
    assert [r.hosts for r in runs] == [1, 1, 3]
    hashes = {messages_hash(log_path, r.run_id) for r in runs}
    assert len(hashes) == 1 and next(iter(hashes))[0] == 150 * 3 * 2
    calls = "SELECT agent, round, call, prompt_tokens, completion_tokens FROM llm_calls WHERE run_id = '{}' ORDER BY ALL"
    assert rows(log_path, calls.format(runs[0].run_id)) == rows(log_path, calls.format(runs[2].run_id))
