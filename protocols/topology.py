"""Graphs as compressed arrays (CSR), built once, used for routing.

networkx is how users describe graphs and measure them; routing a million agents
needs arrays. `Topology.from_networkx` converts a user's graph; the named
generators (`RingLattice`, `SmallWorld`, `ErdosRenyi`, `BarabasiAlbert`, `Grid`) build the arrays
directly in numpy, the same graph every time for the same seed.

An edge ``u -> v`` means u may send to v (v hears u). Undirected graphs hold
both directions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from agents.errors import ConfigError
from agents.rng import _mix, counter_integers, counter_uniform

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "BarabasiAlbert",
    "ErdosRenyi",
    "GraphSpec",
    "Grid",
    "Complete",
    "RingLattice",
    "SmallWorld",
    "Topology",
    "graph_spec",
    "influence_graph",
]

_GRAPH_STREAM = 3
_REWIRE_CHUNK = 1 << 22
_DIGEST_CHUNK = 1 << 16
"""Edges whose rewiring a small-world shard draws at a time (`SmallWorld.edges_near`)."""


@dataclass(frozen=True, eq=False)
class Topology:
    """A directed graph over agents ``0..n-1`` in CSR form.

    Attributes:
        n: Number of nodes.
        offsets: ``offsets[u]:offsets[u+1]`` indexes u's out-neighbours.
        targets: Out-neighbour ids, ascending within each row.
        weights: Per edge ``u -> v`` (CSR order), the weight v gives what it hears
            from u (its influence-matrix entry ``W[v, u]``); None: no weights.
    """

    n: int
    offsets: NDArray[np.int64]
    targets: NDArray[np.int64]
    weights: NDArray[np.float64] | None = None
    sharded: bool = False
    """One host's rows only (`shard`): `offsets` index the host's own edges, rows outside its
    range are empty, and `in_degree` / `in_position` were filled in from every host's rows."""

    @classmethod
    def from_edges(
        cls,
        n: int,
        src: NDArray[np.int64],
        dst: NDArray[np.int64],
        *,
        undirected: bool,
        weights: NDArray[np.float64] | None = None,
        rows: tuple[int, int] | None = None,
    ) -> Topology:
        """Build from edge arrays; drops duplicate edges (keeping the first's weight), keeps self-loops.

        Args:
            rows: Keep only the rows ``[lo, hi)``, exactly as the whole graph has them (a
                host's shard, `GraphSpec.shard`); the other rows are empty.
        """
        lo, hi = rows or (0, n)
        keys, kept = [], []
        for a, b in ((src, dst), (dst, src)) if undirected else ((src, dst),):
            a, b = a.astype(np.int64, copy=False), b.astype(np.int64, copy=False)
            mine = np.flatnonzero((a >= lo) & (a < hi)) if rows is not None else slice(None)
            key = a[mine] * n
            key += b[mine]
            keys.append(key)
            if weights is not None:
                kept.append(np.asarray(weights, np.float64)[mine])
        key = np.concatenate(keys) if len(keys) > 1 else keys[0]
        w: NDArray[np.float64] | None = None
        if weights is None:
            # Generated edges come in ascending stretches (a lattice's rows, a grid's, the new
            # nodes of preferential attachment), which a merge sort (timsort) takes in a fraction
            # of quicksort's time (small world, 30M keys: 0.6 s against 2.2 s); on scattered keys
            # (random graphs: half the neighbours descend) it is slower, so the share of descents picks.
            ordered = len(key) > 1 and np.count_nonzero(key[1:] < key[:-1]) < len(key) * 9 // 20
            key.sort(kind="stable" if ordered else "quicksort")
        else:
            order = np.argsort(key, kind="stable")
            key, w = key[order], np.concatenate(kept)[order]
        if len(key) > 1:  # np.unique would hash; sorting is several times faster here
            first = np.r_[True, key[1:] != key[:-1]]
            key = key[first]
            w = None if w is None else w[first]
        offsets = np.zeros(n + 1, np.int64)  # keys are sorted: each row starts at its first key
        offsets[lo : hi + 1] = np.searchsorted(key, np.arange(lo, hi + 1, dtype=np.int64) * n)
        offsets[hi + 1 :] = len(key)
        return cls(n, offsets, key % n, w, sharded=rows is not None)

    @classmethod
    def from_networkx(cls, graph: nx.Graph, weight: str | None = None) -> Topology:
        """Convert a networkx graph whose nodes are the integers ``0..n-1``.

        Args:
            weight: An edge attribute holding influence weights (edge ``u -> v`` with
                weight w: v gives weight w to what it hears from u); None ignores weights.

        Raises:
            ConfigError: Nodes that are not ``0..n-1``, or an edge without the weight attribute.
        """
        n = graph.number_of_nodes()
        nodes = set(graph.nodes)
        if nodes != set(range(n)):
            sample = sorted(map(repr, list(nodes - set(range(n)))[:3]))
            raise ConfigError(
                f"Graph nodes must be the agent ids 0..{n - 1}; found {', '.join(sample)}. "
                "Relabel with networkx.convert_node_labels_to_integers(graph)."
            )
        edges = np.array(list(graph.edges()), dtype=np.int64).reshape(-1, 2)
        weights = None
        if weight is not None:
            missing = [(u, v) for u, v, w in graph.edges(data=weight) if w is None]
            if missing:
                raise ConfigError(
                    f"Edge {missing[0]} has no {weight!r} attribute ({len(missing)} edges lack it); give "
                    f"every edge one (graph.add_edge(u, v, {weight}=0.2)) or build the graph with "
                    "influence_graph(W)."
                )
            weights = np.array([w for _, _, w in graph.edges(data=weight)], np.float64)
        return cls.from_edges(
            n, edges[:, 0], edges[:, 1], undirected=not graph.is_directed(), weights=weights
        )

    def to_networkx(self) -> nx.DiGraph:
        """The graph as a networkx DiGraph (for metrics on small graphs), with ``weight`` if it has them."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(range(self.n))
        src = np.repeat(np.arange(self.n), np.diff(self.offsets))
        if self.weights is None:
            g.add_edges_from(zip(src.tolist(), self.targets.tolist()))
        else:
            g.add_weighted_edges_from(zip(src.tolist(), self.targets.tolist(), self.weights.tolist()))
        return g

    def edge_index(self, src: NDArray[np.int64], dst: NDArray[np.int64]) -> NDArray[np.int64]:
        """CSR index of each edge ``src[i] -> dst[i]``; every pair must be an edge."""
        return np.searchsorted(self._edge_keys, src * self.n + dst)

    def check_weights(self) -> None:
        """Refuse weights that are negative, not finite, or sum to more than 1 into an agent.

        What an agent gives its in-neighbours must leave a weight >= 0 for itself
        (``1 - sum``), so that the influence matrix is row-stochastic.
        """
        w = self.weights
        if w is None:
            return
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            e = int(np.flatnonzero(bad)[0])
            raise ConfigError(
                f"Edge {int(self.edge_source[e])} -> {int(self.targets[e])} has weight {float(w[e])!r}; "
                "influence weights must be finite and >= 0."
            )
        into = np.bincount(self.targets, weights=w, minlength=self.n)
        over = into > 1.0 + 1e-9
        if over.any():
            v = int(np.flatnonzero(over)[0])
            raise ConfigError(
                f"Agent {v} gives its in-neighbours weights summing to {float(into[v]):.6g}; the weights "
                "into each agent must sum to at most 1 (the rest is its weight on itself). Normalise "
                "each row of W, e.g. W / W.sum(axis=1, keepdims=True), and build the graph with "
                "influence_graph(W)."
            )

    @property
    def out_degree(self) -> NDArray[np.int64]:
        """Out-degree of every node."""
        return np.diff(self.offsets)

    @cached_property
    def in_degree(self) -> NDArray[np.int64]:
        """In-degree of every node."""
        return np.bincount(self.targets, minlength=self.n)

    @cached_property
    def in_position(self) -> NDArray[np.int64]:
        """For each edge ``u -> v`` (in CSR order): u's position among v's in-neighbours.

        In-neighbour lists are ascending, so this is the rank of u among the
        sources of edges into v.
        """
        in_offsets, order = self.in_csr
        pos = np.empty(len(order), np.int64)
        pos[order] = np.arange(len(order)) - in_offsets[self.targets[order]]
        return pos

    @cached_property
    def in_csr(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(offsets, edges): ``edges[offsets[v]:offsets[v+1]]`` are the CSR indices of v's in-edges,
        by ascending source."""
        order = np.argsort(self.targets, kind="stable")  # by target, then source (CSR order)
        offsets = np.zeros(self.n + 1, np.int64)
        np.cumsum(self.in_degree, out=offsets[1:])
        return offsets, order

    @cached_property
    def edge_source(self) -> NDArray[np.int64]:
        """Source node of every edge, in CSR order."""
        return np.repeat(np.arange(self.n, dtype=np.int64), self.out_degree)

    @cached_property
    def edge_position(self) -> NDArray[np.int64]:
        """Position of every edge within its source's row."""
        return np.arange(len(self.targets), dtype=np.int64) - self.offsets[self.edge_source]

    def precompute(self, sampled: bool = False) -> Topology:
        """Compute the cached edge columns now (before the topology is shipped to hosts).

        Args:
            sampled: Only what routing with a fanout from a contiguous block of
                senders needs (in-edge lists, not per-edge positions): less memory.
        """
        if sampled:
            _ = self.in_degree, self.in_csr, self.edge_source
        else:
            _ = self.in_degree, self.in_position, self.edge_source, self.edge_position
        return self

    @cached_property
    def _edge_keys(self) -> NDArray[np.int64]:
        return self.edge_source * self.n + self.targets

    def has_edges(self, src: NDArray[np.int64], dst: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether each ``src[i] -> dst[i]`` is an edge."""
        keys = self._edge_keys
        q = src * self.n + dst
        i = np.minimum(np.searchsorted(keys, q), max(len(keys) - 1, 0))
        return keys[i] == q if len(keys) else np.zeros(len(q), bool)

    def neighbours(self, u: int) -> NDArray[np.int64]:
        """Out-neighbours of `u`."""
        return self.targets[self.offsets[u] : self.offsets[u + 1]]

    def describe(self) -> dict[str, object]:
        """Nodes, directed edges, and a digest of the edge set (same graph, same digest)."""
        return describe_graph(
            self.n,
            len(self.targets),
            edge_digest(self.edge_source, self.targets, self.n, self.weights),
            *self.oddities(),
            weighted=self.weights is not None,
        )

    def oddities(self) -> tuple[int, int]:
        """(self-loops, isolated nodes): edges an agent sends to itself, and nodes with no edge
        at all (they never hear anyone, nor does anyone hear them)."""
        loops = int(np.count_nonzero(self.edge_source == self.targets))
        isolated = int(np.count_nonzero((self.out_degree == 0) & (self.in_degree == 0)))
        return loops, isolated


def edge_digest(
    src: NDArray[np.int64], dst: NDArray[np.int64], n: int, weights: NDArray[np.float64] | None = None
) -> int:
    """A 64-bit sum of splitmix64 over the edges (and their weights): a digest of the edge set
    that is the same however the edges are split, so hosts that each built their own rows add
    theirs up to the digest of the whole graph."""
    total = np.uint64(0)
    with np.errstate(over="ignore"):
        for a in range(0, len(src), _DIGEST_CHUNK):  # cache-sized chunks: a sum mod 2**64 in any order
            key = src[a : a + _DIGEST_CHUNK].astype(np.uint64) * np.uint64(n)
            key += dst[a : a + _DIGEST_CHUNK].astype(np.uint64)
            if weights is not None:
                w = np.ascontiguousarray(weights[a : a + _DIGEST_CHUNK], np.float64).view(np.uint64)
                key ^= w * np.uint64(0x9E3779B97F4A7C15)
            total += _mix(key).sum(dtype=np.uint64)
    return int(total)


def describe_graph(
    n: int, edges: int, digest: int, loops: int, isolated: int, *, weighted: bool = False
) -> dict[str, object]:
    """A graph as ``runs.config`` records it: nodes, directed edges, digest, and its oddities."""
    out: dict[str, object] = {"nodes": n, "edges": edges, "digest": f"{digest:016x}"}
    if weighted:
        out["weighted"] = True
    if loops:
        out["self_loops"] = loops
    if isolated:
        out["isolated"] = isolated
    return out


def influence_graph(w: NDArray[np.float64] | list[list[float]]) -> nx.DiGraph:
    """The networkx graph of a row-stochastic influence matrix, for `Gossip(graph, weight="weight")`.

    ``W[i, j] > 0`` (i != j) becomes an edge ``j -> i`` with that weight: i hears j
    and gives it weight ``W[i, j]``. The diagonal is not an edge: an agent's weight
    on itself is what its in-weights leave, ``1 - sum_j W[i, j]``.

    Raises:
        ConfigError: W is not square, has negative or non-finite entries, or a row sums to other than 1.

    Example:
        >>> influence_graph([[0.5, 0.5], [0.2, 0.8]]).edges(data="weight")
        OutEdgeDataView([(0, 1, 0.2), (1, 0, 0.5)])
    """
    import networkx as nx

    m = np.asarray(w, np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ConfigError(f"An influence matrix must be square; got shape {m.shape}.")
    if not np.isfinite(m).all() or (m < 0).any():
        raise ConfigError("An influence matrix must have finite entries >= 0.")
    rows = m.sum(axis=1)
    off = np.abs(rows - 1.0) > 1e-9
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ConfigError(
            f"Row {i} of the influence matrix sums to {float(rows[i]):.6g}; rows must sum to 1 "
            "(normalise with W / W.sum(axis=1, keepdims=True))."
        )
    g = nx.DiGraph()
    g.add_nodes_from(range(len(m)))
    rows, cols = np.nonzero(m)
    g.add_weighted_edges_from((int(b), int(a), float(m[a, b])) for a, b in zip(rows, cols) if a != b)
    return g


class GraphSpec:
    """A named graph generator: `build(n, seed)` gives the same Topology for the same seed, and
    `shard(n, seed, lo, hi)` the rows ``[lo, hi)`` of it, built where they are used."""

    undirected = True

    def edges(self, n: int, seed: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:  # pragma: no cover
        """The generator's edges (each undirected edge once when `undirected`), duplicates and all."""
        raise NotImplementedError

    def edges_near(self, n: int, seed: int, lo: int, hi: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """At least every edge with an end in ``[lo, hi)`` (more is fine: `shard` keeps its rows).
        A generator that can find them without listing the whole graph overrides this."""
        return self.edges(n, seed)

    def check(self, n: int) -> None:
        """Refuse parameters that cannot make a graph of `n` nodes (ConfigError), without building it."""

    def build(self, n: int, seed: int) -> Topology:
        """The whole graph."""
        src, dst = self.edges(n, seed)
        return Topology.from_edges(n, src, dst, undirected=self.undirected)

    def shard(self, n: int, seed: int, lo: int, hi: int) -> Topology:
        """Rows ``[lo, hi)`` of `build(n, seed)`, exactly (the same edges in the same order), as a
        `Topology` whose `offsets` index only those rows' edges. Every host generates the edge
        list (linear, counter-based draws) but sorts only its own rows."""
        src, dst = self.edges_near(n, seed, lo, hi)
        return Topology.from_edges(n, src, dst, undirected=self.undirected, rows=(lo, hi))

    def describe(self) -> dict[str, object]:
        """The generator and its parameters, as logged in ``runs.config``."""
        params: dict[str, object] = dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}
        return {"generator": type(self).__name__, **params}


def _check_ring(n: int, k: int) -> None:
    if k % 2 or k < 2 or k >= n:
        raise ConfigError(f"Ring lattice needs an even k with 2 <= k < n; got k={k}, n={n}.")


def _ring_edges(n: int, k: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Edges ``(u, u + j mod n)`` for every u and j = 1..k/2, u-major (edge ``u * k/2 + j - 1``)."""
    _check_ring(n, k)
    half = k // 2
    u = np.empty((n, half), np.int64)
    u[:] = np.arange(n, dtype=np.int64)[:, None]
    v = u + np.arange(1, half + 1, dtype=np.int64)
    tail = v[n - half :]  # only the last rows wrap around the ring
    tail[tail >= n] -= n
    return u.reshape(-1), v.reshape(-1)


def _ring_near(
    n: int, k: int, lo: int, hi: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The lattice edges ``(u, u + j mod n)`` with an end in ``[lo, hi)``: those of rows
    ``lo - k/2 .. hi - 1`` (mod n), with their edge numbers (`_ring_edges`' order)."""
    _check_ring(n, k)
    half = k // 2
    rows = (
        np.arange(lo - half, hi, dtype=np.int64) % n if hi - lo + half < n else np.arange(n, dtype=np.int64)
    )
    e = (rows[:, None] * half + np.arange(half, dtype=np.int64)).reshape(-1)
    u = e // half
    v = u + e % half + 1
    v[v >= n] -= n
    return u, v, e


@dataclass(frozen=True)
class RingLattice(GraphSpec):
    """Each node linked to its k nearest neighbours on a ring (k even)."""

    k: int = 4

    def check(self, n: int) -> None:
        _check_ring(n, self.k)

    def edges(self, n: int, seed: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        return _ring_edges(n, self.k)

    def edges_near(self, n: int, seed: int, lo: int, hi: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        u, v, _ = _ring_near(n, self.k, lo, hi)
        return u, v


@dataclass(frozen=True)
class SmallWorld(GraphSpec):
    """Watts-Strogatz: a ring lattice whose edges are rewired with probability p.

    Each lattice edge ``(u, u+j)`` keeps u and, with probability p, gets a new
    endpoint drawn uniformly among the other nodes (counter-based, by edge).
    Rewirings that would duplicate an edge are dropped, so the edge count can
    fall slightly below ``n*k/2``; with p=0 this is exactly networkx's
    `watts_strogatz_graph(n, k, 0)`.
    """

    k: int = 6
    p: float = 0.3

    def check(self, n: int) -> None:
        _check_ring(n, self.k)

    def edges(self, n: int, seed: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        u, v = _ring_edges(n, self.k)
        e = np.arange(len(u), dtype=np.int64)
        rewire = counter_uniform(seed, 0, e, 0, stream=_GRAPH_STREAM) < self.p
        offset = 1 + counter_integers(seed, 0, e[rewire], n - 1, 1, stream=_GRAPH_STREAM)
        v = v.copy()
        v[rewire] = (u[rewire] + offset) % n
        return u, v

    def edges_near(self, n: int, seed: int, lo: int, hi: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The lattice edges next to ``[lo, hi)`` that stay, and every rewired edge with an end
        there: finding those takes each edge's rewiring draw, but not a list of the whole graph."""
        u, v, e = _ring_near(n, self.k, lo, hi)
        half = self.k // 2
        stays = counter_uniform(seed, 0, e, 0, stream=_GRAPH_STREAM) >= self.p
        moved_u, moved_v = [], []
        for start in range(0, n * half, _REWIRE_CHUNK):  # a few arrays of 4M edges at a time
            ids = np.arange(start, min(start + _REWIRE_CHUNK, n * half), dtype=np.int64)
            ids = ids[counter_uniform(seed, 0, ids, 0, stream=_GRAPH_STREAM) < self.p]
            src = ids // half
            dst = (src + 1 + counter_integers(seed, 0, ids, n - 1, 1, stream=_GRAPH_STREAM)) % n
            here = ((dst >= lo) & (dst < hi)) | ((src >= lo) & (src < hi))
            moved_u.append(src[here])
            moved_v.append(dst[here])
        return np.concatenate([u[stays], *moved_u]), np.concatenate([v[stays], *moved_v])


@dataclass(frozen=True)
class ErdosRenyi(GraphSpec):
    """G(n, m) with m = round(p * n(n-1)/2) undirected edges drawn by counter (no self-loops)."""

    p: float = 0.001

    def edges(self, n: int, seed: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        m = round(self.p * n * (n - 1) / 2)
        e = np.arange(m, dtype=np.int64)
        u = counter_integers(seed, 0, e, n, 0, stream=_GRAPH_STREAM)
        v = (u + 1 + counter_integers(seed, 0, e, n - 1, 1, stream=_GRAPH_STREAM)) % n
        return u, v


@dataclass(frozen=True)
class Grid(GraphSpec):
    """A 2-D grid, `cols` wide (rows = n / cols), 4-neighbourhood; optionally a torus."""

    cols: int = 0
    torus: bool = False

    def check(self, n: int) -> None:
        cols = self.cols or int(np.sqrt(n))
        if cols <= 0 or n % cols:
            raise ConfigError(
                f"Grid with cols={cols} cannot hold n={n} agents; n must be a multiple of cols."
            )

    def edges(self, n: int, seed: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        self.check(n)
        cols = self.cols or int(np.sqrt(n))
        rows = n // cols
        ids = np.arange(n, dtype=np.int64)
        r, c = ids // cols, ids % cols
        right = (c + 1 < cols) | self.torus
        down = (r + 1 < rows) | self.torus
        src = np.concatenate([ids[right], ids[down]])
        dst = np.concatenate([(r * cols + (c + 1) % cols)[right], (((r + 1) % rows) * cols + c)[down]])
        keep = src != dst
        return src[keep], dst[keep]


@dataclass(frozen=True)
class BarabasiAlbert(GraphSpec):
    """Preferential attachment: each new node links to m earlier nodes, chosen by degree.

    Built as Batagelj & Brandes (2005) do: every new edge copies the endpoint of
    a uniformly drawn earlier edge end, which is choosing a node with probability
    proportional to its degree. Copies chain back to earlier edges; the chains
    are resolved by pointer jumping, in O(log n) vectorised passes. Node m starts
    linked to nodes 0..m-1 (a star, as in networkx). Repeated picks collapse, so
    a few nodes get fewer than m distinct edges.
    """

    m: int = 2

    def check(self, n: int) -> None:
        if not 1 <= self.m < n:
            raise ConfigError(f"Barabasi-Albert needs 1 <= m < n; got m={self.m}, n={n}.")

    def edges(self, n: int, seed: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        self.check(n)
        m = self.m
        slots = (n - m) * m
        slot = np.arange(slots, dtype=np.int64)
        src = m + slot // m
        dst = np.full(slots, -1, np.int64)
        dst[:m] = np.arange(m)
        later = slot[m:]
        # An endpoint of the edges of earlier nodes: 2 * (v - m) * m of them.
        ptr = np.full(slots, -1, np.int64)
        ptr[m:] = counter_integers(seed, 0, later, 2 * (src[m:] - m) * m, 0, stream=_GRAPH_STREAM)
        todo = later
        while len(todo):
            p = ptr[todo]
            even = p % 2 == 0
            dst[todo[even]] = m + (p[even] // 2) // m  # the source end of edge p // 2
            odd_slots, prior = todo[~even], (p[~even] - 1) // 2  # the target end of edge `prior`
            known = dst[prior] >= 0
            dst[odd_slots[known]] = dst[prior[known]]
            ptr[odd_slots[~known]] = ptr[prior[~known]]  # jump back along the chain
            todo = odd_slots[~known]
        return src, dst


@dataclass(frozen=True)
class Complete(GraphSpec):
    """Every agent linked to every other (the mean-field setting of Hegselmann-Krause and the voter model).

    It has n(n-1) directed edges, so it is refused above `max_nodes` (default 20,000).
    """

    max_nodes: int = 20_000
    undirected = False  # every edge is listed in both directions already

    def check(self, n: int) -> None:
        if n > self.max_nodes:
            raise ConfigError(
                f"A complete graph on {n:,} agents has {n * (n - 1):,} edges; it is refused above "
                f"{self.max_nodes:,} agents. Use a sparse graph (small_world, erdos_renyi), or fewer agents."
            )

    def edges(self, n: int, seed: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        self.check(n)
        u = np.repeat(np.arange(n, dtype=np.int64), n - 1)
        j = np.tile(np.arange(1, n, dtype=np.int64), n)
        return u, (u + j) % n


_NAMED: dict[str, type[GraphSpec]] = {
    "barabasi_albert": BarabasiAlbert,
    "complete": Complete,
    "erdos_renyi": ErdosRenyi,
    "grid": Grid,
    "ring_lattice": RingLattice,
    "small_world": SmallWorld,
}


def graph_spec(name: str) -> GraphSpec:
    """The generator called `name`, with default parameters or ``name:key=value,...``.

    Example:
        >>> graph_spec("small_world:k=4,p=0.1")
        SmallWorld(k=4, p=0.1)
    """
    head, _, rest = name.partition(":")
    if head not in _NAMED:
        raise ConfigError(
            f"Unknown graph {head!r}; known: {', '.join(sorted(_NAMED))}. "
            "Or pass a networkx graph, or a spec such as SmallWorld(k=6, p=0.05) "
            "('small_world:k=6,p=0.05' on the command line)."
        )
    cls = _NAMED[head]
    fields = {f.name: f.type for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or key not in fields:
            raise ConfigError(
                f"Cannot read graph parameter {item!r} of {head!r}; its parameters are "
                f"{', '.join(fields) or '(none)'}, e.g. '{head}:{next(iter(fields), 'k')}=4'."
            )
        try:
            kind = str(fields[key])
            kwargs[key] = (
                raw.strip().lower() in ("1", "true", "yes")
                if kind == "bool"
                else int(raw)
                if kind == "int"
                else float(raw)
            )
        except ValueError:
            raise ConfigError(f"Graph parameter {key}={raw!r} of {head!r} is not a number.") from None
    return cls(**kwargs)  # type: ignore[arg-type]
