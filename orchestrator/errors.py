"""moot's error tree, defined in `agents.errors` (the bottom of the import graph) and
re-exported here, where users have always imported it from."""

from agents.errors import (
    AgentError,
    ClusterError,
    ConfigError,
    HostLost,
    LLMError,
    LogError,
    MootError,
    ProtocolError,
    QueryRefused,
    RunInterrupted,
)

__all__ = [
    "AgentError",
    "ClusterError",
    "ConfigError",
    "HostLost",
    "LLMError",
    "LogError",
    "MootError",
    "ProtocolError",
    "QueryRefused",
    "RunInterrupted",
]
