"""The swarm grid: SwarmBench's 2-D world and its five tasks, at its size or a million agents.

    moot run --protocol swarm_grid -o task=pursuit --agents 12 --rounds 100

Faithful to SwarmBench (reference/swarmbench.md): the walled grid, the kxk view
rendered as the reference renders it, anonymous messages heard one round later
by the agents within view (cut at 120 characters), UP/DOWN/LEFT/RIGHT/STAY
(+SWITCH), the phase-ordered push physics, and the five tasks with their scores.
Layouts match the reference's for the same seed. Where the reference has a bug,
the correct behaviour is the default and the reference's is a flag:

- ``faithful_flocking_seed=True``: Flocking ignores the seed (always 42).
- ``faithful_prey=True``: the prey compares its options with the cell left of it.
- ``self_echo=True``: a speaker hears its own message back.
- ``faithful_pickup=True``: Foraging's pick-up and delivery test a neighbour's row against
  the width and its column against the height, so on a grid taller than wide neighbours in
  rows >= W never count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from agents.agent import Agent
from agents.errors import ConfigError
from agents.population import Population
from protocols.base import DirectRouter, MessageProtocol, Router
from protocols.stop import Custom, StopRule
from protocols.swarm_grid.agents import (
    FlockHeuristic,
    ForageHeuristic,
    PursuitHeuristic,
    SwarmMove,
    SwarmStep,
    SyncHeuristic,
    TransportHeuristic,
    VectorFlocker,
    VectorForager,
)
from protocols.swarm_grid.tasks import LARGE, TASKS, layout
from protocols.swarm_grid.world import ACTIONS, GridView, GridWorld

__all__ = ["ACTIONS", "GridView", "GridWorld", "SwarmGrid", "SwarmMove", "SwarmStep"]

_HEURISTICS: dict[str, type[Agent]] = {
    "pursuit": PursuitHeuristic,
    "synchronization": SyncHeuristic,
    "foraging": ForageHeuristic,
    "flocking": FlockHeuristic,
    "transport": TransportHeuristic,
}
_VECTORISED: dict[str, type[Agent]] = {"foraging": VectorForager, "flocking": VectorFlocker}


def _done(round: int, metrics: Mapping[str, float]) -> str | None:
    return "task complete" if metrics.get("done", 0.0) >= 1.0 else None


class SwarmGrid(MessageProtocol):
    """SwarmBench's swarm grid as a protocol with a world.

    Args:
        task: pursuit, synchronization, foraging, flocking or transport.
        size: Grid (rows, columns), walls included; SwarmBench used (10, 10).
        view: Side k of each agent's window (odd, at most the grid); SwarmBench used 5.
        max_round: Episode length the Transport score counts from (set it to the run's rounds).
        physics: ``exact`` (the reference's push physics), ``fast`` (vectorised, never pushes a
            passive body; agrees with exact wherever exact pushes nothing), or ``auto``: exact up
            to 4,096 agents and for Pursuit and Transport, fast beyond.
        self_echo, faithful_prey, faithful_flocking_seed, faithful_pickup: The reference's quirks
            (module docstring).

    Example:
        >>> launch(SwarmGrid(task="foraging").default_population(12), SwarmGrid(task="foraging"), rounds=100)
    """

    name = "swarm_grid"
    instructions = (
        "Decide your move for this round from your view, and optionally send one short message to the "
        "agents within view."
    )
    kinds = ("move", "say")
    action_kinds = ("move",)
    replies: tuple[type[SwarmMove], ...] = (SwarmMove,)  # per task (see __init__)

    def __init__(
        self,
        task: Literal["pursuit", "synchronization", "foraging", "flocking", "transport"] = "pursuit",
        *,
        size: tuple[int, int] | int = (10, 10),
        view: int = 5,
        max_round: int = 100,
        physics: Literal["auto", "exact", "fast"] = "auto",
        self_echo: bool = False,
        faithful_prey: bool = False,
        faithful_flocking_seed: bool = False,
        faithful_pickup: bool = False,
    ) -> None:
        if task not in TASKS:
            raise ConfigError(f"Unknown swarm task {task!r}; use one of: {', '.join(TASKS)}.")
        if isinstance(size, int):
            size = (size, size)
        h, w = (int(x) for x in size)
        if h < 5 or w < 5:
            raise ConfigError(f"Grid size {size} is too small; give at least (5, 5), e.g. size=(10, 10).")
        if view < 1 or view % 2 == 0:
            raise ConfigError(f"view must be odd (the agent sits in the centre), got {view}; e.g. view=5.")
        if view > min(h, w):
            raise ConfigError(f"view {view} is larger than the {h}x{w} grid; use view <= {min(h, w)}.")
        if physics not in ("auto", "exact", "fast"):
            raise ConfigError(f"Unknown physics {physics!r}; use 'auto', 'exact' or 'fast'.")
        if physics == "fast" and task in ("pursuit", "transport"):
            raise ConfigError(
                f"The {task} task moves a prey or a box, which only the exact physics pushes; "
                "use physics='exact' (or 'auto')."
            )
        self.task = task
        # Each task's own actions: SWITCH only where there are lights to switch.
        self.replies = (SwarmMove,) if task == "synchronization" else (SwarmStep,)
        self.size = (h, w)
        self.view = view
        self.max_round = max_round
        self.physics = physics
        self.self_echo = self_echo
        self.faithful_prey = faithful_prey
        self.faithful_flocking_seed = faithful_flocking_seed
        self.faithful_pickup = faithful_pickup

    def build(self, n_agents: int, seed: int) -> Router:
        h, w = self.size
        start = layout(self.task, h, w, n_agents, seed, faithful_flocking_seed=self.faithful_flocking_seed)
        physics = self.physics
        if physics == "auto":
            physics = "exact" if n_agents <= LARGE or self.task in ("pursuit", "transport") else "fast"
        world = GridWorld(
            self.task,
            start,
            view=self.view,
            max_round=self.max_round,
            physics=physics,
            self_echo=self.self_echo,
            faithful_prey=self.faithful_prey,
            seed=seed,
            faithful_pickup=self.faithful_pickup,
        )
        return DirectRouter(n_agents, world)

    def stop_rule(self, field: str | None) -> StopRule | None:
        """Transport ends when every agent has left the map, Flocking when the shape is formed."""
        return Custom(_done, name="task complete")

    def default_population(self, n: int, agent: type[Agent] | None = None, **state: Any) -> Population:
        """The task's heuristic agents (vectorised ones beyond 4,096 agents where there are some)."""
        cls = agent or (_VECTORISED.get(self.task) if n > LARGE else None) or _HEURISTICS[self.task]
        return Population.of(cls, n, **state)

    def views(self) -> Mapping[str, str]:
        decode = " ".join(f"WHEN {i} THEN '{a}'" for i, a in enumerate(ACTIONS))
        return {
            "swarm_moves": (
                f"SELECT run_id, round, sender AS agent, CASE value::INTEGER {decode} END AS action "
                "FROM messages WHERE kind = 'move' AND receiver IS NULL"
            ),
            "swarm_score_by_round": (
                "SELECT run_id, round, max(value) FILTER (name = 'score') AS score, "
                "max(value) FILTER (name = 'exploration') AS exploration, "
                "max(value) FILTER (name = 'polarization') AS polarization, "
                "max(value) FILTER (name = 'directional_entropy') AS directional_entropy "
                "FROM metrics GROUP BY run_id, round"
            ),
            "swarm_idle_agents": (
                "SELECT s.run_id, s.agent FROM states s JOIN (SELECT run_id, max(round) AS round FROM states "
                "GROUP BY run_id) last USING (run_id, round) WHERE s.field = 'distance' AND s.value = 0"
            ),
        }

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "task": self.task,
            "size": list(self.size),
            "view": self.view,
            "max_round": self.max_round,
            "physics": self.physics,
            "self_echo": self.self_echo,
            "faithful_prey": self.faithful_prey,
            "faithful_flocking_seed": self.faithful_flocking_seed,
            **({"faithful_pickup": True} if self.faithful_pickup else {}),
        }

    def __repr__(self) -> str:
        return f"SwarmGrid(task={self.task!r}, size={self.size}, view={self.view})"
