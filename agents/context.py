"""What an agent sees when it acts: `Context` for one agent, `BatchContext` for many."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from agents.errors import ConfigError
from agents.message import KINDS
from agents.observation import Observation
from agents.rng import agent_rng, counter_integers, counter_uniform, scalar_head, scalar_uniform

if TYPE_CHECKING:
    from agents.batch import MessageBatch
    from agents.client import LLMClient
    from agents.reply import Reply

__all__ = ["BatchContext", "Context"]

_AGENT_STREAM = 1
T = TypeVar("T")
ObservationT = TypeVar("ObservationT", bound=Observation)


@dataclass(frozen=True, slots=False)
class Context:
    """The world as one agent sees it in one round.

    Randomness comes two ways. ``ctx.uniform()``, ``ctx.integers(high)`` and
    ``ctx.choice(items)`` are cheap counter-based draws (about a microsecond
    each): the k-th draw of an agent in a round equals ``BatchContext.uniform(k)``
    for that agent, so a plain and a vectorised version of a model draw the same
    numbers. ``ctx.rng`` is a full numpy Generator for anything else (it costs
    tens of microseconds to make, once per agent and round, on first use).

    Attributes:
        round: The current round (0 is the first).
        agent_id: This agent's global id.
        seed: The run's seed.
        neighbours: Ids of the agents this one may hear from / talk to.
        observation: The protocol's `Observation` (a grid patch, a feed); None if it has no
            world. ``ctx.view(GridView)`` returns it typed.
        instructions: What the protocol asks of agents, in words (for LLM agents).
        replies: The protocol's reply models (an LLM agent asks its model for one).
        llm: The run's LLM client (`agents.client.LLMClient`), when the run has LLM agents.
    """

    round: int
    agent_id: int
    seed: int
    neighbours: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    observation: Observation | None = None
    instructions: str = ""
    replies: tuple[type[Reply], ...] = ()
    llm: LLMClient | None = None

    def view(self, kind: type[ObservationT]) -> ObservationT:
        """The observation as the protocol's own type (``ctx.view(GridView)``), or a clear
        error when this agent runs on a protocol that shows something else."""
        seen = self.observation
        if not isinstance(seen, kind):
            shown = "nothing (it has no world)" if seen is None else type(seen).__name__
            raise ConfigError(
                f"Agent {self.agent_id} expects a {kind.__name__}, but this run's protocol shows it "
                f"{shown}; run it with the protocol that makes {kind.__name__}s."
            )
        return seen

    @cached_property
    def rng(self) -> np.random.Generator:
        """This agent's generator for this round, derived from (seed, agent id, round).

        Made on first use only: most agents never draw, and a Generator costs
        more than a simple agent's whole turn.
        """
        return agent_rng(self.seed, self.agent_id, self.round)

    def _next_draw(self, draw: int | None) -> int:
        if draw is None:
            draw = self.__dict__.get("_draws", 0)
            self.__dict__["_draws"] = draw + 1
        return draw

    def uniform(self, draw: int | None = None) -> float:
        """A uniform float in [0, 1): the next counter-based draw (or draw number `draw`)."""
        d = self._next_draw(draw)
        return scalar_uniform(scalar_head(self.seed, self.round, d, _AGENT_STREAM), self.agent_id)

    def integers(self, high: int, draw: int | None = None) -> int:
        """An integer in [0, high), from the next counter-based draw (as `BatchContext.integers`)."""
        if high < 1:
            raise ValueError(f"integers(high) needs high >= 1, got {high}.")
        return min(int(self.uniform(draw) * high), high - 1)

    def choice(self, items: Sequence[T], draw: int | None = None) -> T:
        """One of `items`, uniformly, from the next counter-based draw."""
        if not items:
            raise ValueError("choice() needs a non-empty sequence.")
        return items[self.integers(len(items), draw)]


@dataclass(frozen=True, slots=True)
class BatchContext:
    """The world as a block of same-class agents sees it, for `Agent.act_batch`.

    Attributes:
        round: The current round.
        ids: Global ids of the agents in the block (ascending).
        seed: The run's seed.
        observation: The protocol's view of the world for these agents, as
            arrays with one row per agent (empty when the protocol has no world).
        kinds: The run's kind table (core kinds first, then the protocol's).
    """

    round: int
    ids: NDArray[np.int64]
    seed: int
    observation: Mapping[str, NDArray[Any]] = field(default_factory=dict)
    kinds: tuple[str, ...] = KINDS

    def kind_code(self, kind: str) -> int:
        """The code of `kind` in this run (for building a `MessageBatch` by hand)."""
        try:
            return self.kinds.index(kind)
        except ValueError:
            raise ConfigError(
                f"Kind {kind!r} is not used in this run; its kinds are: {', '.join(self.kinds)}."
            ) from None

    def broadcast(
        self,
        kind: str,
        value: NDArray[np.float64] | None = None,
        senders: NDArray[np.int64] | None = None,
        *,
        vector: NDArray[np.floating[Any]] | None = None,
    ) -> MessageBatch:
        """One message of `kind` per agent of the block (or per `senders`), routed by the protocol;
        `vector` gives each a vector (``(len(ids), dim)``, e.g. a vector state column)."""
        from agents.batch import MessageBatch

        self.kind_code(kind)  # a clear error for a kind this run does not use
        ids = self.ids if senders is None else senders
        return MessageBatch.broadcast(ids, kind, value, kinds=self.kinds, vector=vector)

    def uniform(self, draw: int = 0) -> NDArray[np.float64]:
        """One uniform float in [0, 1) per agent; same value whatever the sharding."""
        return counter_uniform(self.seed, self.round, self.ids, draw, stream=_AGENT_STREAM)

    def integers(self, high: NDArray[np.int64] | int, draw: int = 0) -> NDArray[np.int64]:
        """One integer in [0, high) per agent; same value whatever the sharding."""
        return counter_integers(self.seed, self.round, self.ids, high, draw, stream=_AGENT_STREAM)
