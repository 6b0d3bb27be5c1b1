"""Checkpoints: a run cut at a round boundary, to resume, restart, fork or interview from.

Rounds are synchronous and draws are counter-based, so everything the next round reads
is a handful of things, saved after round r as one folder beside the log::

    run.duckdb.parts/checkpoints/run_id=<run>/
      plan.pkl                     the run's definition (population, protocol, options), once
      r00000009/                   after round 9, whole
        host-00000.pkl ...         each host's agents (columns, or the objects of plain and
                                   LLM agents with their memories) and the messages in
                                   flight to them (sent in round 9, read in round 10)
        world.pkl                  the protocol's world, once (every host's replica is the same
                                   between rounds)
        driver.pkl                 the round, running totals, the stop rules' state, money spent

Each host writes its own file (as it writes its own rows); the driver writes ``driver.pkl``
last and then renames ``r00000009.tmp`` to ``r00000009``, so a folder without ``.tmp`` is
whole and a cut one is never read. The log's rows after round 9 are known by their round,
so a run resumed from here discards them first (`orchestrator.run_log.RunLog.rewind`).

A checkpoint can be read back by another number of hosts: a host takes, from every old
host's file that overlaps its agents, the agents and the messages in flight to them
(`read_shard`). Pickles are cloudpickle, so an agent class defined in a study script
travels by value; a class imported from the user's own module must be importable where
the run is resumed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
from numpy.typing import NDArray

from agents.batch import MessageBatch
from agents.population import Block, Population
from agents.vector import one_vector
from orchestrator.errors import ConfigError
from orchestrator.log.segments import parts_dir, run_folder

__all__ = [
    "DriverState",
    "HostState",
    "checkpoint_dir",
    "commit",
    "load_driver",
    "load_plan",
    "read_host",
    "read_shard",
    "rounds_saved",
    "save_host",
    "save_plan",
    "start",
    "write_files",
]

_ROUND = re.compile(r"^r(-?\d{8})$")


def checkpoint_dir(log: Path, run_id: str) -> Path:
    """A run's checkpoint folder: ``<log>.parts/checkpoints/run_id=<run>``."""
    return parts_dir(log.resolve()) / "checkpoints" / run_folder(run_id)


def _round_dir(folder: Path, round: int) -> Path:
    return folder / f"r{round:08d}"


def _write(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole (a temporary name, flushed to disk, then renamed)."""
    part = path.with_name(path.name + ".tmp")
    with open(part, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)


def _dump(path: Path, obj: Any) -> None:
    """Pickle `obj` to `path` whole (`_write`)."""
    _write(path, cloudpickle.dumps(obj, protocol=5))


def _load(path: Path) -> Any:
    with open(path, "rb") as f:
        return cloudpickle.load(f)


def save_plan(folder: Path, plan: Any) -> None:
    """The run's definition (`RunPlan`), once at its start, for `moot resume`, forks and interviews."""
    folder.mkdir(parents=True, exist_ok=True)
    _dump(folder / "plan.pkl", plan)


def load_plan(folder: Path, run_id: str) -> Any:
    """The `RunPlan` saved by `save_plan`."""
    path = folder / "plan.pkl"
    if not path.is_file():
        raise ConfigError(
            f"Run {run_id!r} has no saved definition ({str(path)!r} is missing): it was made by a moot "
            "without checkpoints, or its log was moved without its .parts folder. Move the folder "
            "beside the log, or start the run again."
        )
    try:
        return _load(path)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"Run {run_id!r} cannot be rebuilt here: {exc}. Its agents or protocol come from a module "
            "that is not importable in this process; run moot from the directory of the study "
            "script (or put its modules on PYTHONPATH)."
        ) from exc


@dataclass
class HostState:
    """What one host saves: its agents and what they read next round.

    Attributes:
        lo, hi: The host's agents, ``[lo, hi)``.
        blocks: Its agents (`Block`: columns, or agent objects).
        pending: The messages sent to its agents in the checkpoint's round (read next round).
        heard: What the world delivered to its agents after that round.
    """

    lo: int
    hi: int
    blocks: list[Block]
    pending: MessageBatch
    heard: MessageBatch


@dataclass
class DriverState:
    """The driver's part of a checkpoint: where the run stands after `round`.

    Attributes:
        round: The last round played.
        bounds: The hosts' boundaries when it was saved.
        messages, actions: Totals so far.
        final: The last round's metrics.
        llm: LLM totals so far (calls, errors, tokens, cost).
        stop: The stop rule, with whatever it counts (consecutive calm rounds).
        spent: Dollars spent against the budget.
        driver_rows: Message rows that crossed to the driver (aggregate logging).
    """

    round: int
    bounds: NDArray[np.int64]
    messages: int
    actions: int
    final: dict[str, float]
    llm: dict[str, float] = field(default_factory=dict)
    stop: Any = None
    spent: float = 0.0
    driver_rows: int = 0


def start(folder: Path, round: int) -> Path:
    """A fresh temporary folder for the checkpoint after `round` (hosts write into it)."""
    tmp = _round_dir(folder, round).with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def host_file(tmp: Path, host: int) -> Path:
    return tmp / f"host-{host:05d}.pkl"


def save_host(
    tmp: Path, host: int, state: HostState, world: Any = None, here: bool = True
) -> dict[str, bytes]:
    """One host's part (and host 0's world) into the checkpoint being written. A host on a node
    that does not see the folder (``MOOT_NODE_PARTS``; `here` False) gets the files' bytes back,
    for the driver to write (`write_files`)."""
    files = {host_file(Path(tmp), host).name: state, **({"world.pkl": world} if world is not None else {})}
    if not here:
        return {name: cloudpickle.dumps(obj, protocol=5) for name, obj in files.items()}
    for name, obj in files.items():
        _dump(Path(tmp) / name, obj)
    return {}


def write_files(tmp: Path, files: dict[str, bytes]) -> None:
    """Write, whole, the checkpoint files hosts sent back (`save_host`)."""
    for name, data in files.items():
        _write(Path(tmp) / name, data)


def commit(tmp: Path, state: DriverState, hosts: int) -> Path:
    """Finish the checkpoint: check every host's file is there, write the driver's part, and
    rename the folder so that it counts."""
    absent = [h for h in range(hosts) if not host_file(tmp, h).is_file()]
    if absent:
        raise OSError(f"checkpoint {tmp}: host(s) {absent} wrote no file (does every node see this folder?)")
    _dump(tmp / "driver.pkl", state)
    final = tmp.with_suffix("")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    with contextlib.suppress(OSError):  # the rename itself, on disk
        fd = os.open(final.parent, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    return final


def rounds_saved(folder: Path) -> list[int]:
    """The rounds with a whole checkpoint, ascending."""
    if not folder.is_dir():
        return []
    found = (_ROUND.match(p.name) for p in folder.iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m is not None)


def thin(folder: Path, spacing: int) -> None:
    """Keep a run's checkpoints from filling the disk: the two latest, and those after rounds
    that are a multiple of `spacing` (every tenth checkpoint); a fork or a resume between them
    replays from the one before (exactly, only slower)."""
    saved = rounds_saved(folder)
    for r in saved[:-2]:
        if (r + 1) % spacing:
            shutil.rmtree(_round_dir(folder, r), ignore_errors=True)


def drop_after(folder: Path, round: int) -> None:
    """Delete the checkpoints after `round` (and any unfinished one): a rewound run's future."""
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        m = _ROUND.match(p.name)
        if p.suffix == ".tmp" or (m is not None and int(m.group(1)) > round):
            shutil.rmtree(p, ignore_errors=True)


def load_driver(folder: Path, round: int) -> DriverState:
    state: DriverState = _load(_round_dir(folder, round) / "driver.pkl")
    return state


def load_world(folder: Path, round: int) -> Any:
    path = _round_dir(folder, round) / "world.pkl"
    return _load(path) if path.is_file() else None


def read_host(folder: Path, round: int, host: int) -> HostState:
    """What host `host` saved in the checkpoint after `round`."""
    state: HostState = _load(host_file(_round_dir(folder, round), host))
    return state


def read_shard(
    folder: Path, round: int, bounds: NDArray[np.int64], population: Population, lo: int, hi: int
) -> HostState:
    """Agents ``[lo, hi)`` and what they read next, from the checkpoint after `round`, whatever
    the number of hosts that wrote it (`bounds`: theirs)."""
    where = _round_dir(folder, round)
    old = [
        _load(host_file(where, h))
        for h in range(len(bounds) - 1)
        if bounds[h] < hi and bounds[h + 1] > lo and bounds[h] < bounds[h + 1]
    ]
    if len(old) == 1 and (old[0].lo, old[0].hi) == (lo, hi):
        state: HostState = old[0]
        return state
    blocks = [_gather_block(old, a, b) for a, b in population.spans(lo, hi)]
    return HostState(
        lo, hi, blocks, _mine([s.pending for s in old], lo, hi), _mine([s.heard for s in old], lo, hi)
    )


def _gather_block(old: list[HostState], a: int, b: int) -> Block:
    """Agents ``[a, b)`` (one group of the population) from the old hosts' blocks."""
    parts: list[Block] = []
    for s in old:
        for blk in s.blocks:
            lo, hi = int(blk.ids[0]), int(blk.ids[-1]) + 1
            if lo >= b or hi <= a:
                continue
            i, j = max(a, lo) - lo, min(b, hi) - lo
            state = {k: v[i:j] for k, v in blk.state.items()}
            agents = None if blk.agents is None else blk.agents[i:j]
            parts.append(Block(blk.cls, blk.ids[i:j], state, agents, blk.dim))
    first = parts[0]
    state = {k: np.concatenate([p.state[k] for p in parts]) for k in first.state}
    agents = None if first.agents is None else [x for p in parts for x in (p.agents or [])]
    return Block(first.cls, np.concatenate([p.ids for p in parts]), state, agents, first.dim)


def _mine(batches: list[MessageBatch], lo: int, hi: int) -> MessageBatch:
    """The messages to agents ``[lo, hi)``, in (sender, seq) order (each receiver's in the order
    its old host had them)."""
    parts = [b.take(np.flatnonzero((b.receiver >= lo) & (b.receiver < hi))) for b in batches if len(b)]
    both = MessageBatch.concat(parts) if parts else MessageBatch.empty()
    if len(parts) > 1:
        both = both.take(np.lexsort((both.seq, both.sender)))
    return both


class Snapshot:
    """A checkpoint opened to be changed: a fork's intervention (`orchestrator.fork`).

    Every change is written back by `save`, and the fork's hosts start from what it holds.

    Example:
        >>> def intervene(snap: Snapshot) -> None:
        ...     snap.set(0, "opinion", 1.0)          # agent 0 now holds opinion 1.0
        ...     snap.world.recommender = "random"    # a world's setting (the social feed)
    """

    def __init__(self, folder: Path, round: int, kinds: tuple[str, ...]) -> None:
        self.round = round
        self.kinds = kinds
        self._where = _round_dir(folder, round)
        driver = load_driver(folder, round)
        self.bounds = driver.bounds
        self._hosts: dict[int, HostState] = {}
        self.world: Any = load_world(folder, round)
        """The protocol's world (None without one): change its attributes."""

    def _host(self, agent: int) -> HostState:
        if not 0 <= agent < int(self.bounds[-1]):
            raise ConfigError(f"No agent {agent} in this run; its agents are 0..{int(self.bounds[-1]) - 1}.")
        h = int(np.searchsorted(self.bounds, agent, side="right")) - 1
        if h not in self._hosts:
            self._hosts[h] = _load(host_file(self._where, h))
        return self._hosts[h]

    def _find(self, agent: int, field: str) -> tuple[Block, int]:
        for block in self._host(agent).blocks:
            if block.ids[0] <= agent <= block.ids[-1]:
                i = agent - int(block.ids[0])
                names = block.cls.state_fields()
                if field not in names:
                    raise ConfigError(
                        f"Agent {agent} ({block.cls.__name__}) has no state field {field!r}; its fields: "
                        f"{', '.join(names) or '(none)'}."
                    )
                return block, i
        raise ConfigError(f"Agent {agent} is in no block of its host (a damaged checkpoint).")

    def get(self, agent: int, field: str) -> Any:
        """Agent `agent`'s state field `field`."""
        block, i = self._find(agent, field)
        if block.agents is None:
            cell = block.state[field][i]
            return cell.copy() if np.ndim(cell) else cell.item()
        return getattr(block.agents[i], field)

    def set(self, agent: int, field: str, value: Any) -> None:
        """Set agent `agent`'s state field `field` to `value` (checked as the agent's class checks it)."""
        block, i = self._find(agent, field)
        if block.agents is not None:
            old = block.agents[i]
            block.agents[i] = type(old).model_validate({**old.model_dump(), field: value})
            return
        column = block.state[field]
        if column.ndim == 2:  # a vector field: a list of dim numbers, checked as the class checks it
            fix = f"give {field} of agent {agent} a list of {column.shape[1]} numbers, e.g. [0.5, ...]."
            value = one_vector(block.cls, field, np.asarray(value, np.float64), column.shape[1], agent, fix)
        elif column.dtype.kind in "fiub":
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{field} of agent {agent} is a number; got {value!r}.") from None
            if not np.isfinite(number):
                raise ConfigError(f"{field} of agent {agent} must be finite, got {value!r}.")
            value = number
        block.state[field] = column.copy()
        block.state[field][i] = value

    def send(self, sender: int, receiver: int, kind: str, value: float = float("nan")) -> None:
        """Put a message in flight: `receiver` reads it next round, as if `sender` had sent it."""
        if kind not in self.kinds:
            raise ConfigError(f"Message kind {kind!r} is not one of this run's: {', '.join(self.kinds)}.")
        host = self._host(receiver)
        one = MessageBatch(
            np.array([sender], np.int64),
            np.array([0], np.int32),
            np.array([self.kinds.index(kind)], np.uint8),
            np.array([value], np.float64),
            np.array([receiver], np.int64),
        )
        both = MessageBatch.concat([host.pending, one]) if len(host.pending) else one
        host.pending = both.take(np.lexsort((both.seq, both.sender)))

    def save(self) -> None:
        """Write every changed host's part and the world back into the checkpoint."""
        for h, state in self._hosts.items():
            _dump(host_file(self._where, h), state)
        if self.world is not None:
            _dump(self._where / "world.pkl", self.world)
