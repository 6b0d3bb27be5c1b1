"""The runtime interface, and the in-process runtime (no Ray) for tests and tiny runs.

Both runtimes drive the same `Host` code, so they give the same log for the
same seed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import pyarrow as pa

from agents.batch import MessageBatch
from orchestrator.host import Host, HostSpec, HostStats

__all__ = ["HostPlacement", "InProcessRuntime", "Runtime"]

HostPlacement = tuple[int, str]
"""(host index, node id) for each host."""


class Runtime(ABC):
    """Where hosts live and how a round is played across them."""

    kind: str

    def prepare(self, hosts: int) -> None:  # noqa: B027 - optional hook
        """Start `hosts` empty hosts ahead of `start` (overlaps their start-up with set-up)."""

    @abstractmethod
    def start(self, spec: HostSpec) -> list[HostPlacement]:
        """Create the hosts and their shards; return where each host landed."""

    @abstractmethod
    def step(self, round: int) -> tuple[list[HostStats], Callable[[], MessageBatch]]:
        """Play one round on every host.

        Returns:
            Each host's statistics, and a function fetching all messages delivered
            this round (called later, on the log writer's thread).
        """

    @abstractmethod
    def states(self, round: int) -> Callable[[], list[pa.Table]]:
        """A function fetching every host's state snapshot (called on the writer thread)."""

    @abstractmethod
    def blocks(self) -> list[tuple[int, list[tuple[str, int, int]]]]:
        """(host, [(class, first id, end id)]) per host, for the `agents` table."""

    def default_hosts(self) -> int:
        """How many hosts to use when the caller does not say."""
        return 1

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release the hosts."""


class InProcessRuntime(Runtime):
    """Hosts as plain objects in this process, stepped one after another."""

    kind = "local"

    def __init__(self) -> None:
        self.hosts: list[Host] = []
        self._last: list[tuple[MessageBatch, ...]] = []

    def start(self, spec: HostSpec) -> list[HostPlacement]:
        self.hosts = [Host(h, spec) for h in range(spec.hosts)]
        empty = MessageBatch.empty()
        self._last = [tuple(empty for _ in self.hosts) for _ in self.hosts]
        return [(h, "local") for h in range(len(self.hosts))]

    def step(self, round: int) -> tuple[list[HostStats], Callable[[], MessageBatch]]:
        results = [
            host.step(round, *(self._last[src][h] for src in range(len(self.hosts))))
            for h, host in enumerate(self.hosts)
        ]
        self._last = [r[:-1] for r in results]
        delivered = MessageBatch.concat([b for r in results for b in r[:-1]])
        return [r[-1] for r in results], lambda: delivered

    def states(self, round: int) -> Callable[[], list[pa.Table]]:
        tables = [h.states(round) for h in self.hosts]
        return lambda: tables

    def blocks(self) -> list[tuple[int, list[tuple[str, int, int]]]]:
        return [h.placement() for h in self.hosts]
