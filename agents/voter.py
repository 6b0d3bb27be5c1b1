"""The voter model: discrete opinions, each agent copies a random neighbour."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from agents.agent import ActResult, Agent
from agents.batch import Inbox, MessageBatch
from agents.context import BatchContext, Context
from agents.message import Message
from agents.opinion import heard_opinions
from agents.population import Choice

__all__ = ["Voter"]


class Voter(Agent):
    """The voter model (node update): an agent copies the opinion of a random neighbour.

    Each round every agent, with probability `rate`, adopts the opinion of one
    neighbour drawn uniformly (gossip's pull with fanout 1 delivers exactly
    that one; if it heard several it draws one). Updates are synchronous, from
    last round's opinions. The degree-weighted magnetisation
    ``sum_i k_i s_i / sum_i k_i`` is a martingale on any undirected graph, and on
    a complete graph P(consensus on +1) is the initial share of +1.

    Time: one round at rate q moves the magnetisation as much as ``q (2 - q) / 2``
    sweeps (N single updates) of the asynchronous model, so a complete graph of
    N agents at rate 1 reaches consensus in about ``2 N ln 2`` rounds from an
    even split (N ln 2 sweeps).

    Attributes:
        opinion: The opinion: any number used as a label, usually -1 or +1.
        rate: Probability of updating in a round, in (0, 1].
        last_change: The round in which the opinion last changed (-1: never), so
            that the time to consensus can be read from a final state.
    """

    opinion: float = 1.0
    rate: float = Field(default=1.0, gt=0.0, le=1.0)
    last_change: int = -1

    protocol_options: ClassVar[dict[str, dict[str, object]]] = {"gossip": {"mode": "pull", "fanout": 1}}
    initial_state: ClassVar[dict[str, object]] = {"opinion": Choice((-1.0, 1.0))}

    def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        heard = heard_opinions(inbox)
        if heard and ctx.uniform(0) < self.rate:
            pick = heard[0] if len(heard) == 1 else heard[ctx.integers(len(heard), 1)]
            if pick.value != self.opinion:
                self.opinion = float(pick.value)  # type: ignore[arg-type]
                self.last_change = ctx.round
        return Message(kind="opinion", value=self.opinion)

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        own = state["opinion"]
        if len(inbox.batch):
            counts = inbox.counts
            local, values = inbox.local, inbox.batch.value
            if counts.max() > 1:  # draw one heard message per agent
                order, starts = inbox.by_receiver
                k = ctx.integers(np.maximum(counts, 1), 1)
                rows = np.flatnonzero(counts > 0)
                picked = values[order[starts[rows] + k[rows]]]
            else:
                rows, picked = local, values
            go = ctx.uniform(0)[rows] < state["rate"][rows]
            rows, picked = rows[go], picked[go]
            changed = picked != own[rows]
            own[rows] = picked
            state["last_change"][rows[changed]] = ctx.round
        return MessageBatch.broadcast(ctx.ids, "opinion", own)
