"""The one message type, and the core message kinds.

Kinds are open: the core ones below are always known, and a protocol declares
its own (`MessageProtocol.kinds`). A message of a kind its run does not use is
refused when the agent sends it, naming the agent and the kinds there are.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.errors import ConfigError
from agents.vector import Vector

__all__ = ["KINDS", "KIND_PATTERN", "Message", "MessageKind", "explain"]

MessageKind = Literal["opinion", "argument", "vote", "post", "move", "reply", "signal"]
"""The core message kinds, known to every run (a protocol may add its own)."""

KINDS: tuple[str, ...] = get_args(MessageKind)
"""The core kinds, in code order: a run's kind table starts with them."""

KIND_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


class Message(BaseModel):
    """One message between agents.

    An agent fills in what it means (kind, value, text, payload, and a receiver if
    it addresses someone directly); the engine fills in where it sits in the run
    (round, sender, seq) and the protocol. ``(round, sender, seq)`` is the
    message's stable id.

    Example:
        >>> Message(kind="opinion", value=0.25)  # routed by the protocol
        Message(kind='opinion', value=0.25, ...)
        >>> Message(kind="argument", text="I disagree", receiver=3)
        Message(kind='argument', ...)

    Attributes:
        kind: What the message is: a core kind (`KINDS`) or one its protocol declares.
        value: A number, where the protocol needs one (an opinion, a vote).
        text: Free text (an argument, a post).
        payload: Any JSON-serialisable data.
        receiver: The agent addressed; None lets the protocol route it.
        topic: A topic or group instead of a single receiver.
        round: Round the message was sent in (set by the engine).
        sender: Sending agent id (set by the engine).
        seq: Index among the sender's messages this round (set by the engine).
        weight: The weight its receiver gives the sender, from the graph's edge
            weights (set by the engine when the protocol has them; else None).
        vector: A vector of numbers (a multidimensional opinion, a model's parameters), as a
            numpy array; every message vector of a run has the same length.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(pattern=KIND_PATTERN)
    value: float | None = None
    text: str | None = None
    payload: dict[str, Any] | None = None
    receiver: int | None = Field(default=None, ge=0)
    topic: str | None = None
    round: int = -1
    sender: int = -1
    seq: int = 0
    weight: float | None = None
    vector: Vector | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(explain(exc, "Message", _SETTABLE)) from None


_SETTABLE = ("kind", "value", "text", "payload", "receiver", "topic", "vector")


def explain(exc: ValidationError, model: str, fields: tuple[str, ...]) -> str:
    """One line per problem, naming the field, the value and the fix (not pydantic's wall of text)."""
    lines = []
    for e in exc.errors():
        field = ".".join(str(p) for p in e.get("loc", ())) or "message"
        value = e.get("input")
        if field == "kind" and e["type"] in ("string_pattern_mismatch", "string_type"):
            lines.append(
                f"kind {value!r} is not a kind name (lowercase letters, digits, _); "
                f"e.g. one of: {', '.join(KINDS)}"
            )
        elif e["type"] == "extra_forbidden":
            lines.append(f"unknown field {field!r}; a {model} has: {', '.join(fields)}")
        elif e["type"] == "missing":
            example = (
                "e.g. Message(kind='opinion', value=0.5)" if model == "Message" else f"see {model}'s fields"
            )
            lines.append(f"{field} is required, {example}")
        else:
            lines.append(f"{field}={value!r}: {e['msg']}")
    return f"Invalid {model}: " + "; ".join(lines) + "."
