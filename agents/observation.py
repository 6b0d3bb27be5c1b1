"""`Observation`: what one agent sees of its protocol's world in one round (``ctx.observation``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.message import Message

__all__ = ["Observation"]


class Observation(ABC):
    """What one agent sees of the world in one round (``ctx.observation``).

    A typed object whose fields a rule-based agent reads (``ctx.view(GridView)``),
    and which renders itself as text for an LLM agent. Protocols subclass it
    (`protocols.swarm_grid.GridView`, ...).
    """

    @abstractmethod
    def render(self) -> str:
        """The observation as text, as the protocol shows it to a language model."""

    def render_inbox(self, messages: Sequence[Message]) -> str | None:
        """The messages heard, as the protocol shows them to a model (anonymous, say);
        None: an LLM agent lists them its own way."""
        return None

    def acts(self) -> bool:
        """Whether the agent is asked to act this round (a feed user may be inactive)."""
        return True
