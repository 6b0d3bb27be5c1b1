"""A tiny out-of-tree protocol with its own kinds and a world: tokens walking on a ring.

Installed for the tests only (a dist-info beside it declares its entry points),
never as part of moot's packages: it shows what a plugin author writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents import Agent, Message, Population
from agents.batch import MessageBatch
from protocols import MessageProtocol
from protocols.base import DirectRouter, Router
from protocols.world import Observation, World


@dataclass(frozen=True)
class Spot(Observation):
    cell: int
    here: int

    def render(self) -> str:
        return f"You stand on cell {self.cell} with {self.here - 1} others."


class Ring(World):
    def __init__(self, n: int, cells: int) -> None:
        self.cells = cells
        self.pos = np.arange(n, dtype=np.int64) % cells

    def apply(self, actions: MessageBatch, round: int, kinds: tuple[str, ...]) -> None:
        steps = actions.kind == kinds.index("step")
        np.add.at(self.pos, actions.sender[steps], actions.value[steps].astype(np.int64))
        self.pos %= self.cells

    def observe(self, agent: int, round: int) -> Spot:
        return Spot(int(self.pos[agent]), int((self.pos == self.pos[agent]).sum()))

    def deliver(self, messages: MessageBatch, lo: int, hi: int, round: int) -> MessageBatch:
        mine = np.arange(lo, hi)
        same = self.pos[messages.sender][:, None] == self.pos[mine][None, :]
        same &= messages.sender[:, None] != mine[None, :]
        m, a = np.nonzero(same)
        return messages.take(m).with_receivers(mine[a])

    def metrics(self, round: int) -> dict[str, float]:
        return {"crowded": float(np.bincount(self.pos, minlength=self.cells).max())}


class Walker(Agent):
    shouts_heard: int = 0

    def act(self, inbox: list[Message], ctx: Any) -> list[Message]:
        self.shouts_heard += sum(m.kind == "shout" for m in inbox)
        out = [Message(kind="step", value=float(2 * ctx.integers(2) - 1))]
        if ctx.observation.here > 1:
            out.append(Message(kind="shout", text="crowded here"))
        return out


class TinyWorld(MessageProtocol):
    name = "tiny_world"
    kinds = ("step", "shout")
    action_kinds = ("step",)

    def __init__(self, cells: int = 7) -> None:
        self.cells = cells

    def build(self, n_agents: int, seed: int) -> Router:
        return DirectRouter(n_agents, Ring(n_agents, self.cells))

    def default_population(self, n: int, agent: type[Agent] | None = None, **state: Any) -> Population:
        return Population.of(agent or Walker, n, **state)

    def views(self) -> Mapping[str, str]:
        return {"tiny_steps": "SELECT run_id, round, sender, value FROM messages WHERE kind = 'step'"}
