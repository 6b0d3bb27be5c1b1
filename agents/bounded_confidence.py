"""Bounded-confidence models: Hegselmann-Krause (synchronous) and Deffuant-Weisbuch (pairwise).

An agent is moved only by opinions close enough to its own. Round r reads what
was sent in round r - 1, so round 0 changes nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from agents.agent import ActResult, Agent
from agents.batch import Inbox, MessageBatch
from agents.context import BatchContext, Context
from agents.message import Message
from agents.opinion import FULL_NEIGHBOURHOOD, heard_opinions

__all__ = ["Deffuant", "HegselmannKrause", "deffuant_batch", "distances", "hegselmann_krause_batch"]


def distances(diff: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """``|diff|`` per message: the absolute value of numbers, the Euclidean length of rows of
    vectors ``(m, dim)`` (for one entry exactly the absolute value)."""
    if diff.ndim == 1 or diff.shape[1] == 1:
        out: NDArray[np.float64] = np.abs(diff if diff.ndim == 1 else diff[:, 0])
    else:
        out = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def hegselmann_krause_batch(
    own: NDArray[np.float64], values: NDArray[np.floating[Any]], inbox: Inbox, epsilon: NDArray[np.float64]
) -> NDArray[np.float64]:
    """One Hegselmann-Krause step for a block: numbers ``(n,)`` or vectors ``(n, dim)``, with the
    heard `values` one per message (`distances` measures closeness)."""
    near = distances(values - own[inbox.local]) <= epsilon[inbox.local]
    kept = np.where(near if values.ndim == 1 else near[:, None], values, 0.0)
    count = 1.0 + inbox.sum(near.astype(np.float64))
    return (own + inbox.sum(kept)) / (count if own.ndim == 1 else count[:, None])


def deffuant_batch(
    own: NDArray[np.float64],
    values: NDArray[np.floating[Any]],
    inbox: Inbox,
    mu: NDArray[np.float64],
    threshold: NDArray[np.float64],
    ids: NDArray[np.int64],
) -> NDArray[np.float64]:
    """One Deffuant step for a block (numbers or vectors): each agent that heard its one partner
    within `threshold` moves `mu` of the way to it."""
    if not len(inbox.batch):
        return own
    counts = inbox.counts
    if counts.max() > 1:
        i = int(np.argmax(counts))
        raise ValueError(_ONE_PARTNER.format(agent=int(ids[i]), n=int(counts[i])))
    local = inbox.local
    diff = values - own[local]
    meet = distances(diff) < threshold[local]
    who = local[meet]
    step = mu[who] if own.ndim == 1 else mu[who][:, None]
    new = own.copy()
    new[who] = own[who] + step * diff[meet]
    return new


class HegselmannKrause(Agent):
    """Hegselmann-Krause: the new opinion is the mean of its own and every heard opinion within epsilon.

    ``x_i <- mean{x_j : |x_j - x_i| <= epsilon_i}``, over itself and what it
    heard. Heard from everyone (a complete graph, ``fanout=None``) this is the
    classic model: it converges in finitely many rounds, keeps the agents'
    order, and leaves clusters more than epsilon apart. On a sparse graph or
    with a fanout it is the networked (or sampled) variant.

    Attributes:
        opinion: The current opinion.
        epsilon: The confidence bound (>= 0).
    """

    opinion: float = 0.0
    epsilon: float = Field(default=0.1, ge=0.0)

    protocol_options: ClassVar[dict[str, dict[str, object]]] = FULL_NEIGHBOURHOOD

    def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        own, near, count = self.opinion, 0.0, 0
        for m in heard_opinions(inbox):
            if abs(m.value - own) <= self.epsilon:  # type: ignore[operator]
                near += m.value  # type: ignore[operator]
                count += 1
        self.opinion = (own + near) / (1.0 + count)
        return Message(kind="opinion", value=self.opinion)

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        state["opinion"] = hegselmann_krause_batch(
            state["opinion"], inbox.batch.value, inbox, state["epsilon"]
        )
        return MessageBatch.broadcast(ctx.ids, "opinion", state["opinion"])


class Deffuant(Agent):
    """Deffuant-Weisbuch: pairs meet; if their opinions differ by less than the threshold, both move.

    ``x_i <- x_i + mu (x_j - x_i)`` when ``|x_j - x_i| < threshold``; the
    partner does the same with the same two values, so the pair's sum is
    kept. It needs one partner per round: gossip's pairwise exchange
    (``Gossip(graph, mode="pairwise")``, which ``moot run --agent deffuant``
    sets), where each round is a random matching of the graph, the same as a
    sequence of pairwise meetings.

    Attributes:
        opinion: The current opinion.
        mu: Convergence parameter in (0, 0.5]; 0.5 meets at the midpoint.
        threshold: The confidence bound d (>= 0).
    """

    opinion: float = 0.0
    mu: float = Field(default=0.5, gt=0.0, le=0.5)
    threshold: float = Field(default=0.2, ge=0.0)

    protocol_options: ClassVar[dict[str, dict[str, object]]] = {"gossip": {"mode": "pairwise"}}

    def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        heard = heard_opinions(inbox)
        if len(heard) > 1:
            raise ValueError(_ONE_PARTNER.format(agent=self.id, n=len(heard)))
        if heard:
            diff = heard[0].value - self.opinion  # type: ignore[operator]
            if abs(diff) < self.threshold:
                self.opinion = self.opinion + self.mu * diff
        return Message(kind="opinion", value=self.opinion)

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        state["opinion"] = deffuant_batch(
            state["opinion"], inbox.batch.value, inbox, state["mu"], state["threshold"], ctx.ids
        )
        return MessageBatch.broadcast(ctx.ids, "opinion", state["opinion"])


_ONE_PARTNER = (
    "Deffuant agent {agent} heard {n} opinions in one round; the model meets one partner at a time. "
    "Use Gossip(graph, mode='pairwise') (moot run: -o mode=pairwise)."
)
