"""Simultaneous moves resolved with SwarmBench's push physics, exactly or vectorised.

SwarmBench (reference/swarmbench.md §1.5) resolves all intents of a round in four
phases, UP, DOWN, LEFT, RIGHT. In a phase every body may move one cell in that
direction: an agent that intends it pushes with force 2, one that intends the
opposite resists (its force turns into extra mass), everything else is passive.
Bodies in contact ahead must move too, and force passes down a chain of
contacts minus each body's mass. The reference solves a small MILP per phase
("move as many bodies as possible"); `resolve_exact` solves the same problem
exactly: a moving set is the downstream closure of some pushers, and it is
feasible when the pushers' surplus can cover every body's mass through the
contacts (a transshipment problem, checked by max-flow). It enumerates the
pushers of each connected group of bodies, so it is meant for SwarmBench's sizes.

`resolve_fast` is the vectorised rule for large worlds (agents only): a mover
advances when the cell ahead is free, or held by a mover of the same phase that
advances (a train). It never pushes a passive or resisting body, so it agrees
with the exact physics on every case without a push (tested), and differs where
the exact physics would shove an idle agent aside.
"""

from __future__ import annotations

from itertools import combinations

import networkx as nx
import numpy as np
from numpy.typing import NDArray

__all__ = ["DIRS", "DOWN", "LEFT", "PHASES", "RIGHT", "STAY", "SWITCH", "UP", "resolve_exact", "resolve_fast"]

UP, DOWN, LEFT, RIGHT, STAY, SWITCH = 0, 1, 2, 3, 4, 5
DIRS = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)], dtype=np.int64)
PHASES = (UP, DOWN, LEFT, RIGHT)
_OPPOSITE = {UP: DOWN, DOWN: UP, LEFT: RIGHT, RIGHT: LEFT}


def resolve_exact(
    bodies: list[NDArray[np.int64]],
    masses: list[int],
    static: list[bool],
    intents: list[int],
    blocked: NDArray[np.bool_],
) -> tuple[list[NDArray[np.int64]], bool]:
    """Move `bodies` by SwarmBench's phase-ordered push physics.

    Args:
        bodies: Each body's cells as (k, 2) arrays of (row, col); updated copies are returned.
        masses: Each body's mass (agents 1, the Transport box 5).
        static: Bodies that never move (a respawned prey).
        intents: Each body's intended direction (UP..RIGHT), or STAY/SWITCH/-1 for none.
        blocked: (H, W) cells that never move (walls, food, nest). Cells off the grid are free.

    Returns:
        The bodies' new cells, and whether any passive or resisting body was pushed.
    """
    cells = [b.copy() for b in bodies]
    pushed = False
    h, w = blocked.shape
    for d in PHASES:
        dr, dc = DIRS[d]
        occ: dict[tuple[int, int], int] = {}
        for b, cs in enumerate(cells):
            for r, c in cs:
                occ[(int(r), int(c))] = b
        g = nx.DiGraph()
        g.add_nodes_from(range(len(cells)))
        fixed = list(static)
        for b, cs in enumerate(cells):
            for r, c in cs:
                t = (int(r + dr), int(c + dc))
                other = occ.get(t)
                if other is not None and other != b:
                    g.add_edge(b, other)
                elif other is None and 0 <= t[0] < h and 0 <= t[1] < w and blocked[t]:
                    fixed[b] = True  # against a wall: it, and whatever pushes it, cannot move
        force = {
            b: 2 if intents[b] == d else -2 if intents[b] == _OPPOSITE[d] else 0 for b in range(len(cells))
        }
        moving = _solve_phase(g, force, masses, fixed)
        for b in moving:
            if force[b] <= 0:
                pushed = True
            cells[b] = cells[b] + DIRS[d]
    return cells, pushed


def _solve_phase(g: nx.DiGraph, force: dict[int, int], masses: list[int], fixed_body: list[bool]) -> set[int]:
    """The bodies that move in one phase: the largest feasible downstream-closed set.

    The union of two feasible downstream-closed sets is feasible (the flows of
    both, each kept on its own part, cover every member), so the largest set is
    unique. A group of bodies in single file (agents in a row) is solved in
    linear time; a group around a multi-cell body (the box) by enumerating its
    pushers.
    """
    cond = nx.condensation(g)  # bodies in a cycle of contacts move together
    groups: dict[int, list[int]] = {}
    for node, comp in cond.graph["mapping"].items():
        groups.setdefault(comp, []).append(node)
    mass: dict[int, int] = {}
    push: dict[int, int] = {}
    fixed: dict[int, bool] = {}
    for comp, nodes in groups.items():
        f = sum(force[n] for n in nodes)
        m = sum(masses[n] for n in nodes)
        if f < 0:  # resisting: the force against the phase becomes mass
            m, f = m - f, 0
        mass[comp], push[comp] = m, f
        fixed[comp] = any(fixed_body[n] for n in nodes)
    # Whatever pushes a fixed body is fixed too.
    for comp in [c for c in cond if fixed[c]]:
        for a in nx.ancestors(cond, comp):
            fixed[a] = True
    moving: set[int] = set()
    for part in nx.weakly_connected_components(cond):
        pushers = sorted(c for c in part if push[c] > 0 and not fixed[c])
        if not pushers:
            continue
        if all(cond.in_degree(c) <= 1 and cond.out_degree(c) <= 1 for c in part):
            best = _solve_chain(cond, part, push, mass, fixed)
        else:
            best = _solve_by_enumeration(cond, part, pushers, push, mass, fixed)
        for comp in best:
            moving.update(groups[comp])
    return moving


def _solve_chain(
    cond: nx.DiGraph, part: set[int], push: dict[int, int], mass: dict[int, int], fixed: dict[int, bool]
) -> set[int]:
    """Bodies in single file: the longest feasible tail (whose running surplus never goes negative)."""
    head = next(c for c in part if cond.in_degree(c) == 0)
    order = [head]
    while cond.out_degree(order[-1]):
        order.append(next(iter(cond.successors(order[-1]))))
    for i, c in enumerate(order):
        if push[c] <= 0 or fixed[c]:
            continue
        total, ok = 0, True
        for x in order[i:]:
            total += push[x] - mass[x]
            if fixed[x] or total < 0:
                ok = False
                break
        if ok:
            return set(order[i:])
    return set()


def _solve_by_enumeration(
    cond: nx.DiGraph,
    part: set[int],
    pushers: list[int],
    push: dict[int, int],
    mass: dict[int, int],
    fixed: dict[int, bool],
) -> set[int]:
    best: set[int] = set()
    for size in range(len(pushers), 0, -1):
        if len(best) >= len(part):
            break
        for chosen in combinations(pushers, size):
            s = set(chosen)
            for c in chosen:
                s |= nx.descendants(cond, c)
            if len(s) <= len(best) or any(fixed[c] for c in s):
                continue
            if _feasible(cond, s, push, mass):
                best = s
    return best


def _feasible(cond: nx.DiGraph, s: set[int], push: dict[int, int], mass: dict[int, int]) -> bool:
    """Whether the pushers' surplus in `s` can cover every member's mass through contacts."""
    supply = {c: push[c] - mass[c] for c in s}
    need = -sum(v for v in supply.values() if v < 0)
    if need == 0:
        return True
    if sum(v for v in supply.values() if v > 0) < need:
        return False
    flow = nx.DiGraph()
    big = need + 1
    for c, v in supply.items():
        if v > 0:
            flow.add_edge("src", c, capacity=v)
        elif v < 0:
            flow.add_edge(c, "dst", capacity=-v)
    for u, v in cond.subgraph(s).edges():
        flow.add_edge(u, v, capacity=big)
    if "src" not in flow or "dst" not in flow:
        return False
    return bool(nx.maximum_flow_value(flow, "src", "dst") >= need)


def resolve_fast(
    pos: NDArray[np.int64], intents: NDArray[np.int64], active: NDArray[np.bool_], blocked: NDArray[np.bool_]
) -> NDArray[np.int64]:
    """Vectorised phase-ordered moves for agents only (no pushing of passive bodies).

    Args:
        pos: (n, 2) agent cells; a new array is returned.
        intents: Per agent UP..RIGHT, or anything else for no move.
        active: Agents on the grid (escaped ones take no part).
        blocked: (H, W) static cells.
    """
    pos = pos.copy()
    h, w = blocked.shape
    occ = np.full(h * w, -1, np.int64)
    on = np.flatnonzero(active)
    occ[pos[on, 0] * w + pos[on, 1]] = on
    for d in PHASES:
        movers = np.flatnonzero(active & (intents == d))
        if len(movers) == 0:
            continue
        tgt = pos[movers] + DIRS[d]
        inside = (tgt[:, 0] >= 0) & (tgt[:, 0] < h) & (tgt[:, 1] >= 0) & (tgt[:, 1] < w)
        flat = np.where(inside, tgt[:, 0] * w + tgt[:, 1], 0)
        ahead = np.where(inside, occ[flat], -1)
        wall = inside & blocked.ravel()[flat]
        # 1: moves, 0: blocked, 2: waits on the mover ahead of it (a train)
        slot = np.full(len(pos), -1, np.int64)
        slot[movers] = np.arange(len(movers))
        nxt = np.where(ahead >= 0, slot[np.maximum(ahead, 0)], -1)
        state = np.where(wall, 0, np.where(ahead < 0, 1, np.where(nxt >= 0, 2, 0)))
        ptr = np.where(state == 2, nxt, np.arange(len(movers)))
        while np.any(state == 2):  # pointer jumping along trains: O(log length) passes
            state = np.where(state == 2, state[ptr], state)
            ptr = ptr[ptr]
        go = movers[state == 1]
        cells = pos[go, 0] * w + pos[go, 1]
        occ[cells] = -1
        pos[go] += DIRS[d]
        inside_go = (pos[go, 0] >= 0) & (pos[go, 0] < h) & (pos[go, 1] >= 0) & (pos[go, 1] < w)
        occ[pos[go[inside_go], 0] * w + pos[go[inside_go], 1]] = go[inside_go]
    return pos
