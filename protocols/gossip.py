"""Gossip: agents pass messages to neighbours on a graph, push, pull or both."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from agents.batch import MessageBatch
from agents.llm import LLMAgent
from agents.message import Message
from agents.reply import Reply
from agents.rng import counter_integers
from orchestrator.errors import AgentError, ConfigError
from protocols.base import MessageProtocol, Router, check_receivers
from protocols.stop import Consensus, StopRule
from protocols.topology import GraphSpec, Topology, graph_spec

if TYPE_CHECKING:
    import networkx as nx

    from agents.agent import Agent
    from agents.population import Population

__all__ = ["Gossip", "GossipRouter", "LLMOpinionAgent", "OpinionReply"]

GossipMode = Literal["push", "pull", "push-pull"]
_PUSH_STREAM, _PULL_STREAM = 10, 11


def _within(diff: NDArray[np.int64], deg: NDArray[np.int64], fanout: int) -> NDArray[np.bool_]:
    """Whether ``diff mod deg`` < min(fanout, deg), for diff in (-deg, deg)."""
    diff = diff + deg * (diff < 0)
    return diff < np.minimum(fanout, deg)


@dataclass(frozen=True, eq=False)
class GossipRouter(Router):
    """Routes broadcasts over a `Topology`; see `Gossip` for the rules."""

    topology: Topology
    mode: GossipMode
    fanout: int | None

    def route(self, outbox: MessageBatch, round: int, seed: int) -> MessageBatch:
        topo = self.topology
        to_route = outbox.receiver < 0
        msg_b = np.flatnonzero(to_route)
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

    def describe(self) -> dict[str, object]:
        return {"topology": self.topology.describe()}


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
            it hears) or ``"push-pull"`` (both; a message is delivered once).
        tolerance: Stop when the watched field's spread (max - min) falls below
            (the default stop rule; ``launch(stop=...)`` replaces it).
        field: The numeric state field watched for convergence. None (the
            default) watches ``opinion`` when the population has it, and nothing
            otherwise; a named field that no agent class has is an error.

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
        graph: nx.Graph | GraphSpec | str = "small_world",
        *,
        fanout: int | None = 1,
        mode: GossipMode = "push",
        tolerance: float = 1e-2,
        field: str | None = None,
    ) -> None:
        if mode not in ("push", "pull", "push-pull"):
            raise ConfigError(f"Unknown gossip mode {mode!r}; use 'push', 'pull' or 'push-pull'.")
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
        if not isinstance(graph, (str, GraphSpec)) and not hasattr(graph, "number_of_nodes"):
            raise ConfigError(
                f"graph must be a networkx graph, a spec such as SmallWorld(k=6, p=0.3), or a name "
                f"such as 'small_world'; got {graph!r}."
            )
        self.graph = graph_spec(graph) if isinstance(graph, str) else graph
        self.fanout = fanout
        self.mode: GossipMode = mode
        self.tolerance = tolerance
        self._field = field

    @property
    def field(self) -> str | None:
        return self._field

    def build(self, n_agents: int, seed: int) -> GossipRouter:
        if isinstance(self.graph, GraphSpec):
            topo = self.graph.build(n_agents, seed)
        else:
            topo = Topology.from_networkx(self.graph)
            if topo.n != n_agents:
                raise ConfigError(
                    f"The graph has {topo.n} nodes but the population has {n_agents} agents; "
                    "give one node per agent."
                )
        return GossipRouter(topo.precompute(), self.mode, self.fanout)

    def stop_rule(self, field: str | None) -> StopRule | None:
        return None if field is None else Consensus(field, self.tolerance)

    def default_population(self, n: int, agent: type[Agent] | None = None, **state: Any) -> Population:
        """`n` OpinionAgents (or `agent`s) with opinions uniform on [0, 1) unless `state` says."""
        from agents.opinion import OpinionAgent
        from agents.population import Population, Uniform

        cls = agent or OpinionAgent
        if "opinion" in cls.model_fields and "opinion" not in state:
            state["opinion"] = Uniform(0.0, 1.0)
        return Population.of(cls, n, **state)

    def describe(self) -> dict[str, object]:
        if isinstance(self.graph, GraphSpec):
            graph = self.graph.describe()
        else:
            graph = {
                "generator": "networkx",
                "type": type(self.graph).__name__,
                "directed": bool(self.graph.is_directed()),
            }
        return {
            "name": self.name,
            "graph": graph,
            "fanout": self.fanout,
            "mode": self.mode,
            "tolerance": self.tolerance,
            "field": self._field,
        }

    def __repr__(self) -> str:
        return f"Gossip(graph={self.graph!r}, fanout={self.fanout}, mode={self.mode!r})"
