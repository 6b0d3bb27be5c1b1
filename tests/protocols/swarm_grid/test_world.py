"""The swarm grid's world: layouts, views, messages and each task's score, against the reference."""

from __future__ import annotations

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
