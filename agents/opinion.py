"""Averaging models of opinion: DeGroot (`OpinionAgent`), Friedkin-Johnsen, and expressed vs private (EPO).

All three move an opinion toward a weighted average of what the agent heard.
Without edge weights an agent gives itself a weight (`stubbornness` for
`OpinionAgent`, `self_weight` for the others) and splits the rest equally
among the messages it heard. With edge weights (``Gossip(graph,
weight="weight")``, see `protocols.influence_graph`) agent i gives each
in-neighbour j the graph's ``W[i, j]`` and itself the rest,
``W[i, i] = 1 - sum_j W[i, j]``: heard from every in-neighbour (``fanout=None``),
one round is exactly ``x <- W x``.

Round r reads what was sent in round r - 1, so round 0 changes nothing and
round t applies the t-th step of the model.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from agents.agent import ActResult, Agent
from agents.batch import Inbox, MessageBatch
from agents.context import BatchContext, Context
from agents.message import Message

__all__ = [
    "ExpressedPrivate",
    "FriedkinJohnsen",
    "OpinionAgent",
    "average",
    "average_batch",
    "friedkin_johnsen_batch",
    "heard_opinions",
]

FULL_NEIGHBOURHOOD: dict[str, dict[str, object]] = {"gossip": {"fanout": None, "mode": "push"}}


def average(own: float, heard: list[Message], self_weight: float) -> float:
    """One averaging step for one agent (see the module docstring); `average_batch` vectorised.

    Sums run in (sender, seq) order, as `average_batch` does, so both give the same bits.
    """
    if not heard:
        return own
    if heard[0].weight is not None:
        ws = wx = 0.0
        for m in heard:
            w = m.weight if m.weight is not None else 0.0
            ws += w
            wx += w * (m.value if m.value is not None else math.nan)
        return own * (1.0 - ws) + wx
    total = 0.0
    for m in heard:
        total += m.value if m.value is not None else math.nan
    return self_weight * own + (1.0 - self_weight) * (total / len(heard))


def average_batch(
    own: NDArray[np.float64], inbox: Inbox, self_weight: NDArray[np.float64]
) -> NDArray[np.float64]:
    """One averaging step for a block of agents (an agent that heard nothing keeps `own`): of
    numbers ``(n,)``, or of vectors ``(n, dim)`` entry by entry (the messages' vectors)."""
    if own.ndim == 2:
        dim = own.shape[1]
        if inbox.weight is not None:
            kept: NDArray[np.float64] = own * per_agent(1.0 - inbox.weight_sum, own)
            return kept + inbox.weighted_vector_sum(dim)
        mean, heard = inbox.vector_mean(dim)
        w = per_agent(self_weight, own)
        return np.where(per_agent(heard, own), w * own + (1.0 - w) * mean, own)
    if inbox.weight is not None:
        return own * (1.0 - inbox.weight_sum) + inbox.weighted_sum()
    mean, heard = inbox.mean()
    return np.where(heard, self_weight * own + (1.0 - self_weight) * mean, own)


def per_agent(column: NDArray[Any], like: NDArray[Any]) -> NDArray[Any]:
    """A per-agent column shaped to broadcast against `like`: as is for numbers, ``(n, 1)`` for vectors."""
    return column if like.ndim == 1 else column[:, None]


def friedkin_johnsen_batch(state: dict[str, NDArray[np.float64]], inbox: Inbox, round: int) -> None:
    """One Friedkin-Johnsen step for a block, in place (numbers or vectors): unset (NaN)
    prejudices take the current opinion; round 0 only that."""
    prejudice, op = state["prejudice"], state["opinion"]
    unset = np.isnan(prejudice)
    if unset.any():
        prejudice[unset] = op[unset]
    if round == 0:  # no step before anything is heard (see `FriedkinJohnsen.act`)
        return
    lam = per_agent(state["susceptibility"], op)
    state["opinion"] = lam * average_batch(op, inbox, state["self_weight"]) + (1.0 - lam) * prejudice


def heard_opinions(inbox: list[Message]) -> list[Message]:
    """The opinion messages with a value in a plain agent's inbox (what every model here reads)."""
    return [m for m in inbox if m.kind == "opinion" and m.value is not None]


class OpinionAgent(Agent):
    """DeGroot averaging: each round the opinion moves to a weighted mean of its own and what it heard.

    New opinion = ``stubbornness * own + (1 - stubbornness) * mean(received)``;
    an agent that heard nothing keeps its opinion. With edge weights the graph
    gives the weights instead (``own + sum_j W[i, j] (x_j - own)``) and
    `stubbornness` is not used. It then sends the new opinion (the protocol picks
    the receivers). With every neighbour heard each round, the population
    converges to the left-Perron-vector-weighted mean of the initial opinions.

    Attributes:
        opinion: The current opinion.
        stubbornness: Weight on its own opinion, in [0, 1]; 1 never moves, 0 adopts
            the mean of what it heard. The default 0.5 is pairwise-averaging gossip.
    """

    opinion: float = 0.0
    stubbornness: float = Field(default=0.5, ge=0.0, le=1.0)

    def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        self.opinion = average(self.opinion, heard_opinions(inbox), self.stubbornness)
        return Message(kind="opinion", value=self.opinion)

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        state["opinion"] = average_batch(state["opinion"], inbox, state["stubbornness"])
        return MessageBatch.broadcast(ctx.ids, "opinion", state["opinion"])


class FriedkinJohnsen(Agent):
    """Friedkin-Johnsen: averaging anchored to a prejudice.

    ``x_i <- lambda_i * (W x)_i + (1 - lambda_i) * u_i``, where ``(W x)_i`` is
    the averaging step (module docstring) and u_i the prejudice. moot's Lambda
    is the *susceptibility*: lambda_i = 1 is DeGroot, lambda_i = 0 is fully
    stubborn (never moves). So the fixed point, when rho(Lambda W) < 1, is
    ``x* = (I - Lambda W)^-1 (I - Lambda) u``; in the stubbornness convention
    (S = I - Lambda) that is ``(I - (I - S) W)^-1 S u``.

    Attributes:
        opinion: The current opinion.
        prejudice: The anchor u_i; NaN (the default) means the opinion the agent starts with.
        susceptibility: lambda_i in [0, 1].
        self_weight: W[i, i] without edge weights (the rest split equally among
            what it heard); with edge weights, the graph's.
    """

    opinion: float = 0.0
    prejudice: float = math.nan
    susceptibility: float = Field(default=0.5, ge=0.0, le=1.0)
    self_weight: float = Field(default=0.5, ge=0.0, le=1.0)

    protocol_options: ClassVar[dict[str, dict[str, object]]] = FULL_NEIGHBOURHOOD

    def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        if math.isnan(self.prejudice):
            self.prejudice = self.opinion
        if ctx.round == 0:  # nothing heard yet: round t applies the t-th step, so round 0 none
            return Message(kind="opinion", value=self.opinion)
        lam = self.susceptibility
        avg = average(self.opinion, heard_opinions(inbox), self.self_weight)
        self.opinion = lam * avg + (1.0 - lam) * self.prejudice
        return Message(kind="opinion", value=self.opinion)

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        friedkin_johnsen_batch(state, inbox, ctx.round)
        return MessageBatch.broadcast(ctx.ids, "opinion", state["opinion"])


class ExpressedPrivate(Agent):
    """The EPO model (Ye, Qin, Govaert, Anderson & Cao, Automatica 2019): a private and an expressed opinion.

    Agents hear each other's *expressed* opinions. Each round::

        private   x_i <- lambda_i * (W[i,i] x_i + sum_j W[i,j] e_j) + (1 - lambda_i) u_i
        expressed e_i <- phi_i * x_i(new) + (1 - phi_i) * (W[i,i] e_i + sum_j W[i,j] e_j)

    The second term is the local public opinion the agent feels pressed to
    conform to; phi_i is its resilience to that pressure. phi = 1 is
    Friedkin-Johnsen with e = x. `opinion` is the private opinion (so the
    metrics describe beliefs); `expressed` is what it sends.

    Attributes:
        opinion: Private opinion x_i.
        expressed: Expressed opinion e_i; NaN (the default) starts it at the private one.
        prejudice: u_i; NaN (the default) means the starting private opinion.
        susceptibility: lambda_i in [0, 1].
        resilience: phi_i in [0, 1].
        self_weight: W[i, i] without edge weights.
    """

    opinion: float = 0.0
    expressed: float = math.nan
    prejudice: float = math.nan
    susceptibility: float = Field(default=0.5, ge=0.0, le=1.0)
    resilience: float = Field(default=0.5, ge=0.0, le=1.0)
    self_weight: float = Field(default=0.5, ge=0.0, le=1.0)

    protocol_options: ClassVar[dict[str, dict[str, object]]] = FULL_NEIGHBOURHOOD

    def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        if math.isnan(self.prejudice):
            self.prejudice = self.opinion
        if math.isnan(self.expressed):
            self.expressed = self.opinion
        if ctx.round == 0:  # no step before anything is heard (see `FriedkinJohnsen.act`)
            return Message(kind="opinion", value=self.expressed)
        heard = heard_opinions(inbox)
        lam, phi = self.susceptibility, self.resilience
        x = lam * average(self.opinion, heard, self.self_weight) + (1.0 - lam) * self.prejudice
        public = average(self.expressed, heard, self.self_weight)
        self.opinion, self.expressed = x, phi * x + (1.0 - phi) * public
        return Message(kind="opinion", value=self.expressed)

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        op = state["opinion"]
        for name in ("prejudice", "expressed"):
            col = state[name]
            unset = np.isnan(col)
            if unset.any():
                col[unset] = op[unset]
        if ctx.round == 0:
            return MessageBatch.broadcast(ctx.ids, "opinion", state["expressed"])
        lam, phi, w = state["susceptibility"], state["resilience"], state["self_weight"]
        x = lam * average_batch(op, inbox, w) + (1.0 - lam) * state["prejudice"]
        public = average_batch(state["expressed"], inbox, w)
        state["opinion"], state["expressed"] = x, phi * x + (1.0 - phi) * public
        return MessageBatch.broadcast(ctx.ids, "opinion", state["expressed"])
