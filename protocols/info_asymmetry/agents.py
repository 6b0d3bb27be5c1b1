"""Agents under information asymmetry: each knows its own person's facts, may message only its
neighbours, and must find facts held several hops away.

Messages (payload JSON): ``ask`` ``{"task": t, "need": [...]}`` to a neighbour; ``tell`` ``{"task": t,
"facts": {key: value}}`` back toward the asker. An asker answers when it knows every fact its task
needs; its answers (and the round of each) are its state field ``answers`` (JSON), logged in
``states.text``.

`Informant` is the rule-based baseline: a breadth-first search. The asker asks all its neighbours;
an agent that hears an ask for the first time remembers who asked (its parent for that task),
tells its parent the needed facts its own person holds, and passes the ask on to its other
neighbours; a tell goes back parent by parent, and relays keep nothing. A fact h hops away
reaches the asker in exactly 2h rounds.

`InfoNavAgent` is played by a language model (the offline stand-in by default), shown an
InfoNav-style plan: what it knows, what is missing, whom it could ask, and the asks and tells it
received; it answers with the messages to send and, when it can, its answer.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from agents.agent import ActResult, Agent
from agents.context import Context
from agents.llm import LLMAgent
from agents.message import Message
from agents.reply import Reply
from protocols.info_asymmetry.tasks import answer_of

__all__ = ["InfoNavAgent", "InfoNavReply", "Informant", "plan_round"]


def plan_round(
    neighbours: list[int],
    facts: dict[str, str],
    known: dict[str, str],
    tasks: list[dict[str, Any]],
    answers: dict[str, Any],
    parents: dict[str, int],
    inbox: list[dict[str, Any]],
    round: int,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One round of the breadth-first search, on plain data (the baseline's rule, and what the
    offline stand-in plays for `InfoNavAgent`). Updates `known` and `parents` in place.

    Args:
        inbox: This round's messages as ``{"kind", "sender", "task", "need" | "facts"}``, in
            arrival order.

    Returns:
        (the messages to send as ``{"to", "kind", "task", "need" | "facts"}``, ``to`` one neighbour
        or a list of them, the new answers ``{task: answer}``).
    """
    out: list[dict[str, Any]] = []
    mine = {str(t["id"]): t for t in tasks}
    if round == 0:
        for t in tasks:
            out.append({"to": list(neighbours), "kind": "ask", "task": t["id"], "need": list(t["need"])})
    for m in inbox:
        task = str(m["task"])
        if m["kind"] == "tell":
            if task in mine:  # a relay passes facts on without keeping them
                known.update(m["facts"])
            elif task in parents:
                out.append({"to": parents[task], "kind": "tell", "task": m["task"], "facts": m["facts"]})
        elif m["kind"] == "ask" and task not in parents and task not in mine:
            parents[task] = int(m["sender"])
            held = {k: v for k, v in facts.items() if k in m["need"]}  # its own person's facts only
            if held:
                out.append({"to": int(m["sender"]), "kind": "tell", "task": m["task"], "facts": held})
            rest = [k for k in m["need"] if k not in held]
            others = [n for n in neighbours if n != m["sender"]]
            if rest and others:
                out.append({"to": others, "kind": "ask", "task": m["task"], "need": rest})
    new: dict[str, str] = {}
    have = {**known, **facts}
    for key, t in mine.items():
        if key not in answers and all(k in have for k in t["need"]):
            new[key] = answer_of(t["kind"], t["need"], have)
    return out, new


def _inbox(inbox: list[Message]) -> list[dict[str, Any]]:
    return [
        {"kind": m.kind, "sender": m.sender, **(m.payload or {})} for m in inbox if m.kind in ("ask", "tell")
    ]


def _messages(plan: list[dict[str, Any]]) -> list[Message]:
    """The plan's messages, one per receiver (an entry may name several), in the order given."""
    out = []
    for p in plan:
        body = {k: v for k, v in p.items() if k not in ("to", "kind")}
        for to in p["to"] if isinstance(p["to"], list) else [p["to"]]:
            out.append(Message(kind=p["kind"], receiver=int(to), payload=body))
    return out


class Informant(Agent):
    """The breadth-first-search baseline (see the module).

    Attributes:
        facts: Its own person's facts.
        known: Facts it learned from tells for its own tasks (a relay keeps none).
        tasks: The tasks it must answer (JSON of `tasks.Task`).
        answers: Its answers so far, ``{task: {"answer", "round"}}`` as JSON (logged every state round).
        pending: How many of its tasks are still unanswered (the run stops when none is).
        parents: Per task it relays, the neighbour that asked it first.
    """

    facts: dict[str, str] = Field(default_factory=dict)
    known: dict[str, str] = Field(default_factory=dict)
    tasks: list[dict[str, Any]] = Field(default_factory=list)
    answers: str = "{}"
    pending: int = 0
    parents: dict[str, int] = Field(default_factory=dict)

    def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        plan, new = plan_round(
            [int(n) for n in ctx.neighbours],
            self.facts,
            self.known,
            self.tasks,
            json.loads(self.answers),
            self.parents,
            _inbox(inbox),
            ctx.round,
        )
        self._answer(new, ctx.round)
        return _messages(plan)

    def _answer(self, new: dict[str, str], round: int) -> None:
        if not new:
            return
        answers = json.loads(self.answers)
        answers.update({k: {"answer": v, "round": round} for k, v in new.items() if k not in answers})
        self.answers = json.dumps(answers, sort_keys=True)
        self.pending = len(self.tasks) - len(answers)


class InfoNavReply(Reply):
    """An InfoNav agent's turn: its plan in words, the messages it sends, and its answer when it has one.

    Attributes:
        known: The facts it already has (keys).
        missing: The facts its tasks still need.
        plan: Whom it asks or tells, and why.
        messages: ``{"to": neighbour or [neighbours], "kind": "ask" | "tell", "task": id, "need": [...]
            | "facts": {...}}``.
        answers: ``{task id: answer}`` for tasks it can answer now.
    """

    known: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    plan: str = ""
    messages: list[dict[str, Any]] = Field(default_factory=list)
    answers: dict[str, str] = Field(default_factory=dict)

    def to_messages(self) -> list[Message]:
        return _messages(self.messages)

    @classmethod
    def simulate(cls, prompt: str, rng: np.random.Generator) -> dict[str, Any]:
        """The offline stand-in (not a language model) plays the breadth-first search on the JSON
        block of its prompt, so an LLM run without a model behaves as the baseline."""
        found = re.search(r"STATE (\{.*\})\s*$", prompt, re.S)
        if found is None:
            return {"plan": "I cannot read my state."}
        s = json.loads(found.group(1))
        plan, new = plan_round(
            s["neighbours"],
            s["facts"],
            s["known"],
            s["tasks"],
            s["answers"],
            s["parents"],
            s["inbox"],
            s["round"],
        )
        have = {**s["known"], **s["facts"]}
        missing = sorted({k for t in s["tasks"] for k in t["need"] if k not in have})
        return {
            "known": sorted(have),
            "missing": missing,
            "plan": f"Ask my neighbours for {', '.join(missing) or 'nothing'}; pass on what others need.",
            "messages": plan,
            "answers": new,
        }


class InfoNavAgent(LLMAgent, Informant):  # type: ignore[misc]
    """`Informant`'s role played by a language model with an InfoNav-style plan in its prompt:
    what it knows, what is missing, whom it can ask (its neighbours), then the asks and tells it
    received; it replies an `InfoNavReply`. The relaying memory (who asked first, per task) is
    kept for it and shown to it."""

    persona: str = (
        "You stand for one person and know only that person's facts. You may message only your "
        "neighbours. Find the facts your tasks need by asking; tell others what they ask for if you know it."
    )
    unlogged: ClassVar[tuple[str, ...]] = ("persona", "model")

    async def act(self, inbox: list[Message], ctx: Context) -> ActResult:  # type: ignore[override]
        reply = await LLMAgent.act(self, inbox, ctx)
        mine = {str(t["id"]) for t in self.tasks}
        for m in _inbox(inbox):  # its memory, kept for it: what it heard, and who asked first
            if m["kind"] == "tell" and str(m["task"]) in mine:
                self.known.update(m["facts"])
            elif m["kind"] == "ask" and str(m["task"]) not in self.parents and str(m["task"]) not in mine:
                self.parents[str(m["task"])] = int(m["sender"])
        if not isinstance(reply, InfoNavReply):
            return None
        allowed = {int(n) for n in ctx.neighbours}
        self._answer({k: v for k, v in reply.answers.items() if k in mine}, ctx.round)
        return [m for m in reply.to_messages() if m.receiver in allowed]

    def reply_model(self, ctx: Context) -> type[Reply]:
        return InfoNavReply

    def render(self, inbox: list[Message], ctx: Context, reply_model: type[Reply]) -> list[dict[str, str]]:
        have = {**self.known, **self.facts}
        missing = sorted({k for t in self.tasks for k in t["need"] if k not in have})
        state = {
            "me": self.id,
            "round": ctx.round,
            "neighbours": [int(n) for n in ctx.neighbours],
            "facts": self.facts,
            "known": self.known,
            "tasks": self.tasks,
            "answers": json.loads(self.answers),
            "parents": self.parents,
            "inbox": _inbox(inbox),
        }
        questions = "; ".join(f"task {t['id']}: {t['question']}" for t in self.tasks) or "none (you relay)"
        user = (
            f"Round {ctx.round}. Your tasks: {questions}\n"
            f"Known: {', '.join(sorted(have)) or 'nothing'}.\nMissing: {', '.join(missing) or 'nothing'}.\n"
            f"You may message: {', '.join(map(str, state['neighbours']))}.\n"
            "Plan what is known, what is missing and whom to ask; tell the asker's side what it asked for. "
            f"Answer with one JSON object that fits {reply_model.__name__}.\n"
            f"STATE {json.dumps(state, sort_keys=True)}"
        )
        return [{"role": "system", "content": self.persona}, {"role": "user", "content": user}]
