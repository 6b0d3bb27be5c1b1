"""`launch`: run a population over a protocol, log it, and get a handle to watch and query."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from agents.agent import Agent
from agents.llm import LLMAgent
from agents.population import Choice, Population
from agents.vector import vector_spec
from orchestrator.coordinator import (
    ForkPoint,
    ProgressFn,
    RoundMetrics,
    RunControl,
    RunPlan,
    RunResult,
    StartPoint,
    run_rounds,
)
from orchestrator.errors import ConfigError
from orchestrator.host import CHUNK
from orchestrator.live import LiveServer, answer
from orchestrator.llm import LLMConfig
from orchestrator.log import LogWriter, check_log_path, query
from orchestrator.log.segments import check_store
from orchestrator.message_log import MessageLog
from orchestrator.run_log import check_new_run_id
from orchestrator.runtime import InProcessRuntime, Runtime
from orchestrator.telemetry import trace_mode
from protocols.base import MessageProtocol
from protocols.registry import get_protocol
from protocols.stop import StopFn, StopRule, stop_rule

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["CLI_OVERRIDES", "Run", "launch", "params"]

RuntimeName = Literal["ray", "local"]

CLI_OVERRIDES = "MOOT_CLI_OVERRIDES"
"""Environment variable through which `moot run script.py --log ... --seed ...` reaches
every `launch` in the script (JSON: log, seed, rounds, hosts, state_every, messages, stop, trace, llm,
run_id, checkpoint_every)."""

_PARAMS = "MOOT_PARAMS"


def params() -> dict[str, Any]:
    """The parameters given on the command line (``moot run script.py -p eps=0.1``).

    A script reads them to set up its study; every `launch` in it records them
    in ``runs.params`` as well.

    Example:
        >>> eps = orchestrator.params().get("eps", 0.2)
    """
    return _env_json(_PARAMS)


def _env_json(name: str) -> dict[str, Any]:
    """A JSON object the `moot` command passed through environment variable `name`."""
    raw = os.environ.get(name)
    return dict(json.loads(raw)) if raw else {}


class Run:
    """A run: live while it plays, then its results; SQL over its log either way.

    `launch` returns it when the run is over, or at once with ``wait=False``; then
    `round` and `metrics` show progress, `sql` queries what is logged so far, and
    `wait` blocks until the end (re-raising the run's error, if any).

    Attributes:
        run_id: Key of this run in the log's tables.
        log: Path of the DuckDB log.
        n_agents: Population size.
        hosts: Number of hosts.
    """

    def __init__(
        self, run_id: str, log: Path, n_agents: int, hosts: int, control: RunControl, writer: LogWriter
    ) -> None:
        self.run_id = run_id
        self.log = log
        self.n_agents = n_agents
        self.hosts = hosts
        self._control = control
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._writer: LogWriter | None = writer  # while the run holds the log
        self._lock = threading.Lock()  # the writer is closed under it, and live queries hold it

    # -- while it runs --

    @property
    def round(self) -> int:
        """The last round completed so far (-1 before the first)."""
        return self._control.round

    @property
    def metrics(self) -> RoundMetrics:
        """The metrics of the last round completed so far."""
        return dict(self._control.metrics)

    def done(self) -> bool:
        """Whether the run has ended (finished, stopped or failed)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run ends; raise its error if it failed.

        Raises:
            TimeoutError: `timeout` seconds passed first.
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"Run {self.run_id} still going after {timeout} s (round {self.round}).")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, reason: str = "stopped by user") -> None:
        """Ask the run to stop after the round in progress; `reason` becomes its stop reason."""
        self._control.request_stop(reason)

    # -- results (these wait for the end) --

    @property
    def result(self) -> RunResult:
        self.wait()
        assert self._result is not None
        return self._result

    @property
    def rounds(self) -> int:
        """Rounds played."""
        return self.result.rounds

    @property
    def messages(self) -> int:
        """Messages delivered (whether or not each has a row in ``messages``)."""
        return self.result.messages

    @property
    def seconds(self) -> float:
        """Wall time of the run, set-up included."""
        return self.result.seconds

    @property
    def stop_reason(self) -> str:
        """``"consensus"``, ``"stationary"``, ``"rounds"`` (budget spent), a rule's own reason."""
        return self.result.stop_reason

    @property
    def final(self) -> RoundMetrics:
        """The last round's metrics (mean, variance, spread, ...)."""
        return self.result.final

    @property
    def nodes(self) -> tuple[str, ...]:
        """Ray node ids the hosts ran on (``("local",)`` in-process)."""
        return tuple(self.result.nodes)

    @property
    def setup_seconds(self) -> float:
        """Part of `seconds` spent before the first round (graph, hosts, initial state)."""
        return self.result.setup_seconds

    def sql(self, query_text: str, *, all_runs: bool = False) -> pa.Table:
        """Run a read-only query on this run's log and return Arrow.

        Every table and view answers about this run only (the tables are scoped to
        its ``run_id``), so a log that holds many runs needs no ``WHERE run_id``.
        ``all_runs=True`` sees the whole file. Works while the run is live, too.
        Use ``.to_pandas()`` or, with polars installed, ``polars.from_arrow(...)``.

        Example:
            >>> run.sql("SELECT round, spread FROM consensus_by_round ORDER BY round")
        """
        scope = None if all_runs else self.run_id
        with self._lock:
            if self._writer is not None:
                cur = self._writer.cursor()
                try:
                    return answer(cur, query_text, scope)
                finally:
                    cur.close()
        return query(self.log, query_text, run_id=scope)

    def fork(self, at: int, intervene: Any = None, **options: Any) -> Run:
        """A new run from this one as it was after round `at`, changed by `intervene` (called
        with an `orchestrator.Snapshot`), going on from there; see `orchestrator.fork` for the
        other `options` (``set``, ``options``, ``params``, ``wait``...)."""
        from orchestrator.durable import fork

        self.wait()
        return fork(self.log, self.run_id, at=at, intervene=intervene, **options)

    def summary(self) -> dict[str, Any]:
        """The run's headline numbers: only those that mean something for its protocol.

        ``messages`` counts messages between agents; ``actions`` (with a world) counts
        what agents did to it (moves, answers, posts); ``final_spread`` and ``final_mean``
        appear when the run watches a numeric field.
        """
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "agents": self.n_agents,
            "hosts": self.hosts,
            "rounds": self.rounds,
            "messages": self.messages,
        }
        if self.result.actions:
            out["actions"] = self.result.actions
        for key in ("spread", "mean"):
            if key in self.final:
                out[f"final_{key}"] = self.final[key]
        out["stop_reason"] = self.stop_reason
        out["seconds"] = round(self.seconds, 3)
        done = self.messages + self.result.actions
        out["messages_per_second" if self.messages else "actions_per_second"] = (
            round(done / self.seconds) if self.seconds else None
        )
        out["log"] = str(self.log)
        out.update(self.result.llm)  # llm_calls, llm_errors, llm_tokens, llm_cost (LLM runs)
        return out

    def __repr__(self) -> str:
        state = f"stop_reason={self.stop_reason!r}" if self.done() and self._error is None else "running"
        return f"Run(run_id={self.run_id!r}, round={self.round}, {state}, log={str(self.log)!r})"


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


def _numeric_fields(pop: Population) -> list[str]:
    names: dict[str, None] = {}
    for cls in pop.classes:
        for name, info in cls.model_fields.items():
            if name != "id" and (info.annotation in (int, float, bool) or vector_spec(cls, name) is not None):
                names[name] = None
    return list(names)


def _watched(
    proto: MessageProtocol, pop: Population, rule: StopRule | None
) -> tuple[str | None, tuple[str, ...]]:
    """(primary field, every field whose statistics hosts report), checked against the population."""
    numeric = _numeric_fields(pop)
    shown = ", ".join(numeric) or "(none)"
    explicit = proto.field
    if explicit is not None and explicit not in numeric:
        raise ConfigError(
            f"{type(proto).__name__} watches field {explicit!r}, which no agent class in the population "
            f"has as a numeric field; numeric fields: {shown}. Fix field=..., or add the field to the agents."
        )
    default = proto.default_field if proto.default_field in numeric else None
    primary = explicit or default
    extra = sorted((rule.fields() if rule is not None else frozenset()) - {primary})
    extra += [f for f in proto.watched_fields() if f in numeric and f != primary and f not in extra]
    for name in extra:
        if name not in numeric:
            raise ConfigError(
                f"Stop rule {rule.describe() if rule else ''!s} reads field {name!r}, which no agent class "
                f"in the population has as a numeric field; numeric fields: {shown}."
            )
    fields = ((primary,) if primary else ()) + tuple(extra)
    return primary, fields


def _check_counts(
    pop: Population, rounds: Any, hosts: int | None, state_every: int, address: str | None
) -> None:
    """The population, rounds, hosts and state cadence make sense, and the agents fit in memory."""
    if len(pop) == 0:
        raise ConfigError("The population is empty; add agents with Population.of(cls, n).")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ConfigError(f"rounds must be a whole number >= 1, got {rounds!r}.")
    if hosts is not None and hosts < 1:
        raise ConfigError(f"hosts must be >= 1, got {hosts}.")
    if not (address or os.environ.get("MOOT_ADDRESS")):  # a cluster may hold more than this machine
        _check_memory(pop)
    if state_every < 0:
        raise ConfigError(f"state_every must be >= 0 (0: first and last round only), got {state_every}.")


def _llm_cache(llm: LLMConfig | None, log: Path, config: dict[str, object]) -> str | None:
    """The response cache's path (None: no LLM agents, or no cache); adds the LLM settings to `config`."""
    if llm is None:
        return None
    config["llm"] = llm.describe()
    path = llm.cache_path(log)
    return str(path) if path is not None else None


SEED_LIMIT = 2**63
"""Seeds are logged as BIGINT and feed counter-based draws: whole numbers in [0, 2**63)."""


def _check_seed(seed: Any) -> int:
    """The seed, if it is a whole number moot can log and draw from; else a `ConfigError`."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(
            f"seed must be a whole number, got {seed!r} ({type(seed).__name__}); e.g. seed=7 "
            "(hash a text first if you name seeds: int(hashlib.sha256(b'name').hexdigest()[:15], 16))."
        )
    if not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"seed must be in [0, 2**63), got {seed}; e.g. seed=7.")
    return seed


def _check_flood(cap: Any, on_flood: Any) -> None:
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ConfigError(f"message_cap must be a whole number >= 1 or None, got {cap!r}; e.g. 10000.")
    if on_flood not in ("error", "truncate"):
        raise ConfigError(f"on_flood must be 'error' or 'truncate', got {on_flood!r}.")


def _check_durability(every: Any, restarts: Any) -> None:
    for name, value in (("checkpoint_every", every), ("max_restarts", restarts)):
        if value is None and name == "checkpoint_every":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be a whole number >= 0, got {value!r}; e.g. {name}=5.")


def _check_memory(pop: Population) -> None:
    """Refuse, before anything starts, a population whose state cannot fit in this machine's memory."""
    need = pop.estimated_bytes()
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (not Linux): no check
        return
    if need > have:
        raise ConfigError(
            f"A population of {len(pop):,} agents needs about {need / 2**30:,.1f} GiB for its state "
            f"alone, more than this machine's {have / 2**30:,.1f} GiB of memory. Use fewer agents, "
            "or a Ray cluster (--address) whose nodes together hold it."
        )


def _override(name: str, given: Any, overrides: Mapping[str, Any]) -> Any:
    if name not in overrides:
        return given
    value = overrides[name]
    if value != given:
        print(
            f"moot run: {name}={value!r} from the command line (this launch in the script said {given!r})",
            file=sys.stderr,
        )
    return value


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
    stop: StopRule | StopFn | str | None = None,
    messages: MessageLog | str | None = None,
    params: Mapping[str, Any] | None = None,
    llm: LLMConfig | None = None,
    trace: str | SpanExporter | None = None,
    message_cap: int | None = 10_000,
    on_flood: Literal["error", "truncate"] = "error",
    progress: ProgressFn | bool | None = None,
    wait: bool = True,
    checkpoint_every: int | None = None,
    max_restarts: int = 3,
    segments_uri: str | None = None,
) -> Run:
    """Run `population` over `protocol`, log every message to DuckDB, return a `Run`.

    Args:
        population: A `Population` or a list of agents.
        protocol: A protocol object, or the name of a registered one.
        rounds: Round budget; a stop rule may end the run earlier.
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
        stop: When to stop before the budget: a rule (``Consensus("opinion",
            1e-3) | Stationary()``), a callable ``(round, metrics) -> bool``, or a
            spec string (``"stationary"``). None: the protocol's own rule.
        messages: Which messages get a row: ``"all"``, ``"none"``, ``"aggregate"``,
            ``"sample:0.01"``, ``"every:5"``, or a `MessageLog`. None: the protocol's default
            (``"aggregate"`` for gossip learning, whose messages are whole models), else all.
        params: Your parameters and tags, logged in ``runs.params`` (merged with
            those of ``moot run -p``).
        llm: How LLM agents reach their models: model override, endpoint, in-flight
            bound, rate limits, timeout, retries, budget, cache (`LLMConfig`). Default
            `LLMConfig()` when the population has LLM agents; ``moot run --model
            ... --rpm ...`` overrides it.
        trace: OpenTelemetry export of the run's trace and metrics: ``"none"``
            (nothing imported, nothing timed), ``"console"``, ``"otlp"`` (set up by
            ``OTEL_EXPORTER_OTLP_ENDPOINT`` and the other ``OTEL_*`` variables) or
            ``"jsonl"`` (files beside the log), or your own ``SpanExporter``.
            None: ``MOOT_TRACE``, else ``OTEL_TRACES_EXPORTER``, else none.
        message_cap: Most messages one agent may send in one round (None: no cap); a
            runaway agent is caught instead of flooding the log.
        on_flood: What an agent over the cap gets: ``"error"`` (the run fails, naming
            it) or ``"truncate"`` (its first `message_cap` messages are kept; an
            ``events`` row says so).
        progress: A callback ``(round, metrics)``, True for a progress bar, or
            None: a bar when run by ``moot run script.py`` (``MOOT_PROGRESS=1``).
        wait: False returns at once with the run going on in the background:
            watch ``run.round``, query with ``run.sql``, ``run.wait()`` for the end.
        checkpoint_every: Write a checkpoint beside the log every this many rounds, from
            which `orchestrator.resume` continues a run that was killed, and from which the
            hosts restart when one dies (0: none, but Ctrl-C still writes one). None: every
            round for runs with LLM agents (a round of calls is dear), else every 10.
        max_restarts: Times the hosts restart from the last checkpoint when a host's process
            dies, before the run fails (resumable).
        segments_uri: An object store every node reaches (``s3://bucket/prefix``, ``gs://``,
            ``abfs://``, ``hdfs://``; pyarrow's filesystems) for a cluster whose nodes share no
            folder with the driver: hosts write their rows there, and the driver copies them
            beside the log, checked, once the rounds are over (deploy/README.md says when to
            use which). None: ``MOOT_SEGMENTS_URI``, else beside the log.

    Returns:
        The run's handle; ``run.sql(...)`` queries its log.

    Example:
        >>> from agents import OpinionAgent, Population, Uniform
        >>> from protocols import Gossip
        >>> run = launch(Population.of(OpinionAgent, 10_000, opinion=Uniform()),
        ...              Gossip(fanout=2), rounds=50, seed=7, log="run.duckdb")
        >>> run.sql("SELECT * FROM consensus_by_round").to_pandas()
    """
    overrides = _env_json(CLI_OVERRIDES)
    log = _override("log", str(log), overrides)
    seed = _override("seed", seed, overrides)
    rounds = _override("rounds", rounds, overrides)
    hosts = _override("hosts", hosts, overrides)
    state_every = _override("state_every", state_every, overrides)
    messages = _override("messages", messages, overrides)
    stop = _override("stop", stop, overrides)
    trace = _override("trace", trace, overrides)
    message_cap = _override("message_cap", message_cap, overrides)
    checkpoint_every = _override("checkpoint_every", checkpoint_every, overrides)
    on_flood = _override("on_flood", on_flood, overrides)
    segments_uri = _override("segments_uri", segments_uri, overrides) or os.environ.get("MOOT_SEGMENTS_URI")
    seed = _check_seed(seed)
    _check_flood(message_cap, on_flood)
    pop = _population(population)
    llm = _llm_config(llm, pop, overrides.get("llm"))
    proto = _protocol(protocol)
    _check_counts(pop, rounds, hosts, state_every, address)
    _check_durability(checkpoint_every, max_restarts)
    mlog = MessageLog.parse(messages if messages is not None else proto.default_messages or "all")
    trace_exporter = trace_mode(trace)
    rule = stop_rule(stop) if stop is not None else None
    primary, fields = _watched(proto, pop, rule)
    if rule is None:
        rule = proto.stop_rule(primary)
    if overrides.get("estimate"):  # `moot run script.py --estimate`: the cost, then stop
        _print_estimate(pop, proto, rounds, seed, llm)
    user_params = {**_env_json(_PARAMS), **dict(params or {})}
    path = check_log_path(log)
    rid = _cli_run_id(overrides) or run_id or uuid.uuid4().hex[:12]
    writer = LogWriter(path)  # before Ray starts: a locked or read-only log, a used run id, fail fast
    try:
        check_new_run_id(writer, rid)
        if segments_uri:
            check_store(segments_uri, writer.parts)
        rt = _runtime(runtime or os.environ.get("MOOT_RUNTIME") or "ray", address, host_options)
    except BaseException:
        writer.close()
        raise
    n_hosts = _host_count(hosts, rt, len(pop))
    config: dict[str, object] = {
        "protocol": proto.describe(),
        "population": pop.describe(),
        "rounds": rounds,
        "seed": seed,
        "runtime": rt.kind,
        "hosts": n_hosts,
        "state_every": state_every,
        "stop": rule.describe() if rule is not None else None,
        "watched_fields": list(fields),
        "messages": mlog.describe(),
        "params": user_params,
        "classes": [c.__name__ for c in pop.classes],
        "trace": trace_exporter if isinstance(trace_exporter, str) else type(trace_exporter).__name__,
        "segments_uri": segments_uri,
    }
    cache = _llm_cache(llm, path, config)
    plan = RunPlan(
        population=pop,
        protocol=proto,
        run_id=rid,
        seed=seed,
        rounds=rounds,
        hosts=n_hosts,
        state_every=state_every,
        max_concurrency=max_concurrency,
        stop=rule,
        primary=primary,
        fields=fields,
        messages=mlog,
        params=user_params,
        config=config,
        llm=llm,
        llm_cache=cache,
        trace=trace_exporter,
        message_cap=message_cap,
        on_flood=on_flood,
        checkpoint_every=(1 if llm is not None else 10) if checkpoint_every is None else checkpoint_every,
        max_restarts=max_restarts,
        segments_uri=segments_uri or "",
    )
    return play(plan, rt, writer, progress, wait)


def play(
    plan: RunPlan,
    rt: Runtime,
    writer: LogWriter,
    progress: ProgressFn | bool | None,
    wait: bool,
    start: StartPoint | None = None,
    fork_at: ForkPoint | None = None,
) -> Run:
    """Play `plan` (from `start`, if given) in this thread or, without `wait`, in the background;
    the run's handle. (`launch`, `orchestrator.resume` and `orchestrator.fork` end here.)"""
    control = RunControl()
    handle = Run(plan.run_id, writer.path, len(plan.population), plan.hosts, control, writer)
    if progress is None:
        progress = wait and os.environ.get("MOOT_PROGRESS") == "1"  # set by `moot run script.py`
    args = (handle, plan, rt, writer, progress, control, start, fork_at)
    if wait:
        with _interrupts(control):
            _play(*args)
        return handle.wait()
    thread = threading.Thread(target=_play, args=args, name=f"moot-run-{plan.run_id}", daemon=True)
    thread.start()
    return handle


def _print_estimate(
    pop: Population, proto: MessageProtocol, rounds: int, seed: int, llm: LLMConfig | None
) -> None:
    """Print what the run's LLM calls will cost, and end the script (nothing runs)."""
    from orchestrator.estimate import estimate

    print(estimate(pop, proto, rounds=rounds, seed=seed, llm=llm).render())
    raise SystemExit(0)


def _host_count(asked: int | None, rt: Runtime, agents: int) -> int:
    """Hosts for a run: as asked (or the runtime's default), but a host per chunk of agents at most."""
    n = max(1, min(asked or rt.default_hosts(), -(-agents // CHUNK)))
    if asked is not None and n < asked:
        print(
            f"moot: {n} host(s), not {asked}: a host holds at least {CHUNK} agents and this "
            f"population has {agents:,}",
            file=sys.stderr,
        )
    return n


_launches = 0


def _cli_run_id(overrides: Mapping[str, Any]) -> str | None:
    """``moot run --run-id ID`` (what `moot sweep` gives each point): the script's first launch
    gets ID, later ones ID.2, ID.3, ..."""
    global _launches
    given = overrides.get("run_id")
    if not given:
        return None
    _launches += 1
    return str(given) if _launches == 1 else f"{given}.{_launches}"


@contextlib.contextmanager
def _interrupts(control: RunControl) -> Iterator[None]:
    """While a run plays in the main thread, Ctrl-C and SIGTERM end it ``interrupted``.

    The first signal lets the round in progress finish and reach the log, then the run
    ends with its last states logged; a second one stops at once. (Left alone, SIGTERM
    would meet Ray's own handler: an abort, exit 134 and a C++ stack dump.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

    def interrupt(signum: int, frame: object) -> None:
        how = names.get(signal.Signals(signum), str(signum))
        if control.interrupted is not None:
            raise KeyboardInterrupt(how)
        control.interrupt(how)
        print(f"\nmoot: {how}: stopping after this round ({how} again stops at once)", file=sys.stderr)

    try:
        previous = {sig: signal.signal(sig, interrupt) for sig in names}
    except (ValueError, OSError):  # not allowed here (an embedded interpreter): leave them be
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _play(
    handle: Run,
    plan: RunPlan,
    rt: Runtime,
    writer: LogWriter,
    progress: ProgressFn | bool,
    control: RunControl,
    start: StartPoint | None = None,
    fork_at: ForkPoint | None = None,
) -> None:
    """Play the run (or go on with it from `start`), then release everything; the outcome
    goes to the handle."""
    live = _serve_live(writer, handle.log)
    bar = None
    callback: ProgressFn | None
    if progress is True:
        from orchestrator.progress import RoundBar

        bar = RoundBar(plan.rounds, len(plan.population))
        callback = bar.update
    else:
        callback = progress or None
    try:
        if bar is not None:
            bar.start()
        handle._result = run_rounds(plan, rt, writer, callback, control, start, fork_at)
    except BaseException as exc:
        handle._error = exc
    finally:
        if bar is not None:
            bar.stop()
        rt.shutdown(keep=handle._error is None)
        if live is not None:
            live.stop()
        with handle._lock:
            handle._writer = None
            writer.close()
        handle._done.set()


def _llm_config(llm: LLMConfig | None, pop: Population, cli: Mapping[str, Any] | None) -> LLMConfig | None:
    """The run's LLM settings: the script's, then the command line's on top (with a note)."""
    if llm is not None and not isinstance(llm, LLMConfig):
        raise ConfigError(f"llm must be an LLMConfig, got {type(llm).__name__}; e.g. llm=LLMConfig(rpm=500).")
    if not any(issubclass(c, LLMAgent) for c in pop.classes):
        if cli or llm is not None:
            print("moot: LLM settings ignored: this run has no LLM agents", file=sys.stderr)
        return None
    config = llm or LLMConfig()
    if cli:
        changed = {k: v for k, v in cli.items() if getattr(config, k, None) != v}
        if changed and llm is not None:
            shown = ", ".join(f"{k}={v!r}" for k, v in changed.items() if k != "prices")
            print(f"moot: the command line sets the LLM's {shown} for this run", file=sys.stderr)
        config = config.with_overrides(**cli)
    models = _models(pop)
    config.check_credentials(models)
    if config.budget is not None:
        _warn_unpriced(config, models)
    return config


def _models(pop: Population) -> set[str]:
    """The models the population's LLM agents ask for (their own, or a column's values)."""
    out: set[str] = set()
    for g in pop.groups:
        if not issubclass(g.cls, LLMAgent):
            continue
        if g.agents is not None:
            out.update(str(a.model) for a in g.agents)  # type: ignore[attr-defined]
            continue
        col = g.columns.get("model", g.cls.model_fields["model"].default)
        if isinstance(col, Choice):
            out.update(str(v) for v in col.values)
        elif isinstance(col, (list, tuple)):
            out.update(str(v) for v in col)
        else:
            out.add(str(col))
    return out


def _warn_unpriced(config: LLMConfig, models: set[str]) -> None:
    """Say at the start when the budget cannot count a model: litellm has no price for it."""
    from orchestrator.llm.gateway import _import_litellm

    for model in sorted({config.model} if config.model else models):
        if model in config.prices or model.startswith("moot/"):
            continue
        litellm = _import_litellm({})
        known = model in litellm.model_cost or model.split("/", 1)[-1] in litellm.model_cost
        if not known:
            print(
                f"moot: litellm has no price for {model!r}, so --budget cannot count its calls (their "
                f"cost is logged NULL and shown as unknown); give --price {model}=PROMPT,COMPLETION "
                "(dollars per token) or LLMConfig(prices=...).",
                file=sys.stderr,
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
