"""Distributed black-box consensus optimisation: agents on a graph minimise the sum of their
private objectives, each querying only its own and exchanging points with its neighbours; an
optional language model guides each agent every K rounds (LACMAS). See README.md.

Example:
    >>> proto = BlackboxConsensus(function="rastrigin", dim=5)
    >>> launch(proto.default_population(100), proto, rounds=200, state_every=10)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import networkx as nx

from agents.agent import Agent
from agents.errors import ConfigError
from agents.population import Population, Uniform
from protocols.blackbox_consensus.agents import ConsensusOptimizer, GuidedOptimizer, GuideReply
from protocols.blackbox_consensus.functions import FUNCTIONS, evaluate, global_objective
from protocols.gossip import Gossip
from protocols.stop import StopRule
from protocols.topology import GraphSpec, SmallWorld, Topology

__all__ = [
    "BlackboxConsensus",
    "ConsensusOptimizer",
    "GuideReply",
    "GuidedOptimizer",
    "evaluate",
    "global_objective",
]

OPTIMISATION_BY_ROUND = """SELECT run_id, round,
        sqrt(max(value) FILTER (name = 'variance')) AS consensus_error,
        max(value) FILTER (name = 'spread') AS widest_disagreement,
        max(value) FILTER (name = 'value.mean') AS local_objective,
        (max(value) FILTER (name = 'evaluations.mean') * max(value) FILTER (name = 'agents'))::BIGINT
            AS evaluations,
        sum(max(value) FILTER (name = 'messages')) OVER (PARTITION BY run_id ORDER BY round)::BIGINT
            AS messages
    FROM metrics GROUP BY run_id, round ORDER BY run_id, round"""

# The global objective at the agents' mean point, per logged round, from the states: the mean
# point entry by entry, then every agent's own objective there (its shift and function from
# round -1), summed. The same formulas as functions.evaluate.
GLOBAL_OBJECTIVE = """WITH pts AS (SELECT round, unnest(generate_series(1, len(vector))) AS k,
                        unnest(vector) AS v FROM states WHERE run_id = rid AND field = 'x'),
     centre AS (SELECT round, list(m ORDER BY k) AS c
                FROM (SELECT round, k, avg(v) AS m FROM pts GROUP BY ALL) GROUP BY round),
     shifts AS (SELECT s.agent, s.vector AS shift, f.text AS fn FROM states s JOIN states f
                ON f.run_id = s.run_id AND f.agent = s.agent AND f.round = -1 AND f.field = 'function'
                WHERE s.run_id = rid AND s.round = -1 AND s.field = 'shift'),
     z AS (SELECT round, fn, list_transform(generate_series(1, len(c)), lambda i: c[i] - shift[i]) AS z
           FROM centre, shifts)
SELECT round, sum(CASE fn
        WHEN 'sphere' THEN list_sum(list_transform(z, lambda e: e * e))
        WHEN 'rastrigin' THEN 10 * len(z)
                              + list_sum(list_transform(z, lambda e: e * e - 10 * cos(2 * pi() * e)))
        WHEN 'ackley' THEN -20 * exp(-0.2 * sqrt(list_avg(list_transform(z, lambda e: e * e))))
                           - exp(list_avg(list_transform(z, lambda e: cos(2 * pi() * e)))) + 20 + exp(1)
        WHEN 'rosenbrock' THEN list_sum(list_transform(generate_series(1, len(z) - 1),
                           lambda i: 100 * power((z[i + 1] + 1) - power(z[i] + 1, 2), 2) + power(z[i], 2)))
        END) AS global_objective, count(*) AS agents
FROM z GROUP BY round ORDER BY round"""


STEPS = {"sphere": 0.05, "rosenbrock": 0.0005, "rastrigin": 0.01, "ackley": 0.05}
"""Default steps along the tracker, per function."""


class BlackboxConsensus(Gossip):
    """Gossip whose agents minimise the sum of shifted test functions together.

    Every agent hears every neighbour every round (``fanout=None``), so that its mixing weights
    (Metropolis) make the average of points and trackers exact.

    Args:
        graph: Who talks to whom (undirected; default a small world, about 6 neighbours each).
        function: ``sphere``, ``rosenbrock``, ``rastrigin`` or ``ackley``.
        dim: Dimensions of the search space (``moot run --dim``).
        spread: Each agent's optimum lies uniformly in ``[-spread, spread]^dim``.
        start: Initial points lie uniformly in ``[-start, start]^dim``.
        step: The initial step along the tracker; default per function (`STEPS`: small enough
            for its steepest slopes).
        radius: The initial probe radius (0.5 differences away Rastrigin's ripples of period 1).
        escape_after: Rounds stalled before a local escape; default 10 for the multimodal
            functions (rastrigin, ackley), 0 (never) for the others.
        escape_radius: How far an escape looks.
        isolated: Agents ignore their neighbours (the no-communication baseline).
        guide_every: Every this many rounds each agent asks a language model for guidance
            (`GuidedOptimizer`); 0 (the default): no model, the vectorised agent.
        model: The guide's model (litellm string; default the offline stand-in).
    """

    name = "blackbox_consensus"
    kinds: ClassVar[tuple[str, ...]] = ("point",)
    default_field = "x"
    replies = (GuideReply,)  # type: ignore[assignment]
    instructions = "Minimise the team's summed objective: query your own, average points with neighbours."

    def __init__(
        self,
        graph: nx.Graph | GraphSpec | Topology | str = SmallWorld(k=6, p=0.2),
        *,
        function: str = "sphere",
        dim: int = 5,
        spread: float = 2.0,
        start: float = 4.0,
        step: float | None = None,
        radius: float = 0.5,
        escape_after: int | None = None,
        escape_radius: float = 1.0,
        isolated: bool = False,
        guide_every: int = 0,
        model: str = "moot/simulated",
    ) -> None:
        if function not in FUNCTIONS:
            raise ConfigError(f"Unknown function {function!r}; use one of: {', '.join(FUNCTIONS)}.")
        if not isinstance(dim, int) or dim < 1 or (function == "rosenbrock" and dim < 2):
            raise ConfigError(f"dim must be a whole number >= 1 (>= 2 for rosenbrock), got {dim!r}.")
        super().__init__(graph, fanout=None, mode="push", tolerance=0.0)
        self.function, self.dim, self.spread, self.start = function, dim, spread, start
        self.step = STEPS[function] if step is None else step
        self.radius, self.escape_radius = radius, escape_radius
        multimodal = function in ("rastrigin", "ackley")
        self.escape_after = (10 if multimodal else 0) if escape_after is None else escape_after
        self.isolated, self.guide_every, self.model = isolated, guide_every, model

    def stop_rule(self, field: str | None) -> StopRule | None:
        return None  # an optimisation runs its budget

    def watched_fields(self) -> tuple[str, ...]:
        return ("value", "evaluations")

    def views(self) -> Mapping[str, str]:
        return {"optimisation_by_round": OPTIMISATION_BY_ROUND}

    def macros(self) -> Mapping[str, str]:
        return {"global_objective_by_round(rid)": GLOBAL_OBJECTIVE}

    def default_population(self, n: int, agent: type[Agent] | None = None, **state: Any) -> Population:
        """`n` optimisers (guided ones with `guide_every`), points and optima drawn per agent id."""
        cls = agent or (GuidedOptimizer if self.guide_every else ConsensusOptimizer)
        dim = state.pop("dim", self.dim)
        settings: dict[str, Any] = {
            "x": Uniform(-self.start, self.start),
            "shift": Uniform(-self.spread, self.spread),
            "function": self.function,
            "step": self.step,
            "radius": self.radius,
            "escape_after": self.escape_after,
            "escape_radius": self.escape_radius,
            "isolated": self.isolated,
        }
        if issubclass(cls, GuidedOptimizer):
            settings.update(guide_every=self.guide_every, model=self.model)
        settings.update(state)
        return Population.of(cls, n, dim=dim, **settings)

    def describe(self) -> dict[str, object]:
        out = super().describe()
        out.update(
            name=self.name,
            function=self.function,
            dim=self.dim,
            spread=self.spread,
            start=self.start,
            step=self.step,
            radius=self.radius,
            escape_after=self.escape_after,
            escape_radius=self.escape_radius,
            isolated=self.isolated,
            guide_every=self.guide_every,
        )
        return out

    def __repr__(self) -> str:
        return (
            f"BlackboxConsensus(function={self.function!r}, dim={self.dim}, guide_every={self.guide_every})"
        )
