"""Columnar message batches: how messages travel inside the engine.

One `MessageBatch` holds many messages as numpy columns (and Arrow arrays for
text and JSON payloads, which only the plain-Python path fills). Hosts exchange
them between rounds; the coordinator appends them to the log as Arrow. No Python
object per message is made on the vectorised path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from agents.errors import AgentError
from agents.message import KINDS, Message, MessageKind

__all__ = ["Inbox", "MessageBatch", "kind_code"]

_KIND_CODE = {k: i for i, k in enumerate(KINDS)}
NO_RECEIVER = -1


def kind_code(kind: MessageKind | str, kinds: tuple[str, ...] = KINDS) -> int:
    """The uint8 code of a message kind: its index in the run's kind table `kinds`.

    Core kinds have the same code in every run (the table starts with `KINDS`).
    """
    if kinds is KINDS:
        return _KIND_CODE[kind]
    return kinds.index(kind)


def _take(arr: pa.Array | None, idx: NDArray[np.int64]) -> pa.Array | None:
    return None if arr is None else arr.take(pa.array(idx))


_NARROW = 32
"""Vectors up to this long are summed per receiver entry by entry (bincount); longer ones by rows."""


def _vectors(vector: NDArray[np.floating[Any]], n: int) -> NDArray[np.floating[Any]]:
    """A batch's vector column: ``(n, dim)`` floats."""
    arr = np.asarray(vector)
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise AgentError(
            f"A message batch of {n} messages got vectors of shape {arr.shape}; give one row per message, "
            f"shape ({n}, dim) (e.g. ctx.broadcast('opinion', vector=state['opinion']))."
        )
    return arr


def _stack(vectors: Sequence[Any], sender: NDArray[np.int64]) -> NDArray[np.float64]:
    """The plain path's message vectors as one ``(n, dim)`` column (NaN rows where none)."""
    dims = {len(v) for v in vectors if v is not None}
    if len(dims) > 1:
        first = next(len(v) for v in vectors if v is not None)
        k = next(i for i, v in enumerate(vectors) if v is not None and len(v) != first)
        raise AgentError(
            f"Agent {int(sender[k])} sent a message vector of {len(vectors[k])} entries where the others "
            f"this round have {first}; every message vector of a run has the same length."
        )
    (dim,) = dims
    out = np.full((len(vectors), dim), np.nan)
    for i, v in enumerate(vectors):
        if v is not None:
            out[i] = v
    return out


def _concat_vectors(batches: Sequence[MessageBatch]) -> NDArray[np.floating[Any]] | None:
    cols = [b.vector for b in batches]
    if all(c is None for c in cols):
        return None
    dims = {c.shape[1] for c in cols if c is not None}
    if len(dims) > 1:
        raise AgentError(
            f"Messages carry vectors of different lengths ({', '.join(map(str, sorted(dims)))}) in one "
            "round; "
            "every message vector of a run has the same length (the population's dim)."
        )
    (dim,) = dims
    dtype = np.result_type(*(c.dtype for c in cols if c is not None))
    return np.concatenate(
        [np.full((len(b), dim), np.nan, dtype) if c is None else c for b, c in zip(batches, cols)]
    )


@dataclass(frozen=True, slots=True)
class MessageBatch:
    """Many messages as columns. All arrays have the same length.

    Attributes:
        sender: Sending agent ids.
        seq: Index of each message among its sender's messages in the round.
        kind: Kind codes (indices into `agents.KINDS`).
        value: Numeric values (NaN where a message has none).
        receiver: Receiver ids; -1 means "route by the protocol".
        text: Text per message, or None when no message has text.
        payload: JSON text per message, or None when no message has a payload.
        topic: Topic per message, or None when no message has one.
        vector: A vector per message, ``(n, dim)`` (float64 or float32), or None when no
            message has one (`agents.vector`); NaN rows for messages without one.
    """

    sender: NDArray[np.int64]
    seq: NDArray[np.int32]
    kind: NDArray[np.uint8]
    value: NDArray[np.float64]
    receiver: NDArray[np.int64]
    text: pa.Array | None = None
    payload: pa.Array | None = None
    topic: pa.Array | None = None
    vector: NDArray[np.floating[Any]] | None = None

    def __len__(self) -> int:
        return len(self.sender)

    @classmethod
    def empty(cls) -> MessageBatch:
        """A batch with no messages."""
        return cls(
            sender=np.empty(0, np.int64),
            seq=np.empty(0, np.int32),
            kind=np.empty(0, np.uint8),
            value=np.empty(0, np.float64),
            receiver=np.empty(0, np.int64),
        )

    @classmethod
    def broadcast(
        cls,
        senders: NDArray[np.int64],
        kind: MessageKind | str,
        value: NDArray[np.float64] | None = None,
        *,
        kinds: tuple[str, ...] = KINDS,
        vector: NDArray[np.floating[Any]] | None = None,
    ) -> MessageBatch:
        """One message per sender, to be routed by the protocol.

        A protocol's own kinds need the run's kind table: use
        ``ctx.broadcast(kind, value)`` in `act_batch`, which passes it.

        Example:
            >>> MessageBatch.broadcast(np.arange(3), "opinion", np.array([0.1, 0.5, 0.9]))
        """
        n = len(senders)
        return cls(
            sender=np.asarray(senders, np.int64),
            seq=np.zeros(n, np.int32),
            kind=np.full(n, kind_code(kind, kinds), np.uint8),
            value=np.full(n, np.nan) if value is None else np.asarray(value, np.float64),
            receiver=np.full(n, NO_RECEIVER, np.int64),
            vector=None if vector is None else _vectors(vector, n),
        )

    @classmethod
    def from_messages(
        cls,
        messages: Sequence[Message],
        sender: NDArray[np.int64],
        seq: NDArray[np.int32],
        codes: Mapping[str, int] | None = None,
    ) -> MessageBatch:
        """Columns from Message objects (the plain-Python path), with their senders and seqs.

        Args:
            codes: The run's kind codes (kind name to code); default the core kinds.

        Raises:
            KeyError: A message's kind is not in `codes`.
        """
        codes = _KIND_CODE if codes is None else codes
        if not messages:
            return cls.empty()
        texts = [m.text for m in messages]
        payloads = [m.payload for m in messages]
        topics = [m.topic for m in messages]
        vectors = [m.vector for m in messages]
        return cls(
            sender=np.asarray(sender, np.int64),
            seq=np.asarray(seq, np.int32),
            kind=np.fromiter((codes[m.kind] for m in messages), np.uint8, len(messages)),
            value=np.fromiter(
                (np.nan if m.value is None else m.value for m in messages),
                np.float64,
                len(messages),
            ),
            receiver=np.fromiter(
                (NO_RECEIVER if m.receiver is None else m.receiver for m in messages),
                np.int64,
                len(messages),
            ),
            text=None if all(t is None for t in texts) else pa.array(texts, pa.string()),
            payload=None
            if all(p is None for p in payloads)
            else pa.array([None if p is None else json.dumps(p) for p in payloads], pa.string()),
            topic=None if all(t is None for t in topics) else pa.array(topics, pa.string()),
            vector=None if all(v is None for v in vectors) else _stack(vectors, sender),
        )

    def take(self, idx: NDArray[np.int64]) -> MessageBatch:
        """The messages at `idx`, in that order."""
        return MessageBatch(
            sender=self.sender[idx],
            seq=self.seq[idx],
            kind=self.kind[idx],
            value=self.value[idx],
            receiver=self.receiver[idx],
            text=_take(self.text, idx),
            payload=_take(self.payload, idx),
            topic=_take(self.topic, idx),
            vector=None if self.vector is None else self.vector[idx],
        )

    def slice(self, start: int, stop: int) -> MessageBatch:
        """Messages ``start:stop`` (views, no copy)."""

        def cut(a: pa.Array | None) -> pa.Array | None:
            return None if a is None else a.slice(start, stop - start)

        return MessageBatch(
            self.sender[start:stop],
            self.seq[start:stop],
            self.kind[start:stop],
            self.value[start:stop],
            self.receiver[start:stop],
            cut(self.text),
            cut(self.payload),
            cut(self.topic),
            None if self.vector is None else self.vector[start:stop],
        )

    def with_receivers(self, receiver: NDArray[np.int64]) -> MessageBatch:
        """The same messages with the receiver column replaced."""
        return replace(self, receiver=receiver)

    @staticmethod
    def concat(batches: Sequence[MessageBatch]) -> MessageBatch:
        """One batch holding `batches` in order."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return MessageBatch.empty()
        if len(batches) == 1:
            return batches[0]

        def strings(name: str) -> pa.Array | None:
            cols = [getattr(b, name) for b in batches]
            if all(c is None for c in cols):
                return None
            parts = [pa.nulls(len(b), pa.string()) if c is None else c for b, c in zip(batches, cols)]
            return pa.concat_arrays(parts)

        return MessageBatch(
            sender=np.concatenate([b.sender for b in batches]),
            seq=np.concatenate([b.seq for b in batches]),
            kind=np.concatenate([b.kind for b in batches]),
            value=np.concatenate([b.value for b in batches]),
            receiver=np.concatenate([b.receiver for b in batches]),
            text=strings("text"),
            payload=strings("payload"),
            topic=strings("topic"),
            vector=_concat_vectors(batches),
        )

    def message(
        self, i: int, round: int, kinds: tuple[str, ...] = KINDS, weight: float | None = None
    ) -> Message:
        """Message `i` as a `Message` object (for plain-Python agents' inboxes)."""
        value = float(self.value[i])
        payload = None if self.payload is None else self.payload[i].as_py()
        vector = None if self.vector is None or np.isnan(self.vector[i, 0]) else self.vector[i].copy()
        return Message.model_construct(
            kind=kinds[self.kind[i]],
            value=None if value != value else value,
            text=None if self.text is None else self.text[i].as_py(),
            payload=None if payload is None else json.loads(payload),
            receiver=int(self.receiver[i]),
            topic=None if self.topic is None else self.topic[i].as_py(),
            round=round,
            sender=int(self.sender[i]),
            seq=int(self.seq[i]),
            weight=weight,
            vector=vector,
        )


@dataclass(frozen=True)
class Inbox:
    """The messages a block of agents received.

    Messages stay in arrival order, which is global (sender, seq) order: hosts
    hold ascending id ranges and each sends its messages sorted by sender. So
    per-agent sums over this order are the same whatever the sharding, and need
    no sort. Grouping by receiver (for plain agents) is done on first use.

    Attributes:
        batch: The messages, in (sender, seq) order.
        local: Block-local index of each message's receiver.
        n: Number of agents in the block.
        round: The round in which the messages were sent.
        kinds: The run's kind table (``kinds[code]`` names a kind).
        weight: Per message, the weight its receiver gives the sender (the
            graph's edge weights, see `protocols.influence_graph`); None when the
            protocol has no weights.
    """

    batch: MessageBatch
    local: NDArray[np.int64]
    n: int
    round: int
    kinds: tuple[str, ...] = KINDS
    weight: NDArray[np.float64] | None = None

    @classmethod
    def grouped(
        cls, batch: MessageBatch, offsets: NDArray[np.int64], round: int, kinds: tuple[str, ...] = KINDS
    ) -> Inbox:
        """An inbox from messages already grouped by receiver (CSR `offsets`)."""
        local = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        return cls(batch, local, len(offsets) - 1, round, kinds)

    @cached_property
    def counts(self) -> NDArray[np.int64]:
        """How many messages each agent received."""
        return np.bincount(self.local, minlength=self.n)

    def sum(self, values: NDArray[np.floating[Any]] | None = None) -> NDArray[np.float64]:
        """Per-agent sum of `values` (default: the messages' values), in (sender, seq) order.

        `values` may be ``(messages, dim)`` (vectors): the sum is then ``(agents, dim)``, in the
        same order whatever the sharding; a short vector's entries are summed as numbers are, so a
        vector of one entry sums to the same bits as a number.
        """
        v = self.batch.value if values is None else values
        if v.ndim == 2 and v.shape[1] <= _NARROW:
            out = np.empty((self.n, v.shape[1]))
            for j in range(v.shape[1]):
                out[:, j] = np.bincount(self.local, weights=v[:, j], minlength=self.n)
            return out
        if v.ndim == 2:  # wide vectors (a model's parameters): rows grouped by receiver, then one
            # reduceat, which adds each group's rows one after another as bincount does
            order, offsets = self.by_receiver
            out = np.zeros((self.n, v.shape[1]))
            heard = np.flatnonzero(self.counts)
            if len(heard):
                out[heard] = np.add.reduceat(v[order].astype(np.float64, copy=False), offsets[heard], axis=0)
            return out
        sums = np.bincount(self.local, weights=v, minlength=self.n)
        return sums.astype(np.float64, copy=False)

    def vectors(self, dim: int) -> NDArray[np.floating[Any]]:
        """The messages' vectors, ``(messages, dim)``; NaN rows for messages without one.

        Raises:
            AgentError: The messages carry vectors of another length than `dim`.
        """
        v = self.batch.vector
        if v is None:
            return np.full((len(self.batch), dim), np.nan)
        if v.shape[1] != dim:
            raise AgentError(
                f"Agents with vectors of {dim} received message vectors of {v.shape[1]}; every agent of "
                "a run that exchanges vectors needs the same dim."
            )
        return v

    def vector_mean(self, dim: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Per-agent mean of received vectors ``(agents, dim)``, and whether the agent received any."""
        counts = self.counts
        return self.sum(self.vectors(dim)) / np.maximum(counts, 1)[:, None], counts > 0

    def weighted_vector_sum(self, dim: int) -> NDArray[np.float64]:
        """Per-agent sum of weight x vector, ``(agents, dim)``; weight 1 without weights."""
        v = self.vectors(dim)
        if self.weight is not None:
            v = v * self.weight[:, None]
        return self.sum(v)

    def mean(self) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Per-agent mean of received values, and whether the agent received any."""
        counts = self.counts
        return self.sum() / np.maximum(counts, 1), counts > 0

    def weighted_sum(self, values: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        """Per-agent sum of weight x value (default: the messages' values); weight 1 without weights."""
        v = self.batch.value if values is None else values
        if self.weight is not None:
            v = v * self.weight
        return self.sum(v)

    @cached_property
    def weight_sum(self) -> NDArray[np.float64]:
        """Per-agent sum of the weights of what it heard (its count without weights)."""
        if self.weight is None:
            return self.counts.astype(np.float64)
        return self.sum(self.weight)

    @cached_property
    def by_receiver(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(order, offsets): ``order[offsets[i]:offsets[i+1]]`` index local agent i's messages.

        In arrival order, (sender, seq), within each agent.
        """
        order = np.argsort(self.local, kind="stable")
        offsets = np.zeros(self.n + 1, np.int64)
        np.cumsum(self.counts, out=offsets[1:])
        return order, offsets

    @cached_property
    def _grouped(self) -> tuple[MessageBatch, NDArray[np.int64], NDArray[np.float64] | None]:
        order, offsets = self.by_receiver
        weight = None if self.weight is None else self.weight[order]
        return self.batch.take(order), offsets, weight

    def messages(self, i: int) -> list[Message]:
        """The messages of local agent `i` as `Message` objects, in (sender, seq) order."""
        batch, offsets, weight = self._grouped
        return [
            batch.message(j, self.round, self.kinds, None if weight is None else float(weight[j]))
            for j in range(offsets[i], offsets[i + 1])
        ]

    def select(self, start: int, stop: int) -> Inbox:
        """The inbox of local agents ``start:stop``."""
        if start == 0 and stop == self.n:
            return self
        idx = np.flatnonzero((self.local >= start) & (self.local < stop))
        return Inbox(
            self.batch.take(idx),
            self.local[idx] - start,
            stop - start,
            self.round,
            self.kinds,
            None if self.weight is None else self.weight[idx],
        )
