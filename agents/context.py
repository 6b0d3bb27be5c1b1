"""What an agent sees when it acts: `Context` for one agent, `BatchContext` for many."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from agents.rng import agent_rng, counter_integers, counter_uniform

__all__ = ["BatchContext", "Context"]

_AGENT_STREAM = 1


@dataclass(frozen=True, slots=False)
class Context:
    """The world as one agent sees it in one round.

    Attributes:
        round: The current round (0 is the first).
        agent_id: This agent's global id.
        seed: The run's seed.
        neighbours: Ids of the agents this one may hear from / talk to.
        observation: Protocol-specific view (a grid patch, a feed); None if unused.
        instructions: What the protocol asks of agents, in words (for LLM agents).
    """

    round: int
    agent_id: int
    seed: int
    neighbours: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    observation: Any = None
    instructions: str = ""

    @cached_property
    def rng(self) -> np.random.Generator:
        """This agent's generator for this round, derived from (seed, agent id, round).

        Made on first use only: most agents never draw, and a Generator costs
        more than a simple agent's whole turn.
        """
        return agent_rng(self.seed, self.agent_id, self.round)


@dataclass(frozen=True, slots=True)
class BatchContext:
    """The world as a block of same-class agents sees it, for `Agent.act_batch`.

    Attributes:
        round: The current round.
        ids: Global ids of the agents in the block (ascending).
        seed: The run's seed.
    """

    round: int
    ids: NDArray[np.int64]
    seed: int

    def uniform(self, draw: int = 0) -> NDArray[np.float64]:
        """One uniform float in [0, 1) per agent; same value whatever the sharding."""
        return counter_uniform(self.seed, self.round, self.ids, draw, stream=_AGENT_STREAM)

    def integers(self, high: NDArray[np.int64] | int, draw: int = 0) -> NDArray[np.int64]:
        """One integer in [0, high) per agent; same value whatever the sharding."""
        return counter_integers(self.seed, self.round, self.ids, high, draw, stream=_AGENT_STREAM)
