"""`launch`: run a population over a protocol, log it, and get a handle to query."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from agents.agent import Agent
from agents.population import Population
from orchestrator.coordinator import ProgressFn, RoundMetrics, run_rounds
from orchestrator.errors import ConfigError
from orchestrator.host import CHUNK
from orchestrator.live import LiveServer
from orchestrator.log import LogWriter, check_log_path, query
from orchestrator.runtime import InProcessRuntime, Runtime
from protocols.base import MessageProtocol
from protocols.registry import get_protocol

__all__ = ["Run", "launch"]

RuntimeName = Literal["ray", "local"]


@dataclass(frozen=True)
class Run:
    """A finished run: its summary, and SQL over its log.

    Attributes:
        run_id: Key of this run in the log's tables.
        log: Path of the DuckDB log.
        rounds: Rounds played.
        messages: Messages delivered (rows in ``messages`` for this run).
        seconds: Wall time of the rounds, set-up included.
        stop_reason: ``"consensus"``, ``"rounds"`` (budget spent), or the protocol's reason.
        final: The last round's metrics (mean, variance, spread, ...).
        n_agents: Population size.
        hosts: Number of hosts.
        nodes: Ray node ids the hosts ran on (``["local"]`` in-process).
        setup_seconds: Part of `seconds` spent before the first round (graph,
            hosts, initial state).
    """

    run_id: str
    log: Path
    rounds: int
    messages: int
    seconds: float
    stop_reason: str
    final: RoundMetrics
    n_agents: int
    hosts: int
    nodes: tuple[str, ...]
    setup_seconds: float = 0.0

    def sql(self, query_text: str) -> pa.Table:
        """Run a read-only query on the log and return Arrow.

        Use ``.to_pandas()`` or ``polars.from_arrow(...)`` for other frames. The
        query sees the whole file; filter on ``run_id`` when it holds many runs.

        Example:
            >>> run.sql("SELECT round, spread FROM consensus_by_round ORDER BY round")
        """
        return query(self.log, query_text)

    def summary(self) -> dict[str, Any]:
        """The run's headline numbers."""
        return {
            "run_id": self.run_id,
            "agents": self.n_agents,
            "hosts": self.hosts,
            "rounds": self.rounds,
            "messages": self.messages,
            "final_spread": self.final.get("spread"),
            "final_mean": self.final.get("mean"),
            "stop_reason": self.stop_reason,
            "seconds": round(self.seconds, 3),
            "messages_per_second": round(self.messages / self.seconds) if self.seconds else None,
            "log": str(self.log),
        }


def _population(population: Population | Sequence[Agent]) -> Population:
    if isinstance(population, Population):
        return population
    if isinstance(population, Sequence) and not isinstance(population, str):
        return Population.from_agents(population)
    raise ConfigError(
        f"population must be a Population or a list of agents, got {type(population).__name__}; "
        "e.g. Population.of(OpinionAgent, 1000, opinion=Uniform(0, 1))."
    )


def _protocol(protocol: MessageProtocol | str) -> MessageProtocol:
    if isinstance(protocol, MessageProtocol):
        return protocol
    if isinstance(protocol, str):
        return get_protocol(protocol)()
    raise ConfigError(
        f"protocol must be a MessageProtocol or a registered name, got {type(protocol).__name__}; "
        "e.g. Gossip(graph='small_world', fanout=2) or 'gossip'."
    )


def launch(
    population: Population | Sequence[Agent],
    protocol: MessageProtocol | str,
    *,
    rounds: int = 100,
    seed: int = 0,
    log: str | os.PathLike[str] = "moot.duckdb",
    runtime: RuntimeName | Runtime | None = None,
    hosts: int | None = None,
    address: str | None = None,
    host_options: Mapping[str, Any] | None = None,
    state_every: int = 10,
    max_concurrency: int = 64,
    run_id: str | None = None,
    progress: ProgressFn | bool | None = None,
) -> Run:
    """Run `population` over `protocol`, log every message to DuckDB, return a `Run`.

    Args:
        population: A `Population` or a list of agents.
        protocol: A protocol object, or the name of a registered one.
        rounds: Round budget; the protocol may stop earlier (e.g. consensus).
        seed: The run's seed. Same seed, same log, whatever the hosts or nodes.
        log: DuckDB file to append to (created if missing).
        runtime: ``"ray"`` (default; a local Ray instance unless `address` is
            given), ``"local"`` (in-process, no Ray), or a `Runtime`.
            ``MOOT_RUNTIME`` sets the default.
        hosts: Number of hosts (shards); default one per CPU (1 in-process).
        address: A Ray cluster to join (``"auto"``, ``"ray://head:10001"``).
            ``MOOT_ADDRESS`` sets the default.
        host_options: Ray resources per host (``{"num_cpus": 1, "num_gpus": 1}``).
        state_every: Log every agent's state every this many rounds (0: first
            and last only).
        max_concurrency: Bound on concurrent async `act` calls per host.
        run_id: Key of the run in the log; default a fresh id.
        progress: A callback ``(round, metrics)``, True for a progress bar, or
            None: a bar when run by ``moot run script.py`` (``MOOT_PROGRESS=1``).

    Returns:
        The finished run's handle; ``run.sql(...)`` queries its log.

    Example:
        >>> from agents import OpinionAgent, Population, Uniform
        >>> from protocols import Gossip
        >>> run = launch(Population.of(OpinionAgent, 10_000, opinion=Uniform()),
        ...              Gossip(fanout=2), rounds=50, seed=7, log="run.duckdb")
        >>> run.sql("SELECT * FROM consensus_by_round").to_pandas()
    """
    pop = _population(population)
    proto = _protocol(protocol)
    if len(pop) == 0:
        raise ConfigError("The population is empty; add agents with Population.of(cls, n).")
    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {rounds}.")
    if hosts is not None and hosts < 1:
        raise ConfigError(f"hosts must be >= 1, got {hosts}.")
    path = check_log_path(log)
    rt = _runtime(runtime or os.environ.get("MOOT_RUNTIME") or "ray", address, host_options)
    n_hosts = max(1, min(hosts or rt.default_hosts(), -(-len(pop) // CHUNK)))  # a host per chunk at most
    rid = run_id or uuid.uuid4().hex[:12]
    config = {
        "protocol": proto.describe(),
        "rounds": rounds,
        "seed": seed,
        "runtime": rt.kind,
        "hosts": n_hosts,
        "state_every": state_every,
        "classes": [c.__name__ for c in pop.classes],
    }
    writer = LogWriter(path)
    live = _serve_live(writer, path)
    bar = None
    if progress is None:
        progress = os.environ.get("MOOT_PROGRESS") == "1"  # set by `moot run script.py`
    if progress is True:
        from orchestrator.progress import RoundBar

        bar = RoundBar(rounds, len(pop))
        callback: ProgressFn | None = bar.update
    else:
        callback = progress or None
    try:
        if bar is not None:
            bar.start()
        result = run_rounds(
            population=pop,
            protocol=proto,
            runtime=rt,
            writer=writer,
            run_id=rid,
            seed=seed,
            rounds=rounds,
            hosts=n_hosts,
            state_every=state_every,
            max_concurrency=max_concurrency,
            config=config,
            progress=callback,
        )
    finally:
        if bar is not None:
            bar.stop()
        rt.shutdown()
        if live is not None:
            live.stop()
        writer.close()
    return Run(
        run_id=result.run_id,
        log=path,
        rounds=result.rounds,
        messages=result.messages,
        seconds=result.seconds,
        stop_reason=result.stop_reason,
        final=result.final,
        n_agents=len(pop),
        hosts=n_hosts,
        nodes=tuple(result.nodes),
        setup_seconds=result.setup_seconds,
    )


def _serve_live(writer: LogWriter, path: Path) -> LiveServer | None:
    """Answer `moot sql` on this log while the run holds it (best effort)."""
    try:
        return LiveServer(writer.con, path).start()
    except OSError:  # e.g. a read-only directory: the run goes on, queries wait for the end
        return None


def _runtime(runtime: str | Runtime, address: str | None, host_options: Mapping[str, Any] | None) -> Runtime:
    if isinstance(runtime, Runtime):
        return runtime
    if runtime == "local":
        if address:
            raise ConfigError(f"address={address!r} needs runtime='ray'; the local runtime runs in-process.")
        return InProcessRuntime()
    if runtime == "ray":
        from orchestrator.ray_runtime import RayRuntime, ensure_ray

        ensure_ray(address)
        return RayRuntime(host_options)
    raise ConfigError(f"Unknown runtime {runtime!r}; use 'ray' or 'local'.")
