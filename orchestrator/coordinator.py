"""The coordinator: the run loop (`run_rounds`), in the driver process.

It sets the run up, then plays rounds: each waits for every host's statistics
(the barrier), combines them into the round's metrics (`combine_stats`), hands the
round's rows to `RunLog` (written on the log's own thread, so that logging round r
overlaps computing round r+1), tells the run's `RunHooks` (tracing), and asks
`_stop_reason` whether the run is done.
"""

from __future__ import annotations

import contextlib
import copy
import math
import pickle
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import orchestrator.checkpoint as checkpoint
from agents.population import Population
from orchestrator.checkpoint import DriverState
from orchestrator.errors import HostLost, LLMError, RunInterrupted
from orchestrator.host import HostSpec, HostStats
from orchestrator.llm import LLMConfig, LLMSetup, ServiceHandle
from orchestrator.llm.config import forwarded_env
from orchestrator.log import LogWriter
from orchestrator.message_log import MessageLog
from orchestrator.run_log import RunLog
from orchestrator.runtime import Runtime
from orchestrator.telemetry import RunHooks
from orchestrator.tree import FieldStats, root, shard_bounds
from protocols.base import MessageProtocol
from protocols.stop import StopRule

__all__ = [
    "ForkPoint",
    "RoundMetrics",
    "RunControl",
    "RunPlan",
    "RunResult",
    "StartPoint",
    "combine_stats",
    "run_rounds",
]

RoundMetrics = dict[str, float]
ProgressFn = Callable[[int, RoundMetrics], None]

_STATS = ("mean", "variance", "min", "max", "spread")


def _combine_field(stats: list[FieldStats]) -> dict[str, float]:
    """One field's statistics from every host's subtrees (`FieldStats`): the root of the fixed
    tree, computed from those nodes only (a few per host), bit-for-bit whatever the hosts."""
    top = root(stats)
    if top is None:
        return {}
    count, mean, m2 = top
    held = [s for s in stats if len(s.level)]
    lo = np.min(np.array([s.min for s in held]), axis=0)
    hi = np.max(np.array([s.max for s in held]), axis=0)
    # A vector field: the cloud's total variance (mean squared distance to the centroid), the
    # widest range of any entry (0 only at consensus), the centroid's mean entry, min and max
    # over every entry. One entry gives the numbers of a scalar field.
    return {
        "count": count,
        "mean": float(np.mean(mean)),
        "variance": float(np.sum(m2)) / count,
        "min": float(np.min(lo)),
        "max": float(np.max(hi)),
        "spread": float(np.max(hi - lo)),
    }


def combine_stats(
    stats: list[HostStats], fields: tuple[str, ...], primary: str | None
) -> tuple[RoundMetrics, RoundMetrics]:
    """A round's metrics from every host's statistics.

    Returns:
        (logged, seen): the metrics written to the log (the primary field's
        statistics under bare names, others as ``field.stat``), and the same
        plus every field's statistics as ``field.stat``, which stop rules read.
    """
    logged: RoundMetrics = {"messages": float(sum(s.sent for s in stats))}
    seen: RoundMetrics = {}
    for i, name in enumerate(fields):
        combined = _combine_field([s.fields[i] for s in stats])
        if name == primary:
            logged["agents"] = combined.get("count", 0.0)
        for stat in _STATS:
            if stat in combined:
                seen[f"{name}.{stat}"] = combined[stat]
                logged[stat if name == primary else f"{name}.{stat}"] = combined[stat]
    if primary is None:
        logged["agents"] = 0.0
    changes = [s.max_change for s in stats if not np.isnan(s.max_change)]
    if changes:
        logged["max_change"] = max(changes)
    return logged, {**seen, **logged}


@dataclass(frozen=True)
class RunPlan:
    """Everything that defines a run, as `launch` resolved it."""

    population: Population
    protocol: MessageProtocol
    run_id: str
    seed: int
    rounds: int
    hosts: int
    state_every: int
    max_concurrency: int
    stop: StopRule | None
    primary: str | None
    fields: tuple[str, ...]
    messages: MessageLog
    params: Mapping[str, object]
    config: Mapping[str, object]
    llm: LLMConfig | None = None
    llm_cache: str | None = None
    trace: Any = "none"
    message_cap: int | None = None
    on_flood: str = "error"
    checkpoint_every: int = 0
    """Write a checkpoint after every this many rounds (0: none but the one an interrupt writes)."""
    max_restarts: int = 3
    """Times the hosts are restarted from the last checkpoint when one dies, before the run fails."""
    segments_uri: str = ""
    """An object store the hosts write their segments to (empty: beside the log)."""

    def state_round(self, r: int) -> bool:
        """Whether the run loop logs every agent's state after round `r` (before the last round)."""
        return r == -1 or bool(self.state_every and (r + 1) % self.state_every == 0 and r + 1 < self.rounds)


@dataclass(frozen=True)
class StartPoint:
    """Where a run goes on from (`orchestrator.resume`, forks): after round `round`, from its
    checkpoint (`state`), or from the start (round -1, `state` None: the hosts build the agents
    again, the log keeps its set-up rows).

    Attributes:
        event: The ``events`` row saying so: (kind, detail).
    """

    round: int
    state: DriverState | None
    event: tuple[str, str]


@dataclass(frozen=True)
class ForkPoint:
    """A fork's intervention: after `round`, the checkpoint written there is changed (`change`
    gets its folder and round) and, with `protocol`, the protocol's options too; the run goes
    on from there."""

    round: int
    change: Callable[[Path, int], None]
    protocol: MessageProtocol | None = None


class RunControl:
    """Shared between a running run and its handle: progress so far, and a stop request."""

    def __init__(self) -> None:
        self.round = -1
        self.metrics: RoundMetrics = {}
        self.stop_requested: str | None = None
        self.interrupted: str | None = None

    def request_stop(self, reason: str) -> None:
        self.stop_requested = reason

    def interrupt(self, how: str) -> None:
        """End the run ``interrupted`` once the round in progress is logged (Ctrl-C, SIGTERM)."""
        self.interrupted = how


@dataclass
class RunResult:
    """What a finished run reports (also written to the ``runs`` table)."""

    run_id: str
    rounds: int
    messages: int
    seconds: float
    stop_reason: str
    final: RoundMetrics
    nodes: list[str] = field(default_factory=list)
    setup_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    llm: dict[str, float] = field(default_factory=dict)
    actions: int = 0
    """Actions on the protocol's world (moves, answers, posts), which are not messages."""


def run_rounds(
    plan: RunPlan,
    runtime: Runtime,
    writer: LogWriter,
    progress: ProgressFn | None = None,
    control: RunControl | None = None,
    start: StartPoint | None = None,
    fork_at: ForkPoint | None = None,
) -> RunResult:
    """Play a run to its end, logging everything; see `orchestrator.launch`.

    Set-up, then one `_play_round` per round until the budget is spent or `_stop_reason`
    finds a reason; `RunLog` writes every row, `RunHooks` (tracing) watches. Every
    `RunPlan.checkpoint_every` rounds a checkpoint is written (`orchestrator.checkpoint`);
    when a host dies the hosts restart from the last one (`RunPlan.max_restarts` times).

    Args:
        start: Go on from a checkpoint (`orchestrator.resume`, forks) instead of starting.
        fork_at: After its round, checkpoint, change the checkpoint, and go on from it
            (a fork's intervention).
    """
    log, hooks, clock = RunLog(plan, writer), _hooks(plan, writer), _Clock()
    run = _Totals()
    folder = checkpoint.checkpoint_dir(writer.path, plan.run_id)
    if start is None:
        log.start()
        plan = _save_plan(plan, log, folder)
    else:
        log.reopen(start.round, *start.event)
    saved = start.state if start is not None and start.state is not None else _initial(plan)
    service: ServiceHandle | None = None
    placement: list[tuple[int, str]] = []
    try:
        service, placement, spec = _set_up(plan, runtime, log, hooks, clock, saved if start else None, folder)
        go = _Going(run.restore(plan, saved), runtime, log, run, spec, folder, saved, service, placement)
        r = saved.round + 1
        while r < go.plan.rounds:
            try:
                if not go.play(r, hooks, control, progress, fork_at):
                    break
                r += 1
            except HostLost as exc:
                r = go.restart(exc)
        placement = go.placement
        if go.plan.checkpoint_every and run.rounds:  # the end, to fork from or interview at
            go.checkpoint(run.rounds - 1)
        clock.lap("rounds")
        clock.timings["checkpoints"] = go.checkpoint_seconds  # (part of "rounds")
        log.states(runtime, run.rounds - 1)  # the loop never logs the last round
        clock.lap("final_state")
        writer.flush()
        clock.lap("flush")
        if log.gather(runtime):  # segments from nodes that do not share the log's disk
            clock.lap("gather")
    except BaseException as exc:
        hooks.run_ended(run.rounds, error=f"{type(exc).__name__}: {exc}")
        logged = log.end(runtime, exc, run.rounds, run.messages, clock.elapsed())
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, RunInterrupted):
            kept = f"rounds 0..{logged - 1}" if logged else "its set-up only"
            raise RunInterrupted(
                f"moot: run {plan.run_id} interrupted after round {logged - 1}; the log keeps {kept}: "
                f"{writer.path}; go on with: moot resume {writer.path} --run {plan.run_id}"
            ) from exc
        raise
    finally:
        log.release()
        if service is not None:
            with contextlib.suppress(Exception):
                service.close()
    seconds = clock.elapsed()
    hooks.run_ended(run.rounds, reason=run.reason)
    log.finish(run.rounds, run.messages, seconds, run.reason)
    return RunResult(
        plan.run_id,
        run.rounds,
        run.messages,
        seconds,
        run.reason,
        run.final,
        sorted({node for _, node in placement}),
        clock.setup,
        clock.timings,
        run.llm,
        run.actions,
    )


def _save_plan(plan: RunPlan, log: RunLog, folder: Path) -> RunPlan:
    """Save the run's definition for `moot resume` (a trace to your own exporter object becomes
    none). One that cannot be pickled (an agent holding a lock, a class made on the fly) runs
    on without checkpoints, and says so; returns the plan as it will run."""
    try:
        checkpoint.save_plan(folder, plan if isinstance(plan.trace, str) else replace(plan, trace="none"))
    except (TypeError, AttributeError, pickle.PicklingError) as exc:
        note = (
            f"run {plan.run_id} has no checkpoints: its definition cannot be saved ({exc}); it cannot "
            "be resumed, forked or interviewed, and a lost host restarts it from round 0. Define agent "
            "classes at module level, without locks or open files in their fields."
        )
        print(f"moot: note: {note}", file=sys.stderr)
        log.event("note", note)
        return replace(plan, checkpoint_every=0)
    return plan


def _initial(plan: RunPlan) -> DriverState:
    """Where every run starts: before round 0, nothing counted, the stop rule as given."""
    bounds = shard_bounds(len(plan.population), plan.hosts)
    return DriverState(-1, bounds, 0, 0, {}, {}, copy.deepcopy(plan.stop))


@dataclass
class _Going:
    """A run between set-up and its end: what a restart, a checkpoint or a fork's change
    replaces (the plan's stop rule and protocol, the hosts, the last checkpoint)."""

    plan: RunPlan
    runtime: Runtime
    log: RunLog
    run: _Totals
    spec: HostSpec
    folder: Path
    saved: DriverState
    """The last checkpoint (or the start): where a restart goes back to."""
    service: ServiceHandle | None
    placement: list[tuple[int, str]]
    restarts: int = 0
    checkpoint_seconds: float = 0.0
    """Time the hosts spent writing checkpoints (the driver waits for them)."""

    @property
    def durable(self) -> bool:
        """Whether the run can checkpoint (its definition was saved: `_save_plan`)."""
        return (self.folder / "plan.pkl").is_file()

    def play(
        self,
        r: int,
        hooks: RunHooks,
        control: RunControl | None,
        progress: ProgressFn | None,
        fork_at: ForkPoint | None,
    ) -> bool:
        """Play round `r` and what follows it; whether the run goes on. A host's death shows as
        `HostLost`, from the round or from the checkpoint after it."""
        plan, run = self.plan, self.run
        metrics, seen, calls = _play_round(plan, self.runtime, self.log, hooks, r, run)
        if plan.llm is not None:  # after the round is logged: its rows show what failed
            _check_llm_errors(calls, r, plan.llm.max_error_rate)
        if control is not None and control.interrupted:  # the round is whole in the log
            if self.durable:
                self.checkpoint(r)
            raise KeyboardInterrupt(control.interrupted)
        if control is not None:
            control.round, control.metrics = r, metrics
        if progress is not None:
            progress(r, metrics)
        run.reason = _stop_reason(plan, r, seen, control, self.service) or run.reason
        if run.reason != "rounds":
            return False
        self.between(r, fork_at)
        return True

    def between(self, r: int, fork_at: ForkPoint | None) -> None:
        """After round `r` (which goes on): its states, then a checkpoint when one is due, or
        the fork's change."""
        plan = self.plan
        if plan.state_round(r):
            self.log.states(self.runtime, r)
        if fork_at is not None and r == fork_at.round:
            self.checkpoint(r)
            self.log.writer.flush()
            fork_at.change(self.folder, r)
            if fork_at.protocol is not None:  # new options: the router is built again
                self.plan = replace(plan, protocol=fork_at.protocol)
                n, proto = len(plan.population), fork_at.protocol
                self.spec = replace(
                    self.spec, router=proto.build_in_hosts(n, plan.seed) or proto.build(n, plan.seed)
                )
            self.reload(rewind=False)
        elif plan.checkpoint_every and (r + 1) % plan.checkpoint_every == 0 and r + 1 < plan.rounds:
            self.checkpoint(r)

    def checkpoint(self, r: int) -> None:
        """Write the checkpoint after round `r`: the hosts write their parts now; the driver's
        part and the rename follow on the writer thread, after round `r`'s rows, so that a
        checkpoint never runs ahead of the log."""
        plan, run, log = self.plan, self.run, self.log
        state = DriverState(
            r,
            shard_bounds(len(plan.population), plan.hosts),
            run.messages,
            run.actions,
            dict(run.final),
            dict(run.llm),
            copy.deepcopy(plan.stop),
            self.service.totals()["spent"] if self.service is not None else 0.0,
        )
        began = time.perf_counter()
        tmp = checkpoint.start(self.folder, r)
        self.runtime.checkpoint(str(tmp))
        self.checkpoint_seconds += time.perf_counter() - began

        def commit() -> None:
            state.driver_rows = log.driver_rows
            checkpoint.commit(tmp, state, plan.hosts)
            if plan.llm is None and plan.checkpoint_every:  # (an LLM run's are small: all kept, to interview)
                checkpoint.thin(self.folder, 10 * plan.checkpoint_every)

        log.writer.submit(commit)
        self.saved = state

    def restart(self, exc: HostLost) -> int:
        """A host died: new hosts from the last checkpoint, the rows after it gone, an event
        row; returns the round to play next. Past `RunPlan.max_restarts`, the run fails."""
        self.restarts += 1
        limit, back = self.plan.max_restarts, self.saved.round + 1
        if self.restarts > limit:
            raise HostLost(
                f"{exc} The hosts were restarted {limit} time(s) already; the run stops, resumable "
                f"from round {back} (moot resume)."
            ) from exc
        self.reload(rewind=True)
        self.log.event(
            "restarted", f"{exc} Restart {self.restarts} of {limit}, from round {back}.", round=back
        )
        self.plan = self.run.restore(self.plan, self.saved)
        return back

    def reload(self, rewind: bool) -> None:
        """New hosts from the last checkpoint (or from the start, before round 0); with
        `rewind`, the log's rows after it go first (a host died: those rounds are played again)."""
        with contextlib.suppress(Exception):  # a job that waited on the dead host failed: its rows go
            self.log.writer.flush()
        self.runtime.shutdown()
        if rewind:
            self.log.rewind(self.saved.round)
        self.runtime.prepare(self.plan.hosts)
        saved = self.saved
        restore = (str(self.folder), saved.round, saved.bounds) if saved.round >= 0 else None
        self.placement = self.runtime.start(replace(self.spec, restore=restore))


class _Clock:
    """Wall time of the run and of its phases (``runs`` and `RunResult.timings`)."""

    def __init__(self) -> None:
        self.started = self.mark = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.setup = 0.0

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.mark
        self.mark = now

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


@dataclass
class _Totals:
    """What the run has done so far."""

    rounds: int = 0
    messages: int = 0
    actions: int = 0
    reason: str = "rounds"
    final: RoundMetrics = field(default_factory=dict)
    llm: dict[str, float] = field(default_factory=dict)

    def restore(self, plan: RunPlan, saved: DriverState) -> RunPlan:
        """Take the totals of a checkpoint; returns the plan with the stop rule as it was then."""
        self.rounds, self.messages, self.actions = saved.round + 1, saved.messages, saved.actions
        self.final, self.llm, self.reason = dict(saved.final), dict(saved.llm), "rounds"
        return replace(plan, stop=copy.deepcopy(saved.stop))


def _hooks(plan: RunPlan, writer: LogWriter) -> RunHooks:
    """The run's observer: a trace when asked for (only then is OpenTelemetry imported)."""
    if isinstance(plan.trace, str) and plan.trace == "none":
        return RunHooks()
    from orchestrator.telemetry import TracedRun, Tracing

    attributes = {
        "moot.run_id": plan.run_id,
        "moot.protocol": plan.protocol.name,
        "moot.agents": len(plan.population),
        "moot.hosts": plan.hosts,
        "moot.seed": plan.seed,
    }
    return TracedRun(Tracing(plan.trace, writer.path, {"moot.run_id": plan.run_id}), attributes)


def _set_up(
    plan: RunPlan,
    runtime: Runtime,
    log: RunLog,
    hooks: RunHooks,
    clock: _Clock,
    resumed: DriverState | None,
    folder: Path,
) -> tuple[ServiceHandle | None, list[tuple[int, str]], HostSpec]:
    """Hosts, graph, LLM service, agents and their initial state: everything before round 0.

    `resumed`: the run goes on from this checkpoint (or from the start, round -1); its set-up
    rows are in the log already."""
    n = len(plan.population)
    runtime.prepare(plan.hosts)  # host processes start while the graph is built
    clock.lap("start")
    bounds = shard_bounds(n, plan.hosts)
    router = plan.protocol.build_in_hosts(n, plan.seed) or plan.protocol.build(n, plan.seed)
    clock.lap("build")
    service, llm_setup = None, None
    if plan.llm is not None:
        cfg = plan.llm
        service = runtime.llm_service(
            rpm=cfg.rpm,
            tpm=cfg.tpm,
            window=cfg.window,
            budget=cfg.budget,
            cache=plan.llm_cache,
            spent=resumed.spent if resumed is not None else 0.0,
        )
        extra = (cfg.api_key_env,) if cfg.api_key_env else ()
        llm_setup = LLMSetup(cfg, service.link, forwarded_env(extra), plan.run_id)
    spec = HostSpec(
        plan.population,
        bounds,
        router,
        plan.seed,
        plan.fields,
        plan.protocol.instructions,
        plan.max_concurrency,
        track_change=plan.stop is not None and plan.stop.needs_change(),
        kinds=log.kinds,
        action_kinds=plan.protocol.action_kinds,
        protocol=plan.protocol.name,
        replies=plan.protocol.replies,
        llm=llm_setup,
        trace=type(hooks) is not RunHooks,  # hosts make spans only for a traced run
        message_cap=plan.message_cap,
        on_flood=plan.on_flood,
        sink=log.sink,
        messages=plan.messages,
    )
    restore = None
    if resumed is not None and resumed.round >= 0:
        restore = (str(folder), resumed.round, resumed.bounds)
    placement = runtime.start(replace(spec, restore=restore))
    clock.lap("hosts")
    if resumed is None:
        built = runtime.built  # a router the hosts built for themselves (a named graph's rows)
        _log_compiled(plan, log, router.describe_built(built) if built is not None else router.describe())
        log.agents(runtime, placement, bounds)
        clock.lap("agents")
        log.states(runtime, -1)
        clock.lap("initial_state")
    clock.setup = clock.elapsed()
    hooks.setup_done(clock.timings)
    return service, placement, spec


def _log_compiled(plan: RunPlan, log: RunLog, compiled: dict[str, object]) -> None:
    """What the protocol compiled (a graph's size and digest) into ``runs.config``, and its notes."""
    notes = compiled.pop("notes", None)
    for note in notes if isinstance(notes, list) else ():  # what the protocol saw in its input
        print(f"moot: note: {note}", file=sys.stderr)
        log.event("note", str(note))
    if compiled:
        config = dict(plan.config)
        proto_conf = config.get("protocol")
        config["protocol"] = {**(proto_conf if isinstance(proto_conf, dict) else {}), **compiled}
        log.config(config)


def _play_round(
    plan: RunPlan, runtime: Runtime, log: RunLog, hooks: RunHooks, r: int, run: _Totals
) -> tuple[RoundMetrics, RoundMetrics, pa.Table | None]:
    """Play round `r` on every host and log it; returns (its metrics, what stop rules see, its
    LLM calls)."""
    t0 = time.perf_counter()
    played = runtime.step(r, hooks.round_started(r))
    metrics, seen = combine_stats(played.stats, plan.fields, plan.primary)
    metrics["messages"] += played.world.pop("heard", 0.0)  # messages the world delivered
    metrics.update(played.world)
    seen.update(played.world)
    metrics["seconds"] = time.perf_counter() - t0
    log.host_events(played.stats)
    calls = None
    if plan.llm is not None:
        calls = log.llm_calls(played.stats)
        metrics.update(llm_metrics(calls))
        for k in _LLM_METRICS:
            run.llm[k] = run.llm.get(k, 0.0) + metrics[k]
    run.messages += int(metrics["messages"])
    run.actions += int(metrics.get("actions", 0))
    run.rounds, run.final = r + 1, metrics
    hooks.round_ended(played.stats, metrics)
    log.round(r, played, metrics, hooks.ids(), lambda job: hooks.logging(r, job))
    seen.update(total_messages=float(run.messages), total_actions=float(run.actions))  # rules on totals
    return metrics, seen, calls


def _stop_reason(
    plan: RunPlan, r: int, seen: RoundMetrics, control: RunControl | None, service: ServiceHandle | None
) -> str | None:
    """Why the run stops after round `r`: a stop rule fired, the user asked, or the budget is spent."""
    stop = plan.stop.check(r, seen) if plan.stop is not None else None
    if stop is None and control is not None and control.stop_requested is not None:
        stop = control.stop_requested
    if stop is None and service is not None and plan.llm is not None and plan.llm.budget is not None:
        spent = service.totals()["spent"]
        if spent >= plan.llm.budget:
            stop = f"budget: ${spent:.4f} spent of ${plan.llm.budget:g}"
    return stop


_LLM_METRICS = ("llm_calls", "llm_errors", "llm_tokens", "llm_cost")


def llm_metrics(calls: pa.Table | None) -> dict[str, float]:
    """A round's LLM metrics from its `llm_calls` rows: calls, errors, tokens, cost.

    ``llm_cost`` is NaN when some successful call had no price (litellm knows none for
    its model, and `LLMConfig.prices` gives none): unknown, not $0.
    """
    if calls is None:
        return dict.fromkeys(_LLM_METRICS, 0.0)
    tokens = pc.sum(pc.add(calls["prompt_tokens"], calls["completion_tokens"])).as_py() or 0
    ok = pc.is_null(calls["error_type"])
    unpriced = pc.sum(pc.and_(ok, pc.is_null(calls["cost"]))).as_py() or 0
    cost = math.nan if unpriced else float(pc.sum(calls["cost"]).as_py() or 0.0)
    return {
        "llm_calls": float(calls.num_rows),
        "llm_errors": float(calls.num_rows - calls["error_type"].null_count),
        "llm_tokens": float(tokens),
        "llm_cost": cost,
    }


def _check_llm_errors(calls: pa.Table | None, round: int, max_rate: float | None) -> None:
    """Stop a run whose LLM calls failed: all of a round's, or more than `max_rate` of them."""
    if calls is None or max_rate is None:
        return
    failed = calls.filter(pc.is_valid(calls["error_type"]))
    n, bad = calls.num_rows, failed.num_rows
    if bad == 0 or (bad < n and bad / n <= max_rate):
        return
    kinds = Counter(failed["error_type"].to_pylist()).most_common()
    shown = ", ".join(f"{k} {c}" for k, c in kinds)
    example = failed["error"][0].as_py() or ""
    raise LLMError(
        f"{bad} of {n} LLM calls failed in round {round} ({shown}), over the limit of "
        f"{max_rate:.0%}; the run stops as failed rather than read the silence as agreement. "
        f"First error: {example[:300]} "
        "Fix the model or endpoint (llm_calls holds every error), or raise --max-llm-error-rate."
    )
