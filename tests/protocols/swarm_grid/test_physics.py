"""The push physics: SwarmBench's test vectors (reference/swarmbench.md Appendix A.1), and fast vs exact."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.swarm_grid.physics import DOWN, LEFT, RIGHT, STAY, UP, resolve_exact, resolve_fast

H = W = 10
BLOCKED = np.zeros((H, W), bool)
BLOCKED[0, :] = BLOCKED[-1, :] = BLOCKED[:, 0] = BLOCKED[:, -1] = True
DIR = {"UP": UP, "DOWN": DOWN, "LEFT": LEFT, "RIGHT": RIGHT, None: STAY}

VECTORS = [
    ([((5, 3), "RIGHT"), ((5, 5), "LEFT")], [(5, 3), (5, 4)]),  # LEFT runs first and wins the cell
    ([((4, 4), "DOWN"), ((5, 3), "RIGHT")], [(5, 5), (5, 4)]),  # the vertical mover enters, then is shoved
    ([((5, 3), "RIGHT"), ((5, 4), "RIGHT")], [(5, 4), (5, 5)]),  # a train
    ([((5, 3), "RIGHT"), ((5, 4), None)], [(5, 4), (5, 5)]),  # one mover shoves one idle agent
    ([((5, 3), "RIGHT"), ((5, 4), None), ((5, 5), None)], [(5, 3), (5, 4), (5, 5)]),  # but not two
    (
        [((5, 2), "RIGHT"), ((5, 3), "RIGHT"), ((5, 4), None), ((5, 5), None)],
        [(5, 3), (5, 4), (5, 5), (5, 6)],
    ),
    ([((1, 1), "UP")], [(1, 1)]),  # a wall
    ([((1, 2), "LEFT"), ((1, 1), None)], [(1, 2), (1, 1)]),  # an idle agent against the wall
    ([((5, 3), "RIGHT"), ((5, 4), "LEFT")], [(5, 3), (5, 4)]),  # a swap fails
    ([((5, 2), "RIGHT"), ((5, 3), "RIGHT"), ((5, 4), "LEFT")], [(5, 2), (5, 3), (5, 4)]),
    (
        [((5, 1), "RIGHT"), ((5, 2), "RIGHT"), ((5, 3), "RIGHT"), ((5, 4), "LEFT")],
        [(5, 2), (5, 3), (5, 4), (5, 5)],
    ),
    ([((6, 4), "UP"), ((5, 4), "LEFT")], [(5, 4), (4, 3)]),  # a diagonal shove
]


def exact(agents: list[tuple[tuple[int, int], str | None]]) -> list[tuple[int, int]]:
    bodies = [np.array([p], np.int64) for p, _ in agents]
    out, _ = resolve_exact(
        bodies, [1] * len(agents), [False] * len(agents), [DIR[i] for _, i in agents], BLOCKED
    )
    return [(int(b[0, 0]), int(b[0, 1])) for b in out]


@pytest.mark.parametrize(("agents", "expected"), VECTORS)
def test_reference_vectors(agents: list, expected: list) -> None:  # type: ignore[type-arg]
    assert exact(agents) == expected


def test_a_box_of_mass_five_needs_five_pushers() -> None:
    box = np.array([(r, c) for r in range(4, 7) for c in range(4, 7)], np.int64)  # 3x3 at rows/cols 4..6
    four = [(4, 7), (5, 7), (6, 7), (4, 8)]
    for pushers, moves in ((four, False), ([*four, (5, 8)], True)):
        bodies = [box] + [np.array([p], np.int64) for p in pushers]
        blocked = np.zeros((12, 12), bool)
        out, pushed = resolve_exact(
            bodies, [5] + [1] * len(pushers), [False] * len(bodies), [STAY] + [LEFT] * len(pushers), blocked
        )
        assert bool(out[0][:, 1].min() == 3) == moves and pushed == moves


def test_fast_physics_agrees_with_exact_wherever_nothing_is_pushed() -> None:
    rng = np.random.default_rng(0)
    compared = disagreed = 0
    for _ in range(400):
        n = int(rng.integers(2, 9))
        cells = rng.choice(64, size=n, replace=False)
        pos = np.stack([1 + cells // 8, 1 + cells % 8], axis=1).astype(np.int64)
        intents = rng.integers(0, 5, n)
        ex, pushed = resolve_exact(
            [pos[i : i + 1] for i in range(n)], [1] * n, [False] * n, list(intents), BLOCKED
        )
        fast = resolve_fast(pos, intents, np.ones(n, bool), BLOCKED)
        if pushed:
            disagreed += int(not np.array_equal(np.concatenate(ex), fast))
            continue
        compared += 1
        assert np.array_equal(np.concatenate(ex), fast), (pos.tolist(), intents.tolist())
    assert compared > 150 and disagreed > 0  # both kinds of case were drawn
