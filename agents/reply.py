"""Replies: the typed answers a protocol accepts from an agent.

A protocol publishes its reply models (a move with an optional message; a
stance with an argument; a post, a like, a follow). A rule-based agent builds
one and returns it from `act`; an LLM agent asks its model for one (its JSON
schema) and validates it. The host turns each reply into messages and actions
with `to_messages`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from agents.message import Message, explain
from orchestrator.errors import ConfigError

__all__ = ["Reply"]


class Reply(BaseModel):
    """Base of a protocol's reply models. Subclasses implement `to_messages`.

    Example:
        >>> class Say(Reply):
        ...     text: str
        ...     def to_messages(self):
        ...         return [Message(kind="post", text=self.text)]
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(explain(exc, type(self).__name__, tuple(type(self).model_fields))) from None

    def to_messages(self) -> list[Message]:
        """The messages and actions this reply stands for."""
        raise NotImplementedError(f"{type(self).__name__} must implement to_messages()")
