"""`LLMClient`: what an LLM agent's ``ctx.llm`` offers (implemented by `orchestrator.llm.Gateway`)."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["LLMClient"]


class LLMClient(Protocol):
    """What ``ctx.llm`` offers (implemented by `orchestrator.llm.Gateway`)."""

    reply_attempts: int
    """How many times an agent asks when an answer does not fit the reply model."""

    async def complete(
        self,
        *,
        agent: int,
        round: int,
        messages: list[dict[str, str]],
        model: str,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Any:
        """Ask a model; returns a completion with ``text``, ``ok``, ``error_type``, ``error``."""
        ...

    def reject(self, completion: Any, error_type: str, error: str) -> None:
        """Mark a completion whose answer could not be used."""
        ...

    def note(self, round: int, kind: str, detail: str, agent: int = -1) -> None:
        """Record an event."""
        ...
