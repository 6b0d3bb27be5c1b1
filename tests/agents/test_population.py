from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import Field

from agents import Agent, Choice, Context, Message, Normal, OpinionAgent, Population, Uniform
from agents.population import parse_column
from orchestrator.errors import ConfigError


class Talker(Agent):
    mood: float = 1.0

    def act(self, inbox, ctx):  # type: ignore[no-untyped-def]
        return Message(kind="post", text="hi")


def test_blocks_do_not_depend_on_sharding() -> None:
    pop = Population.of(OpinionAgent, 1000, opinion=Uniform(-1, 1)) + Population.of(
        OpinionAgent, 24, opinion=Normal(0, 2), stubbornness=1.0
    )
    whole = pop.blocks(0, 1024, seed=3)
    split = pop.blocks(0, 500, seed=3) + pop.blocks(500, 1024, seed=3)
    for name in ("opinion", "stubbornness"):
        a = np.concatenate([b.state[name] for b in whole])
        b = np.concatenate([b.state[name] for b in split])
        assert np.array_equal(a, b)
    assert len(pop) == 1024 and whole[1].state["stubbornness"].tolist() == [1.0] * 24
    assert whole[0].state["opinion"].min() >= -1 and whole[0].state["opinion"].max() < 1


def test_plain_classes_become_objects_with_ids() -> None:
    pop = Population.of(Talker, 5, mood=np.arange(5.0))
    (block,) = pop.blocks(2, 5, seed=0)
    assert block.agents is not None
    assert [(a.id, a.mood) for a in block.agents] == [(2, 2.0), (3, 3.0), (4, 4.0)]


def test_from_agents_groups_by_class() -> None:
    pop = Population.from_agents([Talker(), Talker(), OpinionAgent(opinion=0.3)])
    assert [g.n for g in pop.groups] == [2, 1] and pop.classes == [Talker, OpinionAgent]


def test_unknown_field_names_the_fields() -> None:
    with pytest.raises(
        ConfigError, match=r"OpinionAgent has no state field 'opnion'; its fields are: opinion, stubbornness"
    ):
        Population.of(OpinionAgent, 3, opnion=0.1)


def test_wrong_column_length() -> None:
    with pytest.raises(ConfigError, match="Column 'opinion' has 2 values for 3 agents"):
        Population.of(OpinionAgent, 3, opinion=[0.1, 0.2])


class Chatty(Agent):
    name: str = "anon"
    history: list[str] = Field(default_factory=list)
    mood: float = 0.5

    def act(self, inbox, ctx):  # type: ignore[no-untyped-def]
        return None


def test_plain_classes_keep_non_numeric_defaults() -> None:
    (block,) = Population.of(Chatty, 3, mood=Uniform(0, 1)).blocks(0, 3, seed=1)
    assert block.agents is not None
    assert [(a.name, a.history) for a in block.agents] == [("anon", [])] * 3
    assert block.agents[0].history is not block.agents[1].history
    assert all(0 <= a.mood < 1 for a in block.agents)


class Wordy(OpinionAgent):
    label: str = "x"


class Listy(OpinionAgent):
    tags: list[str] = Field(default_factory=list)


def test_batch_classes_hold_numbers_and_text_only() -> None:
    (block,) = Population.of(Wordy, 3).blocks(0, 3, seed=0)
    assert block.state["label"].tolist() == ["x", "x", "x"]  # text: an object column
    with pytest.raises(
        ConfigError,
        match=r"Listy.tags is list\[str\]; a class with act_batch holds numbers and text \(fields annotated str\) only",
    ):
        Population.of(Listy, 3).blocks(0, 3, seed=0)


def test_invalid_initial_state_is_named() -> None:
    from tests.orchestrator.helpers import PlainOpinion

    with pytest.raises(
        ConfigError,
        match=r"Population.of\(PlainOpinion, ...\) got invalid state \{'stubbornness': 2.0\}: "
        r"stubbornness: Input should be less than or equal to 1 \(got 2.0\)",
    ):
        Population.of(PlainOpinion, 2, stubbornness=2.0)
    with pytest.raises(
        ConfigError, match=r"Agent 1 \(PlainOpinion\) got invalid initial state \{'stubbornness': 3.0\}"
    ):
        Population.of(PlainOpinion, 2, stubbornness=[0.5, 3.0]).blocks(0, 2, seed=0)


def test_vectorised_columns_are_checked_like_the_plain_path() -> None:
    """Bug 1: the vectorised path took stubbornness=2.0 and the spread reached 1e6."""
    from agents import OpinionAgent

    with pytest.raises(ConfigError, match=r"stubbornness: Input should be less than or equal to 1"):
        Population.of(OpinionAgent, 100, opinion=Uniform(0, 1), stubbornness=2.0)
    with pytest.raises(
        ConfigError,
        match=r"^OpinionAgent.stubbornness must be <= 1.0, but agent 2 has 1.5 \(2 of 4 agents out of range",
    ):
        Population.of(OpinionAgent, 4, stubbornness=np.array([0.1, 0.2, 1.5, 1.2]))
    with pytest.raises(ConfigError, match=r"^OpinionAgent.stubbornness must be >= 0.0, but agent 3 has -1.0"):
        Population.of(OpinionAgent, 4, stubbornness=np.array([0.1, 0.2, 0.5, -1.0]))
    # A distribution is drawn on the host: checked there, with the same message.
    pop = Population.of(OpinionAgent, 50, stubbornness=Uniform(0.5, 1.5))
    u = Uniform(0.5, 1.5).draw(0, np.arange(50, dtype=np.int64), 1)
    first = int(np.flatnonzero(u > 1.0)[0])
    with pytest.raises(ConfigError, match=rf"but agent {first} has .*\({int((u > 1).sum())} of 50 agents"):
        pop.blocks(0, 50, seed=0)


class Counted(Agent):
    n: int = Field(default=0, ge=0)
    flag: bool = False

    @classmethod
    def act_batch(cls, state, inbox, ctx):  # type: ignore[no-untyped-def]
        return None


def test_int_and_bool_columns_must_hold_whole_numbers() -> None:
    whole = r"Counted.n must be a whole number \(an int\), but agent 1 has 2.5"
    with pytest.raises(ConfigError, match=whole):
        Population.of(Counted, 3, n=np.array([1.0, 2.5, 3.0]))
    with pytest.raises(ConfigError, match=r"Counted.flag must be 0 or 1 \(a bool\), but agent 0 has 2.0"):
        Population.of(Counted, 2, flag=np.array([2.0, 1.0]))
    assert len(Population.of(Counted, 2, n=np.array([1.0, 2.0]), flag=np.array([0.0, 1.0]))) == 2


class Partisan(Agent):
    """A plain agent with a text attribute."""

    party: str = "none"
    opinion: float = 0.5

    def act(self, inbox: list[Message], ctx: Context) -> Message:
        return Message(kind="opinion", value=self.opinion)


class BatchPartisan(Agent):
    """The same on the vectorised path: its party is an object column of str."""

    party: str = "none"
    opinion: float = 0.5

    @classmethod
    def act_batch(cls, state, inbox, ctx):  # type: ignore[no-untyped-def]
        assert state["party"].dtype == object
        return ctx.broadcast("opinion", np.where(state["party"] == "A", 0.0, 1.0))


class NumericParty(Agent):
    """The twin with a numeric party in the same field position (the same seeded draw)."""

    party: float = 0.0
    opinion: float = 0.5

    def act(self, inbox: list[Message], ctx: Context) -> Message:
        return Message(kind="opinion", value=self.opinion)


def test_text_attributes_are_drawn_alike_on_both_paths_and_logged_as_text(tmp_path: Path) -> None:
    from orchestrator import launch

    def parties(cls: type[Agent], choice: Choice) -> list[tuple[int, object]]:
        run = launch(
            Population.of(cls, 300, party=choice),
            "gossip",
            rounds=1,
            seed=4,
            log=tmp_path / f"{cls.__name__}.duckdb",
            runtime="local",
        )
        rows = run.sql(
            "SELECT agent, text, value FROM states WHERE field = 'party' AND round = -1 ORDER BY agent"
        )
        return [(r["agent"], r["text"] if r["value"] is None else r["value"]) for r in rows.to_pylist()]

    plain = parties(Partisan, Choice(["A", "B"], (0.3, 0.7)))
    batch = parties(BatchPartisan, Choice(["A", "B"], (0.3, 0.7)))
    numbers = parties(NumericParty, Choice((0.0, 1.0), (0.3, 0.7)))
    assert plain == batch
    assert [(a, "AB"[int(v)]) for a, v in numbers] == plain  # the same draw, read as text
    share = sum(t == "A" for _, t in plain) / 300
    assert abs(share - 0.3) < 4 * (0.3 * 0.7 / 300) ** 0.5


def test_choice_of_text_from_the_command_line() -> None:
    assert parse_column("choice:A,B") == Choice(("A", "B"))
    assert parse_column("choice:left,right:0.2,0.8") == Choice(("left", "right"), (0.2, 0.8))
    assert parse_column("choice:-1,1") == Choice((-1.0, 1.0))
