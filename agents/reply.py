"""Replies: the typed answers a protocol accepts from an agent.

A protocol publishes its reply models (a move with an optional message; a
stance with an argument; a post, a like, a follow). A rule-based agent builds
one and returns it from `act`; an LLM agent asks its model for one (its JSON
schema) and validates it. The host turns each reply into messages and actions
with `to_messages`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from agents.errors import ConfigError
from agents.message import Message, explain

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

    _known: ClassVar[dict[str, type[Reply]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Reply._known[cls.__name__] = cls

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(explain(exc, type(self).__name__, tuple(type(self).model_fields))) from None

    def to_messages(self) -> list[Message]:
        """The messages and actions this reply stands for."""
        raise NotImplementedError(f"{type(self).__name__} must implement to_messages()")

    def state(self) -> dict[str, Any]:
        """State this reply sets on the agent that gave it (an opinion, a belief).

        An `LLMAgent` applies the entries it has fields for; the default sets nothing.
        """
        return {}

    @classmethod
    def simulate(cls, prompt: str, rng: np.random.Generator) -> dict[str, Any]:
        """What the offline stand-in model (``moot/simulated``) answers for this reply.

        It is not a language model: a protocol overrides this with a few lines that
        read the prompt and play the protocol plausibly. The default fills the
        reply's JSON schema with seeded values (a choice among allowed values, a
        number in [0, 1], a short text).
        """
        schema = cls.model_json_schema()
        return {name: _fill(spec, schema, rng) for name, spec in schema.get("properties", {}).items()}

    @staticmethod
    def named(name: str) -> type[Reply] | None:
        """The reply class called `name` (any imported protocol's), or None."""
        return Reply._known.get(name)


def _fill(spec: dict[str, Any], schema: dict[str, Any], rng: np.random.Generator) -> Any:
    """A value that fits one property of a JSON schema."""
    if "$ref" in spec:
        spec = schema.get("$defs", {}).get(spec["$ref"].rsplit("/", 1)[-1], {})
    if "anyOf" in spec:
        options = [o for o in spec["anyOf"] if o.get("type") != "null"] or spec["anyOf"]
        return _fill(options[0], schema, rng)
    if "enum" in spec:
        return spec["enum"][int(rng.integers(len(spec["enum"])))]
    if "const" in spec:
        return spec["const"]
    kind = spec.get("type")
    lo = spec.get("minimum", spec.get("exclusiveMinimum", 0.0))
    hi = spec.get("maximum", spec.get("exclusiveMaximum", 1.0))
    if kind == "number":
        return float(lo + (hi - lo) * rng.random())
    if kind == "integer":
        return int(rng.integers(int(lo), int(hi) + 1))
    if kind == "boolean":
        return bool(rng.random() < 0.5)
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return "simulated"
