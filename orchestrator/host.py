"""A host: one shard of agents, stepped one round per call.

Plain Python: the in-process runtime calls it directly; the Ray runtime wraps it
as an actor (`orchestrator.ray_runtime`). Agents of a vectorised class live as
numpy columns and step with one `act_batch` call per block; other agents are
objects stepped one by one (async ones concurrently, bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import threading
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from pydantic import BaseModel

import orchestrator.aggregates as aggregates
import orchestrator.checkpoint as checkpoint
from agents.agent import Agent
from agents.batch import Inbox, MessageBatch
from agents.context import BatchContext, Context
from agents.message import KINDS, Message
from agents.population import Block, Population, is_text_field
from agents.reply import Reply
from agents.vector import check_vector, one_vector, vector_fields
from orchestrator.aggregates import Received
from orchestrator.errors import AgentError, ClusterError, ConfigError, MootError, ProtocolError
from orchestrator.log.segments import Segment, SegmentSink
from orchestrator.message_log import MessageLog, actions_only, const_column, messages_table, vector_array
from orchestrator.tree import CHUNK, FieldStats, shard_bounds
from protocols.base import Router
from protocols.world import World

if TYPE_CHECKING:
    from orchestrator.llm.gateway import Gateway, LLMSetup
    from orchestrator.telemetry import HostTracer, SpanRecord

__all__ = ["CHUNK", "FieldStats", "Host", "HostSpec", "HostStats", "RoundResult", "StepParts", "shard_bounds"]


@dataclass(frozen=True, slots=True)
class HostStats:
    """What a host reports after a round.

    Attributes:
        sent: Messages this host delivered this round.
        fields: Per watched field (in `HostSpec.fields` order), its `FieldStats`.
        max_change: Largest absolute change of any numeric state value this round
            (NaN when not tracked).
        llm_calls: This round's `llm_calls` rows from this host (None without LLM calls).
        events: Events for the ``events`` table: (round, kind, detail).
        spans: Trace spans the host finished this round (empty when not tracing).
        peak_in_flight: Most LLM calls this host had in flight at once (traced runs only).
        segments: The segment files this host wrote this round (its message rows).
    """

    sent: int
    fields: tuple[FieldStats, ...]
    max_change: float = float("nan")
    llm_calls: pa.Table | None = None
    events: tuple[tuple[int, str, str], ...] = field(default_factory=tuple)
    spans: tuple[SpanRecord, ...] = ()
    peak_in_flight: int | None = None
    segments: tuple[Segment, ...] = ()


T = TypeVar("T")


@dataclass(frozen=True)
class StepParts(Generic[T]):
    """What `Host.step` returns, by name. The host returns it as a flat tuple (Ray hands each
    element back as its own object ref, so that an outbox travels straight to its host); a
    runtime names the elements, objects or refs alike, with `split`.

    Attributes:
        outboxes: The messages for each destination host, in host order.
        to_world: The actions and broadcasts for the world (None without a world).
        stats: The host's `HostStats`.
    """

    outboxes: list[T]
    to_world: T | None
    stats: T

    @classmethod
    def split(cls, returned: Sequence[T], hosts: int, world: bool) -> StepParts[T]:
        """Name the elements of what `Host.step` returned (`hosts` outboxes, then ...)."""
        return cls(list(returned[:hosts]), returned[hosts] if world else None, returned[-1])

    @staticmethod
    def returns(hosts: int, world: bool) -> int:
        """How many elements `Host.step` returns (Ray's ``num_returns``)."""
        return hosts + (2 if world else 1)


@dataclass(frozen=True)
class RoundResult:
    """What `Runtime.step` returns for one round.

    Attributes:
        stats: Each host's statistics, in host order.
        tally: Counts the round's deliveries in the hosts, for ``message_aggregates``
            (`orchestrator.aggregates`): each host's `Received` and each host's distinct
            senders per kind (called later, on the log writer's thread; only when messages
            are aggregated). No message crosses to the driver.
        world: The world's metrics after the round (empty without a world).
        written: Waits for the segments the hosts wrote this round and returns them (called
            on the log writer's thread).
    """

    stats: list[HostStats]
    tally: Callable[[], tuple[list[Received], list[dict[int, int]]]]
    world: dict[str, float]
    written: Callable[[], list[Segment]]


def _as_messages(result: Any, agent: Agent, round: int) -> list[Message]:
    if result is None:
        return []
    if isinstance(result, Message):
        return [result]
    if isinstance(result, Reply):
        return _reply_messages(result, agent, round)
    if isinstance(result, Iterable) and not isinstance(result, (str, bytes, dict, BaseModel)):
        out: list[Message] = []
        for m in result:
            if isinstance(m, Message):
                out.append(m)
            elif isinstance(m, Reply):
                out.extend(_reply_messages(m, agent, round))
            else:
                raise _bad_output(agent, round, m)
        return out
    raise _bad_output(agent, round, result)


def _reply_messages(reply: Reply, agent: Agent, round: int) -> list[Message]:
    try:
        out = list(reply.to_messages())
    except Exception as exc:
        raise AgentError(
            f"Agent {agent.id} ({type(agent).__name__}) replied {reply!r} in round {round}, which "
            f"could not become messages: {exc}"
        ) from exc
    for m in out:
        if not isinstance(m, Message):
            raise _bad_output(agent, round, m)
    return out


def _bad_output(agent: Agent, round: int, value: object) -> AgentError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return AgentError(
        f"Agent {agent.id} ({type(agent).__name__}).act returned {shown} "
        f"({type(value).__name__}) in round {round}; return a Message, a reply of the protocol, "
        "a list of them, or None."
    )


_OPINION = KINDS.index("opinion")  # the same code in every run
_NUMERIC = "fiub"  # numpy kinds of numeric state columns (others hold text)


def _check_columns(out: MessageBatch, block: Block, round: int) -> None:
    """An `act_batch` result whose columns all have one entry per message."""
    lengths = {
        "sender": len(out.sender),
        "seq": len(out.seq),
        "kind": len(out.kind),
        "value": len(out.value),
        "receiver": len(out.receiver),
    }
    for name in ("text", "payload", "topic"):
        col = getattr(out, name)
        if col is not None:
            lengths[name] = len(col)
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k} {v}" for k, v in lengths.items())
        raise AgentError(
            f"{block.cls.__name__}.act_batch returned a MessageBatch whose columns differ in length in "
            f"round {round} ({shown}; agents {block.ids[0]}..{block.ids[-1]}); give one value per "
            "sender, e.g. ctx.broadcast(kind, values) with len(values) == len(ctx.ids)."
        )


def _check_state(block: Block, round: int) -> None:
    """After `act_batch`: every state column still holds one value per agent of the block (a
    vector field one finite row of `dim` per agent, within its bounds)."""
    n = len(block.ids)
    vectors = vector_fields(block.cls)
    for name, col in block.state.items():
        shape = np.shape(col)
        if not shape or shape[0] != n:
            raise AgentError(
                f"{block.cls.__name__}.act_batch left state column {name!r} with shape {shape} in round "
                f"{round}; it must hold one value per agent of the block ({n}: agents "
                f"{block.ids[0]}..{block.ids[-1]}), in ctx.ids order."
            )
        if name in vectors:
            who = block.cls.__name__
            fix = f"in round {round}, {who}.act_batch must leave state[{name!r}] as ({n}, {block.dim})."
            try:
                block.state[name] = check_vector(block.cls, name, col, block.dim or 0, block.ids, fix)
            except ConfigError as exc:
                raise AgentError(str(exc)) from None


def _check_vectors(agents: Sequence[Agent], dim: int, round: int) -> None:
    """After `act` (the plain path): every agent's vector fields still hold `dim` finite entries."""
    vectors = vector_fields(type(agents[0]))
    for agent in agents:
        for name in vectors:
            fix = f"in round {round}, {type(agent).__name__}.act must keep self.{name} a vector of {dim}."
            try:
                setattr(agent, name, one_vector(type(agent), name, getattr(agent, name), dim, agent.id, fix))
            except ConfigError as exc:
                raise AgentError(str(exc)) from None


def _agent_frames(exc: BaseException) -> str:
    """The agent's own traceback frames (below the host's call into it), for the error's text."""
    frames = traceback.extract_tb(exc.__traceback__)[1:]
    if not frames:
        return ""
    return (
        "\nIn the agent's code (most recent call last):\n" + "".join(traceback.format_list(frames)).rstrip()
    )


def _first(ids: NDArray[np.int64], k: int = 5) -> str:
    shown = ", ".join(str(int(i)) for i in ids[:k])
    return shown + (f" and {len(ids) - k} more" if len(ids) > k else "")


def _check_values(out: MessageBatch, cls: str, round: int) -> None:
    """No message value is infinite, no opinion message lacks its number (NaN) and vector, and no
    message vector has a non-finite entry (an all-NaN row is a message without a vector)."""
    missing = np.isnan(out.value)
    if out.vector is not None:
        finite = np.isfinite(out.vector)
        none = np.isnan(out.vector).all(axis=1)
        broken = ~(finite.all(axis=1) | none)
        if broken.any():
            senders = np.unique(out.sender[broken])
            raise AgentError(
                f"{cls} agent(s) {_first(senders)} sent a message vector with a NaN or infinite entry in "
                f"round {round}; every entry of a message's vector must be a finite number."
            )
        missing &= none
    bad = np.isinf(out.value) | (missing & (out.kind == _OPINION))
    if bad.any():
        senders = np.unique(out.sender[bad])
        what = "an infinite value" if np.isinf(out.value[bad]).any() else "an opinion message with value NaN"
        raise AgentError(
            f"{cls} agent(s) {_first(senders)} sent {what} in round {round}; a message's value must be "
            "a finite number (leave it None only for kinds that carry none)."
        )


@dataclass(frozen=True)
class HostSpec:
    """What every host of a run is built from (shipped once to each host).

    Attributes:
        population: The whole population's description; each host builds its shard.
        bounds: All hosts' boundaries (see `shard_bounds`).
        router: The compiled protocol.
        seed: The run's seed.
        fields: Numeric state fields whose statistics are reported each round.
        instructions: The protocol's instructions, passed to agents.
        max_concurrency: Bound on concurrent async `act` calls per host.
        track_change: Report each round's largest state change (for `Stationary`).
        kinds: The run's kind table (core kinds, then the protocol's).
        action_kinds: Kinds that are actions on the protocol's world.
        protocol: The protocol's name, for error messages.
        replies: The protocol's reply models (handed to agents as ``ctx.replies``).
        llm: How LLM agents reach their models (None: no LLM agents in the run).
        trace: Whether the run is traced (hosts then make spans; see `orchestrator.telemetry`).
        message_cap: Most messages one agent may send in one round (None: no cap).
        on_flood: What an agent over `message_cap` gets: ``"error"`` (the run fails, naming
            it) or ``"truncate"`` (its first `message_cap` messages are kept, with an event).
        sink: Where the host writes its rows (agents, messages, states); None: nowhere.
        messages: Which messages get a row (`MessageLog`); the hosts write them unless it
            aggregates (then the driver counts them).
        restore: Start from a checkpoint rather than from the population: (its run's
            checkpoint folder, its round, the bounds of the hosts that wrote it).
    """

    population: Population
    bounds: NDArray[np.int64]
    router: Router
    seed: int
    fields: tuple[str, ...] = ()
    instructions: str = ""
    max_concurrency: int = 64
    track_change: bool = False
    kinds: tuple[str, ...] = KINDS
    action_kinds: tuple[str, ...] = ()
    protocol: str = ""
    replies: tuple[type[Reply], ...] = ()
    llm: LLMSetup | None = None
    trace: bool = False
    message_cap: int | None = None
    on_flood: str = "error"
    sink: SegmentSink | None = None
    messages: MessageLog = field(default_factory=MessageLog.all)
    restore: tuple[str, int, NDArray[np.int64]] | None = None

    @property
    def hosts(self) -> int:
        return len(self.bounds) - 1

    @property
    def action_codes(self) -> NDArray[np.uint8]:
        """The codes of the action kinds in this run's kind table."""
        return np.array([self.kinds.index(k) for k in self.action_kinds], np.uint8)


def _canonical(out: MessageBatch, block: Block, round: int) -> MessageBatch:
    """An `act_batch` result in (sender, seq) order, with seq numbering each sender's messages."""
    if len(out) == 0:
        return out
    lo, hi = int(block.ids[0]), int(block.ids[-1])
    if out.sender.min() < lo or out.sender.max() > hi:
        bad = int(out.sender[(out.sender < lo) | (out.sender > hi)][0])
        raise AgentError(
            f"{block.cls.__name__}.act_batch sent a message as agent {bad}, outside its block "
            f"({lo}..{hi}) in round {round}; use ctx.ids as senders."
        )
    if np.any(np.diff(out.sender) < 0):
        out = out.take(np.lexsort((out.seq, out.sender)))
    new = np.r_[True, out.sender[1:] != out.sender[:-1]]
    if new.all():
        seq = np.zeros(len(out), np.int32)
    else:
        starts = np.flatnonzero(new)
        seq = (np.arange(len(out)) - np.repeat(starts, np.diff(np.r_[starts, len(out)]))).astype(np.int32)
    return replace(out, seq=seq)


def _merge(a: MessageBatch, b: MessageBatch) -> MessageBatch:
    """Two batches each in (sender, seq) order, as one in (sender, seq, receiver) order."""
    if len(a) == 0:
        return b
    both = MessageBatch.concat([a, b])
    return both.take(np.lexsort((both.receiver, both.seq, both.sender)))


# Module-level on purpose: a coroutine method would make Ray treat the host as an
# async actor, whose methods run inside an event loop.
async def _gather(
    calls: list[Awaitable[Any]], agents: list[Agent], round: int, bound: int, llm: Gateway | None = None
) -> list[Any]:
    """Await agents' `act` coroutines, at most `bound` at a time, results in order."""
    gate = asyncio.Semaphore(bound)

    async def one(call: Awaitable[Any], agent: Agent) -> Any:
        async with gate:
            try:
                return await call
            except Exception as exc:
                raise AgentError(
                    f"Agent {agent.id} ({type(agent).__name__}).act raised {exc!r} in round {round}."
                    f"{_agent_frames(exc)}"
                ) from exc

    try:
        return list(await asyncio.gather(*(one(c, a) for c, a in zip(calls, agents))))
    finally:
        if llm is not None:
            await llm.flush()


async def _settle_tasks() -> None:
    """Close litellm's async clients and end the loop's leftover tasks (its logging worker)."""
    import sys

    litellm = sys.modules.get("litellm")
    if litellm is not None and hasattr(litellm, "close_litellm_async_clients"):
        with contextlib.suppress(Exception):
            await litellm.close_litellm_async_clients()
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class _Loop:
    """One event loop per host, alive as long as the host, on a thread of its own.

    Async agents of every round run on it, so clients bound to a loop (litellm's
    HTTP clients) keep working from round to round, and it works the same whether
    or not the caller already runs a loop (a notebook, an async Ray actor).
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="moot-host-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        if self.loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_settle_tasks(), self.loop).result(timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()


class Host:
    """Holds agents ``[lo, hi)`` and steps them.

    Args:
        index: This host's position (0-based).
        spec: The run's host specification.
    """

    def __init__(self, index: int, spec: HostSpec) -> None:
        self.index = index
        self.lo, self.hi = int(spec.bounds[index]), int(spec.bounds[index + 1])
        self.bounds = spec.bounds
        self.router = spec.router
        self.seed = spec.seed
        self.fields = spec.fields
        self.track_change = spec.track_change
        self.instructions = spec.instructions
        self.max_concurrency = spec.max_concurrency
        self.kinds = spec.kinds
        self.codes = {k: i for i, k in enumerate(spec.kinds)}
        self.action_codes = spec.action_codes
        self.protocol = spec.protocol
        self.replies = spec.replies
        self.message_cap = spec.message_cap
        self.on_flood = spec.on_flood
        self.sink = spec.sink
        self.message_log = spec.messages
        self.node = "local"  # the Ray runtime sets its node id
        self._events: list[tuple[int, str, str]] = []  # this round's events, for `HostStats`
        self.llm: Gateway | None = None
        self.tracer: HostTracer | None = None
        if spec.trace:
            from orchestrator.telemetry import HostTracer

            self.tracer = HostTracer(index)
        self._loop: _Loop | None = None
        if spec.llm is not None:
            from orchestrator.llm.gateway import Gateway

            self.llm = Gateway(spec.llm, index, spec.hosts, spec.seed)
        # Each host works on its own replica of the world (in-process hosts share the spec).
        self.world: World | None = copy.deepcopy(spec.router.world)
        self._heard = MessageBatch.empty()  # what the world delivered here after the last round
        # This host's messages to itself stay here, never serialised through Ray (unless the
        # hosts count every round's deliveries in `tally`, as the aggregate message log does).
        self._keep_own = spec.messages.mode != "aggregate"
        self._own = MessageBatch.empty()
        self._carry = MessageBatch.empty()  # messages in flight to here, from a checkpoint
        if spec.restore is None:
            self.blocks: list[Block] = spec.population.blocks(self.lo, self.hi, spec.seed)
        else:
            self._restore(*spec.restore, spec.population)

    def _restore(self, folder: str, round: int, bounds: NDArray[np.int64], population: Population) -> None:
        """Take this host's agents, their messages in flight and the world from a checkpoint."""
        if self.sink is not None and not self.sink.shared() and not Path(folder).is_dir():
            raise ClusterError(
                f"Host {self.index} runs on a node that does not see the log's folder (MOOT_NODE_PARTS or "
                f"--segments-uri), so it cannot read the checkpoint in {folder}; resume where every node "
                "sees the log's storage (a shared path, or this machine alone with --local)."
            )
        saved = checkpoint.read_shard(Path(folder), round, bounds, population, self.lo, self.hi)
        self.blocks, self._carry, self._heard = saved.blocks, saved.pending, saved.heard
        if self.world is not None:
            self.world = checkpoint.load_world(Path(folder), round)

    def save_checkpoint(self, tmp: str, *inboxes: MessageBatch) -> dict[str, bytes]:
        """Write this host's part of a checkpoint (see `orchestrator.checkpoint`): its agents and
        what they read next round. `inboxes` are the messages in flight to this host, as its
        next `step` would get them; they stay in flight.

        Returns:
            The files' bytes, for the driver to write, when this node does not share the log's
            storage (``MOOT_NODE_PARTS``); else nothing."""
        state = checkpoint.HostState(self.lo, self.hi, self.blocks, self._incoming(inboxes), self._heard)
        here = self.sink is None or self.sink.shared()
        return checkpoint.save_host(
            Path(tmp), self.index, state, self.world if self.index == 0 else None, here
        )

    def _incoming(self, inboxes: Sequence[MessageBatch]) -> MessageBatch:
        """The messages this host's agents read next round, in (sender, seq) order: every host's
        batch in host order (this host's own kept here), after any from a checkpoint."""
        if self._keep_own:
            inboxes = [*inboxes[: self.index], self._own, *inboxes[self.index + 1 :]]
        return MessageBatch.concat([self._carry, *inboxes] if len(self._carry) else inboxes)

    def step(
        self, round: int, *inboxes: MessageBatch, trace: dict[str, str] | None = None
    ) -> tuple[Any, ...]:
        """Step every agent one round.

        Args:
            round: The round to play.
            inboxes: Messages for this host sent last round, one batch per source host,
                in host order.
            trace: The driver's round span as W3C trace-context headers (traced runs).

        Returns:
            The elements of a `StepParts`, flat: one batch of delivered messages per
            destination host; with a world, the batch of actions and broadcasts for the
            world (read by every host's `apply`); then `HostStats`.
        """
        if self.tracer is None or trace is None:
            return self._step(round, inboxes)
        span = self.tracer.start_step(
            trace, {"moot.round": round, "moot.host": self.index, "moot.agents": self.hi - self.lo}
        )
        try:
            out = self._step(round, inboxes, span)
        finally:
            span.end()
        stats: HostStats = out[-1]
        return (*out[:-1], replace(stats, spans=self.tracer.drain()))

    def _step(self, round: int, inboxes: Sequence[MessageBatch], span: Any = None) -> tuple[Any, ...]:
        received = self._incoming(inboxes)
        self._carry = MessageBatch.empty()
        if len(self._heard):
            received = _merge(received, self._heard)
        inbox = self._inbox(received, round - 1)
        before = [self._numeric_state(b, snapshot=True) for b in self.blocks] if self.track_change else []
        parts = [self._act(block, inbox, round) for block in self.blocks]
        watched = self._watched(round)  # a bad state is the cause: blame it before its messages
        for block, part in zip(self.blocks, parts):
            if len(part):
                _check_values(part, block.cls.__name__, round)
        outbox = MessageBatch.concat(parts)
        to_world = MessageBatch.empty()
        if self.world is not None:
            for_world = np.isin(outbox.kind, self.action_codes) | (outbox.receiver < 0)
            if for_world.any():
                to_world = outbox.take(np.flatnonzero(for_world))
                outbox = outbox.take(np.flatnonzero(~for_world))
        try:
            delivered = self.router.route(outbox, round, self.seed)
        except MootError:
            raise
        except Exception as exc:
            raise ProtocolError(
                f"{type(self.router).__name__}.route raised {exc!r} in round {round}."
            ) from exc
        change = self._max_change(before) if self.track_change else float("nan")
        written = self._write_messages(round, delivered, actions_only([to_world], self.action_codes)[0])
        fields = tuple(FieldStats.of(*w, self.lo, self.hi) for w in watched)
        stats = HostStats(len(delivered), fields, change, segments=written)
        events, self._events = self._events, []
        if self.llm is not None:
            calls, llm_events, times = self.llm.drain()
            events.extend(llm_events)
            peak = None
            if span is not None and self.tracer is not None:
                peak = self.tracer.llm_spans(span, calls, times) if calls is not None else 0
            stats = replace(stats, llm_calls=calls, peak_in_flight=peak)
        if events:
            stats = replace(stats, events=tuple(events))
        if span is not None:
            span.set_attribute("moot.messages", len(delivered))
        outboxes = self._split(delivered)
        if self._keep_own:
            self._own, outboxes[self.index] = outboxes[self.index], MessageBatch.empty()
        if self.world is None:
            return (*outboxes, stats)
        return (*outboxes, to_world, stats)

    def apply(self, round: int, *to_world: MessageBatch, lead: bool = False) -> tuple[Any, ...]:
        """Apply round `round`'s actions (every host's, in host order) to this host's world replica.

        Then deliver the round's broadcasts to this host's agents that hear them
        (they read them next round), and write their rows.

        Args:
            lead: This host applies the round for the other hosts of its node, which copy
                its world (`follow`); its state comes back last.

        Returns:
            (messages the world delivered here, metrics: ``heard`` (how many of them), and on
            host 0 the world's metrics and ``actions``; the segments written), then with
            `lead` the world's state.
        """
        if self.world is None:
            return MessageBatch.empty(), {}, ()
        batch = MessageBatch.concat(to_world)
        is_action = np.isin(batch.kind, self.action_codes)
        self._guarded(round, lambda w: w.apply(batch.take(np.flatnonzero(is_action)), round, self.kinds))
        done = self._delivered(round, batch, is_action)
        return (*done, self.world.snapshot()) if lead else done

    def follow(
        self, round: int, state: Any, *to_world: MessageBatch
    ) -> tuple[MessageBatch, dict[str, float], tuple[Segment, ...]]:
        """`apply` without applying: take the world as the node's leading host left it
        (`World.snapshot`), then deliver and report as `apply` does."""
        assert self.world is not None
        self.world.restore(state)
        batch = MessageBatch.concat(to_world)
        return self._delivered(round, batch, np.isin(batch.kind, self.action_codes))

    def _guarded(self, round: int, call: Callable[[World], Any]) -> Any:
        """Call the world; an error that is not moot's own becomes a `ProtocolError` naming it."""
        assert self.world is not None
        try:
            return call(self.world)
        except MootError:
            raise
        except Exception as exc:
            raise ProtocolError(f"{type(self.world).__name__} raised {exc!r} in round {round}.") from exc

    def _delivered(
        self, round: int, batch: MessageBatch, is_action: NDArray[np.bool_]
    ) -> tuple[MessageBatch, dict[str, float], tuple[Segment, ...]]:
        broadcasts = batch.take(np.flatnonzero(~is_action))
        self._heard = self._guarded(round, lambda w: w.deliver(broadcasts, self.lo, self.hi, round))
        metrics = dict(self._guarded(round, lambda w: w.metrics(round))) if self.index == 0 else {}
        if self.index == 0:
            metrics["actions"] = float(is_action.sum())
        metrics["heard"] = float(len(self._heard))
        return self._heard, metrics, self._write_messages(round, self._heard, tag="world")

    def _write_messages(self, round: int, *batches: MessageBatch, tag: str = "") -> tuple[Segment, ...]:
        """This host's rows of `messages` for the round, as one segment (as the message log says)."""
        mlog, sink = self.message_log, self.sink
        if sink is None or not mlog.writes_rows(round):
            return ()
        parts = [mlog.select(b, round, self.seed) for b in batches if len(b)]
        parts = [p for p in parts if len(p)]
        if not parts:
            return ()
        rows = pa.concat_tables([messages_table(p, round, self.protocol, self.kinds) for p in parts])
        written = sink.write("messages", round, self.index, rows, tag)
        return (written,) if written is not None else ()

    def tally(self, *parts: MessageBatch) -> tuple[Any, ...]:
        """Count one round's deliveries to this host's agents for ``message_aggregates``.

        Args:
            parts: Every host's outbox to here that round, in host order, then what the
                world delivered here.

        Returns:
            This host's `Received`, then per sending host a bitmap of the senders heard here,
            per kind (for that host's `count_senders`).
        """
        *inboxes, heard = parts
        batch = MessageBatch.concat(inboxes)
        batch = _merge(batch, heard) if len(heard) else batch
        counted, marks = aggregates.received(batch, self.lo, self.hi, self.bounds)
        return (counted, *marks)

    def count_senders(self, *marks: dict[int, NDArray[np.uint8]]) -> dict[int, int]:
        """Distinct senders of this host's agents per kind, from every host's `tally` bitmaps."""
        return aggregates.senders(*marks)

    def _inbox(self, batch: MessageBatch, round: int) -> Inbox:
        local = batch.receiver - self.lo
        if len(local) and (local.min() < 0 or local.max() >= self.hi - self.lo):
            raise ProtocolError(
                f"Host {self.index} got messages for agents outside [{self.lo}, {self.hi}); "
                "the protocol's router delivered to the wrong host."
            )
        # Sources arrive in host order, each ordered by (sender, seq): the batch is in
        # global (sender, seq) order, whatever the number of hosts.
        weight = self.router.edge_weights(batch.sender, batch.receiver) if len(batch) else None
        return Inbox(batch, local, self.hi - self.lo, round, self.kinds, weight)

    def _block_inbox(self, inbox: Inbox, block: Block) -> Inbox:
        return inbox.select(int(block.ids[0]) - self.lo, int(block.ids[-1]) + 1 - self.lo)

    def _act(self, block: Block, inbox: Inbox, round: int) -> MessageBatch:
        out = self._act_block(block, inbox, round)
        return self._capped(out, block, round) if len(out) else out

    def _capped(self, out: MessageBatch, block: Block, round: int) -> MessageBatch:
        """`out` (in sender, seq order) with no agent over the message cap (or an `AgentError`)."""
        cap = self.message_cap
        if cap is None or int(out.seq.max()) < cap:
            return out
        over = out.seq >= cap
        senders = np.unique(out.sender[over])
        sent = int(out.seq.max()) + 1
        who = f"{block.cls.__name__} agent(s) {_first(senders)}"
        if self.on_flood == "error":
            raise AgentError(
                f"{who} sent up to {sent:,} messages in round {round}, over the cap of {cap:,} per agent "
                "per round; raise launch(message_cap=...) (moot run --message-cap) if that is meant, or "
                "pass on_flood='truncate' to keep each agent's first messages."
            )
        self._events.append(
            (round, "flood", f"{who} sent up to {sent:,} messages; kept the first {cap:,} of each")
        )
        return out.take(np.flatnonzero(~over))

    def _act_block(self, block: Block, inbox: Inbox, round: int) -> MessageBatch:
        box = self._block_inbox(inbox, block)
        if block.agents is None:
            seen = {} if self.world is None else self.world.observe_batch(block.ids, round)
            ctx = BatchContext(round, block.ids, self.seed, seen, self.kinds)
            try:
                out = block.cls.act_batch(block.state, box, ctx)
            except Exception as exc:
                raise AgentError(
                    f"{block.cls.__name__}.act_batch raised {exc!r} in round {round} "
                    f"(agents {block.ids[0]}..{block.ids[-1]}).{_agent_frames(exc)}"
                ) from exc
            _check_state(block, round)
            if out is None:
                return MessageBatch.empty()
            if not isinstance(out, MessageBatch):
                raise AgentError(
                    f"{block.cls.__name__}.act_batch returned {type(out).__name__} in round {round}; "
                    "return a MessageBatch or None."
                )
            _check_columns(out, block, round)
            if len(out) and int(out.kind.max()) >= len(self.kinds):
                raise AgentError(
                    f"{block.cls.__name__}.act_batch sent kind code {int(out.kind.max())} in round "
                    f"{round}; this run's kinds are {', '.join(self.kinds)}: build batches with "
                    "ctx.broadcast(kind, ...)."
                )
            return _canonical(out, block, round)
        results = self._act_objects(block.agents, box, round)
        if block.dim is not None:
            _check_vectors(block.agents, block.dim, round)
        messages: list[Message] = []
        counts = np.zeros(len(block.agents), np.int64)
        for k, (agent, result) in enumerate(zip(block.agents, results)):
            ms = _as_messages(result, agent, round)
            counts[k] = len(ms)
            messages.extend(ms)
        sender = np.repeat(block.ids, counts)
        seq = (np.arange(len(messages)) - np.repeat(np.cumsum(counts) - counts, counts)).astype(np.int32)
        try:
            return MessageBatch.from_messages(messages, sender, seq, self.codes)
        except KeyError as exc:
            k = next(i for i, m in enumerate(messages) if m.kind not in self.codes)
            agent = block.agents[int(np.searchsorted(np.cumsum(counts), k, side="right"))]
            raise AgentError(
                f"Agent {agent.id} ({type(agent).__name__}) sent a message of kind {messages[k].kind!r} in "
                f"round {round}, which {self.protocol or 'this protocol'} does not use; its kinds are: "
                f"{', '.join(self.kinds)}."
            ) from exc

    def _act_objects(self, agents: Sequence[Agent], box: Inbox, round: int) -> list[Any]:
        world = self.world
        ctxs = (
            Context(
                round,
                a.id,
                self.seed,
                self.router.neighbours(a.id),
                None if world is None else world.observe(a.id, round),
                self.instructions,
                self.replies,
                self.llm,
            )
            for a in agents
        )
        results: list[Any] = []
        for k, (agent, ctx) in enumerate(zip(agents, ctxs)):
            try:
                results.append(agent.act(box.messages(k), ctx))
            except Exception as exc:
                raise AgentError(
                    f"Agent {agent.id} ({type(agent).__name__}).act raised {exc!r} in round {round}."
                    f"{_agent_frames(exc)}"
                ) from exc
        pending = [i for i, r in enumerate(results) if inspect.isawaitable(r)]
        if pending:
            calls, owners = [results[i] for i in pending], [agents[i] for i in pending]
            bound = max(self.max_concurrency, self.llm.in_flight) if self.llm else self.max_concurrency
            done = self._run(_gather(calls, owners, round, bound, self.llm))
            for i, r in zip(pending, done):
                results[i] = r
        return results

    def _run(self, coro: Coroutine[Any, Any, list[Any]]) -> list[Any]:
        if self._loop is None:
            self._loop = _Loop()
        result: list[Any] = self._loop.run(coro)
        return result

    def close(self) -> None:
        """Stop the host's event loop (if it has one)."""
        loop = getattr(self, "_loop", None)  # a Ray host may be closed before its setup
        if loop is not None:
            loop.close()
            self._loop = None

    def _split(self, delivered: MessageBatch) -> list[MessageBatch]:
        hosts = len(self.bounds) - 1
        if hosts == 1:
            return [delivered]
        dest = (np.searchsorted(self.bounds, delivered.receiver, side="right") - 1).astype(np.uint16)
        if hosts <= 8:  # a few masks beat a sort
            return [delivered.take(np.flatnonzero(dest == h)) for h in range(hosts)]
        order = np.argsort(dest, kind="stable")
        cuts = np.searchsorted(dest[order], np.arange(hosts + 1))
        ordered = delivered.take(order)
        return [ordered.slice(int(cuts[h]), int(cuts[h + 1])) for h in range(hosts)]

    def _field_values(self, field: str) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        vals: list[NDArray[np.float64]] = []
        ids: list[NDArray[np.int64]] = []
        for block in self.blocks:
            if field not in block.cls.model_fields:
                continue
            if block.agents is None:
                vals.append(block.state[field])
            elif field in vector_fields(block.cls):
                vals.append(np.array([getattr(a, field) for a in block.agents], np.float64))
            else:
                vals.append(np.array([float(getattr(a, field)) for a in block.agents]))
            ids.append(block.ids)
        if not vals:
            return np.empty(0), np.empty(0, np.int64)
        return np.concatenate(vals), np.concatenate(ids)

    def _watched(self, round: int) -> list[tuple[NDArray[np.float64], NDArray[np.int64]]]:
        """(values, agent ids) of each watched field after this round's acts, checked finite."""
        out = []
        for name in self.fields:
            values, ids = self._field_values(name)
            self._check_finite(name, values, ids, round)
            out.append((values, ids))
        return out

    def _check_finite(
        self, name: str, values: NDArray[np.float64], ids: NDArray[np.int64], round: int
    ) -> None:
        """A watched field that became NaN or infinite stops the run, naming the agents."""
        bad: NDArray[np.bool_] = ~np.isfinite(values)
        if bad.ndim == 2:  # a vector field: an agent with any bad entry
            bad = np.asarray(bad.any(axis=1))
        if not bad.any():
            return
        agents = ids[bad]
        block = next(b for b in self.blocks if b.ids[0] <= agents[0] <= b.ids[-1])
        what = "NaN" if np.isnan(values[bad][0]).any() else "infinite"
        raise AgentError(
            f"Watched field {name!r} became {what} for {len(agents)} agent(s) of this host in round "
            f"{round} (agents {_first(agents)}, first of class {block.cls.__name__}); statistics and stop "
            f"rules cannot read it. Check {block.cls.__name__}'s act/act_batch (a division by zero, a "
            "mean of nothing)."
        )

    def _max_change(self, before: list[dict[str, NDArray[np.float64]]]) -> float:
        """Largest |new - old| over every numeric state value of this host's agents."""
        out = 0.0
        for block, old in zip(self.blocks, before):
            for name, new in self._numeric_state(block).items():
                prev = old.get(name)
                if prev is None or len(prev) == 0:
                    continue
                with np.errstate(invalid="ignore"):
                    diff = np.abs(new - prev)
                both_nan = np.isnan(new) & np.isnan(prev)
                diff = np.where(both_nan, 0.0, diff)
                out = max(out, float(np.max(np.where(np.isnan(diff), np.inf, diff))))
        return out

    @staticmethod
    def _numeric_state(block: Block, snapshot: bool = False) -> dict[str, NDArray[np.float64]]:
        if block.agents is None:
            numeric = {k: v for k, v in block.state.items() if v.dtype.kind in _NUMERIC}
            return {k: v.copy() for k, v in numeric.items()} if snapshot else numeric
        cols: dict[str, NDArray[np.float64]] = {}
        vectors = vector_fields(block.cls)
        for name in block.cls.state_fields():
            col = [getattr(a, name) for a in block.agents]
            if name in vectors:
                cols[name] = np.array(col, np.float64)
            elif all(isinstance(v, (int, float, bool)) for v in col):
                cols[name] = np.asarray(col, np.float64)
        return cols

    @staticmethod
    def _text_state(block: Block) -> dict[str, list[str | None]]:
        """The agents' text fields (a party, a group), by name: logged in ``states.text``."""
        quiet = block.cls.unlogged
        if block.agents is None:
            text = {k: v for k, v in block.state.items() if v.dtype.kind not in _NUMERIC}
            return {k: v.tolist() for k, v in text.items() if k not in quiet}
        names = [n for n in block.cls.state_fields() if is_text_field(block.cls, n) and n not in quiet]
        return {n: [getattr(a, n) for a in block.agents] for n in names}

    def write_states(self, round: int) -> Segment | None:
        """Write every agent's state after `round` as a segment of ``states``."""
        if self.sink is None:
            return None
        return self.sink.write("states", round, self.index, self.states(round))

    def states(self, round: int) -> pa.Table:
        """Every numeric and text state field of every agent, long format: round, agent, field,
        value (numbers) or text (text fields)."""
        names: list[str] = []
        agents: list[NDArray[np.int64]] = []
        codes: list[NDArray[np.int32]] = []
        values: list[NDArray[np.float64]] = []
        texts: list[tuple[int, NDArray[np.int64], list[str | None]]] = []  # (field code, ids, texts)
        vectors: list[tuple[int, NDArray[np.int64], NDArray[Any]]] = []  # (field code, ids, (n, dim))

        def code(name: str) -> int:
            if name not in names:
                names.append(name)
            return names.index(name)

        for block in self.blocks:
            columns = dict(self._numeric_state(block))
            if self.world is not None:
                for name, col in self.world.state_columns(block.ids).items():
                    columns.setdefault(name, col)
            for name, col in columns.items():
                if name in block.cls.unlogged:
                    continue
                if col.ndim == 2:
                    vectors.append((code(name), block.ids, col))
                    continue
                agents.append(block.ids)
                codes.append(np.full(len(block.ids), code(name), np.int32))
                values.append(col)
            texts.extend((code(name), block.ids, col) for name, col in self._text_state(block).items())
        n = sum(len(a) for a in agents)
        value = pa.array(np.concatenate(values) if values else np.empty(0))
        columns_out: dict[str, Any] = {}
        if vectors:  # vector rows after the numeric ones: value NULL, vector set
            agents.extend(ids for _, ids, _ in vectors)
            codes.extend(np.full(len(ids), c, np.int32) for c, ids, _ in vectors)
            m = sum(len(ids) for _, ids, _ in vectors)
            value = pa.concat_arrays([value, pa.nulls(m, pa.float64())])
            dims = {col.shape[1] for _, _, col in vectors}
            flat = np.concatenate([col.astype(np.float64, copy=False).ravel() for _, _, col in vectors])
            vec = vector_array(flat, dims.pop()) if len(dims) == 1 else _ragged(vectors)
            columns_out["vector"] = pa.concat_arrays([pa.nulls(n, vec.type), vec])
            n += m
        if texts:  # text rows after the numeric ones: value NULL, text set
            agents.extend(ids for _, ids, _ in texts)
            codes.extend(np.full(len(ids), c, np.int32) for c, ids, _ in texts)
            m = sum(len(ids) for _, ids, _ in texts)
            value = pa.concat_arrays([value, pa.nulls(m, pa.float64())])
            text = pa.array([t for _, _, col in texts for t in col], pa.string())
            columns_out["text"] = pa.concat_arrays([pa.nulls(n, pa.string()), text])
            if "vector" in columns_out:
                columns_out["vector"] = pa.concat_arrays(
                    [columns_out["vector"], pa.nulls(m, pa.list_(pa.float64()))]
                )
            n += m
        return pa.table(
            {
                "round": pa.array(np.full(n, round, np.int32)),
                "agent": pa.array(np.concatenate(agents) if agents else np.empty(0, np.int64)),
                "field": pa.DictionaryArray.from_arrays(
                    pa.array(np.concatenate(codes) if codes else np.empty(0, np.int32)),
                    pa.array(names, pa.string()),
                ),
                "value": value,
                **columns_out,
            }
        )

    def plan_router(self) -> tuple[Any, ...]:
        """Phase 1 of a router each host builds for itself (`Router.plan_shard`): returns what
        every host needs from this one, then one payload per host."""
        self._router_state, shared, payloads = self.router.plan_shard(
            self.lo, self.hi, self.bounds, self.seed
        )
        return (shared, *payloads)

    def finish_router(self, *received: Any) -> dict[str, Any]:
        """Phase 2: every host's shared part, then the payloads addressed here, in host order."""
        hosts = len(self.bounds) - 1
        self.router, summary = self.router.finish_shard(
            self._router_state, list(received[:hosts]), list(received[hosts:])
        )
        self._router_state = None
        return summary

    def read_segments(self, files: list[str]) -> list[bytes]:
        """The bytes of segments this host wrote, for a driver that cannot see its node's disk."""
        return self.sink.read(files) if self.sink is not None else []

    def write_agents(self) -> Segment | None:
        """Write this host's rows of ``agents``: every agent's id, class, host and node."""
        if self.sink is None or not self.blocks:
            return None
        ids = np.concatenate([b.ids for b in self.blocks])
        n = len(ids)
        codes = np.concatenate([np.full(len(b.ids), i, np.int32) for i, b in enumerate(self.blocks)])
        classes = pa.DictionaryArray.from_arrays(
            pa.array(codes), pa.array([b.cls.__name__ for b in self.blocks], pa.string())
        )
        rows = pa.table(
            {
                "agent": pa.array(ids.astype(np.int64, copy=False)),
                "class": classes,
                "host": pa.array(np.full(n, self.index, np.int32)),
                "node": const_column(self.node, n),
            }
        )
        return self.sink.write("agents", -1, self.index, rows)


def _ragged(vectors: list[tuple[int, NDArray[np.int64], NDArray[Any]]]) -> pa.Array:
    """Vector rows of fields of several lengths (two classes, two dims) as one list column."""
    rows = [row for _, _, col in vectors for row in col.astype(np.float64, copy=False).tolist()]
    return pa.array(rows, pa.list_(pa.float64()))
