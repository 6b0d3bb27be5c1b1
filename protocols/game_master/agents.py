"""The game master and the players of a scene.

A step runs over rounds: the GM tells players what they observe (in round 0, the opening), the
players whose turn it is propose (kind ``propose``: a number in its payload, or free text), and
the GM resolves the proposals it received into an event, one observation per player (kind
``observe``; the payload carries the step, the structured resolution and whether it is that
player's turn) and the scene's new state (its ``state`` field, logged in ``states.text``).
Simultaneous: everyone proposes, then the GM resolves them together. Sequential: one player a
turn, in position order, each seeing what the ones before it did this step.

A GM never tells a player another player's private fact: its harness removes them from every
observation, whoever wrote it (the rules or a language model).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, PrivateAttr

from agents.agent import ActResult, Agent
from agents.context import Context
from agents.llm import LLMAgent
from agents.message import Message
from agents.reply import Reply
from protocols.game_master.scenario import Scenario, market_allocation, public_goods_payoffs

__all__ = ["GMReply", "LLMPlayer", "LLMSceneMaster", "PlayerReply", "SceneMaster", "ScenePlayer"]


@lru_cache(maxsize=16)
def _scenario(text: str) -> Scenario:
    return Scenario.model_validate_json(text)


Resolution = tuple[str, dict[int, str], dict[int, dict[str, Any]]]
"""(the event, per position the observation's text, per position its structured resolution)."""


class SceneMaster(Agent):
    """A rule-based game master: judges its scenario's rules exactly (`scenario.py`).

    Attributes:
        scene: Its scene.
        players: Its players' agent ids, by position (position k is ``players[k - 1]``).
        scenario: The scenario (JSON).
        state: The scene's state (JSON: step, turn, what the rules keep), logged every state round.
        open: 1 while the scene runs; 0 once its players have read the last step's observations (the
            run stops when no scene is open).
    """

    scene: int = 0
    players: list[int] = Field(default_factory=list)
    scenario: str = "{}"
    state: str = '{"step": 0, "turn": 0}'
    open: int = 1

    unlogged: ClassVar[tuple[str, ...]] = ("scenario",)

    @property
    def spec(self) -> Scenario:
        return _scenario(self.scenario)

    async def act(self, inbox: list[Message], ctx: Context) -> ActResult:  # type: ignore[override]
        spec = self.spec
        if ctx.round == 0:
            first = 1 if spec.engine == "sequential" else None
            return self._observe(
                {k: spec.opening_text() for k in self._positions()}, {}, first, 0, opening=True
            )
        state = json.loads(self.state)
        if state.get("done"):  # the players have read the last observations: the scene is over
            self.open = 0
            return None
        proposals = {self._position(m.sender): m for m in inbox if m.kind == "propose"}
        if not proposals:
            return None
        event, texts, resolved = await self.resolve(proposals, state, ctx)
        step, turn = state["step"], state["turn"]
        if spec.engine == "sequential" and turn + 1 < spec.players:
            state["turn"] = turn + 1
            nxt: int | None = turn + 2
        else:
            state["step"], state["turn"] = step + 1, 0
            nxt = 1 if spec.engine == "sequential" else None
        if state["step"] >= spec.steps:
            state["done"], nxt = True, -1
        state["last_event"] = event
        self.state = json.dumps(state, sort_keys=True)
        return self._observe(texts, resolved, nxt, step)

    async def resolve(self, proposals: dict[int, Message], state: dict[str, Any], ctx: Context) -> Resolution:
        """Apply the scenario's rules to the proposals (by position); update `state` in place."""
        spec = self.spec
        if spec.rules == "public_goods":
            return _public_goods(spec, proposals, state)
        if spec.rules == "market":
            return _market(spec, proposals, state)
        raise ValueError(f"Scenario {spec.name!r} has no rules; it needs an LLM game master (-o gm=llm).")

    def _positions(self) -> range:
        return range(1, len(self.players) + 1)

    def _position(self, agent: int) -> int:
        return self.players.index(agent) + 1

    def _observe(
        self,
        texts: dict[int, str],
        resolved: dict[int, dict[str, Any]],
        turn: int | None,
        step: int,
        opening: bool = False,
    ) -> list[Message]:
        """One observation per player, each stripped of every other player's private facts."""
        secrets = self.spec.private
        out = []
        for k in self._positions():
            text = texts.get(k, "")
            for who, secret in secrets.items():
                if who != str(k) and secret:
                    text = text.replace(secret, "[withheld]")
            if opening and str(k) in secrets:  # the opening: its own secret, and no one else's
                text = f"{text} Only you know: {secrets[str(k)]}"
            payload = {"step": step, "turn": turn is None or turn == k, **resolved.get(k, {})}
            out.append(Message(kind="observe", receiver=self.players[k - 1], text=text, payload=payload))
        return out


def _amount(m: Message) -> float:
    if m.payload and "amount" in m.payload:
        return float(m.payload["amount"])
    found = re.search(r"-?\d+(?:\.\d+)?", m.text or "")
    return float(found.group(0)) if found else 0.0


def _public_goods(spec: Scenario, proposals: dict[int, Message], state: dict[str, Any]) -> Resolution:
    """Contributions clamped to [0, endowment]; when every player has contributed this step, the
    payoffs (`public_goods_payoffs`)."""
    given = state.setdefault("contributions", {})
    for k, m in sorted(proposals.items()):
        given[str(k)] = min(max(_amount(m), 0.0), spec.endowment)
    shown = ", ".join(f"player {k} put in {given[k]:g}" for k in sorted(given, key=int))
    if len(given) < spec.players:  # sequential: the step goes on
        return (
            f"Step {state['step']}: {shown}.",
            {k: f"So far this step: {shown}." for k in range(1, spec.players + 1)},
            {},
        )
    paid = public_goods_payoffs(spec, [given[str(k)] for k in range(1, spec.players + 1)])
    contributions = [given[str(k)] for k in range(1, spec.players + 1)]
    state["contributions"] = {}
    totals = state.setdefault("payoffs", {})
    for k, p in enumerate(paid, 1):
        totals[str(k)] = totals.get(str(k), 0.0) + p
    pot = sum(contributions)
    event = f"Step {state['step']}: {shown}; the pot of {pot:g} became {spec.multiplier * pot:g}."
    texts = {k: f"{event} Your payoff: {paid[k - 1]:g}." for k in range(1, spec.players + 1)}
    resolved = {
        k: {"payoff": paid[k - 1], "contributions": contributions} for k in range(1, spec.players + 1)
    }
    return event, texts, resolved


def _market(spec: Scenario, proposals: dict[int, Message], state: dict[str, Any]) -> Resolution:
    """Units asked, allocated from the step's stock (`market_allocation`); payoff (value - price) x units."""
    if state.get("turn", 0) == 0:
        state["stock"] = spec.stock
    asked = {k: max(int(_amount(m)), 0) for k, m in sorted(proposals.items())}
    got = market_allocation(list(asked.values()), state["stock"], spec.engine == "sequential")
    state["stock"] -= sum(got)
    resolved, parts = {}, []
    for (k, q), a in zip(asked.items(), got):
        value = float((proposals[k].payload or {}).get("value", 0.0))
        resolved[k] = {"asked": q, "units": a, "payoff": (value - spec.price) * a}
        parts.append(f"player {k} asked {q} and got {a}")
    event = f"Step {state['step']}: {'; '.join(parts)}; {state['stock']} left."
    texts = {k: event for k in range(1, spec.players + 1)}
    return event, texts, resolved


class ScenePlayer(Agent):
    """A rule-based player: proposes a number when it is its turn.

    Public goods: a ``cooperator`` puts in its whole endowment, a ``defector`` nothing, a
    ``conditional`` cooperator the mean of what it has seen the others put in (this step's movers
    first, else the last step's; half its endowment before it has seen any). Market: it asks for
    `demand` units, which it values at `value` each.

    Attributes:
        scene, gm, position: Where it plays.
        strategy: Its public-goods strategy.
        endowment: Tokens per step (public goods).
        demand, value: Units it asks for and what each is worth to it (market).
        payoff: Its payoff so far.
        seen: Others' contributions it has seen (the latest first).
    """

    scene: int = 0
    gm: int = 0
    position: int = 1
    strategy: str = "conditional"
    endowment: float = 10.0
    demand: int = 0
    value: float = 0.0
    payoff: float = 0.0
    seen: list[float] = Field(default_factory=list)

    def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        mine = [m for m in inbox if m.kind == "observe" and m.sender == self.gm]
        if not mine:
            return None
        m = mine[-1]
        payload = m.payload or {}
        self.payoff += float(payload.get("payoff", 0.0))
        if "contributions" in payload:  # a step ended
            others = [c for k, c in enumerate(payload["contributions"], 1) if k != self.position]
            self.seen = list(others)
        elif m.text and m.text.startswith("So far"):  # sequential: this step's movers
            moved = [float(x) for x in re.findall(r"put in (-?\d+(?:\.\d+)?)", m.text)]
            if moved:
                self.seen = moved
        if not payload.get("turn"):
            return None
        return Message(kind="propose", payload={"amount": self._amount(), "value": self.value})

    def _amount(self) -> float:
        if self.demand:
            return float(self.demand)
        if self.strategy == "cooperator":
            return self.endowment
        if self.strategy == "defector":
            return 0.0
        return float(np.mean(self.seen)) if self.seen else self.endowment / 2


class PlayerReply(Reply):
    """A player's proposal: what it does, in words, and a number where the scene takes one."""

    action: str
    amount: float | None = None

    def to_messages(self) -> list[Message]:
        payload = None if self.amount is None else {"amount": self.amount}
        return [Message(kind="propose", text=self.action, payload=payload)]

    @classmethod
    def simulate(cls, prompt: str, rng: np.random.Generator) -> dict[str, Any]:
        """The offline stand-in (not a language model): proposes something plain, repeating its
        private fact if it has one (so the game master's redaction is exercised)."""
        secret = re.search(r"Only you know: (.*?)(?:\n|$)", prompt)
        deeds = (
            "fetch water from the river",
            "repair the well",
            "ration the water",
            "ask the miller for help",
        )
        action = f"I propose we {deeds[int(rng.integers(len(deeds)))]}."
        if secret:
            action += f" {secret.group(1)}"
        return {"action": action, "amount": None}


class LLMPlayer(LLMAgent):
    """A player played by a language model, with a memory: it is shown its last `recall`
    observations and up to `retrieve` older ones that share the most words with the latest
    (keyword retrieval; no embedding model is used).

    Attributes:
        scene, gm, position: Where it plays.
        payoff: Its payoff so far (where the scene pays).
        memory: Every observation it received, oldest first.
    """

    scene: int = 0
    gm: int = 0
    position: int = 1
    payoff: float = 0.0
    observations: list[str] = Field(default_factory=list)
    recall: int = Field(3, ge=0)
    retrieve: int = Field(2, ge=0)
    persona: str = "You are a player in a scene that a game master runs. Say what you do."

    async def act(self, inbox: list[Message], ctx: Context) -> ActResult:  # type: ignore[override]
        mine = [m for m in inbox if m.kind == "observe" and m.sender == self.gm]
        if not mine:
            return None
        for m in mine:
            self.observations.append(m.text or "")
            self.payoff += float((m.payload or {}).get("payoff", 0.0))
        if not (mine[-1].payload or {}).get("turn"):
            return None
        return await LLMAgent.act(self, inbox, ctx)

    def reply_model(self, ctx: Context) -> type[Reply]:
        return PlayerReply

    def recalled(self) -> list[str]:
        """Its last `recall` observations, after up to `retrieve` older ones most like the latest."""
        recent = self.observations[-self.recall :] if self.recall else []
        older = self.observations[: len(self.observations) - len(recent)]
        if not older or not self.retrieve or not self.observations:
            return recent
        words = set(re.findall(r"\w+", self.observations[-1].lower()))
        score = [len(words & set(re.findall(r"\w+", o.lower()))) for o in older]
        best = sorted(range(len(older)), key=lambda i: (-score[i], i))[: self.retrieve]
        return [older[i] for i in sorted(best)] + recent

    def render(self, inbox: list[Message], ctx: Context, reply_model: type[Reply]) -> list[dict[str, str]]:
        lines = "\n".join(f"- {o}" for o in self.recalled())
        user = (
            f"Round {ctx.round}. What you remember (recent, and older by keyword):\n{lines}\n"
            f"Answer with one JSON object that fits {reply_model.__name__}."
        )
        return [{"role": "system", "content": self.persona}, {"role": "user", "content": user}]


class GMReply(Reply):
    """A game master's resolution: what happened, what each player observes (by position), and what
    changes in the scene's state."""

    event: str
    observations: dict[str, str] = Field(default_factory=dict)
    changes: dict[str, str] = Field(default_factory=dict)

    def to_messages(self) -> list[Message]:
        return []

    @classmethod
    def simulate(cls, prompt: str, rng: np.random.Generator) -> dict[str, Any]:
        """The offline stand-in (not a language model): the event is what each player proposed;
        every player observes it."""
        found = re.search(r"PROPOSALS (\{.*\})", prompt)
        proposals = json.loads(found.group(1)) if found else {}
        scene = re.search(r"Scene (\d+)", prompt)
        where = f"Scene {scene.group(1)}" if scene else "The scene"
        event = f"{where}: " + " ".join(f"Player {k}: {v}" for k, v in sorted(proposals.items()))
        return {"event": event, "observations": {k: event for k in proposals}, "changes": {"mood": "tense"}}


class LLMSceneMaster(LLMAgent, SceneMaster):  # type: ignore[misc]
    """A game master played by a language model (open-ended scenes): shown the setting, the public
    and private facts, the scene's state and the proposals, it answers a `GMReply`. Its harness
    still keeps the turn order and removes private facts from what each player observes."""

    persona: str = (
        "You are the game master of a scene. Decide what actually happens when the players do what "
        "they propose, and what each of them observes. Never reveal a player's private facts to others."
    )
    unlogged: ClassVar[tuple[str, ...]] = ("persona", "model", "scenario")
    _proposals: dict[str, str] = PrivateAttr(default_factory=dict)

    async def act(self, inbox: list[Message], ctx: Context) -> ActResult:  # type: ignore[override]
        return await SceneMaster.act(self, inbox, ctx)

    async def resolve(self, proposals: dict[int, Message], state: dict[str, Any], ctx: Context) -> Resolution:
        self._proposals = {str(k): m.text or "" for k, m in sorted(proposals.items())}
        reply = await LLMAgent.act(self, [], ctx)
        if not isinstance(reply, GMReply):
            event = (
                f"Scene {self.scene}: nothing could be settled this step (the game master gave no answer)."
            )
            return event, dict.fromkeys(self._positions(), event), {}
        state.update(reply.changes)
        texts = {k: reply.observations.get(str(k), reply.event) for k in self._positions()}
        return reply.event, texts, {}

    def reply_model(self, ctx: Context) -> type[Reply]:
        return GMReply

    def render(self, inbox: list[Message], ctx: Context, reply_model: type[Reply]) -> list[dict[str, str]]:
        spec = self.spec
        private = "; ".join(f"player {k}: {v}" for k, v in sorted(spec.private.items()))
        user = (
            f"Scene {self.scene}. {spec.setting}\nFacts: {json.dumps(spec.facts)}\nPrivate (never reveal to "
            f"others): {private or 'none'}\nState: {self.state}\n"
            f"Answer with one JSON object that fits {reply_model.__name__}.\n"
            f"PROPOSALS {json.dumps(self._proposals, sort_keys=True)}"
        )
        return [{"role": "system", "content": self.persona}, {"role": "user", "content": user}]
