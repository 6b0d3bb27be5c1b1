"""The swarm grid's world: walls, agents, prey, box; SwarmBench's physics, tasks and views.

One `GridWorld` is replicated on every host. Each round it applies every
agent's move (one ``move`` action per agent, its value an action code), resolves
them with the push physics, runs the task's update (prey, lights, food, escape,
formation), then delivers the round's ``say`` messages to the agents within view
of the speaker (Chebyshev distance <= k // 2, positions after the moves).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from agents.batch import MessageBatch
from agents.errors import AgentError
from protocols.swarm_grid.layout_rng import LayoutRng
from protocols.swarm_grid.physics import (
    DIRS,
    STAY,
    SWITCH,
    resolve_exact,
    resolve_fast,
)
from protocols.swarm_grid.tasks import DESCRIPTIONS, EMPTY, FOOD, NEST, WALL, Layout, hungarian, ring_target
from protocols.world import Observation, World

if TYPE_CHECKING:
    from agents.message import Message

__all__ = ["ACTIONS", "GridView", "GridWorld"]

ACTIONS: tuple[str, ...] = ("UP", "DOWN", "LEFT", "RIGHT", "STAY", "SWITCH")
_CHARS = {EMPTY: ".", WALL: "W", FOOD: "F", NEST: "N"}
# Cell codes in vectorised observations.
CODE_EMPTY, CODE_WALL, CODE_FOOD, CODE_NEST, CODE_AGENT, CODE_PREY, CODE_BOX, CODE_OUTSIDE = range(8)
_PREY_STEPS = ((0, 1), (0, -1), (1, 0), (-1, 0))  # RIGHT, LEFT, DOWN, UP: the reference's order


@dataclass(frozen=True)
class GridView(Observation):
    """What one agent sees: its kxk window, its task fields, the round.

    Attributes:
        agent: The agent's id.
        round: The current round (0 first).
        row, col: Its cell (also implied by the axis labels of the view).
        cells: The window, rows of strings as SwarmBench shows them: ``W`` wall,
            ``.`` empty, ``*`` outside the map, ``Y`` yourself, an id for another
            agent (``$id`` in its alternate state), ``P`` prey, ``B`` box,
            ``F`` food, ``N`` nest.
        fields: The task's own observation (``score``, ``light_on``, ``carrying_food``).
        task: The task's description.
        escaped: Whether the agent has left the map (Transport).
    """

    agent: int
    round: int
    row: int
    col: int
    cells: tuple[tuple[str, ...], ...]
    fields: tuple[tuple[str, Any], ...]
    task: str
    escaped: bool = False
    past: tuple[str, ...] = ()
    """Earlier views (newest first, up to 4), rendered as `view_text`: SwarmBench shows 5 steps."""

    def render_inbox(self, messages: Sequence[Message]) -> str:
        """What the agent heard, as SwarmBench shows it: the texts only, no sender."""
        said = [m.text for m in messages if m.kind == "say" and m.text]
        if not said:
            return "Message you received: none."
        return "Message you received:\n" + "\n".join(f'Message: "{t}"' for t in said)

    def view_text(self) -> str:
        """The window exactly as SwarmBench renders it (global axis labels, width-4 cells)."""
        k = len(self.cells)
        half = k // 2
        cols = range(self.col - half, self.col + half + 1)
        lines = ["   " + " ".join(f"{c:>3}" for c in cols)]
        for i, row in enumerate(self.cells):
            lines.append(f"{self.row - half + i:>3}  " + "".join(f"{cell:<4}" for cell in row))
        return "\n".join(lines)

    def render(self) -> str:
        fields = "\n".join(f"{k}: {v}" for k, v in self.fields)
        # As SwarmBench shows it: always "5-step" (its memory), each step's window followed by a
        # blank line, however many steps there are yet.
        steps = [("Current Step", self.view_text())]
        steps += [(f"{k + 1} Steps Before", text) for k, text in enumerate(self.past)]
        vision = "\n".join(f"{name}:\n{text}\n" for name, text in steps)
        return (
            f"You are Agent Agent_{self.agent}, operating in a multi-agent environment.\n"
            f"Task description:\n{self.task}\n\nRound: {self.round}\n\n"
            f"Your recent 5-step vision (not the entire map):\n{vision}\n\n"
            f"Your current observation:\n{fields}\n\n"
            "Symbols: numbers are agent ids (do not mistake column/row numbers for ids); Y is you; W wall; "
            "B pushable obstacle (needs force from at least 5 agents pushing the same way); . empty; "
            "* outside the map.\n"
            "Actions: UP, DOWN, LEFT, RIGHT, STAY"
            + (", SWITCH" if any(name == "light_on" for name, _ in self.fields) else "")
            + ". "
            "You weigh 1 and push with force 2; a body moves when the force on it is at least its "
            "weight; force passes through touching bodies; you cannot pull. Messages you send reach "
            "every agent within your view next round, without your name, cut at 120 characters."
        )


class GridWorld(World):
    """SwarmBench's world for one task; see the module docstring.

    Args:
        task: pursuit, synchronization, foraging, flocking or transport.
        start: The task's initial layout.
        view: Window size k (odd).
        max_round: Rounds in an episode (Transport scores an exit at round r as (max_round - r) / max_round).
        physics: ``exact`` (the reference's push physics) or ``fast`` (vectorised, no pushing).
        self_echo: Whether a speaker hears its own message (the reference's behaviour).
        faithful_prey: Compare the prey's options with the cell left of it, as the reference does.
        faithful_pickup: Foraging's pick-up and delivery with the reference's swapped bounds
            (neighbours in rows >= the width never count).
        seed: The run's seed (the prey's respawn draws, when the layout brings no generator).
    """

    apply_once = True  # its state is its arrays; observe and deliver only read them

    def __init__(
        self,
        task: str,
        start: Layout,
        *,
        view: int,
        max_round: int,
        physics: str,
        self_echo: bool,
        faithful_prey: bool,
        seed: int,
        faithful_pickup: bool = False,
    ) -> None:
        self.task = task
        self.static = start.static
        self.h, self.w = start.static.shape
        self.pos = start.pos.copy()
        self.alt = start.alt.copy()
        self.n = len(self.pos)
        self.escaped = np.zeros(self.n, bool)
        self.prey = None if start.prey is None else np.array([start.prey], np.int64)
        self.prey_static = False
        self.box = start.box
        self.variant = start.variant
        self.view = view
        self.max_round = max_round
        self.physics = physics
        self.self_echo = self_echo
        self.faithful_prey = faithful_prey
        self.faithful_pickup = faithful_pickup
        # The prey's respawns continue the layout's own draws, as the reference's task does
        # (replicated on every host: each holds a copy of the same generator).
        self.rng = start.rng if start.rng is not None else LayoutRng(seed)
        self.score = 0.0
        self.done = False
        self.last_synced = -1
        self.distance = np.zeros(self.n, np.int64)
        self.visited = np.zeros((self.h, self.w), bool)
        self.visited[self.pos[:, 0], self.pos[:, 1]] = True
        self.actions = np.full(self.n, STAY, np.int64)
        self.said: list[str] = []
        self.pushes = 0
        self.kept_pairs = 0
        self.history: deque[tuple[NDArray[np.str_], NDArray[np.int64]]] = deque(maxlen=4)
        self._seen: tuple[int, NDArray[np.str_]] | None = None
        self.shape = ring_target(self.n) if task == "flocking" else None
        self.d0 = self._formation_distance() if task == "flocking" else 0.0
        self.best = 0.0

    # -- what agents see --

    def _chars(self) -> NDArray[np.str_]:
        # Wide enough for "$" and any agent id (np.vectorize would size it to one character).
        g: NDArray[np.str_] = np.empty(self.static.shape, dtype=f"<U{len(str(self.n)) + 1}")
        for code, char in _CHARS.items():
            g[self.static == code] = char
        if self.box is not None:
            inside = self._inside(self.box)
            g[self.box[inside, 0], self.box[inside, 1]] = "B"
        if self.prey is not None:
            g[self.prey[0, 0], self.prey[0, 1]] = "P"
        for i in np.flatnonzero(~self.escaped):
            g[self.pos[i, 0], self.pos[i, 1]] = f"${i}" if self.alt[i] else str(i)
        return g

    def _inside(self, cells: NDArray[np.int64]) -> NDArray[np.bool_]:
        rows, cols = cells[:, 0], cells[:, 1]
        inside: NDArray[np.bool_] = (rows >= 0) & (rows < self.h) & (cols >= 0) & (cols < self.w)
        return inside

    def _fields(self, i: int) -> tuple[tuple[str, Any], ...]:
        if self.task == "pursuit":
            return (("score", int(self.score)),)
        if self.task == "synchronization":
            return (("light_on", not bool(self.alt[i])),)
        if self.task == "foraging":
            return (("carrying_food", not bool(self.alt[i])),)
        return ()

    def _description(self) -> str:
        text = DESCRIPTIONS[self.task]
        if self.shape is not None:
            s = int(self.shape[:, 0].max()) + 1
            grid = [["." for _ in range(s)] for _ in range(s)]
            for r, c in self.shape:
                grid[r][c] = "A"
            text = text.format(shape="\n".join(" ".join(row) for row in grid))
        return text

    def _window(self, chars: NDArray[np.str_], r: int, c: int) -> tuple[tuple[str, ...], ...]:
        half = self.view // 2
        rows = []
        for i in range(r - half, r + half + 1):
            row = []
            for j in range(c - half, c + half + 1):
                if (i, j) == (r, c):
                    row.append("Y")
                elif 0 <= i < self.h and 0 <= j < self.w:
                    row.append(str(chars[i, j]))
                else:
                    row.append("*")
            rows.append(tuple(row))
        return tuple(rows)

    def observe(self, agent: int, round: int) -> GridView:
        if self._seen is None or self._seen[0] != round:
            self._seen = (round, self._chars())  # one rendering of the grid per round
        chars = self._seen[1]
        r, c = (int(x) for x in self.pos[agent])
        past = []
        for old_chars, old_pos in reversed(self.history):
            pr, pc = (int(x) for x in old_pos[agent])
            view = GridView(agent, round, pr, pc, self._window(old_chars, pr, pc), (), "")
            past.append(view.view_text())
        return GridView(
            agent,
            round,
            r,
            c,
            self._window(chars, r, c),
            self._fields(agent),
            self._description(),
            bool(self.escaped[agent]),
            tuple(past),
        )

    def codes(self) -> NDArray[np.uint8]:
        """The grid as cell codes (CODE_*), agents included."""
        g = self.static.copy()
        if self.box is not None:
            inside = self._inside(self.box)
            g[self.box[inside, 0], self.box[inside, 1]] = CODE_BOX
        if self.prey is not None:
            g[self.prey[0, 0], self.prey[0, 1]] = CODE_PREY
        on = ~self.escaped
        g[self.pos[on, 0], self.pos[on, 1]] = CODE_AGENT
        return g

    def observe_batch(self, ids: NDArray[np.int64], round: int) -> dict[str, NDArray[Any]]:
        """Per agent: ``view`` (k x k cell codes, CODE_OUTSIDE off the map), ``pos``, ``alt``."""
        k, half = self.view, self.view // 2
        padded = np.pad(self.codes(), half, constant_values=CODE_OUTSIDE)
        pos = self.pos[ids]
        escaped = self.escaped[ids]
        # k*k gathers of one cell per agent from the flat padded grid: cheaper than
        # fancy-indexing a strided window view.
        wp = padded.shape[1]
        flat = padded.ravel()
        corner = np.where(escaped, 0, pos[:, 0] * wp + pos[:, 1]).astype(np.intp)
        view = np.empty((len(ids), k, k), np.uint8)
        for i in range(k):
            for j in range(k):
                view[:, i, j] = flat[corner + (i * wp + j)]
        if escaped.any():
            view[escaped] = CODE_OUTSIDE
        return {"view": view, "pos": pos, "alt": self.alt[ids], "escaped": escaped}

    # -- the round's update --

    def apply(self, actions: MessageBatch, round: int, kinds: tuple[str, ...]) -> None:
        if self.physics == "exact":  # SwarmBench's agents see their last 5 views (small worlds only)
            self.history.append((self._chars(), self.pos.copy()))
        self._seen = None
        intents = np.full(self.n, STAY, np.int64)
        moves = actions.kind == kinds.index("move")
        senders, values = actions.sender[moves], actions.value[moves]
        if len(senders):
            self._check_actions(senders, values, round)
            intents[senders] = values.astype(np.int64)
        intents[self.escaped] = STAY
        before = self.pos.copy()
        if self.physics == "exact":
            self._physics_exact(intents)
        else:
            self.pos = resolve_fast(self.pos, intents, ~self.escaped, self.static != EMPTY)
        self.actions = np.where(self.escaped, -1, intents)
        self._track(before, intents)
        self._task_update(intents, round)

    def _check_actions(self, senders: NDArray[np.int64], values: NDArray[np.float64], round: int) -> None:
        valid = len(ACTIONS) if self.task == "synchronization" else len(ACTIONS) - 1
        ok = (values == np.round(values)) & (values >= 0) & (values < valid)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            allowed = ", ".join(f"{a}={k}" for k, a in enumerate(ACTIONS[:valid]))
            raise AgentError(
                f"Agent {senders[i]} took move {float(values[i])!r} in round {round}, which the "
                f"{self.task} task does not have; its actions are {allowed} (send "
                "SwarmMove(action=...), or a move message whose value is one of these codes)."
            )
        same = np.diff(senders) == 0  # actions come in (sender, seq) order
        if same.any():
            dup = int(senders[np.flatnonzero(same)[0]])
            raise AgentError(
                f"Agent {dup} took more than one move in round {round}; send one move per round."
            )

    def _physics_exact(self, intents: NDArray[np.int64]) -> None:
        on = np.flatnonzero(~self.escaped)
        bodies = [self.pos[i : i + 1] for i in on]
        masses = [1] * len(on)
        static = [False] * len(on)
        body_intents = [int(intents[i]) for i in on]
        if self.prey is not None:
            bodies.append(self.prey)
            masses.append(1)
            static.append(self.prey_static)
            body_intents.append(-1)
        # A box wholly off the map makes no contact (the reference removes it).
        box = self.box if self.box is not None and self._inside(self.box).any() else None
        if box is not None:
            bodies.append(box)
            masses.append(5)
            static.append(False)
            body_intents.append(-1)
        moved, _ = resolve_exact(bodies, masses, static, body_intents, self.static != EMPTY)
        for k, i in enumerate(on):
            self.pos[i] = moved[k][0]
        extra = len(on)
        if self.prey is not None:
            self.prey = moved[extra]
            extra += 1
        if box is not None:
            self.box = moved[extra]

    def _track(self, before: NDArray[np.int64], intents: NDArray[np.int64]) -> None:
        on = ~self.escaped
        step = np.abs(self.pos - before).sum(axis=1)
        self.distance += np.where(on, step, 0)
        inside = self._inside(self.pos) & on
        self.visited[self.pos[inside, 0], self.pos[inside, 1]] = True
        self.kept_pairs = _adjacent_pairs_kept(before, self.pos, on, self.h, self.w)
        self.pushes = _push_events(before, self.pos, intents, on, self.h, self.w)

    def _task_update(self, intents: NDArray[np.int64], round: int) -> None:
        if self.task == "pursuit":
            self._pursuit()
        elif self.task == "synchronization":
            self.alt ^= intents == SWITCH
            on = int((~self.alt & ~self.escaped).sum())
            if on in (0, self.n) and on != self.last_synced:
                self.score += 1
                self.last_synced = on
        elif self.task == "foraging":
            near_food = self._touches(FOOD, self.faithful_pickup)
            self.alt &= ~near_food  # picked up: carrying
            near_nest = self._touches(NEST, self.faithful_pickup)
            self.score += float((near_nest & ~self.alt).sum())
            self.alt |= near_nest
        elif self.task == "flocking":
            d = self._formation_distance()
            self.best = max(self.best, self.d0 - d)
            self.score = self.best
            self.done = d == 0
        # Any task: an agent off the map has left it (only Transport has a gap in its wall).
        out = ~self._inside(self.pos) & ~self.escaped
        if out.any():
            self.score += out.sum() * (self.max_round - round) / self.max_round
            self.escaped |= out
            self.done = bool(self.escaped.all())

    def _touches(self, kind: int, swapped_bounds: bool = False) -> NDArray[np.bool_]:
        """Agents with a cell of `kind` up, down, left or right of them.

        Args:
            swapped_bounds: The reference's Foraging check, which tests a neighbour's row
                against the width and its column against the height: on a grid taller than
                wide, neighbours in rows >= W never count (the default reads them right).
        """
        cells = self.static == kind
        if swapped_bounds:
            cells = cells.copy()
            cells[self.w :, :] = False
            cells[:, self.h :] = False
        padded = np.pad(cells, 1)
        r, c = self.pos[:, 0] + 1, self.pos[:, 1] + 1
        inside = (r >= 1) & (r <= self.h) & (c >= 1) & (c <= self.w) & ~self.escaped
        r, c = np.where(inside, r, 0), np.where(inside, c, 0)
        hit: NDArray[np.bool_] = padded[r - 1, c] | padded[r + 1, c] | padded[r, c - 1] | padded[r, c + 1]
        out: NDArray[np.bool_] = hit & inside
        return out

    # -- pursuit --

    def _danger(self, chars: NDArray[np.str_], i: int, j: int) -> float:
        win = chars[max(i - 4, 0) : i + 4, max(j - 4, 0) : j + 4]
        agents = np.char.isdigit(np.char.lstrip(win, "$")).sum()
        return float(agents + 0.9 * (win == "W").sum())

    def _pursuit(self) -> None:
        assert self.prey is not None
        chars = self._chars()
        i, j = (int(x) for x in self.prey[0])
        if all(chars[i + dr, j + dc] != "." for dr, dc in _PREY_STEPS):
            self.score += 1
            chars[i, j] = "."
            best, spot, found = float("inf"), (i, j), 0
            while found < self.h * self.w:
                r, c = self.rng.randint(1, self.h - 2), self.rng.randint(1, self.w - 2)
                if chars[r, c] != ".":
                    continue
                found += 1
                d = self._danger(chars, r, c)
                if d < best:
                    best, spot = d, (r, c)
            self.prey = np.array([spot], np.int64)
            self.prey_static = True  # the reference's respawned prey can no longer be pushed
            return
        base = self._danger(chars, i, j - 1) if self.faithful_prey else self._danger(chars, i, j)
        best_d, target = base, None
        for s1 in _PREY_STEPS:
            mid = (i + s1[0], j + s1[1])
            if chars[mid] != ".":
                continue
            for s2 in _PREY_STEPS:
                end = (mid[0] + s2[0], mid[1] + s2[1])
                corner = (i + s2[0], j + s2[1])  # an L-shaped move needs both corners free
                if end == (i, j) or chars[end] != "." or chars[corner] != ".":
                    continue
                d = self._danger(chars, *end)
                if d < best_d:
                    best_d, target = d, end
        if target is not None:
            self.prey = np.array([target], np.int64)

    # -- flocking --

    def _formation_distance(self) -> float:
        assert self.shape is not None
        agents = self.pos[~self.escaped]
        tgt = self.shape
        best = float("inf")
        shifts = {(int(a[0] - t[0]), int(a[1] - t[1])) for a in agents for t in tgt}
        for dx, dy in sorted(shifts):
            cost = np.abs(agents[None, :, 0] - tgt[:, None, 0] - dx) + np.abs(
                agents[None, :, 1] - tgt[:, None, 1] - dy
            )
            if cost.min(axis=1).sum() >= best:  # a lower bound: cannot beat the best
                continue
            best = min(best, hungarian(cost.astype(np.float64)))
        return best

    # -- messages and metrics --

    def deliver(self, messages: MessageBatch, lo: int, hi: int, round: int) -> MessageBatch:
        if len(messages) == 0:
            self.said = []
            return MessageBatch.empty()
        half = self.view // 2
        self.said = [t for t in (messages.text.to_pylist() if messages.text is not None else []) if t]
        spk = self.pos[messages.sender]
        mine = np.arange(lo, hi)
        mine = mine[~self.escaped[lo:hi]]
        where = self.pos[mine]
        close = (np.abs(spk[:, None, 0] - where[None, :, 0]) <= half) & (
            np.abs(spk[:, None, 1] - where[None, :, 1]) <= half
        )
        if not self.self_echo:
            close &= messages.sender[:, None] != mine[None, :]
        m_idx, a_idx = np.nonzero(close)  # row-major: (sender, seq) order, then receiver
        return messages.take(m_idx).with_receivers(mine[a_idx])

    def metrics(self, round: int) -> dict[str, float]:
        acts = self.actions[self.actions >= 0]
        total = len(acts)
        moves = acts[acts < STAY]
        out: dict[str, float] = {"score": float(self.score), "done": float(self.done)}
        if total:
            counts = np.bincount(moves, minlength=4)[:4]
            p = counts[counts > 0] / max(len(moves), 1)
            out["directional_entropy"] = float(-(p * np.log2(p)).sum()) if len(moves) else 0.0
            out["stillness"] = float((acts == STAY).sum() / total)
            basic = acts[acts <= STAY]
            out["dominant_action"] = float(np.bincount(basic, minlength=5).max() / max(len(basic), 1))
            vec = np.zeros((len(basic), 2))
            vec[basic < STAY] = DIRS[basic[basic < STAY]][:, ::-1]  # (x, y) = (col, row)
            out["polarization"] = float(np.linalg.norm(vec.mean(axis=0))) if len(basic) else 0.0
        out["exploration"] = float(self.visited.sum())
        out["moving_distance"] = float(self.distance.mean())
        out["local_structure"] = float(self.kept_pairs)
        out["push_events"] = float(self.pushes)
        out["escaped"] = float(self.escaped.sum())
        said = self.said
        out["messages_said"] = float(len(said))
        if said:
            chars = "".join(said)
            out["message_length"] = float(np.mean([len(t) for t in said]))
            out["question_share"] = float(np.mean(["?" in t for t in said]))
            out["digit_share"] = float(sum(ch.isdigit() for ch in chars) / max(len(chars), 1))
        return out

    def state_columns(self, ids: NDArray[np.int64]) -> dict[str, NDArray[np.float64]]:
        """Per agent: row, col, distance moved so far, alternate state, escaped (logged in ``states``)."""
        return {
            "row": self.pos[ids, 0].astype(np.float64),
            "col": self.pos[ids, 1].astype(np.float64),
            "distance": self.distance[ids].astype(np.float64),
            "alt": self.alt[ids].astype(np.float64),
            "escaped": self.escaped[ids].astype(np.float64),
        }

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {
            "task": self.task,
            "size": [self.h, self.w],
            "agents": self.n,
            "view": self.view,
            "physics": self.physics,
            "self_echo": self.self_echo,
            "faithful_prey": self.faithful_prey,
            **({"faithful_pickup": True} if self.faithful_pickup else {}),
            "information_homogeneity": "not computed: it needs a sentence embedding model "
            "(all-mpnet-base-v2 in SwarmBench), which is not installed",
        }
        if self.variant >= 0:
            out["box_variant"] = self.variant
        if self.task == "flocking":
            out["initial_distance"] = self.d0
        return out


def _adjacent_pairs_kept(
    before: NDArray[np.int64], after: NDArray[np.int64], on: NDArray[np.bool_], h: int, w: int
) -> int:
    """Unordered agent pairs at Manhattan distance 1 both before and after the round."""

    def pairs(pos: NDArray[np.int64]) -> set[tuple[int, int]]:
        idx = np.flatnonzero(on)
        cell = {(int(pos[i, 0]), int(pos[i, 1])): int(i) for i in idx}
        out = set()
        for (r, c), i in cell.items():
            for dr, dc in ((0, 1), (1, 0)):
                j = cell.get((r + dr, c + dc))
                if j is not None:
                    out.add((min(i, j), max(i, j)))
        return out

    if on.sum() > 4096:  # large swarms: not computed (Python sets per agent)
        return -1
    return len(pairs(before) & pairs(after))


def _push_events(
    before: NDArray[np.int64],
    after: NDArray[np.int64],
    intents: NDArray[np.int64],
    on: NDArray[np.bool_],
    h: int,
    w: int,
) -> int:
    """Ordered pairs (A, B): A moved into B's old cell, and B moved on by A's direction."""
    movers = np.flatnonzero(on & (intents < STAY))
    if len(movers) == 0 or on.sum() > 4096:
        return 0 if len(movers) == 0 else -1
    cell = {(int(before[i, 0]), int(before[i, 1])): int(i) for i in np.flatnonzero(on)}
    n = 0
    for a in movers:
        d = DIRS[intents[a]]
        b = cell.get((int(before[a, 0] + d[0]), int(before[a, 1] + d[1])))
        if b is None or b == a:
            continue
        if (after[a] == before[b]).all() and (after[b] == before[b] + d).all():
            n += 1
    return n
