"""SwarmBench's five tasks: layouts (bit-for-bit the reference's for the same seed), rules, scores.

Every layout draws from `LayoutRng(seed)` in the reference's call order
(reference/swarmbench.md §1.3), so seed 42 on 10x10 with 12 agents puts every
wall, food, box and agent where SwarmBench puts them (Appendix A.3 is a test).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from agents.errors import ConfigError
from agents.rng import counter_uniform
from protocols.swarm_grid.layout_rng import LayoutRng

LARGE = 4096
"""Above this many agents, placement is vectorised (see `_spread`)."""

__all__ = [
    "LARGE",
    "DESCRIPTIONS",
    "EMPTY",
    "FOOD",
    "NEST",
    "TASKS",
    "WALL",
    "Layout",
    "TaskName",
    "hungarian",
    "layout",
    "ring_target",
]

TaskName = Literal["pursuit", "synchronization", "foraging", "flocking", "transport"]
TASKS: tuple[str, ...] = ("pursuit", "synchronization", "foraging", "flocking", "transport")
EMPTY, WALL, FOOD, NEST = 0, 1, 2, 3

DESCRIPTIONS = {
    "pursuit": (
        "Pursuit: a prey P moves 2 steps each round, away from danger. Trap it: the prey is caught when "
        "all four cells around it (up, down, left, right) hold an agent or a wall (A/W on every side). "
        "Each capture scores 1; a new prey then appears elsewhere."
    ),
    "synchronization": (
        "Synchronization: every agent has a light, on or off (others show as id when on, $id when off). "
        "SWITCH toggles your light instead of moving. The team scores 1 each time all lights are equal, "
        "alternating: all on, then all off, then all on... Agree on when to switch."
    ),
    "foraging": (
        "Foraging: carry food from the food source F to the nest N. Standing next to F picks up one unit "
        "(you then show as id, otherwise $id); standing next to N delivers it and scores 1. Walls W form "
        "a maze between them."
    ),
    "flocking": (
        "Flocking: properly align in the map and form the following shape (A: an agent, .: empty), "
        "anywhere on the map:\n{shape}"
    ),
    "transport": (
        "Transport: locate the obstacle B. It needs force from at least five agents pushing in the same "
        "direction at once to move. Push it out through the gap in the wall it plugs, then leave the "
        "map yourselves through that gap, into *. The earlier each agent leaves, the more it scores."
    ),
}


@dataclass
class Layout:
    """A task's initial world.

    Attributes:
        static: (H, W) cell types: EMPTY, WALL, FOOD, NEST.
        pos: (n, 2) agent cells (row, col).
        alt: Agents shown in their alternate state (`a`): light off, or not carrying.
        prey: The prey's cell (Pursuit), or None.
        box: The box's cells (Transport), or None.
        variant: The Transport box variant index (the reference's).
    """

    static: NDArray[np.uint8]
    pos: NDArray[np.int64]
    alt: NDArray[np.bool_]
    prey: tuple[int, int] | None = None
    box: NDArray[np.int64] | None = None
    variant: int = -1
    rng: LayoutRng | None = None
    """The layout's generator after its draws: the reference's task draws respawns from it."""


def _walled(h: int, w: int) -> NDArray[np.uint8]:
    g = np.zeros((h, w), np.uint8)
    g[0, :] = g[-1, :] = g[:, 0] = g[:, -1] = WALL
    return g


def _spread(
    rng: LayoutRng,
    n: int,
    free: NDArray[np.bool_],
    cols: tuple[int, int],
    rows: tuple[int, int],
) -> NDArray[np.int64]:
    """SwarmBench's placement: per agent, draw a column then a row until the cell is free and unused."""
    pos = np.zeros((n, 2), np.int64)
    used = free.copy()
    area = np.zeros_like(used)
    area[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = True
    capacity = int((used & area).sum())
    if capacity < n:
        raise ConfigError(
            f"{n} agents do not fit: the placement area has {capacity} free cells; use fewer agents "
            "or a larger grid (size=(H, W))."
        )
    if n > LARGE:
        # Beyond SwarmBench's sizes the reference's draw-and-retry loop would take minutes:
        # a seeded random order of the free cells instead (counter-based, by cell index).
        cells = np.flatnonzero((used & area).ravel())
        keys = counter_uniform(rng.getrandbits(32), 0, cells, stream=7)
        chosen = cells[np.argsort(keys, kind="stable")[:n]]
        return np.stack([chosen // free.shape[1], chosen % free.shape[1]], axis=1).astype(np.int64)
    h, w = used.shape
    for i in range(n):
        while True:
            x = rng.randint(cols[0], cols[1])
            y = rng.randint(rows[0], rows[1])
            if y < h and x < w and used[y, x]:  # off the grid: drawn again (the reference fails)
                break
        used[y, x] = False
        pos[i] = (y, x)
    return pos


_REFERENCE_ORDER = (3, 1, 6, 2, 4, 0, 5, 7)
"""The reference's eight boxes, in its list's order (its `Transport.boxes`, which its
seeded ``choice`` indexes), as this module's (corner, orientation) shapes: its box k is
shape ``_REFERENCE_ORDER[k]`` here (a test builds each of its boxes and compares cells)."""


def _box_cells(variant: int, h: int, w: int) -> NDArray[np.int64]:
    """The 13 cells of Transport box `variant` (the reference's index): a 3x3 bulk inside, a
    1x4 plug in the wall gap.

    Shapes are corners (bottom-left, bottom-right, top-left, top-right) x plug in the
    vertical or the horizontal wall, in the order of `_REFERENCE_ORDER`.
    """
    corner, horizontal = divmod(_REFERENCE_ORDER[variant], 2)
    if horizontal:  # top-left base: plug in row 0, cols 0..3; bulk rows 1..3, cols 2..4
        cells = [(0, c) for c in range(4)] + [(r, c) for r in range(1, 4) for c in range(2, 5)]
    else:  # plug in col 0, rows 0..3; bulk cols 1..3, rows 2..4
        cells = [(r, 0) for r in range(4)] + [(r, c) for r in range(2, 5) for c in range(1, 4)]
    flip_rows = corner in (0, 1)  # bottom corners
    flip_cols = corner in (1, 3)  # right corners
    out = np.array(cells, np.int64)
    if flip_rows:
        out[:, 0] = h - 1 - out[:, 0]
    if flip_cols:
        out[:, 1] = w - 1 - out[:, 1]
    return out


def ring_target(n: int) -> NDArray[np.int64]:
    """Flocking's target: the border cells of a hollow square of side n // 4 + 1 (relative)."""
    s = n // 4 + 1
    return np.array(
        [(r, c) for r in range(s) for c in range(s) if r in (0, s - 1) or c in (0, s - 1)], np.int64
    )


def layout(task: str, h: int, w: int, n: int, seed: int, *, faithful_flocking_seed: bool = False) -> Layout:
    """The initial world of `task` on an hxw grid with `n` agents, drawn as the reference draws it."""
    if task not in TASKS:
        raise ConfigError(f"Unknown swarm task {task!r}; use one of: {', '.join(TASKS)}.")
    rng = LayoutRng(42 if task == "flocking" and faithful_flocking_seed else seed)
    static = _walled(h, w)
    alt = np.zeros(n, bool)
    interior = ((1, w - 2), (1, h - 2))
    if task == "pursuit":
        prey = (rng.randint(h // 2 + 1, h - 2), rng.randint(w // 2 + 1, w - 2))
        free = static == EMPTY
        free[prey] = False
        # The reference passes (H//2, W//2) as (columns, rows), and at least 5: on a grid under
        # 7x7 that range reaches the walls (and beyond), whose draws it rejects and draws again.
        pos = _spread(rng, n, free, (1, max(h // 2, 5)), (1, max(w // 2, 5)))
        return Layout(static, pos, alt, prey=prey, rng=rng)
    if task == "synchronization":
        alt = np.array([rng.randint(0, 1) == 0 for _ in range(n)], bool)  # 1: light on ('A')
        return Layout(static, _spread(rng, n, static == EMPTY, *interior), alt)
    if task == "foraging":
        fi, fj = rng.choice([1, h - 3]), rng.choice([1, w - 3])
        vertical = rng.randint(0, 1) == 1
        size = w if vertical else h
        walls = list(range(4, size - 4, 4))
        for k, p in enumerate(walls):
            length = h if vertical else w  # a vertical wall runs along the rows
            lo, hi = (0, length - -(-length // 3) + 1) if k % 2 == 0 else (length // 3, length)
            if vertical:
                static[lo:hi, p] = WALL
            else:
                static[p, lo:hi] = WALL
        ni, nj = h - 3 if fi == 1 else 1, w - 3 if fj == 1 else 1  # the opposite corner
        if len(walls) % 2:
            # An odd number of walls: food and nest on the same side, the maze between them.
            # Both take the first row (vertical walls) or column, as the reference's seeds
            # 42 and 27 show.
            if vertical:
                fi = ni = min(fi, ni)
            else:
                fj = nj = min(fj, nj)
        static[ni : ni + 2, nj : nj + 2] = NEST
        static[fi : fi + 2, fj : fj + 2] = FOOD  # over the nest where they overlap (5x5), as there
        alt = np.ones(n, bool)  # not carrying
        return Layout(static, _spread(rng, n, static == EMPTY, *interior), alt)
    if task == "flocking":
        return Layout(static, _spread(rng, n, static == EMPTY, *interior), alt)
    variant = rng.choice(list(range(8)))
    box = _box_cells(variant, h, w)
    static[box[:, 0], box[:, 1]] = EMPTY  # the plug fills the gap in the wall
    free = static == EMPTY
    free[box[:, 0], box[:, 1]] = False
    return Layout(static, _spread(rng, n, free, *interior), alt, box=box, variant=variant)


def hungarian(cost: NDArray[np.float64]) -> float:
    """Minimum total cost of assigning every row to a distinct column (rows <= columns).

    The O(n^2 m) shortest augmenting path method with potentials (Kuhn-Munkres),
    for SwarmBench's Flocking distance (a dozen agents).
    """
    n, m = cost.shape
    inf = float("inf")
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, np.int64)  # p[j]: row matched to column j (1-based; 0 none)
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            cur = cost[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = int(way[j0])
            p[j0] = p[j1]
            j0 = j1
    total = 0.0
    for j in range(1, m + 1):
        if p[j]:
            total += cost[p[j] - 1, j - 1]
    return total
