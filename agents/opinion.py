"""`OpinionAgent`: a numeric opinion, averaged with what it hears (DeGroot/Friedkin)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from agents.agent import ActResult, Agent
from agents.batch import Inbox, MessageBatch
from agents.context import BatchContext, Context
from agents.message import Message

__all__ = ["OpinionAgent"]


class OpinionAgent(Agent):
    """Holds a numeric opinion; each round moves it toward the mean of what it heard.

    New opinion = ``stubbornness * own + (1 - stubbornness) * mean(received)``;
    an agent that heard nothing keeps its opinion. It then sends the new opinion
    (the protocol picks the receivers). With every neighbour heard each round
    this is DeGroot averaging, and the population converges to the
    left-Perron-vector-weighted mean of the initial opinions.

    Attributes:
        opinion: The current opinion.
        stubbornness: Weight on its own opinion, in [0, 1]; 1 never moves, 0 adopts
            the mean of what it heard. The default 0.5 is pairwise-averaging gossip.
    """

    opinion: float = 0.0
    stubbornness: float = Field(default=0.5, ge=0.0, le=1.0)

    def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        heard = [m.value for m in inbox if m.kind == "opinion" and m.value is not None]
        if heard:
            total = 0.0
            for v in heard:
                total += v
            s = self.stubbornness
            self.opinion = s * self.opinion + (1.0 - s) * (total / len(heard))
        return Message(kind="opinion", value=self.opinion)

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        mean, heard = inbox.mean()
        s = state["stubbornness"]
        op = state["opinion"]
        state["opinion"] = np.where(heard, s * op + (1.0 - s) * mean, op)
        return MessageBatch.broadcast(ctx.ids, "opinion", state["opinion"])
