"""Agents of distributed black-box consensus optimisation.

`ConsensusOptimizer` (vectorised) is the execution layer: each round an agent mixes its point and
its gradient tracker with its neighbours' (Metropolis weights, so the mixing is doubly stochastic
on any undirected graph), steps along the tracker, and queries only its own objective: once at
its new point, 2 x dim times for a central-difference gradient along the axes, and once more for a
local escape when it is stuck. Its probe radius adapts (wider after a success: exploration;
narrower after a failure: convergence). The tracker follows the average gradient (gradient
tracking, DIGing), so on a smooth convex sum the agents reach its exact optimum together.

`GuidedOptimizer` is the same agent stepped one by one, which every K rounds asks a language model
(through the run's gateway; the offline stand-in by default) for sparse guidance from a summary
of its trajectory: how to scale its step and probe radius, whether to escape, and which
neighbours to stop cooperating with (LACMAS's idea, on moot's execution layer).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from agents.agent import ActResult, Agent
from agents.batch import Inbox, MessageBatch
from agents.context import BatchContext, Context
from agents.llm import LLMAgent
from agents.message import Message
from agents.reply import Reply
from agents.vector import Vector, vector_field
from protocols.blackbox_consensus.functions import evaluate

__all__ = ["ConsensusOptimizer", "GuideReply", "GuidedOptimizer", "optimise"]

RADIUS = (1e-4, 2.0)
"""The probe radius stays within these bounds."""
MAX_MOVE = 0.5
"""The longest step an agent takes along its tracker in one round."""

State = dict[str, NDArray[Any]]


def _gradient(
    function: str, x: NDArray[np.float64], shift: NDArray[np.float64], r: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Central differences along every axis, radius `r` per agent: 2 x dim queries each (exact
    for a quadratic whatever the radius)."""
    k, d = x.shape
    eye = np.eye(d)[None, :, :] * r[:, None, None]  # (k, d, d): each agent's axis steps
    up = (x[:, None, :] + eye).reshape(k * d, d)
    down = (x[:, None, :] - eye).reshape(k * d, d)
    shifts = np.repeat(shift, d, axis=0)
    diff = (evaluate(function, up, shifts) - evaluate(function, down, shifts)).reshape(k, d)
    return diff / (2.0 * r[:, None])


def _normals(uniform: Callable[[int], NDArray[np.float64]], d: int) -> NDArray[np.float64]:
    """``(k, d)`` standard normals from counter-based uniforms (Box-Muller, draws 0..2d-1)."""
    cols = []
    for j in range(d):
        u1, u2 = uniform(2 * j), uniform(2 * j + 1)
        cols.append(np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * math.pi * u2))
    return np.stack(cols, axis=1)


def optimise(
    state: State, inbox: Inbox, round: int, uniform: Callable[[int], NDArray[np.float64]]
) -> NDArray[np.float64]:
    """One round of the execution layer for a block of agents, in place; returns what each sends
    (its point, tracker and degree, ``(k, 2 dim + 1)``).

    Args:
        state: The agents' state columns (vector fields ``(k, dim)``).
        inbox: The neighbours' messages, each a vector of ``2 dim + 1``.
        uniform: Counter-based uniforms per agent, by draw number.
    """
    x, shift, fn = state["x"], state["shift"], str(state["function"][0])
    k, d = x.shape
    if round == 0:  # query, and start the tracker at the local gradient
        g = _gradient(fn, x, shift, state["radius"])
        state["gradient"], state["tracker"] = g, g.copy()
        state["value"] = evaluate(fn, x, shift)
        state["best"] = state["value"].copy()
        state["evaluations"] = state["evaluations"] + 2 * d + 1
        return _sent(state)
    y = state["tracker"]
    cooperate = state["isolated"] == 0
    if round >= 2 and len(inbox.batch):  # neighbours' degrees are known from round 1 on
        heard, local = np.asarray(inbox.vectors(2 * d + 1), np.float64), inbox.local
        w = np.where(cooperate[local], 1.0 / (1.0 + np.maximum(state["degree"][local], heard[:, 2 * d])), 0.0)
        keep = 1.0 - inbox.sum(w)
        sums = inbox.sum(heard[:, : 2 * d] * w[:, None])
        x = x * keep[:, None] + sums[:, :d]
        y = y * keep[:, None] + sums[:, d:]
    state["degree"] = np.where(cooperate, inbox.counts, 0).astype(np.float64)
    move = state["step"][:, None] * y
    length = np.linalg.norm(move, axis=1)
    too_far = length > MAX_MOVE  # a trust region: a steep start (Rosenbrock) does not fling it away
    move[too_far] *= (MAX_MOVE / length[too_far])[:, None]
    x = x - move
    value = evaluate(fn, x, shift)
    queries = np.full(k, 1 + 2 * d, np.float64)
    stuck = (state["escape_after"] > 0) & (state["stalled"] >= state["escape_after"])
    if stuck.any():  # local escape: one query at a random point around; taken if better
        direction = _normals(uniform, d)
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        trial = x + state["escape_radius"][:, None] * direction
        tried = evaluate(fn, trial, shift)
        take = stuck & (tried < value)
        x = np.where(take[:, None], trial, x)
        value = np.where(take, tried, value)
        queries += stuck
        state["stalled"] = np.where(stuck, 0.0, state["stalled"])
    improved = value < state["best"] - 1e-12
    state["radius"] = np.clip(np.where(improved, state["radius"] * 1.2, state["radius"] * 0.8), *RADIUS)
    state["stalled"] = np.where(improved, 0.0, state["stalled"] + 1.0)
    state["best"] = np.minimum(state["best"], value)
    g = _gradient(fn, x, shift, state["radius"])
    state["tracker"] = y + g - state["gradient"]
    state["gradient"], state["x"], state["value"] = g, x, value
    state["evaluations"] = state["evaluations"] + queries
    return _sent(state)


def _sent(state: State) -> NDArray[np.float64]:
    return np.concatenate([state["x"], state["tracker"], state["degree"][:, None]], axis=1)


class ConsensusOptimizer(Agent):
    """An agent of distributed black-box consensus optimisation (vectorised; see the module).

    Attributes:
        x: Its candidate point.
        shift: Where its own objective has its minimum (its objective is ``function(x - shift)``).
        tracker: Its estimate of the average gradient of all the agents' objectives.
        gradient: Its last local gradient estimate.
        function: sphere, rosenbrock, rastrigin or ackley (the same for every agent).
        step: Its step along the tracker.
        radius: Its probe radius (adaptive, within `RADIUS`).
        value: Its local objective at `x`.
        best: The best local objective it has seen.
        stalled: Rounds since it last improved on `best`.
        escape_after: Rounds stalled before a local escape (0: never).
        escape_radius: How far an escape looks.
        degree: How many neighbours it heard last round (for the mixing weights).
        isolated: 1: it ignores every neighbour (the no-communication baseline).
        evaluations: Queries of its objective so far.
    """

    x: Vector = vector_field(0.0)
    shift: Vector = vector_field(0.0)
    tracker: Vector = vector_field(0.0)
    gradient: Vector = vector_field(0.0)
    function: str = "sphere"
    step: float = Field(default=0.05, gt=0.0)
    radius: float = Field(default=0.5, gt=0.0)
    value: float = 0.0
    best: float = float("inf")
    stalled: int = Field(default=0, ge=0)
    escape_after: int = Field(default=0, ge=0)
    escape_radius: float = Field(default=1.0, ge=0.0)
    degree: int = Field(default=0, ge=0)
    isolated: bool = False
    evaluations: int = Field(default=0, ge=0)

    @classmethod
    def act_batch(cls, state: State, inbox: Inbox, ctx: BatchContext) -> MessageBatch:
        sent = optimise(state, inbox, ctx.round, ctx.uniform)
        talks = state["isolated"] == 0  # an isolated agent sends nothing
        return ctx.broadcast("point", senders=ctx.ids[talks], vector=sent[talks])


class GuideReply(Reply):
    """Sparse guidance for one optimiser from its trajectory.

    Attributes:
        step_scale: Multiply the step by this (0.25 to 4).
        radius_scale: Multiply the probe radius by this (0.25 to 4).
        escape: Try a local escape this round.
        ignore: Neighbours to stop cooperating with (their messages are dropped from now on).
    """

    step_scale: float = Field(1.0, ge=0.25, le=4.0)
    radius_scale: float = Field(1.0, ge=0.25, le=4.0)
    escape: bool = False
    ignore: list[int] = Field(default_factory=list)

    def to_messages(self) -> list[Message]:
        return []  # guidance changes the agent, not what it sends

    @classmethod
    def simulate(cls, prompt: str, rng: np.random.Generator) -> dict[str, Any]:
        """The offline stand-in's rule (not a language model): improving, lengthen the step a
        little; stalled, halve it, widen the probe and escape; drop neighbours more than three
        times the median distance away."""
        stalled = int(_number(prompt, r"stalled for (\d+) rounds", 0))
        improving = "improving: yes" in prompt
        far = [
            (int(a), float(b))
            for a, b in re.findall(r"neighbour (\d+) at distance (\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)", prompt)
        ]
        cut = 3.0 * float(np.median([dist for _, dist in far])) if far else math.inf
        out: dict[str, Any] = {"ignore": [a for a, dist in far if dist > cut and dist > 1e-9]}
        if improving:
            out.update(step_scale=1.2, radius_scale=0.8)
        elif stalled >= 3:
            out.update(step_scale=0.5, radius_scale=2.0, escape=True)
        return out


def _number(text: str, pattern: str, default: float) -> float:
    found = re.search(pattern, text)
    return float(found.group(1)) if found else default


_FIELDS = tuple(f for f in ConsensusOptimizer.model_fields if f != "id")


class GuidedOptimizer(LLMAgent, ConsensusOptimizer):  # type: ignore[misc]
    """`ConsensusOptimizer` stepped one by one, guided every `guide_every` rounds by a language
    model (`GuideReply`; the offline stand-in ``moot/simulated`` unless `model` says otherwise).

    Attributes:
        guide_every: Rounds between two questions to the model (K).
        ignored: Neighbours it no longer cooperates with.
        trail: Its local objective over the last rounds (what the model is shown).
    """

    vectorised: ClassVar[bool | None] = False
    persona: str = (
        "You guide one agent of a team that minimises the sum of their private objectives by "
        "black-box queries and by averaging points with neighbours."
    )
    guide_every: int = Field(default=10, ge=1)
    ignored: list[int] = Field(default_factory=list)
    trail: list[float] = Field(default_factory=list)

    unlogged: ClassVar[tuple[str, ...]] = ("persona", "model")

    async def act(self, inbox: list[Message], ctx: Context) -> ActResult:  # type: ignore[override]
        escape = False
        if ctx.round > 0 and ctx.round % self.guide_every == 0:
            reply = await LLMAgent.act(self, inbox, ctx)
            if isinstance(reply, GuideReply):
                self.step = self.step * reply.step_scale
                self.radius = float(np.clip(self.radius * reply.radius_scale, *RADIUS))
                self.ignored = sorted(set(self.ignored) | set(reply.ignore))
                escape = reply.escape
        heard = [
            m for m in inbox if m.kind == "point" and m.vector is not None and m.sender not in self.ignored
        ]
        state: State = {name: np.asarray([getattr(self, name)]) for name in _FIELDS}
        if escape:
            state["stalled"] = np.maximum(state["stalled"], max(self.escape_after, 1))
            state["escape_after"] = np.maximum(state["escape_after"], 1)
        batch = MessageBatch.from_messages(
            heard, np.array([m.sender for m in heard]), np.zeros(len(heard), np.int32), {"point": 0}
        )
        box = Inbox(batch, np.zeros(len(heard), np.int64), 1, ctx.round - 1)
        sent = optimise(state, box, ctx.round, lambda k: np.array([ctx.uniform(k)]))
        for name in _FIELDS:
            if name in ("escape_after",):
                continue
            value = state[name][0]
            setattr(
                self,
                name,
                value.copy() if isinstance(value, np.ndarray) else type(getattr(self, name))(value),
            )
        self.trail = [*self.trail[-(2 * self.guide_every - 1) :], float(self.value)]
        return None if self.isolated else Message(kind="point", vector=sent[0])

    def reply_model(self, ctx: Context) -> type[Reply]:
        return GuideReply

    def render(self, inbox: list[Message], ctx: Context, reply_model: type[Reply]) -> list[dict[str, str]]:
        """The trajectory summary the model reads: its objective over the last rounds, whether it
        is improving, its step and radius, and how far each neighbour's point is."""
        d = len(self.x)
        trail = ", ".join(f"{v:.4g}" for v in self.trail[-self.guide_every :])
        improving = len(self.trail) >= 2 and self.trail[-1] < self.trail[0] - 1e-12
        far = "; ".join(
            f"neighbour {m.sender} at distance {float(np.linalg.norm(m.vector[:d] - self.x)):.4g}"  # type: ignore[index]
            for m in inbox
            if m.kind == "point" and m.vector is not None
        )
        user = (
            f"Round {ctx.round}. Your local objective over the last rounds: {trail or 'none yet'}.\n"
            f"improving: {'yes' if improving else 'no'}; stalled for {self.stalled} rounds; "
            f"step {self.step:.4g}; probe radius {self.radius:.4g}; evaluations {self.evaluations}.\n"
            f"Neighbours: {far or 'none heard'}.\n"
            "Say how to scale the step and the probe radius, whether to try a local escape, and which "
            "neighbours to stop cooperating with (those whose points pull you away from progress).\n"
            f"Answer with one JSON object that fits the {reply_model.__name__} schema."
        )
        return [{"role": "system", "content": self.persona}, {"role": "user", "content": user}]
