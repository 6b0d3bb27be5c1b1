"""The swarm grid's reply model and built-in, offline agents.

`SwarmMove` is what an agent returns: an action and an optional message (an
LLM agent asks its model for one). The heuristic agents are simple, sensible
policies per task, plain `act` over `ctx.observation`; `VectorForager` and
`VectorFlocker` do the same for a million agents at once over observation arrays.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from agents.agent import Agent
from agents.batch import Inbox, MessageBatch
from agents.context import BatchContext, Context
from agents.message import Message
from agents.reply import Reply
from protocols.swarm_grid.physics import STAY
from protocols.swarm_grid.world import ACTIONS, CODE_AGENT, CODE_FOOD, CODE_NEST, GridView

__all__ = [
    "FlockHeuristic",
    "ForageHeuristic",
    "PursuitHeuristic",
    "SwarmMove",
    "SyncHeuristic",
    "SwarmStep",
    "TransportHeuristic",
    "VectorFlocker",
    "VectorForager",
]

MESSAGE_LIMIT = 120


class SwarmMove(Reply):
    """One round's decision: an action, and optionally a message to the agents within view.

    Attributes:
        action: UP, DOWN, LEFT, RIGHT, STAY (SWITCH in the synchronization task).
        message: Heard next round by every agent within view, anonymously; cut at
            120 characters (then ``...``), as in SwarmBench.
    """

    action: Literal["UP", "DOWN", "LEFT", "RIGHT", "STAY", "SWITCH"]
    message: str | None = None

    @classmethod
    def simulate(cls, prompt: str, rng: np.random.Generator) -> dict[str, Any]:
        """Stand-in play: step toward what the task seeks in the current view (prey, food, nest),
        else a random step; say where it is heading now and then."""
        cells = _current_view(prompt)
        task = prompt.lower()
        if "switch" in task and "light_on" in task:
            return {"action": "SWITCH" if rng.random() < 0.5 else "STAY"}
        if "carrying_food: true" in task:
            want = {"N"}
        elif "food" in task:
            want = {"F"}
        elif "prey" in task:
            want = {"P"}
        else:
            want = set()
        step = _seek(cells, want) if cells else None
        if step is None or rng.random() < 0.15:
            step = ("UP", "DOWN", "LEFT", "RIGHT")[int(rng.integers(4))]
        out: dict[str, Any] = {"action": step}
        if want and step and rng.random() < 0.3:
            out["message"] = f"Heading {step.lower()}" + (" toward " + "/".join(sorted(want)) if want else "")
        return out

    def to_messages(self) -> list[Message]:
        out = [Message(kind="move", value=float(ACTIONS.index(self.action)))]
        text = (self.message or "").replace("\n", " ").strip()
        if text:
            if len(text) > MESSAGE_LIMIT:
                text = text[:MESSAGE_LIMIT] + "..."
            out.append(Message(kind="say", text=text))
        return out


# The reply LLM agents are asked for in every task but synchronization: a model is never
# offered an action its task lacks, and an answer of SWITCH there is an invalid reply (asked
# again with the error shown), never a crash. Its docstring is part of the schema models see.
class SwarmStep(SwarmMove):
    """One round's decision: a move, and optionally a message to the agents within view.

    Attributes:
        action: UP, DOWN, LEFT, RIGHT or STAY.
        message: Heard next round by every agent within view, anonymously; cut at
            120 characters (then ``...``).
    """

    action: Literal["UP", "DOWN", "LEFT", "RIGHT", "STAY"]  # type: ignore[assignment]


def _current_view(prompt: str) -> list[list[str]]:
    """The cells of the "Current Step" window in a rendered `GridView` prompt."""
    lines = prompt.split("Current Step:\n", 1)[-1].splitlines()
    rows = []
    for line in lines[1:]:  # lines[0] holds the column labels
        if not line[:3].strip().lstrip("-").isdigit():
            break
        body = line[5:]
        rows.append([body[i : i + 4].strip() for i in range(0, len(body), 4)])
    return rows


def _seek(cells: list[list[str]], want: set[str]) -> str | None:
    me = next(((i, j) for i, row in enumerate(cells) for j, c in enumerate(row) if c == "Y"), None)
    if me is None:
        return None
    found = [
        (abs(i - me[0]) + abs(j - me[1]), i, j)
        for i, row in enumerate(cells)
        for j, c in enumerate(row)
        if c in want
    ]
    if not found:
        return None
    _, i, j = min(found)
    dr, dc = i - me[0], j - me[1]
    if dr and (abs(dr) >= abs(dc) or not dc):
        return "DOWN" if dr > 0 else "UP"
    return "RIGHT" if dc > 0 else "LEFT" if dc else "STAY"


def _toward(view: GridView, want: set[str], ctx: Context) -> str:
    """A step toward the nearest cell of the view showing one of `want`, or a random step."""
    half = len(view.cells) // 2
    best: tuple[int, int, int] | None = None
    for i, row in enumerate(view.cells):
        for j, cell in enumerate(row):
            if cell in want:
                d = abs(i - half) + abs(j - half)
                if best is None or d < best[0]:
                    best = (d, i - half, j - half)
    if best is None:
        return ("UP", "DOWN", "LEFT", "RIGHT")[ctx.integers(4)]
    _, dr, dc = best
    if dr and (abs(dr) >= abs(dc) or not dc):
        step = "DOWN" if dr > 0 else "UP"
    else:
        step = "RIGHT" if dc > 0 else "LEFT"
    # Stuck against a wall: a random step now and then gets round it.
    return step if ctx.uniform() > 0.2 else ("UP", "DOWN", "LEFT", "RIGHT")[ctx.integers(4)]


class PursuitHeuristic(Agent):
    """Closes in on the prey when it sees it; wanders otherwise."""

    def act(self, inbox: list[Message], ctx: Context) -> SwarmMove:
        return SwarmMove(action=_toward(ctx.observation, {"P"}, ctx))  # type: ignore[arg-type]


class SyncHeuristic(Agent):
    """A shared convention instead of talk: turn your light on in round 0, then switch every round."""

    def act(self, inbox: list[Message], ctx: Context) -> SwarmMove:
        view = ctx.view(GridView)
        light_on = dict(view.fields).get("light_on", True)
        if ctx.round == 0:
            return SwarmMove(
                action="STAY" if light_on else "SWITCH", message="all on now, then switch every round"
            )
        return SwarmMove(action="SWITCH")


_SPOTTED = re.compile(r"\b([FN]) at (-?\d+),(-?\d+)")
_MOVES = {(-1, 0): "UP", (1, 0): "DOWN", (0, -1): "LEFT", (0, 1): "RIGHT"}


class ForageHeuristic(Agent):
    """A foraging baseline that maps what it sees: it remembers the walls, the food and the nest
    (and tells the agents in view where they are: ``"F at 1,1"``), and walks the shortest path
    it knows, through unseen cells as if open, to the food, or to the nest when it carries;
    with nothing known it explores in a straight line, turning when blocked.

    Attributes:
        food, nest: A known cell of each (row, col), or (-1, -1).
        walls: The wall cells it has seen, as ``row * 1000 + col``.
        heading: Its exploring direction (an index of UP, DOWN, LEFT, RIGHT).
        last: Its cell last round (to notice it is blocked), or (-1, -1).
    """

    food: tuple[int, int] = (-1, -1)
    nest: tuple[int, int] = (-1, -1)
    walls: list[int] = Field(default_factory=list)
    heading: int = 0
    last: tuple[int, int] = (-1, -1)

    def act(self, inbox: list[Message], ctx: Context) -> SwarmMove:
        view = ctx.view(GridView)
        if view.escaped:
            return SwarmMove(action="STAY")
        said, walls = self._look(view, inbox)
        here = (view.row, view.col)
        carrying = bool(dict(view.fields).get("carrying_food", False))
        goal = self.nest if carrying else self.food
        step = _path_step(here, goal, walls) if goal != (-1, -1) else None
        if step is None or (here == self.last and ctx.uniform() < 0.5):  # blocked: try elsewhere
            if here == self.last:
                self.heading = ctx.integers(4)
            step = ("UP", "DOWN", "LEFT", "RIGHT")[self.heading]
        self.last = here
        return SwarmMove(action=step, message=said)  # type: ignore[arg-type]

    def _look(self, view: GridView, inbox: list[Message]) -> tuple[str | None, set[int]]:
        """Remember what the view shows and what others said; returns what to tell them (if
        news) and the walls known now."""
        half = len(view.cells) // 2
        news = []
        walls = set(self.walls)
        for i, row in enumerate(view.cells):
            for j, cell in enumerate(row):
                r, c = view.row - half + i, view.col - half + j
                if cell == "W":
                    walls.add(r * 1000 + c)
                elif cell == "F" and self.food == (-1, -1):
                    self.food = (r, c)
                    news.append(f"F at {r},{c}")
                elif cell == "N" and self.nest == (-1, -1):
                    self.nest = (r, c)
                    news.append(f"N at {r},{c}")
        for m in inbox:
            for kind, r, c in _SPOTTED.findall(m.text or ""):
                if kind == "F" and self.food == (-1, -1):
                    self.food = (int(r), int(c))
                elif kind == "N" and self.nest == (-1, -1):
                    self.nest = (int(r), int(c))
        self.walls = sorted(walls)
        return "; ".join(news) or None, walls


def _path_step(start: tuple[int, int], goal: tuple[int, int], walls: set[int]) -> str | None:
    """The first move of a shortest path from `start` to a cell next to `goal`, walls avoided,
    unknown cells taken as open (breadth-first, within 30 steps); None if none is known."""
    targets = {(goal[0] + dr, goal[1] + dc) for dr, dc in _MOVES}
    if start in targets:
        return None  # already next to it: the world acts on that
    first: dict[tuple[int, int], str] = {start: ""}
    frontier = [start]
    for _ in range(30):
        nxt = []
        for r, c in frontier:
            for (dr, dc), name in _MOVES.items():
                cell = (r + dr, c + dc)
                if cell in first or cell == goal or (cell[0] * 1000 + cell[1]) in walls:
                    continue
                if not (0 <= cell[0] < 1000 and 0 <= cell[1] < 1000):
                    continue
                first[cell] = first[(r, c)] or name
                if cell in targets:
                    return first[cell]
                nxt.append(cell)
        frontier = nxt
    return None


class FlockHeuristic(Agent):
    """Moves toward the agents it sees, so the swarm gathers."""

    def act(self, inbox: list[Message], ctx: Context) -> SwarmMove:
        view = ctx.view(GridView)
        others = {c for row in view.cells for c in row if c.lstrip("$").isdigit()}
        return SwarmMove(action=_toward(view, others, ctx))  # type: ignore[arg-type]


class TransportHeuristic(Agent):
    """Heads for the box and pushes it; a lone agent cannot move it."""

    def act(self, inbox: list[Message], ctx: Context) -> SwarmMove:
        view = ctx.view(GridView)
        if view.escaped:
            return SwarmMove(action="STAY")
        return SwarmMove(action=_toward(view, {"B", "*"}, ctx), message=None)  # type: ignore[arg-type]


def _step_toward(view: NDArray[np.uint8], target: NDArray[np.bool_], ctx: BatchContext) -> NDArray[np.int64]:
    """Per agent, a direction toward the nearest target cell of its view, else a random one."""
    n, k, _ = view.shape
    half = k // 2
    off = np.arange(k) - half
    closeness = (2 * k - np.abs(off)[:, None] - np.abs(off)[None, :]).astype(np.uint8).ravel()
    key = target.reshape(n, k * k) * closeness  # uint8: the nearest target has the largest key
    best = key.argmax(axis=1)
    seen = key[np.arange(n), best] > 0
    dr, dc = best // k - half, best % k - half
    vertical = (dr != 0) & ((np.abs(dr) >= np.abs(dc)) | (dc == 0))
    toward = np.where(vertical, np.where(dr > 0, 1, 0), np.where(dc > 0, 3, 2))
    wander = ctx.integers(4, draw=0)
    jitter = ctx.uniform(draw=1) < 0.2
    return np.where(seen & ~jitter, toward, wander)


class VectorForager(Agent):
    """`ForageHeuristic` for a million agents: one numpy pass over the block's views."""

    vectorised: ClassVar[bool | None] = True

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        seen = ctx.observation
        view = seen["view"]
        carrying = ~seen["alt"]
        want = np.where(carrying[:, None, None], view == CODE_NEST, view == CODE_FOOD)
        action = _step_toward(view, want, ctx)
        action = np.where(seen["escaped"], STAY, action)
        return ctx.broadcast("move", action.astype(np.float64))


class VectorFlocker(Agent):
    """`FlockHeuristic` for a million agents: step toward the agents in view."""

    vectorised: ClassVar[bool | None] = True

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        view = ctx.observation["view"]
        k = view.shape[1]
        others = view == CODE_AGENT
        others[:, k // 2, k // 2] = False
        action = _step_toward(view, others, ctx)
        return ctx.broadcast("move", action.astype(np.float64))
