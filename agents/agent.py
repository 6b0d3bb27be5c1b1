"""The `Agent` base class: typed state plus one method, `act`."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from agents.context import BatchContext, Context
from agents.message import Message
from agents.reply import Reply

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from agents.batch import Inbox, MessageBatch

__all__ = ["ActResult", "Agent"]

ActResult = Message | Reply | Iterable[Message | Reply] | None
"""What `act` may return: a message or a protocol's reply, several, or none."""


class Agent(BaseModel):
    """An agent: its fields are its state; `act` is its behaviour.

    Subclass it, declare the state as typed fields, and implement `act`, sync or
    async. State can be logged, checkpointed and shown because it is plain data.

    Example:
        >>> class Stubborn(Agent):
        ...     opinion: float = 0.0
        ...     def act(self, inbox, ctx):
        ...         return Message(kind="opinion", value=self.opinion)

    A class may also offer `act_batch`, a classmethod over the states of many
    agents at once as numpy columns (text fields, annotated ``str``, as object
    arrays); hosts use it when the class defines it. That is how rule-based
    populations reach millions.

    Attributes:
        id: Global agent id, set by the engine (-1 until placed).
    """

    model_config = ConfigDict(validate_assignment=False, extra="forbid")

    id: int = -1

    vectorised: ClassVar[bool | None] = None
    """Whether hosts step this class with `act_batch`. None (the default): when the
    class overrides `act_batch`. False forces the one-by-one `act` path."""

    protocol_options: ClassVar[Mapping[str, Mapping[str, object]]] = {}
    """Protocol options the model needs, by protocol name (Deffuant needs gossip's
    pairwise exchange). ``moot run --agent NAME`` uses them unless ``-o`` says otherwise."""

    unlogged: ClassVar[tuple[str, ...]] = ()
    """Fields left out of the ``states`` table: an LLM agent's persona and model (long, and the
    same every round), a learner's model (thousands of numbers). The rest are logged."""

    initial_state: ClassVar[Mapping[str, Any]] = {}
    """Initial state columns for ``moot run --agent NAME`` where ``-a`` gives none
    (the voter model starts from -1/+1, not from a uniform draw)."""

    def act(self, inbox: list[Message], ctx: Context) -> ActResult | Awaitable[ActResult]:
        """Read this round's inbox and return the messages to send.

        Args:
            inbox: Messages received (sent last round), ordered by (sender, seq).
            ctx: Round, seeded rng, neighbours and the protocol's observation.

        Returns:
            A `Message`, an iterable of them, or None. May be a coroutine.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement act(inbox, ctx)")

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch | None:
        """Vectorised `act` over many agents of this class (optional).

        Args:
            state: One numpy column per numeric field; update it in place.
            inbox: The block's messages, grouped by receiver.
            ctx: Round, the block's global ids, counter-based randomness.

        Returns:
            The messages the block sends, or None.
        """
        raise NotImplementedError(f"{cls.__name__} has no act_batch")

    @classmethod
    def uses_batch(cls) -> bool:
        """Whether hosts step this class with `act_batch` (see `vectorised`)."""
        if cls.vectorised is not None:
            return cls.vectorised
        return cls.act_batch.__func__ is not Agent.act_batch.__func__  # type: ignore[attr-defined]

    @classmethod
    def state_fields(cls) -> list[str]:
        """Names of the state fields (every field but `id`)."""
        return [name for name in cls.model_fields if name != "id"]
