"""Worlds: a protocol's state, updated once per round from the agents' actions.

Gossip needs no state beyond its graph. A swarm grid, a social feed or a debate
does: positions and walls, posts and follows, the question a society argues
about. Such a protocol's `Router` carries a `World`.

- **State** is numpy arrays, so it can be shipped and checkpointed.
- **Actions** are messages whose kind the protocol declares an action kind (a
  move, a post, a like). They are addressed to the world, not to an agent.
- **Replicas.** Every host keeps a copy of the world and applies every host's
  actions, in global (sender, seq) order, so all copies stay equal and
  observations are computed where the agents live. Host 0's copy reports the
  world's metrics.
- **Round order.** Agents of round r observe the world as round r-1's actions
  left it and read the messages sent in round r-1; then round r's actions are
  applied, the world's metrics for round r are taken, and messages the world
  delivers (to the agents within view, say) are delivered for round r+1. So
  every agent decides from the same snapshot, as in SwarmBench and OASIS.

A world is plain Python and numpy: it never sees Ray, and its `apply` must be a
pure function of its state and the actions (no clock, no global randomness:
draw with `agents.rng.counter_uniform` keyed by the run's seed and the round).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from agents.batch import MessageBatch
from agents.observation import Observation

__all__ = ["Observation", "World"]


class World(ABC):
    """A protocol's state, replicated on every host; see the module docstring.

    Subclasses implement `apply`, `observe` and `observe_batch`; `deliver` and
    `metrics` are optional.
    """

    @abstractmethod
    def apply(self, actions: MessageBatch, round: int, kinds: tuple[str, ...]) -> None:
        """Apply round `round`'s actions, in the (sender, seq) order they come in.

        Args:
            actions: Every agent's actions of the round (all hosts), kind codes
                indexing `kinds`.
            round: The round they were taken in.
            kinds: The run's kind table (``kinds[code]`` is a kind's name).

        Raises:
            AgentError: An action the world cannot take (name the agent and the fix).
        """

    @abstractmethod
    def observe(self, agent: int, round: int) -> Observation | None:
        """What agent `agent` sees at the start of `round` (plain agents' ``ctx.observation``)."""

    def observe_batch(self, ids: NDArray[np.int64], round: int) -> Mapping[str, NDArray[Any]]:
        """What agents `ids` see, as arrays (vectorised agents' ``ctx.observation``)."""
        return {}

    def deliver(self, messages: MessageBatch, lo: int, hi: int, round: int) -> MessageBatch:
        """Deliver round `round`'s broadcast messages to the agents in ``[lo, hi)`` that hear them.

        Called after `apply`, with every host's broadcasts (receiver -1) in
        (sender, seq) order. Returns one row per (message, receiver) in
        (sender, seq, receiver) order. The default delivers nothing.
        """
        return MessageBatch.empty()

    def state_columns(self, ids: NDArray[np.int64]) -> Mapping[str, NDArray[np.float64]]:
        """Per-agent world state logged in ``states`` beside the agents' own fields (a position)."""
        return {}

    def metrics(self, round: int) -> dict[str, float]:
        """The world's metrics after round `round`'s actions (written to ``metrics``)."""
        return {}

    def describe(self) -> dict[str, object]:
        """The world's initial set-up, as logged in ``runs.config`` (a layout, a seed's quirks)."""
        return {}

    apply_once: ClassVar[bool] = False
    """Whether one host a node may apply each round for the others, which then take its state
    (`snapshot`, `restore`) instead of applying it again. True for a world whose state is its
    attributes and whose other methods only read them (or set attributes that `apply` resets)."""

    def snapshot(self) -> dict[str, Any]:
        """The world's state after `apply` (its attributes), for the other hosts of the node."""
        return dict(vars(self))

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take the state of another host's world (`snapshot`). Arrays that arrive read-only
        (Ray hands shared memory) are copied, so that this host's world stays its own."""
        vars(self).update(
            {
                k: v.copy() if isinstance(v, np.ndarray) and not v.flags.writeable else v
                for k, v in state.items()
            }
        )
