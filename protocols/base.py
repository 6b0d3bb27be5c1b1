"""The protocol interface: pure policy, no I/O.

A `MessageProtocol` says who may talk to whom, how messages are routed, what
each agent observes, and when a run is done. `build` compiles it, once per run,
into a `Router`: a small, picklable object of numpy arrays that every host holds
and calls each round. A protocol with state (a grid, a feed, a debate) gives its
router a `World` (see `protocols.world`), which every host replicates.

A protocol also declares what its runs need beyond routing:

- `kinds`: its own message kinds (the core kinds are always there), and which
  of them are `action_kinds`: messages to the world, not to an agent;
- `replies`: the pydantic reply models its agents may return;
- `views()`: SQL views it ships into the log;
- `default_population(n)`: what ``moot run --protocol NAME --agents N`` runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from agents.batch import MessageBatch
from agents.errors import AgentError, ConfigError
from agents.message import KINDS
from protocols.stop import StopRule

if TYPE_CHECKING:
    from agents.agent import Agent
    from agents.population import Population
    from agents.reply import Reply
    from protocols.world import World

__all__ = ["DirectRouter", "MessageProtocol", "Router", "check_receivers"]


class Router(ABC):
    """Routes one host's outgoing messages each round. Must pickle; must be pure.

    Attributes:
        world: The protocol's world in its initial state, or None. Each host
            works on its own copy.
    """

    world: World | None = None

    @abstractmethod
    def route(self, outbox: MessageBatch, round: int, seed: int) -> MessageBatch:
        """Turn outgoing messages into delivered ones (receiver filled, one row each).

        Args:
            outbox: Messages from one host's agents, ordered by (sender, seq);
                receiver -1 means "the protocol decides". With a world, only
                messages addressed to an agent come here: broadcasts go to the
                world (`World.deliver`), actions to `World.apply`.
            round: The round they are sent in.
            seed: The run's seed (draws must be counter-based on it).

        Returns:
            Delivered messages, ordered by (sender, seq).
        """

    def neighbours(self, agent: int) -> NDArray[np.int64]:
        """Agents that `agent` may talk to (shown to plain agents as `ctx.neighbours`)."""
        return np.empty(0, np.int64)

    def edge_weights(
        self, sender: NDArray[np.int64], receiver: NDArray[np.int64]
    ) -> NDArray[np.float64] | None:
        """The weight each receiver gives each delivered message's sender (None: the protocol has none).

        Called by the receiving host; agents see it as ``inbox.weight`` and ``Message.weight``.
        """
        return None

    def describe(self) -> dict[str, object]:
        """What the compiled protocol is (a graph's size and content hash), logged in ``runs.config``."""
        return {} if self.world is None else {"world": self.world.describe()}

    # -- routers whose heavy part each host builds for itself (a graph's rows) --------------

    @property
    def deferred(self) -> bool:
        """Whether each host builds its own part (`plan_shard`, then `finish_shard`) before round 0."""
        return False

    def plan_shard(
        self, lo: int, hi: int, bounds: NDArray[np.int64], seed: int
    ) -> tuple[Any, Any, list[Any]]:
        """Phase 1 in host ``[lo, hi)``: build what this host can alone. Returns (its state, what every
        host needs from it, and one payload per host, in host order)."""
        raise NotImplementedError

    def finish_shard(self, state: Any, shared: list[Any], mine: list[Any]) -> tuple[Router, dict[str, Any]]:
        """Phase 2: with every host's shared part and the payloads addressed here (host order),
        return this host's router and a small summary for `describe_built`."""
        raise NotImplementedError

    def describe_built(self, built: list[dict[str, Any]]) -> dict[str, object]:
        """`describe`, from the summaries the hosts returned by `finish_shard`."""
        raise NotImplementedError


class DirectRouter(Router):
    """Delivers messages addressed to an agent, as they are; for protocols whose world routes the rest.

    Args:
        n: Number of agents.
        world: The protocol's world.
    """

    def __init__(self, n: int, world: World | None) -> None:
        self.n = n
        self.world = world

    def route(self, outbox: MessageBatch, round: int, seed: int) -> MessageBatch:
        check_receivers(outbox.sender, outbox.receiver, self.n)
        return outbox


def check_receivers(send: NDArray[np.int64], recv: NDArray[np.int64], n: int) -> None:
    """Refuse messages addressed to agents that do not exist, naming the first one.

    Raises:
        AgentError: A receiver outside ``0..n-1``.
    """
    bad = (recv < 0) | (recv >= n)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AgentError(
            f"Agent {send[i]} sent a message to agent {recv[i]}, which does not exist "
            f"(agents are 0..{n - 1}); address an existing agent or leave receiver=None "
            "for the protocol to route."
        )


class MessageProtocol(ABC):
    """Base for protocols. Subclasses set `name` and implement `build`.

    Protocols are found by name through the entry-point group ``moot.protocols``.
    """

    name: ClassVar[str]
    instructions: ClassVar[str] = ""
    default_field: ClassVar[str | None] = None
    """The numeric state field watched when the population has it and none is named."""
    default_messages: ClassVar[str | None] = None
    """How messages are logged when the run does not say (None: every one)."""
    kinds: ClassVar[tuple[str, ...]] = ()
    """Message kinds this protocol adds to the core ones (`agents.KINDS`)."""
    action_kinds: ClassVar[tuple[str, ...]] = ()
    """Kinds that are actions on the world (applied by `World.apply`, never delivered to agents)."""
    replies: tuple[type[Reply], ...] = ()
    """The reply models agents may return from `act` (an LLM agent asks its model for one)."""

    @abstractmethod
    def build(self, n_agents: int, seed: int) -> Router:
        """Compile the protocol for a run of `n_agents` agents with this seed."""

    def build_in_hosts(self, n_agents: int, seed: int) -> Router | None:
        """A router whose heavy part each host builds for itself (`Router.deferred`), or None
        (the default): then the run uses `build`, in the driver. Same routing either way."""
        return None

    def stop_rule(self, field: str | None) -> StopRule | None:
        """The protocol's own stop rule, given the field the run watches (None: none).

        `launch(stop=...)` replaces it. The round budget applies either way.
        """
        return None

    @property
    def field(self) -> str | None:
        """The numeric state field the user asked to watch, if any (see `default_field`)."""
        return None

    def kind_table(self) -> tuple[str, ...]:
        """The run's kinds: the core kinds, then this protocol's (a message's code indexes it)."""
        extra = tuple(dict.fromkeys(k for k in (*self.kinds, *self.action_kinds) if k not in KINDS))
        if len(KINDS) + len(extra) > 255:
            raise ConfigError(
                f"{self.name} declares {len(extra)} kinds; a run holds at most {255 - len(KINDS)}."
            )
        return KINDS + extra

    def views(self) -> Mapping[str, str]:
        """SQL views this protocol ships into the log: ``{name: SELECT ...}``."""
        return {}

    def macros(self) -> Mapping[str, str]:
        """SQL table macros this protocol ships into the log: ``{"name(arg, ...)": SELECT ...}``."""
        return {}

    def watched_fields(self) -> tuple[str, ...]:
        """Numeric fields whose statistics are logged every round as ``field.mean``,
        ``field.variance``, ``field.min``, ``field.max``, ``field.spread`` (those the population has),
        besides the watched field's."""
        return ()

    def natural_size(self) -> int | None:
        """How many agents this protocol's set-up holds (a network's people, its scenes' players),
        which ``moot run`` uses when ``--agents`` is not given; None: any number."""
        return None

    def default_population(self, n: int, agent: type[Agent] | None = None, **state: Any) -> Population:
        """The population ``moot run --protocol NAME --agents n`` runs (``--agent`` picks the class,
        ``-a field=value`` sets state). Protocols with built-in agents override it."""
        raise ConfigError(
            f"Protocol {self.name!r} has no built-in population; write a study script that builds one "
            "with Population.of(...) and calls launch()."
        )

    def describe(self) -> dict[str, object]:
        """The protocol's settings, as logged in the ``runs`` table."""
        return {"name": self.name}
