"""The runtime interface, and the in-process runtime (no Ray) for tests and tiny runs.

Both runtimes drive the same `Host` code, so they give the same log for the
same seed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.batch import MessageBatch
from orchestrator.aggregates import Received
from orchestrator.checkpoint import write_files
from orchestrator.host import Host, HostSpec, RoundResult, StepParts
from orchestrator.llm import LLMService, LocalService, ServiceHandle
from orchestrator.log.segments import Segment

__all__ = ["HostPlacement", "InProcessRuntime", "Runtime", "world_metrics"]

HostPlacement = tuple[int, str]
"""(host index, node id) for each host."""


class Runtime(ABC):
    """Where hosts live and how a round is played across them."""

    kind: str
    built: list[dict[str, Any]] | None = None
    """What each host reported building of a deferred router (`Router.deferred`), else None."""

    def prepare(self, hosts: int) -> None:  # noqa: B027 - optional hook
        """Start `hosts` empty hosts ahead of `start` (overlaps their start-up with set-up)."""

    @abstractmethod
    def start(self, spec: HostSpec) -> list[HostPlacement]:
        """Create the hosts and their shards; return where each host landed."""

    @abstractmethod
    def step(self, round: int, trace: dict[str, str] | None = None) -> RoundResult:
        """Play one round on every host (and, with a world, apply its actions everywhere).

        `trace` is the round span's context (W3C headers), handed to every host's step.
        """

    @abstractmethod
    def states(self, round: int) -> Callable[[], list[Segment | None]]:
        """Has every host write its agents' state as a segment; the returned function waits
        for them and returns what they wrote (called on the writer thread)."""

    @abstractmethod
    def write_agents(self) -> list[Segment | None]:
        """Has every host write its rows of ``agents``; returns the segments."""

    @abstractmethod
    def checkpoint(self, tmp: str) -> None:
        """Has every host write its part of a checkpoint into folder `tmp` (`Host.save_checkpoint`),
        with the messages in flight to it; the driver writes the parts of hosts whose node does
        not see the folder."""

    @abstractmethod
    def read_segments(self, wanted: dict[int, list[str]]) -> dict[int, list[bytes]]:
        """Per host, the bytes of the segments asked for (one call per host, all at once)."""

    def default_hosts(self) -> int:
        """How many hosts to use when the caller does not say."""
        return 1

    def llm_service(self, **options: Any) -> ServiceHandle:
        """Start the run's `LLMService` (`options` are its arguments): here, in this process;
        the Ray runtime puts it in a small actor on the driver's node."""
        return LocalService(LLMService(**options))

    def shutdown(self, keep: bool = False) -> None:  # noqa: B027 - optional hook
        """Release the hosts. `keep`: the run ended well, so a runtime that can may keep their
        processes for this process's next run (the Ray runtime's idle hosts)."""


def world_metrics(per_host: list[dict[str, float]]) -> dict[str, float]:
    """The world's metrics (host 0 reports them) and ``heard``, summed over the hosts."""
    return {**per_host[0], "heard": sum(m["heard"] for m in per_host)}


class InProcessRuntime(Runtime):
    """Hosts as plain objects in this process, stepped one after another."""

    kind = "local"

    def __init__(self) -> None:
        self.hosts: list[Host] = []
        self._last: list[tuple[MessageBatch, ...]] = []
        self._world = False
        self._once = False

    def start(self, spec: HostSpec) -> list[HostPlacement]:
        self.hosts = [Host(h, spec) for h in range(spec.hosts)]
        self.built = None
        if spec.router.deferred:
            sent = [host.plan_router() for host in self.hosts]
            shared = [s[0] for s in sent]
            self.built = [
                host.finish_router(*shared, *(s[1 + h] for s in sent)) for h, host in enumerate(self.hosts)
            ]
        self._world = spec.router.world is not None
        self._once = spec.router.world is not None and spec.router.world.apply_once
        empty = MessageBatch.empty()
        self._last = [tuple(empty for _ in self.hosts) for _ in self.hosts]
        return [(h, "local") for h in range(len(self.hosts))]

    def step(self, round: int, trace: dict[str, str] | None = None) -> RoundResult:
        n = len(self.hosts)
        results: list[StepParts[Any]] = [
            StepParts.split(
                host.step(round, *(self._last[src][h] for src in range(n)), trace=trace), n, self._world
            )
            for h, host in enumerate(self.hosts)
        ]
        self._last = [tuple(r.outboxes) for r in results]
        world: dict[str, float] = {}
        written = [seg for r in results for seg in r.stats.segments]
        to_world: list[MessageBatch] = [r.to_world for r in results if r.to_world is not None]
        applied: list[tuple[Any, ...]] = []
        if self._world:
            applied = self._apply(round, to_world)
            world = world_metrics([a[1] for a in applied])
            written += [seg for a in applied for seg in a[2]]

        def tally() -> tuple[list[Received], list[dict[int, int]]]:  # (aggregated messages only)
            heard = [a[0] for a in applied] or [MessageBatch.empty()] * n
            counted = [
                host.tally(*(r.outboxes[h] for r in results), heard[h]) for h, host in enumerate(self.hosts)
            ]
            sent = [host.count_senders(*(c[1 + h] for c in counted)) for h, host in enumerate(self.hosts)]
            return [c[0] for c in counted], sent

        return RoundResult([r.stats for r in results], tally, world, lambda: written)

    def _apply(self, round: int, to_world: list[MessageBatch]) -> list[tuple[Any, ...]]:
        """Every host's world takes the round: each applies it, or (`World.apply_once`) host 0
        applies it and the others take its state."""
        first, *rest = self.hosts
        if not self._once:
            return [host.apply(round, *to_world) for host in self.hosts]
        *done, state = first.apply(round, *to_world, lead=True)
        return [tuple(done)] + [host.follow(round, state, *to_world) for host in rest]

    def states(self, round: int) -> Callable[[], list[Segment | None]]:
        written = [h.write_states(round) for h in self.hosts]
        return lambda: written

    def write_agents(self) -> list[Segment | None]:
        return [h.write_agents() for h in self.hosts]

    def checkpoint(self, tmp: str) -> None:
        n = len(self.hosts)
        for h, host in enumerate(self.hosts):
            write_files(Path(tmp), host.save_checkpoint(tmp, *(self._last[src][h] for src in range(n))))

    def read_segments(self, wanted: dict[int, list[str]]) -> dict[int, list[bytes]]:
        return {h: self.hosts[h].read_segments(files) for h, files in wanted.items()}

    def shutdown(self, keep: bool = False) -> None:
        for h in self.hosts:
            h.close()
