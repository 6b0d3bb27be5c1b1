"""Durable runs: go on with a run that was killed (`resume`), or branch one (`fork`).

Both start from a checkpoint (`orchestrator.checkpoint`) and the run's saved definition, and
end in the same run loop as `launch`, so that a resumed run's log equals the log of a run
never cut, and a fork with no change repeats its parent's rounds.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import orchestrator.checkpoint as checkpoint
from agents.population import Population
from orchestrator.checkpoint import Snapshot
from orchestrator.coordinator import ForkPoint, ProgressFn, RunPlan, StartPoint
from orchestrator.errors import ConfigError
from orchestrator.launcher import Run, _host_count, _runtime, play
from orchestrator.log import LogWriter, check_log_path, logged_counts
from orchestrator.run_log import RunLog, check_new_run_id
from orchestrator.runtime import Runtime
from protocols.base import MessageProtocol

__all__ = ["fork", "fork_sweep", "resume"]

Intervention = Callable[[Snapshot], None]


def _pick(writer: LogWriter, run_id: str | None) -> tuple[str, str]:
    """The run to go on with: `run_id`, or the log's latest run that did not finish; its status."""
    con = writer.con
    if run_id is None:
        rows = con.execute(
            "SELECT run_id, status FROM runs WHERE status <> 'finished' ORDER BY started_at DESC LIMIT 1"
        ).fetchall()
        if not rows:
            raise ConfigError(f"No run in {str(writer.path)!r} is left to resume: every run finished.")
        return str(rows[0][0]), str(rows[0][1])
    rows = con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if not rows:
        known = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY started_at").fetchall()]
        raise ConfigError(
            f"No run {run_id!r} in {str(writer.path)!r}; its runs: {', '.join(known) or '(none)'}."
        )
    return run_id, str(rows[0][0])


def _start_runtime(
    plan: RunPlan, runtime: str | Runtime | None, address: str | None, hosts: int | None
) -> tuple[RunPlan, Runtime]:
    rt = _runtime(runtime or os.environ.get("MOOT_RUNTIME") or "ray", address, None)
    if hosts is not None:
        plan = replace(plan, hosts=_host_count(hosts, rt, len(plan.population)))
    return plan, rt


@contextlib.contextmanager
def _closed_on_error(writer: LogWriter) -> Iterator[None]:
    """Close the log's writer if anything fails before the run takes it over."""
    try:
        yield
    except BaseException:
        writer.close()
        raise


def _last_checkpoint(folder: Path, logged: int, at_most: int | None = None) -> int:
    """The latest checkpoint whose rounds are all in the log (and at or before `at_most`); -1: none."""
    cap = logged - 1 if at_most is None else min(logged - 1, at_most)
    saved = [r for r in checkpoint.rounds_saved(folder) if r <= cap]
    return saved[-1] if saved else -1


def resume(
    log: str | os.PathLike[str],
    run_id: str | None = None,
    *,
    hosts: int | None = None,
    runtime: str | Runtime | None = None,
    address: str | None = None,
    progress: ProgressFn | bool | None = None,
    wait: bool = True,
) -> Run:
    """Go on with a run that did not finish (killed, interrupted, failed on a host) from its
    last checkpoint; the log ends as if the run had never stopped.

    The rows the run logged after that checkpoint are deleted first, then played again (LLM
    calls answered from the response cache, not paid twice). Without a checkpoint, the run
    starts again from its round 0 (its set-up rows are kept).

    Args:
        log: The DuckDB log.
        run_id: The run; default the log's latest run that did not finish.
        hosts: Hosts to go on with (default: as many as before).
        runtime, address: As for `orchestrator.launch`.

    Example:
        >>> run = orchestrator.resume("run.duckdb")   # after Ctrl-C, a kill, a reboot
    """
    path = check_log_path(log)
    writer = LogWriter(path)  # (marks crashed the runs whose process is gone)
    with _closed_on_error(writer):
        rid, status = _pick(writer, run_id)
        if status == "finished":
            raise ConfigError(
                f"Run {rid!r} finished; there is nothing to resume. Branch it instead: "
                f"moot fork {path} --run {rid} --at ROUND."
            )
        if status == "running":
            raise ConfigError(f"Run {rid!r} is running in another process; wait for it, or stop it first.")
        folder = checkpoint.checkpoint_dir(path, rid)
        plan: RunPlan = checkpoint.load_plan(folder, rid)
        plan, rt = _start_runtime(plan, runtime, address, hosts)
        logged, _ = logged_counts(writer.con, rid)
        at = _last_checkpoint(folder, logged)
        state = checkpoint.load_driver(folder, at) if at >= 0 else None
    where = f"the checkpoint after round {at}" if at >= 0 else "round 0 (no checkpoint)"
    event = ("resumed", f"{status}; resumed from {where} on {plan.hosts} host(s)")
    return play(plan, rt, writer, progress, wait, start=StartPoint(at, state, event))


def fork(
    log: str | os.PathLike[str],
    run_id: str,
    *,
    at: int,
    intervene: Intervention | None = None,
    set: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    new_run_id: str | None = None,
    hosts: int | None = None,
    runtime: str | Runtime | None = None,
    address: str | None = None,
    progress: ProgressFn | bool | None = None,
    wait: bool = True,
) -> Run:
    """A new run that starts from run `run_id` as it was after round `at`, changed, and goes on.

    Its rows up to round `at` are its parent's, copied under its own run id (segment files
    as hard links), so every query on it sees its whole history; ``runs.parent_run`` and
    ``runs.fork_round`` say where it came from. With no change it repeats its parent's
    rounds after `at` exactly.

    Args:
        at: The parent's round after which the fork branches (0 <= at < its rounds).
        intervene: Changes the state after round `at`: called with a `Snapshot` (``set``,
            ``get``, ``send``, ``world``).
        set: ``{"AGENT.FIELD": value}``: agents' state to set (``{"0.opinion": 1.0}``).
        options: The protocol's options to change (``{"fanout": 3}``); an option the world
            holds (the feed's ``recommender``) changes there.
        params: Tags for ``runs.params`` (merged with the parent's).
        new_run_id: The fork's run id (default the parent's with ``.fork-`` and a short id).

    Example:
        >>> child = orchestrator.fork("run.duckdb", "abc", at=20, set={"0.opinion": 1.0})
    """
    path = check_log_path(log)
    writer = LogWriter(path)
    with _closed_on_error(writer):
        rid, _ = _pick(writer, run_id)
        logged, _ = logged_counts(writer.con, rid)
        if isinstance(at, bool) or not isinstance(at, int) or not 0 <= at < logged:
            raise ConfigError(
                f"--at must be a round the parent played, 0..{logged - 1}, got {at!r} (run {rid!r})."
            )
        parent_dir = checkpoint.checkpoint_dir(path, rid)
        parent: RunPlan = checkpoint.load_plan(parent_dir, rid)
        child = new_run_id or f"{rid}.fork-{uuid.uuid4().hex[:6]}"
        check_new_run_id(writer, child)
        protocol = _with_options(parent.protocol, options or {})
        changes = _changes(set or {}, parent.population)
        plan = _fork_plan(parent, child, rid, at, params or {}, options or {}, changes)
        plan, rt = _start_runtime(plan, runtime, address, hosts)
        base = _last_checkpoint(parent_dir, logged, at)
        folder = checkpoint.checkpoint_dir(path, child)
        _start_fork(writer, replace(plan, protocol=protocol), rid, at, base, parent_dir, folder)

    def change(where: Path, r: int) -> None:
        snap = Snapshot(where, r, plan.protocol.kind_table())
        for (agent, name), value in changes:
            snap.set(agent, name, value)
        for key, value in (options or {}).items():
            if snap.world is not None and hasattr(snap.world, key):
                setattr(snap.world, key, value)
        if intervene is not None:
            intervene(snap)
        snap.save()

    how = "its checkpoint there" if base == at else f"rounds {base + 1}..{at} played again"
    event = ("forked", f"from run {rid} after round {at} ({how})")
    point: ForkPoint | None = ForkPoint(at, change, protocol if options else None)
    if base == at:  # the parent has a checkpoint there: change the fork's copy of it, start from it
        with _closed_on_error(writer):
            try:
                change(folder, at)
            except BaseException as exc:  # (an intervention that failed: the fork never ran)
                writer.execute(
                    "UPDATE runs SET status = 'failed', finished_at = now(), stop_reason = ? "
                    "WHERE run_id = ?",
                    [f"intervention failed: {type(exc).__name__}: {exc}"[:500], child],
                )
                raise
        plan, point = replace(plan, protocol=protocol), None
    state = checkpoint.load_driver(folder, base) if base >= 0 else None
    return play(plan, rt, writer, progress, wait, start=StartPoint(base, state, event), fork_at=point)


def fork_sweep(
    log: str | os.PathLike[str],
    run_id: str,
    *,
    at: int,
    grid: Mapping[str, Sequence[Any]],
    hosts: int | None = None,
    runtime: str | Runtime | None = None,
    address: str | None = None,
    progress: ProgressFn | bool | None = None,
) -> list[Run]:
    """A counterfactual experiment: one fork of run `run_id` after round `at` per point of
    `grid` (every combination of its values), in the same log, one after another.

    A key ``AGENT.FIELD`` sets that agent's state; any other key is a protocol option (see
    `fork`). Each fork's run id is ``<run_id>.fork@<at>.<key>=<value>...`` and its point is
    in ``runs.params``; run the same sweep again and the points already finished are kept,
    not run twice.

    Example:
        >>> fork_sweep("run.duckdb", "abc", at=20, grid={"7.opinion": [0.0, 1.0], "fanout": [1, 3]})
    """
    from orchestrator.log import query
    from orchestrator.log.schema import quote

    keys = list(grid)
    if not keys or any(not list(grid[k]) for k in keys):
        raise ConfigError(f"A fork sweep needs at least one value per key, got {dict(grid)!r}.")
    runs = []
    for values in itertools.product(*(list(grid[k]) for k in keys)):
        point = dict(zip(keys, values))
        child = f"{run_id}.fork@{at}." + ".".join(f"{k}={v}" for k, v in point.items())
        done = query(log, f"SELECT status FROM runs WHERE run_id = {quote(child)}").to_pylist()
        if done and done[0]["status"] == "finished":
            print(f"moot: {child} finished already; kept", file=sys.stderr)
            continue
        if done:
            raise ConfigError(
                f"Fork {child!r} is in the log as {done[0]['status']}; go on with it (moot resume "
                f"{log} --run {child}) and run the sweep again."
            )
        sets = {k: v for k, v in point.items() if "." in k}
        options = {k: v for k, v in point.items() if "." not in k}
        runs.append(
            fork(
                log,
                run_id,
                at=at,
                set=sets,
                options=options,
                params=point,
                new_run_id=child,
                hosts=hosts,
                runtime=runtime,
                address=address,
                progress=progress,
            )
        )
    return runs


def _changes(given: Mapping[str, Any], population: Population) -> list[tuple[tuple[int, str], Any]]:
    """``{"AGENT.FIELD": value}`` as ((agent, field), value) pairs, checked against the
    population before anything runs: the agent exists and its class has the field."""
    out = []
    starts = np.cumsum([0, *(g.n for g in population.groups)])
    for key, value in given.items():
        agent, dot, name = str(key).partition(".")
        if not dot or not agent.strip().isdigit() or not name:
            raise ConfigError(
                f"--set {key}={value!r}: name an agent and a field, AGENT.FIELD=VALUE, e.g. 0.opinion=1."
            )
        i, name = int(agent), name.strip()
        if i >= len(population):
            raise ConfigError(f"--set {key}: no agent {i}; the run's agents are 0..{len(population) - 1}.")
        cls = population.groups[int(np.searchsorted(starts, i, side="right")) - 1].cls
        if name not in cls.state_fields():
            raise ConfigError(
                f"Agent {i} ({cls.__name__}) has no state field {name!r}; its fields: "
                f"{', '.join(cls.state_fields()) or '(none)'}."
            )
        out.append(((i, name), value))
    return out


def _with_options(protocol: MessageProtocol, options: Mapping[str, Any]) -> MessageProtocol:
    """The protocol with `options` (its settings) changed; a setting its world copied from it
    (the feed's recommender) is changed in the fork's world too (`fork`'s ``change``)."""
    if not options:
        return protocol
    out = copy.copy(protocol)
    for key, value in options.items():
        if not hasattr(out, key) or callable(getattr(out, key)):
            known = sorted(k for k, v in vars(protocol).items() if not k.startswith("_") and not callable(v))
            raise ConfigError(
                f"{type(protocol).__name__} has no option {key!r} to change; its options: {', '.join(known)}."
            )
        setattr(out, key, value)
    return out


def _fork_plan(
    parent: RunPlan,
    child: str,
    parent_id: str,
    at: int,
    params: Mapping[str, Any],
    options: Mapping[str, Any],
    changes: list[tuple[tuple[int, str], Any]],
) -> RunPlan:
    config = dict(parent.config)
    config["fork"] = {
        "parent": parent_id,
        "round": at,
        "set": {f"{a}.{f}": v for (a, f), v in changes},
        "options": dict(options),
    }
    return replace(parent, run_id=child, params={**parent.params, **params}, config=config)


def _start_fork(
    writer: LogWriter, plan: RunPlan, parent: str, at: int, base: int, parent_dir: Path, folder: Path
) -> None:
    """The fork's row, its history up to the parent's checkpoint `base`, and that checkpoint."""
    log = RunLog(plan, writer)
    log.start()
    writer.execute(
        "UPDATE runs SET parent_run = ?, fork_round = ?, config = ? WHERE run_id = ?",
        [parent, at, json.dumps(dict(plan.config), default=str), plan.run_id],
    )
    log.copy_history(parent, base)
    log.release()
    checkpoint.save_plan(folder, plan)
    if base >= 0:
        src, dst = parent_dir / f"r{base:08d}", folder / f"r{base:08d}"
        shutil.copytree(src, dst, copy_function=os.link, dirs_exist_ok=True)
