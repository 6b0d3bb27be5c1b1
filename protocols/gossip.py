"""Gossip: agents pass messages to neighbours on a graph, push, pull or both."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from agents.batch import MessageBatch
from agents.errors import AgentError, ConfigError, ProtocolError
from agents.llm import LLMAgent
from agents.message import Message
from agents.reply import Reply
from agents.rng import counter_bits, counter_integers
from protocols.base import MessageProtocol, Router, check_receivers
from protocols.stop import Consensus, StopRule
from protocols.topology import GraphSpec, Topology, describe_graph, edge_digest, graph_spec

if TYPE_CHECKING:
    import networkx as nx

    from agents.agent import Agent
    from agents.population import Population

__all__ = ["Gossip", "GossipRouter", "LLMOpinionAgent", "OpinionReply"]

GossipMode = Literal["push", "pull", "push-pull", "pairwise"]
_MODES = ("push", "pull", "push-pull", "pairwise")
_PUSH_STREAM, _PULL_STREAM, _PAIR_STREAM = 10, 11, 12
_PAIR_PASSES = 3


def _within(diff: NDArray[np.int64], deg: NDArray[np.int64], fanout: int) -> NDArray[np.bool_]:
    """Whether ``diff mod deg`` < min(fanout, deg), for diff in (-deg, deg)."""
    diff = diff + deg * (diff < 0)
    return diff < np.minimum(fanout, deg)


@dataclass(frozen=True, eq=False)
class Pairs:
    """The graph's undirected pairs, for pairwise exchange; `matching` draws each round's pairs.

    Attributes:
        u, v: The pairs ``u < v`` joined by an edge in either direction (self-loops dropped).
        offsets, incident: CSR of the pairs touching each node.
    """

    u: NDArray[np.int64]
    v: NDArray[np.int64]
    offsets: NDArray[np.int64]
    incident: NDArray[np.int64]

    @classmethod
    def of(cls, topo: Topology) -> Pairs:
        src = topo.edge_source
        a, b = np.minimum(src, topo.targets), np.maximum(src, topo.targets)
        key = a[a != b] * topo.n + b[a != b]
        key = np.unique(key)
        if len(key) >= 1 << 30:
            raise ConfigError(f"Pairwise gossip handles under 2**30 pairs; this graph has {len(key):,}.")
        u, v = np.divmod(key, topo.n)
        ends = np.concatenate([u, v])
        order = np.argsort(ends, kind="stable")
        offsets = np.zeros(topo.n + 1, np.int64)
        np.cumsum(np.bincount(ends, minlength=topo.n), out=offsets[1:])
        return cls(u, v, offsets, np.concatenate([np.arange(len(u))] * 2)[order])

    def matching(self, seed: int, round: int) -> NDArray[np.int64]:
        """Each node's partner this round (-1: none): a random matching, the same on every host.

        Each pass keeps the pairs whose random priority is the lowest among all the
        pairs touching either end (so no node is in two), then drops the pairs of
        matched nodes; three passes match most nodes of a sparse graph. Disjoint
        pairs updated at once are exactly a sequence of pairwise updates.
        """
        n, m = len(self.offsets) - 1, len(self.u)
        index = np.arange(m, dtype=np.int64)
        prio = (counter_bits(seed, round, index, stream=_PAIR_STREAM) >> np.uint64(31)).astype(np.int64)
        prio = (prio << 30) | index  # distinct: ties cannot match a node twice
        partner = np.full(n, -1, np.int64)
        alive = np.ones(m, bool)
        top = np.iinfo(np.int64).max
        starts = self.offsets[:-1]
        has = starts < self.offsets[1:]
        for _ in range(_PAIR_PASSES):
            p = np.where(alive, prio, top)
            low = np.full(n, top, np.int64)
            if len(self.incident):
                low[has] = np.minimum.reduceat(p[self.incident], starts[has])
            chosen = alive & (p == low[self.u]) & (p == low[self.v])
            if not chosen.any():
                break
            partner[self.u[chosen]] = self.v[chosen]
            partner[self.v[chosen]] = self.u[chosen]
            alive &= (partner[self.u] < 0) & (partner[self.v] < 0)
        return partner


@dataclass(frozen=True, eq=False)
class GossipRouter(Router):
    """Routes broadcasts over a `Topology`; see `Gossip` for the rules."""

    topology: Topology
    mode: GossipMode
    fanout: int | None
    pairs: Pairs | None = None
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)
    graph: GraphSpec | None = None
    """With no `topology` yet: the generator each host builds its own rows of (`plan_shard`)."""
    n: int = 0

    @property
    def deferred(self) -> bool:
        return self.graph is not None and self.topology is None

    def plan_shard(
        self, lo: int, hi: int, bounds: NDArray[np.int64], seed: int
    ) -> tuple[tuple[Topology, NDArray[np.int64], int], NDArray[np.int64], list[Any]]:
        """This host's rows of the graph, their degrees (every host needs every agent's), and
        for each host the positions of its agents among this host's agents' neighbours, in
        that host's edge order: what it needs to draw pulls."""
        assert self.graph is not None
        topo = self.graph.shard(self.n, seed, lo, hi)
        degree = np.diff(topo.offsets[lo : hi + 1])
        # Each edge v -> u here tells u's host where u stands among v's neighbours. Sorted by u
        # (stable: v stays ascending), they fall into one run per host, in that host's (u, v)
        # edge order; v travels along to check that the graph is symmetric.
        order = _stable_order(topo.targets)
        u, v = topo.targets[order], topo.edge_source[order]
        pos = order - topo.offsets[v]  # = topo.edge_position[order], without the whole column
        cuts = np.searchsorted(u, bounds)
        payloads = [(v[a:b], pos[a:b]) for a, b in itertools.pairwise(cuts.tolist())]
        return (topo, bounds, int(np.count_nonzero(degree == 0))), degree, payloads

    def finish_shard(
        self, state: tuple[Topology, NDArray[np.int64], int], shared: list[Any], mine: list[Any]
    ) -> tuple[GossipRouter, dict[str, Any]]:
        """Fill in this host's rows with every agent's in-degree and each edge's position among
        its receiver's in-neighbours (the graphs are symmetric: in-edges mirror out-edges).
        Host g's payload is this host's edges into g's agents, in this host's edge order."""
        (topo, bounds, isolated), n = state, self.n
        owner = (np.searchsorted(bounds, topo.targets, side="right") - 1).astype(np.uint16)
        by_owner = np.argsort(owner, kind="stable")  # radix sort: a 16-bit key
        if not np.array_equal(np.concatenate([v for v, _ in mine]), topo.targets[by_owner]):
            raise ProtocolError(
                f"{type(self.graph).__name__} gave a graph that is not symmetric; a generator built in "
                "the hosts must list each undirected edge once (GraphSpec.undirected) or both ways."
            )
        position = np.empty(len(topo.targets), np.int64)
        position[by_owner] = np.concatenate([p for _, p in mine])
        topo.__dict__["in_degree"] = np.concatenate(shared).astype(np.int64, copy=False)
        topo.__dict__["in_position"] = position
        summary = {
            "edges": len(position),
            "digest": edge_digest(topo.edge_source, topo.targets, n),
            "self_loops": int(np.count_nonzero(topo.edge_source == topo.targets)),
            "isolated": isolated,
        }
        return replace(self, topology=topo, graph=None), summary

    def partners(self, round: int, seed: int) -> NDArray[np.int64]:
        """Each agent's partner in `round` under pairwise exchange (-1: none)."""
        assert self.pairs is not None
        if self._memo.get("round") != (round, seed):
            self._memo["partner"] = self.pairs.matching(seed, round)
            self._memo["round"] = (round, seed)
        partner: NDArray[np.int64] = self._memo["partner"]
        return partner

    def route(self, outbox: MessageBatch, round: int, seed: int) -> MessageBatch:
        topo = self.topology
        to_route = outbox.receiver < 0
        msg_b = np.flatnonzero(to_route)
        if self.mode == "pairwise":
            partner = self.partners(round, seed)[outbox.sender[msg_b]]
            b_idx, b_recv = np.flatnonzero(partner >= 0), partner[partner >= 0]
        else:
            b_idx, b_recv = self._expand(outbox.sender[msg_b], outbox.seq[msg_b], round, seed)
        b_idx = msg_b[b_idx]
        if to_route.all():
            idx, recv = b_idx, b_recv
        else:
            msg_d = np.flatnonzero(~to_route)
            d_send, d_recv = outbox.sender[msg_d], outbox.receiver[msg_d]
            self._check_direct(d_send, d_recv, topo)
            idx = np.concatenate([b_idx, msg_d])
            recv = np.concatenate([b_recv, d_recv])
            order = np.argsort(idx, kind="stable")
            idx, recv = idx[order], recv[order]
        return outbox.take(idx).with_receivers(recv)

    def _expand(
        self, senders: NDArray[np.int64], seqs: NDArray[np.int32], round: int, seed: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Per broadcast, the out-edges of its sender that carry it."""
        topo = self.topology
        deg = topo.out_degree[senders]
        if self.fanout is not None and not seqs.any() and bool(np.all(np.diff(senders) > 0)):
            return self._sampled(senders, deg, round, seed)
        return self._walk(senders, seqs, deg, round, seed)

    def _walk(
        self,
        senders: NDArray[np.int64],
        seqs: NDArray[np.int32],
        deg: NDArray[np.int64],
        round: int,
        seed: int,
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Every out-edge of every sender, then the ones the fanout keeps (any senders, any seqs)."""
        topo = self.topology
        total = int(deg.sum())
        lo = int(senders[0]) if len(senders) else 0
        if len(senders) and int(senders[-1]) - lo + 1 == len(senders) and not seqs.any():
            # The common case: one broadcast from each of a contiguous run of agents.
            # Their edges are one contiguous slice of the CSR arrays.
            first, last = int(topo.offsets[lo]), int(topo.offsets[lo + len(senders)])
            edge: slice | NDArray[np.int64] = slice(first, last)
            row = topo.edge_source[first:last] - lo
            pos = topo.edge_position[first:last]
        else:
            row = np.repeat(np.arange(len(senders), dtype=np.int64), deg)
            starts = np.cumsum(deg) - deg
            pos = np.arange(total, dtype=np.int64) - np.repeat(starts, deg)  # position in sender's row
            edge = np.repeat(topo.offsets[senders], deg) + pos
        recv = topo.targets[edge]
        if self.fanout is None:
            return row, recv
        keep = np.zeros(total, bool)
        if self.mode in ("push", "push-pull"):
            # Each sender takes `fanout` consecutive neighbours from a random start:
            # every neighbour is equally likely, with no repeats.
            start = counter_integers(seed, round, senders, np.maximum(deg, 1), 0, stream=_PUSH_STREAM)
            start = (start + seqs) % np.maximum(deg, 1)  # a second message goes one step on
            d = deg[row]
            keep |= _within(pos - start[row], d, self.fanout)
        if self.mode in ("pull", "push-pull"):
            # Each receiver pulls from `fanout` consecutive in-neighbours from a random start.
            indeg = topo.in_degree[recv]
            if total > topo.n:  # cheaper to draw once per node than once per edge
                everyone = np.arange(topo.n, dtype=np.int64)
                table = counter_integers(
                    seed, round, everyone, np.maximum(topo.in_degree, 1), 0, stream=_PULL_STREAM
                )
                start = table[recv]
            else:
                start = counter_integers(seed, round, recv, np.maximum(indeg, 1), 0, stream=_PULL_STREAM)
            keep |= _within(topo.in_position[edge] - start, indeg, self.fanout)
        return row[keep], recv[keep]

    def _sampled(
        self, senders: NDArray[np.int64], deg: NDArray[np.int64], round: int, seed: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """What the edge walk below keeps, for one broadcast per sender, without walking every edge.

        The chosen edges are marked directly: a sender's `fanout` consecutive
        out-edges from its random start (push), and every receiver's `fanout`
        consecutive in-edges from its (pull). O(senders + agents) x fanout work,
        and one flag per edge of the senders' span, instead of a dozen passes over
        every edge. Same draws, same edges, same order.
        """
        topo = self.topology
        f = self.fanout
        assert f is not None
        if len(senders) == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        lo, hi = int(senders[0]), int(senders[-1]) + 1
        first, last = int(topo.offsets[lo]), int(topo.offsets[hi])
        mark = np.zeros(last - first, bool)
        if self.mode in ("push", "push-pull"):
            start = counter_integers(seed, round, senders, np.maximum(deg, 1), 0, stream=_PUSH_STREAM)
            base = topo.offsets[senders] - first
            for j in range(min(f, int(deg.max(initial=0)))):
                ok = j < deg
                pos = start[ok] + j  # < 2 deg: one wrap at most, cheaper than %
                pos -= deg[ok] * (pos >= deg[ok])
                mark[base[ok] + pos] = True
        if self.mode in ("pull", "push-pull") and (last - first < topo.n or topo.sharded):
            # Few edges here (one host of many): test each of them against its receiver's
            # pull, rather than draw every agent's pull on every host. Same draws, same marks.
            recv = topo.targets[first:last]
            indeg = topo.in_degree[recv]
            start = counter_integers(seed, round, recv, np.maximum(indeg, 1), 0, stream=_PULL_STREAM)
            mark |= _within(topo.in_position[first:last] - start, indeg, f)
        elif self.mode in ("pull", "push-pull"):
            in_offsets, in_edges = topo.in_csr
            indeg = topo.in_degree
            everyone = np.arange(topo.n, dtype=np.int64)
            start = counter_integers(seed, round, everyone, np.maximum(indeg, 1), 0, stream=_PULL_STREAM)
            for j in range(min(f, int(indeg.max(initial=0)))):
                v = np.flatnonzero(j < indeg) if j else np.flatnonzero(indeg)
                pos = start[v] + j
                pos -= indeg[v] * (pos >= indeg[v])
                e = in_edges[in_offsets[v] + pos]
                e = e[(e >= first) & (e < last)]
                mark[e - first] = True
        edges = np.flatnonzero(mark) + first
        source = topo.edge_source[edges]
        if hi - lo == len(senders):
            return source - lo, topo.targets[edges]
        row = np.full(hi - lo, -1, np.int64)  # senders are sorted, not contiguous: map id -> row
        row[senders - lo] = np.arange(len(senders))
        rows = row[source - lo]
        sent = rows >= 0
        return rows[sent], topo.targets[edges[sent]]

    @staticmethod
    def _check_direct(send: NDArray[np.int64], recv: NDArray[np.int64], topo: Topology) -> None:
        check_receivers(send, recv, topo.n)
        off = ~topo.has_edges(send, recv)
        if off.any():
            i = int(np.flatnonzero(off)[0])
            raise AgentError(
                f"Agent {send[i]} sent a message to agent {recv[i]}, which is not its neighbour "
                "under gossip; send to one of ctx.neighbours or leave receiver=None."
            )

    def neighbours(self, agent: int) -> NDArray[np.int64]:
        return self.topology.neighbours(agent)

    def edge_weights(
        self, sender: NDArray[np.int64], receiver: NDArray[np.int64]
    ) -> NDArray[np.float64] | None:
        topo = self.topology
        if topo.weights is None or self.mode == "pairwise":
            return None
        weights: NDArray[np.float64] = topo.weights[topo.edge_index(sender, receiver)]
        return weights

    def describe(self) -> dict[str, object]:
        return _described(self.topology.describe())

    def describe_built(self, built: list[dict[str, Any]]) -> dict[str, object]:
        """The graph the hosts built, described as `describe` describes one built here."""
        digest = sum(int(b["digest"]) for b in built) & ((1 << 64) - 1)
        edges, loops, isolated = (sum(int(b[k]) for b in built) for k in ("edges", "self_loops", "isolated"))
        return _described(describe_graph(self.n, edges, digest, loops, isolated))


def _stable_order(x: NDArray[np.int64]) -> NDArray[np.int64]:
    """``np.argsort(x, kind="stable")`` for ids below 2**32, as two 16-bit radix passes (numpy
    sorts 16-bit keys by radix: several times faster than its merge sort on 64-bit ones)."""
    if len(x) and int(x.max()) >= 1 << 32:
        return np.argsort(x, kind="stable")
    first = np.argsort((x & 0xFFFF).astype(np.uint16), kind="stable")
    if not len(x) or int(x.max()) < 1 << 16:
        return first
    second = np.argsort((x[first] >> 16).astype(np.uint16), kind="stable")
    return first[second]


def _described(topology: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {"topology": topology}
    notes = []
    if topology.get("self_loops"):
        notes.append(
            f"the graph has {topology['self_loops']:,} self-loop(s): those agents hear themselves "
            "(Gossip(strict_graph=True) refuses such a graph)"
        )
    if topology.get("isolated"):
        notes.append(
            f"the graph has {topology['isolated']:,} isolated node(s): those agents never hear "
            "anyone, so the run may never reach consensus (Gossip(strict_graph=True) refuses it)"
        )
    if notes:
        out["notes"] = notes
    return out


_OWN = re.compile(r"^opinion: ([-+0-9.eE]+)", re.M)
_HEARD = re.compile(r"^- agent \d+: opinion ([-+0-9.eE]+)", re.M)


class OpinionReply(Reply):
    """An opinion on the scale [0, 1] and the reason for it (what an LLM agent answers in gossip).

    It becomes one ``opinion`` message (the value, with the reason as its text) and
    sets the agent's ``opinion`` field.
    """

    opinion: float = Field(ge=0.0, le=1.0, description="0 = fully disagree, 1 = fully agree")
    reason: str = Field("", max_length=400, description="One sentence on why")

    def to_messages(self) -> list[Message]:
        return [Message(kind="opinion", value=self.opinion, text=self.reason or None)]

    def state(self) -> dict[str, Any]:
        return {"opinion": self.opinion}

    @classmethod
    def simulate(cls, prompt: str, rng: np.random.Generator) -> dict[str, Any]:
        """Stand-in play: move halfway toward the mean of the opinions heard (a tenth of the way
        for a persona that says it is stubborn), with a little noise."""
        own = _OWN.search(prompt)
        mine = float(own.group(1)) if own else float(rng.random())
        heard = [float(x) for x in _HEARD.findall(prompt)]
        if not heard:
            return {"opinion": mine, "reason": "I heard nobody this round, so I keep my opinion."}
        mean = float(np.mean(heard))
        weight = 0.1 if "stubborn" in prompt.lower() else 0.5
        new = float(np.clip(mine + weight * (mean - mine) + rng.normal(0.0, 0.01), 0.0, 1.0))
        return {
            "opinion": round(new, 4),
            "reason": f"I moved toward the {len(heard)} opinion(s) I heard (mean {mean:.2f}).",
        }


class LLMOpinionAgent(LLMAgent):
    """A gossip agent played by a language model: it holds an opinion in [0, 1] and answers
    an `OpinionReply` each round (``moot/simulated``, an offline stand-in, by default)."""

    persona: str = (
        "You are a member of a community discussing a proposal. Your opinion is a number from 0 "
        "(fully against) to 1 (fully for). You listen to your neighbours and may change your mind."
    )
    opinion: float = Field(0.5, ge=0.0, le=1.0)


class Gossip(MessageProtocol):
    """Gossip on a graph: each round every message goes to some neighbours.

    Args:
        graph: A networkx graph over agents ``0..n-1``, a generator spec
            (`SmallWorld(k=4, p=0.1)`, `RingLattice`, `ErdosRenyi`, `Grid`) or
            its name (``"small_world"``).
        fanout: Neighbours per message; None sends to every neighbour (DeGroot).
        mode: ``"push"`` (the sender picks), ``"pull"`` (each receiver picks whom
            it hears), ``"push-pull"`` (both; a message is delivered once), or
            ``"pairwise"``: each round a random matching of the graph's pairs, and
            each matched agent's message goes to its partner only (Deffuant-style
            exchange; `fanout` is ignored).
        tolerance: Stop when the watched field's spread (max - min) falls below
            (the default stop rule; ``launch(stop=...)`` replaces it).
        field: The numeric state field watched for convergence. None (the
            default) watches ``opinion`` when the population has it, and nothing
            otherwise; a named field that no agent class has is an error.
        weight: The edge attribute of a networkx graph that holds influence
            weights (see `influence_graph`); agents then see each message's
            weight as ``inbox.weight`` / ``Message.weight``. None: unweighted.
        strict_graph: Refuse a graph with self-loops or isolated nodes. By default such a
            graph runs, and the run says what it has (on stderr and in ``events``).

    Example:
        >>> Gossip(graph=SmallWorld(k=6, p=0.3), fanout=2, mode="push-pull")
    """

    name = "gossip"
    instructions = (
        "Each round you read the opinions your neighbours sent you last round, decide your own "
        "opinion for this round, and share it with your neighbours."
    )
    default_field = "opinion"
    replies = (OpinionReply,)

    def __init__(
        self,
        graph: nx.Graph | GraphSpec | Topology | str = "small_world",
        *,
        fanout: int | None = 1,
        mode: GossipMode = "push",
        tolerance: float = 1e-2,
        field: str | None = None,
        weight: str | None = None,
        strict_graph: bool = False,
    ) -> None:
        self.strict_graph = strict_graph
        if mode not in _MODES:
            raise ConfigError(f"Unknown gossip mode {mode!r}; use 'push', 'pull', 'push-pull' or 'pairwise'.")
        if fanout is not None and (not isinstance(fanout, int) or isinstance(fanout, bool)):
            raise ConfigError(
                f"fanout must be a whole number >= 1 or None (every neighbour), got {fanout!r}; "
                "e.g. fanout=2."
            )
        if fanout is not None and fanout < 1:
            raise ConfigError(f"fanout must be >= 1 or None (every neighbour), got {fanout}.")
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0:
            raise ConfigError(f"tolerance must be a number >= 0, got {tolerance!r}; e.g. tolerance=0.01.")
        if field is not None and not isinstance(field, str):
            raise ConfigError(f"field must be a state field name, got {field!r}; e.g. field='opinion'.")
        if weight is not None and not isinstance(weight, str):
            raise ConfigError(f"weight must be an edge attribute name, got {weight!r}; e.g. weight='weight'.")
        if weight is not None and isinstance(graph, (str, GraphSpec)):
            raise ConfigError(
                f"weight={weight!r} reads edge weights from a networkx graph, but the graph is {graph!r}; "
                "pass a weighted networkx graph (influence_graph(W) builds one from a matrix)."
            )
        if not isinstance(graph, (str, GraphSpec, Topology)) and not hasattr(graph, "number_of_nodes"):
            raise ConfigError(
                f"graph must be a networkx graph, a spec such as SmallWorld(k=6, p=0.3), or a name "
                f"such as 'small_world'; got {graph!r}."
            )
        self.graph = graph_spec(graph) if isinstance(graph, str) else graph
        self.fanout = None if mode == "pairwise" else fanout
        self.mode: GossipMode = mode
        self.tolerance = tolerance
        self._field = field
        self.weight = weight

    @property
    def field(self) -> str | None:
        return self._field

    def build_in_hosts(self, n_agents: int, seed: int) -> GossipRouter | None:
        """For a named generator, each host builds its own rows of the graph (`GraphSpec.shard`)."""
        if not self._in_hosts():
            return None
        assert isinstance(self.graph, GraphSpec)
        self.graph.check(n_agents)  # a bad size fails here, before any host starts
        return GossipRouter(None, self.mode, self.fanout, graph=self.graph, n=n_agents)  # type: ignore[arg-type]

    def build(self, n_agents: int, seed: int) -> GossipRouter:
        if isinstance(self.graph, GraphSpec):
            topo = self.graph.build(n_agents, seed)
        else:
            topo = (
                self.graph
                if isinstance(self.graph, Topology)
                else Topology.from_networkx(self.graph, self.weight)
            )
            if topo.n != n_agents:
                raise ConfigError(
                    f"The graph has {topo.n} nodes but the population has {n_agents} agents; "
                    "give one node per agent."
                )
        topo.check_weights()
        if self.strict_graph:
            loops, isolated = topo.oddities()
            if loops or isolated:
                raise ConfigError(
                    f"The graph has {loops} self-loop(s) and {isolated} isolated node(s), and "
                    "strict_graph=True refuses both; remove them (networkx: G.remove_edges_from("
                    "nx.selfloop_edges(G)); connect or drop isolated nodes), or pass strict_graph=False."
                )
        if self.mode == "pairwise":
            return GossipRouter(topo, self.mode, self.fanout, Pairs.of(topo))
        return GossipRouter(topo.precompute(sampled=self.fanout is not None), self.mode, self.fanout)

    def _in_hosts(self) -> bool:
        """Whether each host builds its own rows of the graph: a named generator (its edge list
        is counter-based), routed by broadcast (pairwise matching needs the whole graph), and
        no strict check (which needs the whole graph before any host starts)."""
        return (
            isinstance(self.graph, GraphSpec)
            and type(self.graph).edges is not GraphSpec.edges
            and self.mode != "pairwise"
            and not self.strict_graph
        )

    def stop_rule(self, field: str | None) -> StopRule | None:
        return None if field is None else Consensus(field, self.tolerance)

    def default_population(self, n: int, agent: type[Agent] | None = None, **state: Any) -> Population:
        """`n` OpinionAgents (or `agent`s) with opinions uniform on [0, 1) unless `state` says."""
        from agents.opinion import OpinionAgent
        from agents.population import Population, Uniform

        cls = agent or OpinionAgent
        for name, col in cls.initial_state.items():
            state.setdefault(name, col)
        if "opinion" in cls.model_fields and "opinion" not in state:
            state["opinion"] = Uniform(0.0, 1.0)
        return Population.of(cls, n, **state)

    def describe(self) -> dict[str, object]:
        if isinstance(self.graph, GraphSpec):
            graph = self.graph.describe()
        elif isinstance(self.graph, Topology):
            graph = {"generator": "Topology", **self.graph.describe()}
        else:
            graph = {
                "generator": "networkx",
                "type": type(self.graph).__name__,
                "directed": bool(self.graph.is_directed()),
            }
        out: dict[str, object] = {
            "name": self.name,
            "graph": graph,
            "fanout": self.fanout,
            "mode": self.mode,
            "tolerance": self.tolerance,
            "field": self._field,
            "weight": self.weight,
        }
        if self.strict_graph:  # (only when set: the configs of earlier logs stay the same)
            out["strict_graph"] = True
        return out

    def __repr__(self) -> str:
        return f"Gossip(graph={self.graph!r}, fanout={self.fanout}, mode={self.mode!r})"
