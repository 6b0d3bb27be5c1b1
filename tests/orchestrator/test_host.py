"""What a host refuses from its agents: non-finite state and values, malformed batches, floods.

Each case runs a real in-process run into a DuckDB file; the error names the agent class,
the agents and the round, and the rounds before the fault stay logged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from agents import Agent, Context, Message, MessageBatch, Population, Uniform
from agents.opinion import average_batch
from orchestrator import AgentError, ConfigError, launch, query
from protocols import Gossip, SmallWorld

FAULT_ROUND = 3


class BatchFaulty(Agent):
    """A vectorised averaging agent that misbehaves in `FAULT_ROUND` as `mode` says."""

    opinion: float = 0.5
    stubbornness: float = 0.5
    mode: ClassVar[str] = "none"

    @classmethod
    def act_batch(cls, state, inbox, ctx):  # type: ignore[no-untyped-def]
        state["opinion"] = average_batch(state["opinion"], inbox, state["stubbornness"])
        values = state["opinion"]
        if ctx.round == FAULT_ROUND and ctx.ids[0] == 0:
            if cls.mode == "nan":
                state["opinion"][:3] = np.nan
            elif cls.mode == "inf":
                state["opinion"][:3] = np.inf
            elif cls.mode == "nanmsg":
                values = values.copy()
                values[:3] = np.nan
            elif cls.mode == "infmsg":
                values = values.copy()
                values[5] = -np.inf
            elif cls.mode == "shortstate":
                state["opinion"] = state["opinion"][:-5]
            elif cls.mode == "shortvalue":
                return MessageBatch.broadcast(ctx.ids, "opinion", values[:-5])
        return MessageBatch.broadcast(ctx.ids, "opinion", values)


def _batch_class(mode: str) -> type[Agent]:
    return type(f"Faulty_{mode}", (BatchFaulty,), {"mode": mode, "__module__": __name__})


def _run(log: Path, pop: Population, **kw: Any) -> Any:
    return launch(
        pop,
        Gossip(SmallWorld(k=4, p=0.2), fanout=2, tolerance=0.0),
        rounds=kw.pop("rounds", 6),
        seed=3,
        log=log,
        runtime="local",
        **kw,
    )


def _failed_with_rounds_kept(log: Path) -> None:
    """The run is marked failed and every round before the fault is in the log."""
    status = query(log, "SELECT status, rounds FROM runs").to_pylist()
    assert status == [{"status": "failed", "rounds": FAULT_ROUND}]
    logged = query(log, "SELECT DISTINCT round FROM metrics ORDER BY round").column("round").to_pylist()
    assert logged == list(range(FAULT_ROUND))


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        (
            "nan",
            "Watched field 'opinion' became NaN for 3 agent(s) of this host in round 3 "
            "(agents 0, 1, 2, first of class Faulty_nan)",
        ),
        (
            "inf",
            "Watched field 'opinion' became infinite for 3 agent(s) of this host in round 3 "
            "(agents 0, 1, 2, first of class Faulty_inf)",
        ),
        ("nanmsg", "Faulty_nanmsg agent(s) 0, 1, 2 sent an opinion message with value NaN in round 3"),
        ("infmsg", "Faulty_infmsg agent(s) 5 sent an infinite value in round 3"),
        (
            "shortstate",
            "Faulty_shortstate.act_batch left state column 'opinion' with shape (195,) in round 3; "
            "it must hold one value per agent of the block (200: agents 0..199)",
        ),
        (
            "shortvalue",
            "Faulty_shortvalue.act_batch returned a MessageBatch whose columns differ in length in round 3 "
            "(sender 200, seq 200, kind 200, value 195, receiver 200; agents 0..199)",
        ),
    ],
)
def test_a_bad_act_batch_stops_the_run_naming_the_class_agents_and_round(
    log_path: Path, mode: str, message: str
) -> None:
    pop = Population.of(_batch_class(mode), 200, opinion=Uniform(0, 1))
    with pytest.raises(AgentError, match=re.escape(message)):
        _run(log_path, pop)
    _failed_with_rounds_kept(log_path)


class PlainNaN(Agent):
    """A plain agent whose opinion becomes NaN (a mean of nothing) in `FAULT_ROUND`."""

    opinion: float = 0.5

    def act(self, inbox: list[Message], ctx: Context) -> Message:
        heard = [m.value for m in inbox if m.value is not None]
        if ctx.round == FAULT_ROUND and self.id == 7:
            heard = []
            self.opinion = sum(heard) / len(heard) if heard else float("nan")
        elif heard:
            self.opinion = 0.5 * self.opinion + 0.5 * sum(heard) / len(heard)
        return Message(kind="opinion", value=self.opinion)


def test_a_plain_agent_whose_watched_field_becomes_nan_stops_the_run(log_path: Path) -> None:
    with pytest.raises(
        AgentError, match=re.escape("became NaN for 1 agent(s) of this host in round 3 (agents 7,")
    ):
        _run(log_path, Population.of(PlainNaN, 100, opinion=Uniform(0, 1)))
    _failed_with_rounds_kept(log_path)


class Flood(Agent):
    """Agent 4 sends `burst` messages in `FAULT_ROUND`; everyone else one."""

    opinion: float = 0.5
    burst: ClassVar[int] = 25

    def act(self, inbox: list[Message], ctx: Context) -> list[Message]:
        n = self.burst if (ctx.round == FAULT_ROUND and self.id == 4) else 1
        return [Message(kind="opinion", value=self.opinion)] * n


def test_a_flood_over_the_cap_fails_with_the_agent_named(log_path: Path) -> None:
    with pytest.raises(
        AgentError,
        match=re.escape(
            "Flood agent(s) 4 sent up to 25 messages in round 3, over the cap of 10 per agent per round"
        ),
    ):
        _run(log_path, Population.of(Flood, 100), message_cap=10)
    _failed_with_rounds_kept(log_path)


def test_a_truncated_flood_keeps_exactly_the_cap_and_says_so(tmp_path: Path) -> None:
    capped = _run(tmp_path / "capped.duckdb", Population.of(Flood, 100), message_cap=10, on_flood="truncate")
    Exact = type("Flood", (Flood,), {"burst": 10, "__module__": __name__})
    exact = _run(tmp_path / "exact.duckdb", Population.of(Exact, 100))
    sql = f"SELECT count(*) AS n FROM messages WHERE sender = 4 AND round = {FAULT_ROUND}"
    assert capped.sql(sql).to_pylist() == exact.sql(sql).to_pylist()
    assert capped.messages == exact.messages
    assert exact.sql(sql).to_pylist()[0]["n"] == 10 * 2  # 10 messages, each to fanout 2
    events = capped.sql("SELECT round, kind, detail FROM events WHERE kind = 'flood'").to_pylist()
    assert events == [
        {
            "round": FAULT_ROUND,
            "kind": "flood",
            "detail": "Flood agent(s) 4 sent up to 25 messages; kept the first 10 of each",
        }
    ]


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ("abc", "seed must be a whole number, got 'abc' (str)"),
        (1.5, "seed must be a whole number, got 1.5 (float)"),
        (True, "seed must be a whole number, got True (bool)"),
        (2**70, f"seed must be in [0, 2**63), got {2**70}"),
        (-1, "seed must be in [0, 2**63), got -1"),
    ],
)
def test_bad_seeds_are_refused_before_anything_starts(log_path: Path, seed: object, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        launch(Population.of(BatchFaulty, 10), Gossip(), seed=seed, log=log_path, runtime="local")  # type: ignore[arg-type]
    assert not log_path.exists()


def test_a_population_larger_than_memory_is_refused_before_anything_starts(log_path: Path) -> None:
    pop = Population.of(BatchFaulty, 2_000_000_000, opinion=Uniform(0, 1))
    assert pop.estimated_bytes() == 2_000_000_000 * 8 * 3  # two fields and the id, 8 bytes each
    with pytest.raises(ConfigError, match=r"A population of 2,000,000,000 agents needs about 44\.7 GiB"):
        launch(pop, Gossip(), log=log_path, runtime="local")
    assert not log_path.exists()


def test_fewer_hosts_than_asked_is_said(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(log_path, Population.of(BatchFaulty, 100, opinion=Uniform(0, 1)), hosts=3, rounds=1)
    assert run.hosts == 2
    assert "moot: 2 host(s), not 3: a host holds at least 64 agents and this population has 100" in (
        capsys.readouterr().err
    )
