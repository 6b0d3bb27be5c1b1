"""The protocol interface: pure policy, no I/O.

A `MessageProtocol` says who may talk to whom, how messages are routed, and when
a run is done. `build` compiles it, once per run, into a `Router`: a small,
picklable object of numpy arrays that every host holds and calls each round.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from agents.batch import MessageBatch
from protocols.stop import StopRule

__all__ = ["MessageProtocol", "Router"]


class Router(ABC):
    """Routes one host's outgoing messages each round. Must pickle; must be pure."""

    @abstractmethod
    def route(self, outbox: MessageBatch, round: int, seed: int) -> MessageBatch:
        """Turn outgoing messages into delivered ones (receiver filled, one row each).

        Args:
            outbox: Messages from one host's agents, ordered by (sender, seq);
                receiver -1 means "the protocol decides".
            round: The round they are sent in.
            seed: The run's seed (draws must be counter-based on it).

        Returns:
            Delivered messages, ordered by (sender, seq).
        """

    def neighbours(self, agent: int) -> NDArray[np.int64]:
        """Agents that `agent` may talk to (shown to plain agents as `ctx.neighbours`)."""
        return np.empty(0, np.int64)

    def describe(self) -> dict[str, object]:
        """What the compiled protocol is (a graph's size and content hash), logged in ``runs.config``."""
        return {}


class MessageProtocol(ABC):
    """Base for protocols. Subclasses set `name` and implement `build`.

    Protocols are found by name through the entry-point group ``moot.protocols``.
    """

    name: ClassVar[str]
    instructions: ClassVar[str] = ""
    default_field: ClassVar[str | None] = None
    """The numeric state field watched when the population has it and none is named."""

    @abstractmethod
    def build(self, n_agents: int, seed: int) -> Router:
        """Compile the protocol for a run of `n_agents` agents with this seed."""

    def stop_rule(self, field: str | None) -> StopRule | None:
        """The protocol's own stop rule, given the field the run watches (None: none).

        `launch(stop=...)` replaces it. The round budget applies either way.
        """
        return None

    @property
    def field(self) -> str | None:
        """The numeric state field the user asked to watch, if any (see `default_field`)."""
        return None

    def describe(self) -> dict[str, object]:
        """The protocol's settings, as logged in the ``runs`` table."""
        return {"name": self.name}
