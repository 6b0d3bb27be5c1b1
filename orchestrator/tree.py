"""The fixed statistics tree: how hosts summarise numbers so that the driver combines them
with work that grows with the hosts, bit-for-bit the same whatever the sharding.

Leaf i of the tree is chunk i: agents ``64i .. 64i+63`` (`CHUNK`). Shards start on chunk
boundaries (`shard_bounds`), so a chunk's statistics never depend on the sharding; a host
sends only the largest subtrees that lie wholly in its range (`FieldStats`), O(log n) nodes,
and `root` combines every host's nodes in the tree's own order.

Watched fields use it for the round's metrics (`orchestrator.coordinator.combine_stats`),
and aggregated messages for their mean value per kind (`orchestrator.aggregates`).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["CHUNK", "FieldStats", "pair_up", "root", "shard_bounds"]

CHUNK = 64
"""Agents per statistics chunk. Shards start on chunk boundaries, so per-chunk
statistics, and the metrics combined from them, do not depend on the sharding."""


def shard_bounds(n: int, hosts: int) -> NDArray[np.int64]:
    """Host boundaries: host h holds ids ``[b[h], b[h+1])``, aligned to `CHUNK`."""
    chunks = -(-n // CHUNK)
    per = np.linspace(0, chunks, hosts + 1).round().astype(np.int64)
    return np.minimum(per * CHUNK, n)


def pair_up(
    count: NDArray[np.float64], mean: NDArray[np.float64], m2: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """One level up the statistics tree: nodes (0, 1), (2, 3), ... combined (Chan et al.)."""
    na, nb = count[0::2], count[1::2]
    n = na + nb
    delta = mean[1::2] - mean[0::2]
    safe = np.maximum(n, 1.0)
    if mean.ndim == 2:  # a vector field: the same for every entry
        na, nb, safe = na[:, None], nb[:, None], safe[:, None]
    return n, mean[0::2] + delta * nb / safe, m2[0::2] + m2[1::2] + delta * delta * na * nb / safe


@dataclass(frozen=True, slots=True)
class FieldStats:
    """One numeric field's statistics from one host, for the coordinator to combine.

    The statistics of a field form a fixed binary tree over chunks of `CHUNK` agents
    (leaf i: agents ``64i .. 64i+63``; a chunk without the field is a zero leaf). A host sends
    only the largest subtrees that lie wholly in its range: O(log n) nodes, so the driver's
    work and what it receives grow with the hosts, not the agents, and the combined result is
    bit-for-bit the same whatever the sharding.

    Attributes:
        level, index: Each node's height (0: a chunk) and position in its level.
        count, mean, m2: Each node's count, mean and sum of squared deviations (for a vector
            field, mean and m2 have one column per entry).
        min, max: Over the host's agents (NaN when none has the field); per entry for a vector field.
    """

    level: NDArray[np.int64]
    index: NDArray[np.int64]
    count: NDArray[np.float64]
    mean: NDArray[np.float64]
    m2: NDArray[np.float64]
    min: float | NDArray[np.float64]
    max: float | NDArray[np.float64]

    @staticmethod
    def empty() -> FieldStats:
        """No node: the host has no value."""
        e = np.empty(0)
        return FieldStats(np.empty(0, np.int64), np.empty(0, np.int64), e, e, e, math.nan, math.nan)

    @staticmethod
    def of(values: NDArray[np.float64], ids: NDArray[np.int64], lo: int, hi: int) -> FieldStats:
        """The subtrees over the chunks of agents ``[lo, hi)`` (`lo` on a chunk boundary), given
        the field's `values` for the agents `ids` (ascending) that have it."""
        if len(values) == 0:
            return FieldStats.empty()
        a, b = lo // CHUNK, -(-hi // CHUNK)
        chunk = ids // CHUNK
        starts = np.flatnonzero(np.r_[True, chunk[1:] != chunk[:-1]])
        n = np.diff(np.r_[starts, len(values)])
        per = n if values.ndim == 1 else n[:, None]
        mu = np.add.reduceat(values, starts) / per
        shape = (b - a, *values.shape[1:])
        count, mean, m2 = np.zeros(b - a), np.zeros(shape), np.zeros(shape)
        at = chunk[starts] - a
        count[at], mean[at] = n, mu
        m2[at] = np.add.reduceat((values - np.repeat(mu, n, axis=0)) ** 2, starts)
        vector = values.ndim == 2
        low = values.min(axis=0) if vector else float(values.min())
        high = values.max(axis=0) if vector else float(values.max())
        return FieldStats.of_chunks(a, count, mean, m2, low, high)

    @staticmethod
    def of_chunks(
        a: int,
        count: NDArray[np.float64],
        mean: NDArray[np.float64],
        m2: NDArray[np.float64],
        low: float | NDArray[np.float64],
        high: float | NDArray[np.float64],
    ) -> FieldStats:
        """The subtrees over chunks ``a, a+1, ...`` given each chunk's count, mean and m2."""
        b = a + len(count)
        nodes: list[tuple[int, int, Any, Any, Any]] = []
        level = 0
        while a < b:
            if a % 2:  # a right child whose sibling lies left of this host
                nodes.append((level, a, count[0], mean[0], m2[0]))
                count, mean, m2, a = count[1:], mean[1:], m2[1:], a + 1
            if b % 2 and a < b:  # a left child whose sibling lies right of it
                nodes.append((level, b - 1, count[-1], mean[-1], m2[-1]))
                count, mean, m2, b = count[:-1], mean[:-1], m2[:-1], b - 1
            count, mean, m2 = pair_up(count, mean, m2)
            a, b, level = a // 2, b // 2, level + 1
        cols = list(zip(*nodes))
        return FieldStats(
            np.array(cols[0], np.int64),
            np.array(cols[1], np.int64),
            np.array(cols[2]),
            np.array(cols[3]),
            np.array(cols[4]),
            low,
            high,
        )


def root(stats: list[FieldStats]) -> tuple[float, Any, Any] | None:
    """The root of the fixed tree, (count, mean, m2), from every host's subtrees only (a few
    per host), bit-for-bit whatever the hosts; None when no host has a value."""
    nodes = {
        (int(lv), int(i)): (float(c), m, q)
        for s in stats
        for lv, i, c, m, q in zip(s.level, s.index, s.count, s.mean, s.m2)
    }
    if not nodes:
        return None
    spans = sorted((i << lv, (i + 1) << lv) for lv, i in nodes)
    starts = [a for a, _ in spans]
    end = spans[-1][1]
    top = max(0, (end - 1).bit_length())

    def has_data(lv: int, i: int) -> bool:
        a, b = i << lv, (i + 1) << lv
        k = bisect.bisect_right(starts, a) - 1  # the last node starting at or before a
        return (k >= 0 and spans[k][1] > a) or (k + 1 < len(spans) and spans[k + 1][0] < b)

    zero = np.zeros_like(next(iter(nodes.values()))[1])  # 0.0, or zeros per entry of a vector

    def node(lv: int, i: int) -> tuple[float, Any, Any]:
        if (lv, i) in nodes:
            return nodes[(lv, i)]
        if lv == 0 or not has_data(lv, i):
            return 0.0, zero, zero
        (na, ma, qa), (nb, mb, qb) = node(lv - 1, 2 * i), node(lv - 1, 2 * i + 1)
        n, mean, m2 = pair_up(np.array([na, nb]), np.array([ma, mb]), np.array([qa, qb]))
        return float(n[0]), mean[0], m2[0]

    return node(top, 0)
