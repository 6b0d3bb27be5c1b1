"""Everything that runs: launch API, runtimes, hosts, coordinator, the log, the CLI.

Only this package knows about Ray. Its heavy parts load on first use, so that
`agents` and `protocols` can import `orchestrator.errors` without importing Ray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from orchestrator.errors import (
    AgentError,
    ClusterError,
    ConfigError,
    LLMError,
    LogError,
    MootError,
    ProtocolError,
    QueryRefused,
)

if TYPE_CHECKING:
    from orchestrator.fitting import fit_influence, trajectories
    from orchestrator.launcher import Run, launch, params
    from orchestrator.llm import LLMConfig
    from orchestrator.log import open_log, query
    from orchestrator.message_log import MessageLog
    from orchestrator.sweeps import sweep

__all__ = [
    "AgentError",
    "ClusterError",
    "ConfigError",
    "LLMConfig",
    "LLMError",
    "LogError",
    "MessageLog",
    "MootError",
    "ProtocolError",
    "QueryRefused",
    "Run",
    "fit_influence",
    "launch",
    "open_log",
    "params",
    "query",
    "sweep",
    "trajectories",
]

_LAZY = {
    "LLMConfig": "orchestrator.llm",
    "MessageLog": "orchestrator.message_log",
    "Run": "orchestrator.launcher",
    "fit_influence": "orchestrator.fitting",
    "trajectories": "orchestrator.fitting",
    "launch": "orchestrator.launcher",
    "open_log": "orchestrator.log",
    "params": "orchestrator.launcher",
    "query": "orchestrator.log",
    "sweep": "orchestrator.sweeps",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
