"""The debate's reply model and built-in debaters.

`DebateAnswer` is what a debater gives each round: its answer, its reasoning (the
text its peers read next round) and, where the study asks, a private belief. The
rule-based `RuleDebater` plays a million at once over the world's arrays;
`LLMDebater` asks a model (``moot/simulated``, an offline stand-in, by default).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from agents.agent import ActResult, Agent
from agents.batch import Inbox, MessageBatch
from agents.context import BatchContext, Context
from agents.llm import LLMAgent
from agents.message import Message
from agents.reply import Reply
from protocols.debate.questions import extract
from protocols.debate.world import DebateView

__all__ = ["DebateAnswer", "LLMDebater", "RuleDebater"]

_ARITH = re.compile(r"What is the result of (\d+)\+(\d+)\*(\d+)\+(\d+)-(\d+)\*(\d+)\?")
_PEER = re.compile(r"One agent response: ```(.*?)```", re.S)
_ANSWER = re.compile(r"(?:answer is|Answer:)\s*\(?(-?[\w.]+)\)?", re.I)


class DebateAnswer(Reply):
    """A debater's answer for the round.

    Attributes:
        answer: The answer alone: a number, a choice's letter, or the text asked for.
        reasoning: Why (its peers read it, with the answer, in a debate round).
        belief: A private belief on a 1-6 scale (how much it agrees with the group's
            position), when the study asks; never shown to any peer.
    """

    answer: str = Field(max_length=200)
    reasoning: str = Field("", max_length=2000)
    belief: int | None = Field(None, ge=1, le=6)

    def to_messages(self, code: float | None = None) -> list[Message]:
        text = f"{self.reasoning.strip()}\nAnswer: {self.answer}".strip()
        value = code if code is not None else _as_number(self.answer)
        out = [Message(kind="answer", value=value, text=text)]
        if self.belief is not None:
            out.append(Message(kind="belief", value=float(self.belief)))
        return out

    @classmethod
    def simulate(cls, prompt: str, rng: np.random.Generator) -> dict[str, Any]:
        """Stand-in play: solve the arithmetic question 60% of the time (else be off by a little);
        in a debate round, join the peers' majority if they have one (often if the persona says
        it can be persuaded, rarely if it says it is confident), else keep the previous answer."""
        m = _ARITH.search(prompt)
        truth = None
        if m:
            a, b, c, d, e, f = (int(x) for x in m.groups())
            truth = a + b * c + d - e * f
        peers = [p for p in (_ANSWER.findall(block) for block in _PEER.findall(prompt)) if p]
        mine = re.findall(r'"answer":\s*"([^"]*)"', prompt)
        if peers:
            votes = Counter(p[-1] for p in peers)
            top, count = votes.most_common(1)[0]
            pliable = 0.2 if "confident in your answer" in prompt else 0.7
            if 2 * count > len(peers) and rng.random() < pliable:
                return {"answer": top, "reasoning": f"Most other agents say {top}; I agree."}
        if mine and rng.random() < 0.8:
            return {"answer": mine[-1], "reasoning": "I checked my earlier answer and keep it."}
        if truth is not None:
            answer = truth if rng.random() < 0.6 else truth + int(rng.choice([-3, -2, -1, 1, 2, 3]))
            return {"answer": str(answer), "reasoning": "I worked it out step by step."}
        letters = re.findall(r"\b([A-J])\) ", prompt)
        return {"answer": str(rng.choice(letters)) if letters else "unknown", "reasoning": "My best guess."}


def _as_number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


class RuleDebater(Agent):
    """A rule-based debater, vectorised.

    Round 0: it answers correctly with probability `accuracy`, else a nearby wrong
    answer. A debate round: when the majority it sees (itself included) differs
    from its answer, it joins it with its trait's pliability (easy-going 0.7,
    overconfident 0.15, a custom persona 0.4); and when it was wrong and a peer it
    sees was right, it checks that peer's solution and takes it with probability
    pliability x accuracy (a right argument can be checked; a wrong one cannot be
    made right), which is how debate raises a society's accuracy. A reflection
    round: it re-solves with probability `recheck`, else keeps its answer. With
    beliefs on, its private belief is 6 when it sides with the majority it saw,
    else `confidence`.

    Attributes:
        accuracy: Chance of solving a question correctly.
        recheck: Chance of solving again in a reflection round.
        confidence: Private belief (1-6) when it stands apart from the majority.
    """

    accuracy: float = Field(0.6, ge=0.0, le=1.0)
    recheck: float = Field(0.2, ge=0.0, le=1.0)
    confidence: float = Field(3.0, ge=1.0, le=6.0)

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        seen = ctx.observation
        solution, own, majority = seen["solution"], seen["own"], seen["majority"]
        pattern = seen["pattern"]
        solve = ctx.uniform(0) < state["accuracy"]
        off = ctx.integers(6, 1)
        wrong = solution + np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])[off]
        fresh = np.where(solve, solution, wrong)
        join = (
            (pattern == 0) & ~np.isnan(majority) & (majority != own) & (ctx.uniform(2) < seen["pliability"])
        )
        recheck = (pattern == 1) & (ctx.uniform(3) < state["recheck"])
        convinced = (
            (pattern == 0)
            & seen["peer_right"]
            & (own != solution)
            & (ctx.uniform(4) < seen["pliability"] * state["accuracy"])
        )
        answer = np.where(pattern < 0, fresh, own)
        answer = np.where(join, majority, answer)
        answer = np.where(convinced, solution, answer)
        answer = np.where(recheck, fresh, answer)
        answer = np.where(np.isnan(answer), fresh, answer)  # never left without an answer
        out = MessageBatch.broadcast(ctx.ids, "answer", answer, kinds=ctx.kinds)
        if not seen["beliefs"].any():
            return out
        sides = (answer == majority) | (pattern < 0)
        belief = np.where(sides, 6.0, state["confidence"])
        return MessageBatch.concat([out, MessageBatch.broadcast(ctx.ids, "belief", belief, kinds=ctx.kinds)])


class LLMDebater(LLMAgent):
    """A debater played by a language model: its prompt is the debate's (MachineSoM's trait line,
    the question, the peers' previous answers in a debate round or a check in a reflection
    round); it answers a `DebateAnswer`, whose answer the question's extractor reads."""

    persona: str = "You take part in a group that answers questions together."
    temperature: float = Field(0.75, ge=0.0, le=2.0)

    async def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        reply = await super().act(inbox, ctx)
        if not isinstance(reply, DebateAnswer):
            return reply
        view = ctx.view(DebateView)
        answer = extract(reply.answer, view.question, faithful_letters=view.faithful_letters)
        return reply.to_messages(code=view.code(answer))
