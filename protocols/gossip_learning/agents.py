"""The gossip learner: one small model per agent, trained on its own shard, merged with the
models its neighbours send."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from agents.agent import Agent
from agents.batch import Inbox, MessageBatch
from agents.context import BatchContext
from agents.errors import ConfigError
from agents.vector import Vector, vector_field
from protocols.gossip_learning.learning import Layout, load, merge, shard_indices

__all__ = ["GossipLearner"]


class GossipLearner(Agent):
    """A gossip learner (vectorised): each round it merges the models it received, takes
    `local_steps` gradient steps on its own training shard, measures itself on the test set,
    and sends its model (a message vector of kind ``model``) to its neighbours.

    The learning settings are fields, the same for every agent of a run (`GossipLearning` sets
    them from its options); the model is the vector field `params`.

    Attributes:
        params: The model's parameters (`learning.Layout`: weights then biases, per layer).
        accuracy: Test accuracy after this round's training (on ``test_samples`` test examples).
        loss: Mean training cross-entropy of this round's last step.
        layer_variance_1, layer_variance_2: Weight variance of layer 1 (2) over its Xavier value
            (NaN for a layer the model does not have).
    """

    params: Vector = vector_field(0.0)
    accuracy: float = 0.0
    loss: float = 0.0
    layer_variance_1: float = 1.0
    layer_variance_2: float = float("nan")
    model: str = "mlp"
    dataset: str = "synthetic"
    split: str = "iid"
    merge: str = "corrected"
    hidden: int = Field(default=32, ge=1)
    lr: float = Field(default=0.1, ge=0.0)
    local_steps: int = Field(default=1, ge=0)
    batch: int = Field(default=0, ge=0)
    data_seed: int = 0
    samples: int = Field(default=4000, ge=1)
    n_agents: int = Field(default=100, ge=1)
    test_samples: int = Field(default=500, ge=1)

    unlogged: ClassVar[tuple[str, ...]] = ("params",)
    """The model (P numbers per agent) stays out of ``states``; its spread is in the metrics."""

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        cfg = Settings.of(state, ctx.ids)
        data = load(cfg.dataset, cfg.data_seed, cfg.samples)
        layout = Layout.of(cfg.model, data.inputs, cfg.hidden, data.classes)
        params = state["params"]
        if ctx.round > 0 and len(inbox.batch):
            got = inbox.vectors(params.shape[1])
            params = merge(params, got, inbox.local, inbox.counts, inbox.sum(got), layout, cfg.merge)
        shard = shard_indices(data, cfg.n_agents, cfg.split, cfg.data_seed, ctx.ids)
        x, y = data.x_train[shard], data.y_train[shard]
        for step in range(cfg.local_steps):
            xb, yb = x, y
            if 0 < cfg.batch < x.shape[1]:  # a seeded minibatch per agent and step
                pick = np.argsort(_keys(ctx, step, x.shape[1]), axis=1)[:, : cfg.batch]
                xb, yb = np.take_along_axis(x, pick[:, :, None], 1), np.take_along_axis(y, pick, 1)
            loss, grad = layout.gradient(params, xb, yb)
            params = params - cfg.lr * grad
            state["loss"] = loss
        state["params"] = params
        t = cfg.test_samples
        state["accuracy"] = layout.accuracy(params, data.x_test[:t], data.y_test[:t])
        ratios = layout.variance_ratios(params)
        state["layer_variance_1"] = ratios[:, 0]
        state["layer_variance_2"] = ratios[:, 1] if ratios.shape[1] > 1 else np.full(len(params), np.nan)
        return ctx.broadcast("model", vector=params)


def _keys(ctx: BatchContext, step: int, m: int) -> NDArray[np.float64]:
    """Counter-based keys ``(agents, m)`` whose order picks each agent's minibatch."""
    return np.stack([ctx.uniform(1 + step * m + j) for j in range(m)], axis=1)


@dataclass(frozen=True)
class Settings:
    """The run's learning settings, read from a block's state: one value per field for all."""

    model: str
    dataset: str
    split: str
    merge: str
    hidden: int
    lr: float
    local_steps: int
    batch: int
    data_seed: int
    samples: int
    n_agents: int
    test_samples: int

    @classmethod
    def of(cls, state: dict[str, NDArray[Any]], ids: NDArray[np.int64]) -> Settings:
        values: dict[str, Any] = {}
        for f in fields(cls):
            col = state[f.name]
            if len(col) and not (col == col[0]).all():
                i = int(np.flatnonzero(col != col[0])[0])
                raise ConfigError(
                    f"GossipLearner.{f.name} differs between agents ({col[0]!r} for agent {int(ids[0])}, "
                    f"{col[i]!r} for agent {int(ids[i])}); every learner of a run shares its learning "
                    "settings."
                )
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            values[f.name] = kind(col[0])
        return cls(**values)
