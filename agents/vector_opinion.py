"""Opinion dynamics in d dimensions: opinions on several issues at once, as one vector per agent.

The four classic models of `agents.opinion` and `agents.bounded_confidence`, with the opinion a
`Vector` (its length the population's ``dim``) sent as a message vector:

- `VectorDeGroot`: averaging, entry by entry; converges per coordinate to the scalar closed form.
- `VectorFriedkinJohnsen`: averaging anchored to a prejudice vector; ``(I - Lambda W)^-1 (I - Lambda) U``
  column by column.
- `VectorHegselmannKrause`: the mean of every heard opinion within Euclidean distance epsilon.
- `VectorDeffuant`: pairs within Euclidean distance `threshold` move toward each other; the
  pair's vector sum is kept.

With ``dim=1`` each gives the scalar model's numbers bit for bit (the same draws, the same sums
in the same order). Round r reads what was sent in round r - 1, so round 0 changes nothing.

Example:
    >>> pop = Population.of(VectorDeGroot, 10_000, dim=16, opinion=Uniform(0, 1))
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from agents.agent import ActResult, Agent
from agents.batch import Inbox, MessageBatch
from agents.bounded_confidence import _ONE_PARTNER, deffuant_batch, distances, hegselmann_krause_batch
from agents.context import BatchContext, Context
from agents.message import Message
from agents.opinion import FULL_NEIGHBOURHOOD, average_batch, friedkin_johnsen_batch
from agents.vector import Vector, vector_field

__all__ = [
    "VectorDeGroot",
    "VectorDeffuant",
    "VectorFriedkinJohnsen",
    "VectorHegselmannKrause",
    "average_vectors",
    "heard_vectors",
]


def heard_vectors(inbox: list[Message]) -> list[Message]:
    """The opinion messages with a vector in a plain agent's inbox."""
    return [m for m in inbox if m.kind == "opinion" and m.vector is not None]


def average_vectors(
    own: NDArray[np.float64], heard: list[Message], self_weight: float
) -> NDArray[np.float64]:
    """One averaging step for one agent (`agents.opinion.average`, entry by entry); the sums run
    in (sender, seq) order, as `average_vectors_batch` does, so both give the same bits."""
    if not heard:
        return own
    if heard[0].weight is not None:
        ws, wx = 0.0, np.zeros_like(own)
        for m in heard:
            w = m.weight if m.weight is not None else 0.0
            ws += w
            wx = wx + w * m.vector  # type: ignore[operator]
        return own * (1.0 - ws) + wx
    total = np.zeros_like(own)
    for m in heard:
        total = total + m.vector  # type: ignore[operator]
    return self_weight * own + (1.0 - self_weight) * (total / len(heard))


class VectorDeGroot(Agent):
    """DeGroot averaging of a vector opinion: `agents.OpinionAgent` entry by entry.

    Attributes:
        opinion: The opinion, one entry per issue.
        stubbornness: Weight on its own opinion, in [0, 1] (unused with edge weights).
    """

    opinion: Vector = vector_field(0.0)
    stubbornness: float = Field(default=0.5, ge=0.0, le=1.0)

    def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        self.opinion = average_vectors(self.opinion, heard_vectors(inbox), self.stubbornness)
        return Message(kind="opinion", vector=self.opinion)

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        state["opinion"] = average_batch(state["opinion"], inbox, state["stubbornness"])
        return ctx.broadcast("opinion", vector=state["opinion"])


class VectorFriedkinJohnsen(Agent):
    """Friedkin-Johnsen with vector opinions: ``x_i <- lambda_i (W x)_i + (1 - lambda_i) u_i`` per entry.

    With every neighbour heard each round (``fanout=None``) and rho(Lambda W) < 1, the opinions
    converge to ``(I - Lambda W)^-1 (I - Lambda) U``, U the prejudices as an (n, dim) matrix.

    Attributes:
        opinion: The opinion.
        prejudice: The anchor u_i; NaN entries (the default) mean the opinion the agent starts with.
        susceptibility: lambda_i in [0, 1].
        self_weight: W[i, i] without edge weights.
    """

    opinion: Vector = vector_field(0.0)
    prejudice: Vector = vector_field(float("nan"), finite=False)
    susceptibility: float = Field(default=0.5, ge=0.0, le=1.0)
    self_weight: float = Field(default=0.5, ge=0.0, le=1.0)

    protocol_options: ClassVar[dict[str, dict[str, object]]] = FULL_NEIGHBOURHOOD

    def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        unset = np.isnan(self.prejudice)
        if unset.any():
            self.prejudice = np.where(unset, self.opinion, self.prejudice)
        if ctx.round > 0:  # round t applies the t-th step, so round 0 none
            lam = self.susceptibility
            avg = average_vectors(self.opinion, heard_vectors(inbox), self.self_weight)
            self.opinion = lam * avg + (1.0 - lam) * self.prejudice
        return Message(kind="opinion", vector=self.opinion)

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        friedkin_johnsen_batch(state, inbox, ctx.round)
        return ctx.broadcast("opinion", vector=state["opinion"])


class VectorHegselmannKrause(Agent):
    """Hegselmann-Krause in d dimensions: the new opinion is the mean of its own and every heard
    opinion within Euclidean distance epsilon (``||x_j - x_i|| <= epsilon``).

    Heard from everyone (``fanout=None`` on a complete graph), clusters end more than epsilon apart.

    Attributes:
        opinion: The opinion.
        epsilon: The confidence bound (>= 0), a Euclidean distance.
    """

    opinion: Vector = vector_field(0.0)
    epsilon: float = Field(default=0.1, ge=0.0)

    protocol_options: ClassVar[dict[str, dict[str, object]]] = FULL_NEIGHBOURHOOD

    def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        own = self.opinion
        near, count = np.zeros_like(own), 0
        for m in heard_vectors(inbox):
            v: NDArray[np.float64] = m.vector  # type: ignore[assignment]
            if _length(v - own) <= self.epsilon:
                near = near + v
                count += 1
        self.opinion = (own + near) / (1.0 + count)
        return Message(kind="opinion", vector=self.opinion)

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        own = state["opinion"]
        state["opinion"] = hegselmann_krause_batch(own, inbox.vectors(own.shape[1]), inbox, state["epsilon"])
        return ctx.broadcast("opinion", vector=state["opinion"])


class VectorDeffuant(Agent):
    """Deffuant-Weisbuch in d dimensions: a pair within Euclidean distance `threshold` both move
    ``mu`` of the way toward the other (``x_i <- x_i + mu (x_j - x_i)``); the pair's sum is kept.

    Needs one partner per round: gossip's pairwise exchange (``moot run --agent vector_deffuant``
    sets it).

    Attributes:
        opinion: The opinion.
        mu: Convergence parameter in (0, 0.5].
        threshold: The confidence bound d (>= 0), a Euclidean distance.
    """

    opinion: Vector = vector_field(0.0)
    mu: float = Field(default=0.5, gt=0.0, le=0.5)
    threshold: float = Field(default=0.2, ge=0.0)

    protocol_options: ClassVar[dict[str, dict[str, object]]] = {"gossip": {"mode": "pairwise"}}

    def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        heard = heard_vectors(inbox)
        if len(heard) > 1:
            raise ValueError(_ONE_PARTNER.format(agent=self.id, n=len(heard)))
        if heard:
            diff = heard[0].vector - self.opinion  # type: ignore[operator]
            if _length(diff) < self.threshold:
                self.opinion = self.opinion + self.mu * diff
        return Message(kind="opinion", vector=self.opinion)

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        own = state["opinion"]
        values = inbox.vectors(own.shape[1])
        state["opinion"] = deffuant_batch(own, values, inbox, state["mu"], state["threshold"], ctx.ids)
        return ctx.broadcast("opinion", vector=state["opinion"])


def _length(diff: NDArray[np.float64]) -> float:
    """One vector's Euclidean length, as `distances` measures a row (exactly ``abs`` for one entry)."""
    return float(distances(diff[None, :])[0])
