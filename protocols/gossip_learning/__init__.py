"""Gossip learning: every agent trains a small model on its own data and merges the models its
neighbours send, with plain or variance-corrected averaging ("Vanishing Variance Problem in Fully
Decentralized Neural-Network Systems"); federated averaging as the baseline. See README.md.

Example:
    >>> proto = GossipLearning(graph=RingLattice(k=4), fanout=None, merge="corrected")
    >>> launch(proto.default_population(100), proto, rounds=50, messages="aggregate")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import networkx as nx

from agents.agent import Agent
from agents.errors import ConfigError
from agents.population import Population
from protocols.gossip import Gossip, GossipMode
from protocols.gossip_learning.agents import GossipLearner
from protocols.gossip_learning.learning import DATASETS, MERGES, Layout, Xavier, load
from protocols.stop import StopRule
from protocols.topology import Complete, GraphSpec, SmallWorld, Topology

__all__ = ["GossipLearner", "GossipLearning"]

LEARNING_BY_ROUND = """SELECT run_id, round,
        max(value) FILTER (name = 'accuracy.mean') AS accuracy,
        max(value) FILTER (name = 'accuracy.min') AS accuracy_min,
        max(value) FILTER (name = 'accuracy.max') AS accuracy_max,
        sqrt(max(value) FILTER (name = 'accuracy.variance')) AS accuracy_std,
        max(value) FILTER (name = 'loss.mean') AS loss,
        max(value) FILTER (name = 'layer_variance_1.mean') AS layer_1_variance_ratio,
        max(value) FILTER (name = 'layer_variance_2.mean') AS layer_2_variance_ratio,
        sqrt(max(value) FILTER (name = 'variance')) AS consensus_distance,
        max(value) FILTER (name = 'messages')::BIGINT AS messages
    FROM metrics GROUP BY run_id, round ORDER BY run_id, round"""


class GossipLearning(Gossip):
    """Gossip whose agents are `GossipLearner`s: models travel as message vectors (kind ``model``).

    Args:
        graph, fanout, mode: As `Gossip`. The default, a small world where each agent pushes its
            model to one random neighbour a round, is classic gossip learning.
        merge: ``corrected`` (variance-corrected averaging), ``average`` (plain), ``none``
            (isolated learners), or ``federated``: plain averaging over everyone every round
            (a complete graph, every neighbour heard: federated averaging's model).
        model: ``mlp`` (two layers, `hidden` units) or ``logistic``.
        dataset: ``synthetic`` (seeded, no download) or ``digits`` (scikit-learn's bundled set).
        split: ``iid`` or ``non-iid`` (agents see one or two classes).
        lr, local_steps, batch: Gradient steps per round on the agent's shard (batch 0: all of it).
        samples: Training examples of the synthetic set (a quarter as many test examples).
        test_samples: Test examples each agent is measured on every round.
        data_seed: Seed of the data set and of the IID shuffle.
    """

    name = "gossip_learning"
    kinds: ClassVar[tuple[str, ...]] = ("model",)
    default_field = "params"
    default_messages: ClassVar[str | None] = "aggregate"
    instructions = (
        "Each round you merge the models you received, train on your own data, and send your model."
    )

    def __init__(
        self,
        graph: nx.Graph | GraphSpec | Topology | str = SmallWorld(k=4, p=0.2),
        *,
        fanout: int | None = 1,
        mode: GossipMode = "push",
        merge: str = "corrected",
        model: str = "mlp",
        hidden: int = 32,
        dataset: str = "synthetic",
        split: str = "iid",
        lr: float = 0.1,
        local_steps: int = 1,
        batch: int = 0,
        samples: int = 4000,
        test_samples: int = 500,
        data_seed: int = 0,
    ) -> None:
        if merge not in (*MERGES, "federated"):
            raise ConfigError(f"Unknown merge {merge!r}; use one of: {', '.join((*MERGES, 'federated'))}.")
        if dataset not in DATASETS:
            raise ConfigError(f"Unknown dataset {dataset!r}; use one of: {', '.join(DATASETS)}.")
        if merge == "federated":
            graph, fanout, mode = Complete(), None, "push"
        super().__init__(graph, fanout=fanout, mode=mode, tolerance=0.0)
        self.merge = merge
        self.model, self.hidden, self.dataset, self.split = model, hidden, dataset, split
        self.lr, self.local_steps, self.batch = lr, local_steps, batch
        self.samples, self.test_samples, self.data_seed = samples, test_samples, data_seed
        _ = self.layout  # a bad model fails here, before a run

    @property
    def layout(self) -> Layout:
        """The model's parameter layout on this data set."""
        data = load(self.dataset, self.data_seed, self.samples)
        return Layout.of(self.model, data.inputs, self.hidden, data.classes)

    def stop_rule(self, field: str | None) -> StopRule | None:
        return None  # learning runs its round budget

    def watched_fields(self) -> tuple[str, ...]:
        layers = ("layer_variance_1", "layer_variance_2") if self.model == "mlp" else ("layer_variance_1",)
        return ("accuracy", "loss", *layers)

    def views(self) -> Mapping[str, str]:
        return {"learning_by_round": LEARNING_BY_ROUND}

    def default_population(self, n: int, agent: type[Agent] | None = None, **state: Any) -> Population:
        """`n` learners (or `agent`s) with Xavier-initialised models and this protocol's settings."""
        cls = agent or GossipLearner
        layout = self.layout
        settings: dict[str, Any] = {
            "params": Xavier(layout, shared=self.merge == "federated"),
            "model": self.model,
            "hidden": self.hidden,
            "dataset": self.dataset,
            "split": self.split,
            "merge": "average" if self.merge == "federated" else self.merge,
            "lr": self.lr,
            "local_steps": self.local_steps,
            "batch": self.batch,
            "samples": self.samples,
            "test_samples": self.test_samples,
            "data_seed": self.data_seed,
            "n_agents": n,
        }
        settings.update(state)
        settings.setdefault("dim", layout.size)
        return Population.of(cls, n, **settings)

    def describe(self) -> dict[str, object]:
        out = super().describe()
        out.update(
            name=self.name,
            merge=self.merge,
            model=self.model,
            hidden=self.hidden,
            dataset=self.dataset,
            split=self.split,
            lr=self.lr,
            local_steps=self.local_steps,
            batch=self.batch,
            samples=self.samples,
            test_samples=self.test_samples,
            data_seed=self.data_seed,
            parameters=self.layout.size,
        )
        return out

    def __repr__(self) -> str:
        return (
            f"GossipLearning(merge={self.merge!r}, model={self.model!r}, dataset={self.dataset!r}, "
            f"split={self.split!r})"
        )
