"""moot's LLM layer: every call through litellm, inside moot's own limits.

- `LLMConfig`: settings (model override, endpoint, in-flight bound, rpm/tpm,
  timeout, retries, budget, cache).
- `LLMService`: the run's cluster-wide rate ledger, budget and response cache.
- `Gateway`: the client each host hands its agents as ``ctx.llm``.
- `offline`: ``moot/echo`` and ``moot/simulated``, models that need no network
  (``moot/simulated`` is a seeded stand-in, not a language model).
"""

from __future__ import annotations

from typing import Protocol

from orchestrator.llm.config import LLMConfig
from orchestrator.llm.gateway import Completion, Gateway, LLMSetup, LocalLink, ServiceLink
from orchestrator.llm.service import LLMService

__all__ = [
    "Completion",
    "Gateway",
    "LLMConfig",
    "LLMService",
    "LLMSetup",
    "LocalService",
    "ServiceHandle",
    "ServiceLink",
]


class ServiceHandle(Protocol):
    """The driver's handle on the run's `LLMService`, wherever it runs."""

    link: ServiceLink

    def totals(self) -> dict[str, float]:
        """Calls admitted and dollars spent so far."""
        ...

    def close(self) -> None:
        """Close the cache and stop the service."""
        ...


class LocalService:
    """The run's service in the driver's process (the in-process runtime)."""

    def __init__(self, service: LLMService) -> None:
        self.service = service
        self.link: ServiceLink = LocalLink(service)

    def totals(self) -> dict[str, float]:
        return self.service.totals()

    def close(self) -> None:
        self.service.close()
