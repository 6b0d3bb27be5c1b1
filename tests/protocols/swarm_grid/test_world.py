"""The swarm grid's world: layouts, views, messages and each task's score, against the reference."""

from __future__ import annotations

import random

import numpy as np
import pytest

from agents.batch import MessageBatch
from orchestrator.errors import AgentError, ConfigError
from protocols.swarm_grid import ACTIONS, SwarmGrid
from protocols.swarm_grid.tasks import FOOD, NEST, layout
from protocols.swarm_grid.world import GridWorld

KINDS = SwarmGrid().kind_table()
MOVE, SAY = KINDS.index("move"), KINDS.index("say")


def world(task: str, n: int = 12, seed: int = 42, **kw: object) -> GridWorld:
    router = SwarmGrid(task, **kw).build(n, seed)  # type: ignore[arg-type]
    assert isinstance(router.world, GridWorld)
    return router.world


def act(w: GridWorld, moves: dict[int, str], round: int = 0) -> None:
    senders = np.array(sorted(moves), np.int64)
    values = np.array([ACTIONS.index(moves[i]) for i in senders], np.float64)
    batch = MessageBatch(
        senders,
        np.zeros(len(senders), np.int32),
        np.full(len(senders), MOVE, np.uint8),
        values,
        np.full(len(senders), -1, np.int64),
    )
    w.apply(batch, round, KINDS)


def positions(w: GridWorld) -> str:
    return " ".join(f"{i}:{r},{c}" for i, (r, c) in enumerate(w.pos))


LAYOUTS_42 = {
    "pursuit": "0:3,1 1:2,2 2:1,2 3:1,5 4:4,5 5:1,1 6:2,1 7:5,2 8:2,5 9:4,2 10:3,5 11:3,4",
    "synchronization": "0:4,4 1:4,1 2:4,7 3:5,8 4:3,1 5:6,7 6:3,5 7:6,4 8:2,2 9:2,7 10:6,6 11:1,5",
    "foraging": "0:2,3 1:7,2 2:4,2 3:7,4 4:8,4 5:1,5 6:7,3 7:5,6 8:4,3 9:2,6 10:6,2 11:8,1",
    "flocking": "0:1,2 1:4,5 2:3,4 3:2,2 4:1,7 5:2,1 6:4,4 7:4,1 8:4,7 9:5,8 10:3,1 11:6,7",
    "transport": "0:5,1 1:4,4 2:2,3 3:1,1 4:4,2 5:1,4 6:1,5 7:5,6 8:4,3 9:2,6 10:8,1 11:5,2",
}


@pytest.mark.parametrize("task", list(LAYOUTS_42))
def test_layouts_match_the_reference_for_seed_42(task: str) -> None:
    assert positions(world(task)) == LAYOUTS_42[task]


def test_the_rest_of_the_reference_layouts() -> None:
    w = world("pursuit")
    assert w.prey is not None and tuple(w.prey[0]) == (8, 6)
    assert "".join("0" if a else "1" for a in world("synchronization").alt) == "001000001000"
    assert "".join("0" if a else "1" for a in world("synchronization", seed=27).alt) == "111000111110"
    f = world("foraging")
    assert tuple(np.argwhere(f.static == FOOD).min(0)) == (1, 1) and tuple(
        np.argwhere(f.static == NEST).min(0)
    ) == (1, 7)
    assert f.static[0:7, 4].all() and not f.static[7:9, 4].any()  # the maze wall and its opening
    assert tuple(np.argwhere(world("foraging", seed=27).static == FOOD).min(0)) == (1, 7)
    t = world("transport")
    assert t.box is not None and (t.box[:, 0].min(), t.box[:, 1].min()) == (6, 0)
    t27 = world("transport", seed=27)
    assert t27.box is not None and (t27.box[:, 0].min(), t27.box[:, 1].min()) == (0, 5)
    p27 = world("pursuit", seed=27)
    assert p27.prey is not None and tuple(p27.prey[0]) == (8, 7)
    assert positions(p27) == "0:3,3 1:1,2 2:3,1 3:3,5 4:2,4 5:2,2 6:1,4 7:1,5 8:4,5 9:3,4 10:4,1 11:2,3"
    # Flocking ignores the seed only behind the flag.
    assert positions(world("flocking", seed=7, faithful_flocking_seed=True)) == LAYOUTS_42["flocking"]
    assert positions(world("flocking", seed=7)) != LAYOUTS_42["flocking"]


def test_the_view_is_rendered_as_the_reference_renders_it() -> None:
    view = world("pursuit").observe(0, 0)
    assert view.view_text() == "\n".join(
        [
            "    -1   0   1   2   3",
            "  1  *   W   5   2   .   ",
            "  2  *   W   6   1   .   ",
            "  3  *   W   Y   .   .   ",
            "  4  *   W   .   9   .   ",
            "  5  *   W   .   7   .   ",
        ]
    )
    assert len(view.cells) == 5 and all(len(r) == 5 for r in view.cells)
    assert "Round: 0" in view.render() and "score: 0" in view.render()
    # Alternate-state agents (light off) show as $id, whatever the id's length; lights on as the id.
    sync = world("synchronization").observe(6, 0)  # lights 001000001000: 2 on, 0, 9 and 11 off
    assert sync.cells == (
        (".", ".", "$11", ".", "."),
        (".", ".", ".", ".", "$9"),
        (".", ".", "Y", ".", "."),
        (".", "$0", ".", ".", "2"),
        (".", ".", ".", ".", "."),
    )


def test_a_message_is_heard_only_within_view() -> None:
    w = world("pursuit")  # agent 0 at (3,1); view 5: rows 1..5, cols -1..3
    said = MessageBatch(
        np.array([0]),
        np.array([0], np.int32),
        np.array([SAY], np.uint8),
        np.array([np.nan]),
        np.array([-1]),
        text=None,
    )
    heard = w.deliver(said, 0, 12, 0)
    within = {i for i in range(1, 12) if abs(w.pos[i, 0] - 3) <= 2 and abs(w.pos[i, 1] - 1) <= 2}
    assert set(heard.receiver.tolist()) == within and within == {1, 2, 5, 6, 7, 9}
    assert 0 not in heard.receiver  # no self-echo by default
    echo = world("pursuit", self_echo=True).deliver(said, 0, 12, 0)
    assert 0 in echo.receiver
    mine = w.deliver(said, 6, 12, 0)  # a host holding agents 6..11 delivers to its own only
    assert set(mine.receiver.tolist()) == within & set(range(6, 12))


def test_transport_push_sequence_and_escape_score() -> None:
    """Appendix A.2: four pushers cannot move the box, five can; then out through the gap."""
    w = world("transport", n=5)
    w.escaped[:] = False
    w.pos[:] = [(6, 5), (7, 5), (8, 5), (6, 6), (9, 9)]  # the fifth is parked out of the way
    w.pos[4] = (1, 8)
    act(w, {0: "LEFT", 1: "LEFT", 2: "LEFT", 3: "LEFT"}, 0)
    assert w.box is not None and w.box[:, 1].min() == 0
    w.pos[4] = (7, 6)
    act(w, {i: "LEFT" for i in range(5)}, 0)
    assert w.box[:, 1].min() == -1 and positions(w) == "0:6,4 1:7,4 2:8,4 3:6,5 4:7,5"
    w.pos[:] = [(5, 1), (5, 2), (5, 3), (4, 1), (4, 2)]
    for r in range(1, 6):
        act(w, {i: "DOWN" for i in range(5)}, r)
    assert w.escaped.tolist() == [True, True, True, False, False]
    assert w.score == pytest.approx(3 * (100 - 5) / 100)
    act(w, {i: "DOWN" for i in range(5)}, 6)
    assert w.score == pytest.approx(3 * 0.95 + 2 * 0.94) and w.done


def test_synchronization_scores_alternating_full_agreement() -> None:
    w = world("synchronization", n=4)
    w.alt[:] = [False, True, False, True]  # lights: on, off, on, off
    act(w, {1: "SWITCH", 3: "SWITCH"}, 0)  # all on: +1
    act(w, {}, 1)  # still all on: no new point
    act(w, {i: "SWITCH" for i in range(4)}, 2)  # all off: +1
    act(w, {0: "SWITCH"}, 3)  # mixed: nothing
    act(w, {0: "SWITCH"}, 4)  # all off again: the last point was all off, so nothing
    assert w.score == 2


def test_foraging_picks_up_next_to_food_and_scores_at_the_nest() -> None:
    w = world("foraging", n=1)
    w.pos[0] = (3, 1)  # food at (1..2, 1..2): (3,1) touches it
    act(w, {0: "STAY"}, 0)
    assert not w.alt[0]  # carrying
    w.pos[0] = (3, 7)  # nest at (1..2, 7..8)
    act(w, {0: "STAY"}, 1)
    assert w.score == 1 and w.alt[0]
    act(w, {0: "STAY"}, 2)
    assert w.score == 1  # nothing left to deliver


def test_pursuit_catch_scores_and_the_new_prey_is_static() -> None:
    w = world("pursuit", n=4)
    w.prey = np.array([(5, 5)])
    w.pos[:] = [(4, 5), (6, 5), (5, 4), (5, 7)]
    act(w, {3: "LEFT"}, 0)  # the fourth side closes
    assert w.score == 1 and w.prey_static and tuple(w.prey[0]) != (5, 5)


def test_pursuit_prey_flees_only_to_lower_danger_and_the_faithful_quirk() -> None:
    """Worked by hand: danger = agents + 0.9 * walls in rows i-4..i+3, cols j-4..j+3.

    Prey at (5,5), agents at (1,1) and (1,2): its own cell has danger 2 (both agents,
    no wall). The two-step cells: (5,7) and (7,5) 7.2 (8 walls), (5,3) and (3,5) 9.2,
    the diagonals 13.5 and more. Nothing beats 2, so the prey stays. The reference
    compares with the cell left of it, (5,4): 9.2, so it runs to (5,7), the first
    candidate (RIGHT, RIGHT) with the lowest danger, 7.2.
    """
    for faithful, expected in ((False, (5, 5)), (True, (5, 7))):
        w = world("pursuit", n=2, faithful_prey=faithful)
        w.prey = np.array([(5, 5)])
        w.pos[:] = [(1, 1), (1, 2)]
        act(w, {0: "STAY", 1: "STAY"}, 0)
        assert tuple(int(x) for x in w.prey[0]) == expected


def test_flocking_distance_and_score() -> None:
    w = world("flocking")
    assert w.d0 == 24  # the reference's D0 for this layout
    ring = [(r, c) for r in range(3, 7) for c in range(3, 7) if r in (3, 6) or c in (3, 6)]
    w.pos[:] = ring
    act(w, {}, 0)
    assert w.score == 24 and w.done


def test_bad_actions_and_settings_are_clear_errors() -> None:
    w = world("pursuit")
    with pytest.raises(
        AgentError,
        match=r"Agent 3 took move 5.0 in round 0, which the pursuit task does not have; its actions are UP=0, DOWN=1, LEFT=2, RIGHT=3, STAY=4",
    ):
        act(w, {3: "SWITCH"}, 0)
    with pytest.raises(
        ConfigError, match=r"Unknown swarm task 'persuit'; use one of: pursuit, synchronization"
    ):
        SwarmGrid("persuit")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"view must be odd \(the agent sits in the centre\), got 4"):
        SwarmGrid(view=4)
    with pytest.raises(ConfigError, match=r"view 11 is larger than the 10x10 grid; use view <= 10"):
        SwarmGrid(view=11)
    with pytest.raises(ConfigError, match=r"101 agents do not fit: the placement area has \d+ free cells"):
        SwarmGrid("foraging").build(101, 0)
    with pytest.raises(ConfigError, match=r"only the exact physics pushes"):
        SwarmGrid("transport", physics="fast")
    assert layout("pursuit", 10, 10, 12, 42).prey == (8, 6)


def test_an_agent_sees_its_last_five_views_newest_first() -> None:
    w = world("pursuit")
    first = w.observe(0, 0).view_text()
    for r in range(5):
        act(w, {0: "DOWN"}, r)
    seen = w.observe(0, 5)
    assert len(seen.past) == 4  # the current view and four before it, as SwarmBench shows
    assert seen.past[-1] != first and "4 Steps Before:" in seen.render()
    w2 = world("pursuit")
    act(w2, {0: "DOWN"}, 0)
    assert w2.observe(0, 1).past == (first,)


# ---- Checked against SwarmBench's own code (its task.py) on situations of our own ----------------
# The oracles below follow the reference's code step by step with Python's `random.Random`, which
# its tasks draw from; moot replays that generator (LayoutRng) and must agree.


def _danger(grid: np.ndarray, i: int, j: int) -> float:
    view = grid[max(i - 4, 0) : i + 4, max(j - 4, 0) : j + 4]
    return float((view == "A").sum() + 0.9 * (view == "W").sum())


def _free(grid: np.ndarray, i: int, j: int) -> bool:
    return 0 <= i < grid.shape[0] and 0 <= j < grid.shape[1] and grid[i, j] == "."


STEPS = [(0, 1), (0, -1), (1, 0), (-1, 0)]


def _reference_prey_step(grid: np.ndarray, i: int, j: int) -> tuple[int, int]:
    """The reference's escape: compared with the cell left of the prey, both L corners free."""
    best, target = _danger(grid, i, j - 1), None
    for a in STEPS:
        for b in STEPS:
            end = (i + a[0] + b[0], j + a[1] + b[1])
            if not (
                _free(grid, *end) and _free(grid, i + a[0], j + a[1]) and _free(grid, i + b[0], j + b[1])
            ):
                continue
            d = _danger(grid, *end)
            if d < best:
                best, target = d, end
    return (i, j) if target is None else target


def test_the_prey_escapes_as_the_reference_does_both_corners_of_an_l_free() -> None:
    rng = np.random.default_rng(11)
    checked = corner_mattered = 0
    for _ in range(300):
        w = world("pursuit", n=6, faithful_prey=True)
        cells = [(r, c) for r in range(1, 9) for c in range(1, 9)]
        pick = rng.choice(len(cells), 7, replace=False)
        w.prey = np.array([cells[pick[0]]])
        w.pos[:] = [cells[k] for k in pick[1:]]
        grid = np.full((10, 10), ".", dtype="<U1")
        grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = "W"
        for r, c in w.pos:
            grid[r, c] = "A"
        i, j = (int(x) for x in w.prey[0])
        grid[i, j] = "P"
        if all(grid[i + a, j + b] != "." for a, b in STEPS):
            continue  # a catch: another rule
        expected = _reference_prey_step(grid, i, j)
        loose = grid.copy()  # what the escape would be if only the middle cell were checked
        act(w, {k: "STAY" for k in range(6)}, 0)
        assert tuple(int(x) for x in w.prey[0]) == expected
        checked += 1
        corner_mattered += _reference_prey_step_middle_only(loose, i, j) != expected
    assert checked > 250 and corner_mattered > 0  # the situations did include the corner rule


def _reference_prey_step_middle_only(grid: np.ndarray, i: int, j: int) -> tuple[int, int]:
    """What moot used to do: only the first step's cell and the end checked."""
    best, target = _danger(grid, i, j - 1), None
    for a in STEPS:
        if not _free(grid, i + a[0], j + a[1]):
            continue
        for b in STEPS:
            end = (i + a[0] + b[0], j + a[1] + b[1])
            if end == (i, j) or not _free(grid, *end):
                continue
            d = _danger(grid, *end)
            if d < best:
                best, target = d, end
    return (i, j) if target is None else target


def _reference_pursuit_layout(
    h: int, w: int, n: int, seed: int
) -> tuple[random.Random, tuple[int, int], list]:
    """The reference's Pursuit.reset: the prey, then `spread` over its (H//2, W//2) box, min 5."""
    rnd = random.Random(seed)
    prey = (rnd.randint(h // 2 + 1, h - 2), rnd.randint(w // 2 + 1, w - 2))
    grid = np.full((h, w), ".", dtype="<U1")
    grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = "W"
    grid[prey] = "P"
    used: set[tuple[int, int]] = set()
    agents = []
    for _ in range(n):
        while True:
            x, y = rnd.randint(1, max(h // 2, 5)), rnd.randint(1, max(w // 2, 5))
            if (y, x) not in used and y < h and x < w and grid[y, x] == ".":  # (it would fail off the grid)
                used.add((y, x))
                agents.append((y, x))
                break
    return rnd, prey, agents


@pytest.mark.parametrize(("h", "w"), [(6, 6), (6, 8), (10, 10)])
def test_pursuit_layouts_on_small_grids_draw_as_the_reference(h: int, w: int) -> None:
    for seed in range(8):
        _, prey, agents = _reference_pursuit_layout(h, w, 3, seed)
        got = layout("pursuit", h, w, 3, seed)
        assert got.prey == prey and [tuple(p) for p in got.pos.tolist()] == agents, seed


def test_a_respawned_prey_is_drawn_from_the_layouts_own_generator() -> None:
    seed = 5
    w = world("pursuit", n=4, seed=seed)
    rnd, _, _ = _reference_pursuit_layout(10, 10, 4, seed)  # the generator after the layout's draws
    w.prey = np.array([(5, 5)])
    w.pos[:] = [(4, 5), (6, 5), (5, 4), (5, 7)]
    act(w, {3: "LEFT"}, 0)  # surrounded: caught
    grid = np.full((10, 10), ".", dtype="<U1")
    grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = "W"
    for r, c in w.pos:
        grid[r, c] = "A"
    best, spot, t = 1e6, None, 0  # the reference's respawn: the safest of H*W free draws
    while t < 100:
        i, j = rnd.randint(1, 8), rnd.randint(1, 8)
        if grid[i, j] != ".":
            continue
        t += 1
        if _danger(grid, i, j) < best:
            best, spot = _danger(grid, i, j), (i, j)
    assert w.score == 1 and tuple(int(x) for x in w.prey[0]) == spot
    # The safest cell rarely depends on the draws; the generator's next draw does: the same stream.
    assert w.rng.getrandbits(32) == rnd.getrandbits(32)


# The reference's eight Transport boxes, in its list's order: rows of the shape, and where its
# top-left corner sits (negative: counted from the far edge). The gap in the wall is the plug.
REFERENCE_BOXES = [
    (["BBB..", "BBB..", "BBB..", ".BBBB"], (-4, -5)),
    (["..BBB", "..BBB", "..BBB", "BBBB."], (-4, 0)),
    (["...B", "...B", "BBBB", "BBBB", "BBB."], (0, -4)),
    (["BBB.", "BBBB", "BBBB", "...B", "...B"], (-5, -4)),
    (["B...", "B...", "BBBB", "BBBB", ".BBB"], (0, 0)),
    ([".BBB", "BBBB", "BBBB", "B...", "B..."], (-5, 0)),
    (["BBBB.", "..BBB", "..BBB", "..BBB"], (0, 0)),
    ([".BBBB", "BBB..", "BBB..", "BBB.."], (0, -5)),
]


@pytest.mark.parametrize(("h", "w"), [(10, 10), (12, 9)])
def test_transport_boxes_are_the_references_in_its_order(h: int, w: int) -> None:
    from protocols.swarm_grid.tasks import _box_cells

    for k, (shape, (r0, c0)) in enumerate(REFERENCE_BOXES):
        cells = {
            (r0 % h + i, c0 % w + j) for i, row in enumerate(shape) for j, ch in enumerate(row) if ch == "B"
        }
        assert {tuple(c) for c in _box_cells(k, h, w).tolist()} == cells, k
    for seed in range(12):  # the seeded choice picks the reference's box k
        rnd = random.Random(seed)
        k = rnd.choice(range(8))
        got = layout("transport", 10, 10, 5, seed)
        assert got.variant == k and got.box is not None


def test_a_box_wholly_off_the_map_blocks_nothing() -> None:
    w = world("transport", n=5)  # seed 42: the box at the bottom left, its plug in row 9
    assert w.box is not None
    w.box = w.box + np.array([4, 0])  # pushed out below the map: rows 10..13
    w.pos[:] = [(9, 2), (1, 1), (1, 2), (1, 3), (1, 4)]  # agent 0 in the open gap, (10, 2) below it
    act(w, {0: "DOWN"}, 3)
    assert w.escaped[0] and tuple(w.pos[0]) == (10, 2)  # it steps out where the box lies


def test_food_shows_over_the_nest_where_they_overlap_on_a_5x5_grid() -> None:
    for seed in range(6):
        g = layout("foraging", 5, 5, 1, seed)
        food = np.argwhere(g.static == FOOD)
        assert len(food) == 4, seed  # its whole 2x2 block: the nest lies under it where they overlap
        assert (g.static == NEST).sum() < 4


def test_the_vision_section_says_five_steps_and_spaces_them_as_the_reference() -> None:
    w = world("pursuit")
    for r in range(2):
        act(w, {0: "DOWN"}, r)
    view = w.observe(0, 2)
    steps = [view.view_text(), *view.past]
    names = ["Current Step"] + [f"{k} Steps Before" for k in range(1, 5)]
    # The reference: '\n'.join(f'{name}:\n{s}') over views that each end in a newline.
    vision = "\n".join(f"{n}:\n{s}\n" for n, s in zip(names, steps))
    text = view.render()
    assert f"Your recent 5-step vision (not the entire map):\n{vision}\n\nYour current observation:" in text
    assert len(steps) == 3


@pytest.mark.parametrize("faithful", [False, True])
def test_foraging_pickup_on_a_tall_grid_and_the_references_swapped_bounds(faithful: bool) -> None:
    w = world("foraging", n=1, size=(12, 8), faithful_pickup=faithful)
    w.static[w.static == FOOD] = 0
    w.static[9:11, 1:3] = FOOD  # food low on a grid taller than wide
    w.pos[0] = (8, 1)  # right above it; the food's row 9 is >= the width 8
    w.alt[0] = True
    act(w, {0: "STAY"}, 0)
    assert bool(w.alt[0]) == faithful  # the reference never sees it (its bounds are swapped)
