"""moot's errors: one small tree. Everything moot raises on purpose is a `MootError`.

They live at the bottom of the import graph (agents imports nothing of moot's
other packages), so that agents, protocols and the orchestrator all raise from
one tree; `orchestrator.errors` and `orchestrator` re-export them.

- `ConfigError`   — the caller's mistake: a bad argument, an unknown protocol name,
  a log path in a missing directory. Fix the call and run again.
- `AgentError`    — an agent misbehaved at run time: returned something that is not
  a Message, addressed an agent that does not exist, raised.
- `ProtocolError` — a protocol misbehaved at run time (a bug in the protocol).
- `LLMError`      — an LLM call failed after retries.
- `LogError`      — the DuckDB log could not be written or read: locked by another
  process, disk full, a query refused.
- `ClusterError`  — Ray could not be started, joined, or lost a host (`HostLost`).

`RunInterrupted` (Ctrl-C or SIGTERM during a run) is a `KeyboardInterrupt`, not a
`MootError`, so that ``except Exception`` does not swallow it.

Errors from Ray, DuckDB and litellm are translated where moot calls them and
chained with ``from``. All errors pickle (they cross actors), so any extra data
is keyword-only.
"""

from __future__ import annotations

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


class MootError(Exception):
    """Root of every error moot raises on purpose."""


class ConfigError(MootError, ValueError):
    """The caller's mistake: fix the argument named in the message."""


class AgentError(MootError):
    """An agent misbehaved while the run was going."""


class ProtocolError(MootError):
    """A protocol misbehaved while the run was going."""


class LLMError(MootError):
    """An LLM call failed after its retries."""


class LogError(MootError):
    """The DuckDB interaction log could not be written or read."""


class QueryRefused(LogError):
    """A user query tried to write, read files or change settings."""


class ClusterError(MootError):
    """Ray could not be started or joined, or a host was lost."""


class HostLost(ClusterError):
    """A host's process died mid-run; the coordinator restarts the hosts from the last checkpoint."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM: marked ``interrupted`` in its log, its rounds so far kept.

    A `KeyboardInterrupt` (not a `MootError`), so that ``except Exception`` in a study
    script does not swallow the user's Ctrl-C; its message names the run, its last
    round and the log.
    """
