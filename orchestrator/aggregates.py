"""Aggregated message logging (``--messages aggregate``), counted in the hosts.

A row of ``message_aggregates`` is, per round and kind, the messages delivered, their
distinct senders and receivers, and their mean value and vector. No message crosses to the
driver for it; each number is counted where it can be counted alone:

- Each receiving host takes the round's deliveries to its agents (`received`): their
  number, its distinct receivers (they are its own agents), the sums of their values and
  vectors per receiver, summed up the fixed statistics tree (`orchestrator.tree`) so that
  the mean is bit-for-bit the same whatever the sharding, and, per sending host, a bitmap
  of the senders it heard.
- Each sending host ORs the bitmaps of its own range that every receiving host sent it and
  counts the bits (`senders`): a sender heard on many hosts counts once.
- The driver adds up a few numbers per host and kind (`table`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from agents.batch import MessageBatch
from agents.message import KINDS
from orchestrator.tree import CHUNK, FieldStats, root

__all__ = ["Received", "received", "senders", "table"]


@dataclass(frozen=True, slots=True)
class Received:
    """One host's count of one round's deliveries to its agents, per kind present.

    Attributes:
        codes: The kinds (codes into the run's kind table).
        messages: Deliveries of each kind.
        receivers: Distinct receivers of each kind (this host's agents).
        values: Per kind, the finite values' sums as subtrees of the fixed tree (by receiver).
        vectors: The same for the messages' vectors (empty subtrees when none has one).
    """

    codes: tuple[int, ...]
    messages: tuple[int, ...]
    receivers: tuple[int, ...]
    values: tuple[FieldStats, ...]
    vectors: tuple[FieldStats, ...]


def _tree(ids: NDArray[np.int64], values: NDArray[np.float64], lo: int, hi: int) -> FieldStats:
    """Subtrees of the means of `values` by receiver chunk. Sums run per receiver in the
    batch's (sender, seq) order, then per chunk in receiver order: the same on any sharding."""
    if len(ids) == 0:
        return FieldStats.empty()
    a, b = lo // CHUNK, -(-hi // CHUNK)
    local = ids - lo  # `lo` is on a chunk boundary
    agents = hi - lo
    chunk_of = np.arange(agents) // CHUNK
    count = np.bincount(local // CHUNK, minlength=b - a).astype(np.float64)
    safe = np.maximum(count, 1.0)
    columns = [values] if values.ndim == 1 else [values[:, j] for j in range(values.shape[1])]
    sums = [
        np.bincount(chunk_of, weights=np.bincount(local, weights=v, minlength=agents), minlength=b - a)
        for v in columns
    ]
    mean = sums[0] / safe if values.ndim == 1 else np.stack(sums, axis=1) / safe[:, None]
    return FieldStats.of_chunks(a, count, mean, np.zeros_like(mean), np.nan, np.nan)


def received(
    batch: MessageBatch, lo: int, hi: int, bounds: NDArray[np.int64]
) -> tuple[Received, list[dict[int, NDArray[np.uint8]]]]:
    """Count `batch`, one round's deliveries to agents ``[lo, hi)`` in (sender, seq, receiver)
    order, and mark its senders.

    Returns:
        The counts, and per sending host (`bounds`) a packed bitmap of its agents heard, per kind.
    """
    hosts = len(bounds) - 1
    marks: list[dict[int, NDArray[np.uint8]]] = [{} for _ in range(hosts)]
    rows: list[tuple[int, int, int, FieldStats, FieldStats]] = []  # one per kind, Received's fields
    for code in np.unique(batch.kind):
        sel = np.flatnonzero(batch.kind == code)
        receiver, sender = batch.receiver[sel], batch.sender[sel]
        values = batch.value[sel]
        finite = ~np.isnan(values)
        vectors = FieldStats.empty()
        if batch.vector is not None:
            v = batch.vector[sel].astype(np.float64)
            has = ~np.isnan(v[:, 0])
            vectors = _tree(receiver[has], v[has], lo, hi)
        distinct = int(np.count_nonzero(np.bincount(receiver - lo)))
        rows.append((int(code), len(sel), distinct, _tree(receiver[finite], values[finite], lo, hi), vectors))
        heard = np.zeros(int(bounds[-1]), np.bool_)
        heard[sender] = True
        for h in range(hosts):
            marks[h][int(code)] = np.packbits(heard[bounds[h] : bounds[h + 1]])
    return Received(*(list(zip(*rows)) or [()] * 5)), marks


def senders(*marks: dict[int, NDArray[np.uint8]]) -> dict[int, int]:
    """Distinct senders per kind, from every receiving host's bitmaps of one sending host."""
    union: dict[int, NDArray[np.uint8]] = {}
    for part in marks:
        for code, bits in part.items():
            union[code] = bits | union[code] if code in union else bits
    return {code: int(np.bitwise_count(bits).sum()) for code, bits in union.items()}


def table(
    counted: list[Received],
    sent: list[dict[int, int]],
    round: int,
    run_id: str,
    kinds: tuple[str, ...] = KINDS,
) -> pa.Table:
    """The round's ``message_aggregates`` rows from every host's counts (a few numbers each)."""
    codes = sorted({c for r in counted for c in r.codes})
    rows: list[tuple[str, int, int, int, float | None, list[float] | None]] = []
    for code in codes:
        parts = [(r, r.codes.index(code)) for r in counted if code in r.codes]
        value = root([r.values[i] for r, i in parts])
        vector = root([r.vectors[i] for r, i in parts])
        rows.append(
            (
                kinds[code],
                sum(r.messages[i] for r, i in parts),
                sum(s.get(code, 0) for s in sent),
                sum(r.receivers[i] for r, i in parts),
                float(value[1]) if value is not None and value[0] > 0 else None,
                [float(x) for x in vector[1]] if vector is not None and vector[0] > 0 else None,
            )
        )
    n = len(rows)
    columns = list(zip(*rows)) if rows else [()] * 6
    return pa.table(
        {
            "run_id": pa.array([run_id] * n, pa.string()),
            "round": pa.array(np.full(n, round, np.int32)),
            "kind": pa.array(columns[0], pa.string()),
            "messages": pa.array(columns[1], pa.int64()),
            "senders": pa.array(columns[2], pa.int64()),
            "receivers": pa.array(columns[3], pa.int64()),
            "value_mean": pa.array(columns[4], pa.float64()),
            "vector_mean": pa.array(columns[5], pa.list_(pa.float64())),
        }
    )
