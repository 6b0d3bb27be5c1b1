"""The Ray runtime: hosts as Ray actors, spread over the cluster's nodes.

One actor per host (thousands of agents each), never one per agent. Each round
the coordinator makes one call per host; a host returns one object per
destination host, and those object refs are handed, unopened, to the
destination's next call. Ray errors are translated here, at one boundary.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from agents.batch import MessageBatch
from orchestrator.aggregates import Received
from orchestrator.checkpoint import write_files
from orchestrator.errors import ClusterError, HostLost, MootError
from orchestrator.host import Host, HostSpec, HostStats, RoundResult, StepParts
from orchestrator.llm import LLMService, ServiceHandle, ServiceLink
from orchestrator.llm.service import Admission, Request, Settlement
from orchestrator.log.segments import Segment
from orchestrator.runtime import HostPlacement, Runtime, world_metrics

__all__ = ["RayRuntime", "ensure_ray"]


class _HostActor(Host):
    """A host in its own process. Made empty, so its process starts while the driver still
    builds the graph; `setup` then hands it its shard."""

    def __init__(self) -> None:
        pass

    def setup(self, index: int, spec: HostSpec) -> str:
        Host.__init__(self, index, spec)
        self.node = str(ray.get_runtime_context().get_node_id())
        return self.node

    def idle(self) -> None:
        """Close the host and drop its shard, to wait for another run's `setup`."""
        self.close()
        self.__dict__.clear()


_IDLE: dict[tuple[str, str, str], list[Any]] = {}
"""Host actors a finished run left idle, by (Ray job, node, host options): the next run in this
process takes them instead of starting new processes."""
_IDLE_MAX = 64
"""Most idle hosts kept per node and options."""


class _RayLink:
    """A host's way to the run's `LLMService` actor (one call per batch of admissions)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def admit(self, requests: list[Request], settle: list[Settlement]) -> list[Admission]:
        try:
            answer: list[Admission] = await self.actor.admit.remote(requests, settle)
        except ray.exceptions.RayError as exc:
            raise _unwrap(exc) from exc
        return answer


class RayService:
    """The run's `LLMService` in one small actor on the driver's node, shared by every host."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        here = ray.get_runtime_context().get_node_id()
        self.actor: Any = (
            ray.remote(LLMService)
            .options(  # type: ignore[attr-defined]
                num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)
            )
            .remote(**options)
        )
        self.link: ServiceLink = _RayLink(self.actor)

    def totals(self) -> dict[str, float]:
        result: dict[str, float] = _get([self.actor.totals.remote()])[0]
        return result

    def close(self) -> None:
        try:
            ray.get(self.actor.close.remote())
        finally:
            ray.kill(self.actor)


def ensure_ray(address: str | None = None) -> bool:
    """Connect to Ray: join `address` (``auto``, ``ray://...``, ``host:port``) or start a local instance.

    Returns:
        True if this call started or joined Ray, False if it was already up.
    """
    if ray.is_initialized():
        return False
    # Join a cluster only when asked (RAY_ADDRESS is how `ray job submit` asks). Left
    # to itself, ray.init() also joins whatever /tmp/ray/ray_current_cluster names,
    # and waits forever if that cluster is gone; "local" always starts a fresh one.
    address = address or os.environ.get("MOOT_ADDRESS") or os.environ.get("RAY_ADDRESS") or None
    if address:
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address, log_to_driver=True)
        else:
            _quiet_token_auth()
            # Ray 2.60 turns token authentication on for a new local instance (a test holds it):
            # its processes listen on every interface, and the token is their guard. (Setting
            # RAY_AUTH_MODE here would be too late: Ray reads it when it is imported.)
            ray.init(address="local", include_dashboard=False, log_to_driver=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
        fix = (
            "start one with `ray start --head`, check the address, or drop --address to run locally"
            if address
            else "check that nothing else holds Ray's ports, or run with runtime='local'"
        )
        raise ClusterError(f"Could not reach {where}: {exc}; {fix}.") from exc
    return True


class _TokenAuthNote(logging.Filter):
    """Ray 2.60 turns token authentication on for every new local instance (good) and warns
    about it on every run (noise). Keep the protection; replace the warning by one quiet
    line per process."""

    said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "Token authentication is enabled" not in record.getMessage():
            return True
        if not _TokenAuthNote.said:
            _TokenAuthNote.said = True
            print(
                "moot: local Ray with token authentication on (only holders of ~/.ray/auth_token may "
                "connect; RAY_AUTH_MODE=disabled turns it off)",
                file=sys.stderr,
            )
        return False


def local_cluster_address() -> str:
    """Start (or reuse) this process's Ray instance; its GCS address, for other processes to join."""
    ensure_ray(None)
    return str(ray.get_runtime_context().gcs_address)


def _check_reachable(address: str) -> None:
    """A ``host:port`` address that refuses or does not answer fails in seconds, not minutes
    (Ray itself retries for over two minutes before it gives up)."""
    host, sep, port = address.rpartition(":")
    if not sep or address == "auto" or "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as exc:
        raise ClusterError(
            f"Could not reach the Ray cluster at {address!r}: {exc}; start one with `ray start --head`, "
            "check the address, or drop --address to run locally."
        ) from exc


def _quiet_token_auth() -> None:
    log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    if not any(isinstance(f, _TokenAuthNote) for f in log.filters):
        log.addFilter(_TokenAuthNote())


def _unwrap(exc: BaseException) -> BaseException:
    """The moot error a Ray error carries, if any."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause
        if isinstance(cause, MootError):
            return cause
    if isinstance(exc, ray.exceptions.RayActorError):
        return HostLost(
            f"A host actor died: {exc}; see the Ray logs of its node. The log keeps every round so far."
        )
    return exc


def _get(refs: list[Any]) -> list[Any]:
    """ray.get, with moot errors unwrapped. Results are taken in order, so when several
    hosts fail the error raised is the first host's, not the quickest's."""
    try:
        return [ray.get(r) for r in refs]
    except ray.exceptions.RayError as exc:
        raise _unwrap(exc) from exc


class RayRuntime(Runtime):
    """Hosts as Ray actors.

    Args:
        host_options: Ray actor options for each host (``num_cpus``, ``num_gpus``,
            ``resources``, ``memory``), so a heavy agent can have a host of its own.
    """

    kind = "ray"

    def __init__(self, host_options: Mapping[str, Any] | None = None) -> None:
        self.host_options = dict(host_options or {"num_cpus": 0})
        self.actors: list[Any] = []
        self._last: list[list[Any]] = []
        self._world = False
        self._leader: list[int] = []  # per host, the host that applies the world on its node
        self._placed: list[str] = []  # per host, its node
        self._reused = False  # some hosts came from `_IDLE`
        self._llm = False

    def default_hosts(self) -> int:
        """One host per CPU of the cluster."""
        return max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]

    def llm_service(self, **options: Any) -> ServiceHandle:
        """The run's `LLMService` in an actor on this (the driver's) node."""
        return RayService(options)

    def _nodes(self) -> list[str]:
        alive = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
        with_cpu = [n for n in alive if n.get("Resources", {}).get("CPU", 0) > 0] or alive
        return sorted(n["NodeID"] for n in with_cpu)

    def prepare(self, hosts: int, fresh: bool = False) -> None:
        """Start the host processes now (or, unless `fresh`, take idle ones: `_IDLE`); they get
        their shards in `start`."""
        if self.actors:
            return
        nodes = self._nodes()
        actor_cls = ray.remote(_HostActor)
        self.actors = []
        self._reused = False
        for h in range(hosts):
            strategy = self._strategy(h, nodes)
            idle = None if self._reserves() or fresh else _IDLE.get(self._idle_key(nodes[h % len(nodes)]))
            self._reused = self._reused or bool(idle)
            self.actors.append(
                idle.pop()
                if idle
                else actor_cls.options(  # type: ignore[attr-defined]
                    scheduling_strategy=strategy, max_concurrency=1, **self.host_options
                ).remote()
            )

    def _reserves(self) -> bool:
        """Whether each host asks for resources (a CPU, a GPU, a label): then it is placed by Ray
        and never kept idle, where it would hold them."""
        return any(self.host_options.get(k) for k in ("num_cpus", "num_gpus", "resources", "memory"))

    def _idle_key(self, node: str) -> tuple[str, str, str]:
        """Which idle hosts can serve: this Ray job's, on `node`, made with the same options."""
        job = ray.get_runtime_context().get_job_id()
        if _IDLE and next(iter(_IDLE))[0] != job:  # a new Ray session: the old handles are dead
            _IDLE.clear()
        return job, node, repr(sorted(self.host_options.items()))

    def start(self, spec: HostSpec) -> list[HostPlacement]:
        hosts = spec.hosts
        if len(self.actors) != hosts:
            self.shutdown()
            self.prepare(hosts)
        spec_ref = ray.put(spec)
        self._world = spec.router.world is not None
        try:
            placed = _get([a.setup.remote(h, spec_ref) for h, a in enumerate(self.actors)])
        except HostLost:
            if not self._reused:
                raise
            self.shutdown()  # an idle host's process died while it waited: start new ones
            self.prepare(hosts, fresh=True)
            placed = _get([a.setup.remote(h, spec_ref) for h, a in enumerate(self.actors)])
        self._placed = placed
        # Hosts that called models are not kept: litellm keeps clients bound to their event loop.
        self._llm = spec.llm is not None
        first = {node: h for h, node in reversed(list(enumerate(placed)))}
        once = spec.router.world is not None and spec.router.world.apply_once
        self._leader = [first[node] if once else h for h, node in enumerate(placed)]
        self.built = None
        if spec.router.deferred:  # each host builds its part; the parts go host to host
            sent = [a.plan_router.options(num_returns=1 + hosts).remote() for a in self.actors]
            shared = [s[0] for s in sent]
            self.built = _get(
                [
                    a.finish_router.remote(*shared, *(s[1 + h] for s in sent))
                    for h, a in enumerate(self.actors)
                ]
            )
        self._empty = ray.put(MessageBatch.empty())
        self._last = [[self._empty] * hosts for _ in range(hosts)]
        return list(enumerate(placed))

    def _strategy(self, h: int, nodes: list[str]) -> Any:
        """Round-robin over alive nodes for resource-free hosts; Ray's SPREAD when hosts ask
        for resources (a GPU, a label), so a host never waits on a node that lacks them.

        Hard affinity: with soft affinity and zero resources Ray may pile hosts on one node.
        """
        if self._reserves():
            return "SPREAD"
        return NodeAffinitySchedulingStrategy(nodes[h % len(nodes)], soft=False)

    def step(self, round: int, trace: dict[str, str] | None = None) -> RoundResult:
        hosts = len(self.actors)
        returns = StepParts.returns(hosts, self._world)
        refs: list[StepParts[Any]] = [
            StepParts.split(
                actor.step.options(num_returns=returns).remote(
                    round, *(self._last[src][h] for src in range(hosts)), trace=trace
                ),
                hosts,
                self._world,
            )
            for h, actor in enumerate(self.actors)
        ]
        self._last = [r.outboxes for r in refs]
        world: dict[str, float] = {}
        world_refs: list[Any] = []
        heard_refs: list[Any] = []
        segment_refs: list[Any] = []
        if self._world:
            # Every host applies every host's actions to its replica; Ray hands over the
            # refs, and each host runs apply(r) after its own step(r) and before step(r+1).
            world_refs = [r.to_world for r in refs]
            applied = self._apply(round, world_refs)
            heard_refs = [a[0] for a in applied]
            metric_refs = [a[1] for a in applied]
            segment_refs = [a[2] for a in applied]
        stats: list[HostStats] = _get([r.stats for r in refs])
        if self._world:
            world = world_metrics(_get(metric_refs))
        actors, heard = self.actors, heard_refs or [self._empty] * hosts

        def tally() -> tuple[list[Received], list[dict[int, int]]]:
            # Host to host: each counts what it heard, each sender host ORs its bitmaps.
            counted = [
                a.tally.options(num_returns=1 + hosts).remote(*(r.outboxes[d] for r in refs), heard[d])
                for d, a in enumerate(actors)
            ]
            sent = [a.count_senders.remote(*(c[1 + h] for c in counted)) for h, a in enumerate(actors)]
            return _get([c[0] for c in counted]), _get(sent)

        def written() -> list[Segment]:
            return [seg for s in stats for seg in s.segments] + [
                seg for segs in _get(segment_refs) for seg in segs
            ]

        return RoundResult(stats, tally, world, written)

    def _apply(self, round: int, world_refs: list[Any]) -> list[list[Any]]:
        """Each node's first host applies the round (`World.apply_once`) and the node's other
        hosts take its world's state from the object store; otherwise every host applies it."""
        applied: list[list[Any]] = [[] for _ in self.actors]
        for h, actor in enumerate(self.actors):
            if self._leader[h] == h:
                lead = self._leader.count(h) > 1
                applied[h] = actor.apply.options(num_returns=4 if lead else 3).remote(
                    round, *world_refs, lead=lead
                )
        for h, actor in enumerate(self.actors):
            if self._leader[h] != h:
                state = applied[self._leader[h]][3]
                applied[h] = actor.follow.options(num_returns=3).remote(round, state, *world_refs)
        return applied

    def states(self, round: int) -> Callable[[], list[Segment | None]]:
        refs = [a.write_states.remote(round) for a in self.actors]
        return lambda: _get(refs)

    def write_agents(self) -> list[Segment | None]:
        return _get([a.write_agents.remote() for a in self.actors])

    def checkpoint(self, tmp: str) -> None:
        hosts = len(self.actors)
        sent = _get(
            [
                a.save_checkpoint.remote(tmp, *(self._last[src][h] for src in range(hosts)))
                for h, a in enumerate(self.actors)
            ]
        )
        for files in sent:  # from hosts on nodes without the log's storage
            write_files(Path(tmp), files)

    def read_segments(self, wanted: dict[int, list[str]]) -> dict[int, list[bytes]]:
        hosts = list(wanted)
        got = _get([self.actors[h].read_segments.remote(wanted[h]) for h in hosts])
        return dict(zip(hosts, got))

    def shutdown(self, keep: bool = False) -> None:
        """Kill the hosts; with `keep` (the run ended well), hosts that hold no resources and
        called no model are closed and kept idle for this process's next run, which then skips
        starting their processes (about a second a host)."""
        kept: list[tuple[Any, str]] = []
        if keep and self._placed and not self._reserves() and not self._llm:
            try:
                _get([a.idle.remote() for a in self.actors])
                kept = list(zip(self.actors, self._placed))
            except (MootError, ray.exceptions.RayError):
                kept = []
        for a in self.actors:
            if not any(a is k for k, _ in kept):
                ray.kill(a)
        for a, node in kept:
            idle = _IDLE.setdefault(self._idle_key(node), [])
            if len(idle) < _IDLE_MAX:
                idle.append(a)
            else:
                ray.kill(a)
        self.actors = []
        self._placed = []
        self._last = []
