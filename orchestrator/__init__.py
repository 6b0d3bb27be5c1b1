"""Everything that runs: launch API, runtimes, hosts, coordinator, the log, the CLI.

Only `orchestrator.ray_runtime` knows about Ray (imported when a run first needs it).
The error tree is defined in `agents.errors`, at the bottom of the import graph, and
re-exported here.
"""

from __future__ import annotations

from orchestrator.checkpoint import Snapshot
from orchestrator.durable import fork, resume
from orchestrator.errors import (
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
from orchestrator.estimate import Estimate, estimate
from orchestrator.fitting import fit_influence, trajectories
from orchestrator.interview import interview
from orchestrator.launcher import Run, launch, params
from orchestrator.llm import LLMConfig
from orchestrator.log import open_log, query
from orchestrator.message_log import MessageLog
from orchestrator.sweeps import sweep

__all__ = [
    "AgentError",
    "ClusterError",
    "ConfigError",
    "Estimate",
    "HostLost",
    "LLMConfig",
    "LLMError",
    "LogError",
    "MessageLog",
    "MootError",
    "ProtocolError",
    "QueryRefused",
    "Run",
    "RunInterrupted",
    "Snapshot",
    "estimate",
    "fit_influence",
    "fork",
    "interview",
    "launch",
    "open_log",
    "params",
    "query",
    "resume",
    "sweep",
    "trajectories",
]
