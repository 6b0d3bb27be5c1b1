"""The learning inside gossip learning: data sets, their shards, small models in numpy, and the
two ways of merging models. Everything works on a block of agents at once: parameters are one
``(agents, P)`` array, and each agent's model is a row of it.

A model is logistic regression (one layer) or a two-layer perceptron (ReLU hidden layer); its
parameters are one vector: each layer's weights (row-major, fan_in x fan_out) then its biases.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from agents.errors import ConfigError
from agents.population import Normal

__all__ = [
    "DATASETS",
    "Data",
    "Layout",
    "Xavier",
    "load",
    "merge",
    "shard_indices",
]

DATASETS = ("synthetic", "digits")
MERGES = ("average", "corrected", "none")
Merge = Literal["average", "corrected", "none"]


@dataclass(frozen=True)
class Data:
    """A classification data set, split into training and test parts."""

    x_train: NDArray[np.float64]
    y_train: NDArray[np.int64]
    x_test: NDArray[np.float64]
    y_test: NDArray[np.int64]

    @property
    def inputs(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


@lru_cache(maxsize=4)
def load(dataset: str, seed: int, samples: int) -> Data:
    """The data set `dataset`, the same in every process for the same arguments.

    ``synthetic``: 10 classes in 64 dimensions, each a mixture of two Gaussian clusters around
    seeded prototypes (not linearly separable by class means alone), `samples` training and
    ``samples // 4`` test points; no download, no extra package. ``digits``: scikit-learn's
    bundled 8x8 digits (1,797 images, scaled to [0, 1]; install ``moot[learning]``), split
    80/20 by `seed`.
    """
    rng = np.random.default_rng([seed, 0x6C6561726E])
    if dataset == "synthetic":
        classes, dim = 10, 64
        prototypes = rng.normal(0.0, 1.0, (classes, 2, dim))
        total = samples + samples // 4
        y = rng.integers(0, classes, total)
        mode = rng.integers(0, 2, total)
        x = prototypes[y, mode] + rng.normal(0.0, 1.6, (total, dim))
        return Data(x[:samples], y[:samples], x[samples:], y[samples:])
    if dataset == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise ConfigError(
                "dataset='digits' needs scikit-learn (bundled data, no download): pip install "
                "'moot[learning]'; or use dataset='synthetic'."
            ) from None
        bunch = load_digits()
        x, y = np.asarray(bunch.data, np.float64) / 16.0, np.asarray(bunch.target, np.int64)
        order = rng.permutation(len(y))
        cut = int(0.8 * len(y))
        return Data(x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]])
    raise ConfigError(f"Unknown dataset {dataset!r}; use one of: {', '.join(DATASETS)}.")


def shard_indices(
    data: Data, n_agents: int, split: str, seed: int, ids: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Each agent's training examples ``(len(ids), m)``: ``m = len(train) // n_agents`` each.

    ``iid``: a seeded shuffle, cut in equal parts. ``non-iid``: sorted by label, cut in equal
    parts, so an agent sees one or two classes.
    """
    n = len(data.y_train)
    m = n // n_agents
    if m < 1:
        raise ConfigError(
            f"{n} training examples for {n_agents} agents leaves none per agent; use more samples "
            "(-o samples=...) or fewer agents."
        )
    if split == "iid":
        order = np.random.default_rng([seed, 0x5348]).permutation(n)
    elif split == "non-iid":
        order = np.argsort(data.y_train, kind="stable")
    else:
        raise ConfigError(f"Unknown split {split!r}; use 'iid' or 'non-iid'.")
    return order[: m * n_agents].reshape(n_agents, m)[ids]


@dataclass(frozen=True)
class Layout:
    """Where each layer's weights and biases sit in the parameter vector.

    Attributes:
        sizes: Units per layer, inputs first: ``(64, 10)`` logistic, ``(64, 32, 10)`` a perceptron.
    """

    sizes: tuple[int, ...]

    @classmethod
    def of(cls, model: str, inputs: int, hidden: int, classes: int) -> Layout:
        if model == "logistic":
            return cls((inputs, classes))
        if model == "mlp":
            if hidden < 1:
                raise ConfigError(f"hidden must be >= 1 for model='mlp', got {hidden}.")
            return cls((inputs, hidden, classes))
        raise ConfigError(f"Unknown model {model!r}; use 'logistic' or 'mlp'.")

    @property
    def layers(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) per layer."""
        return list(zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def size(self) -> int:
        """Parameters in all."""
        return sum(a * b + b for a, b in self.layers)

    def weights(self) -> list[slice]:
        """The slice of each layer's weights in the vector."""
        out, at = [], 0
        for a, b in self.layers:
            out.append(slice(at, at + a * b))
            at += a * b + b
        return out

    def xavier(self) -> list[float]:
        """Each layer's Xavier (Glorot) weight variance, 2 / (fan_in + fan_out)."""
        return [2.0 / (a + b) for a, b in self.layers]

    def unpack(self, params: NDArray[np.float64]) -> list[tuple[NDArray[np.float64], NDArray[np.float64]]]:
        """(weights ``(agents, fan_in, fan_out)``, biases ``(agents, fan_out)``) per layer: views."""
        out, at, k = [], 0, len(params)
        for a, b in self.layers:
            w = params[:, at : at + a * b].reshape(k, a, b)
            at += a * b
            out.append((w, params[:, at : at + b]))
            at += b
        return out

    def logits(self, params: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Each agent's logits on its own inputs ``x`` ``(agents, m, inputs)``, or on shared
        inputs ``(m, inputs)``."""
        h = x
        layers = self.unpack(params)
        for j, (w, b) in enumerate(layers):
            z = np.matmul(h, w) + b[:, None, :]  # (m, i) or (k, m, i) times (k, i, o): batched BLAS
            h = np.maximum(z, 0.0) if j < len(layers) - 1 else z
        return h

    def gradient(
        self, params: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Each agent's mean cross-entropy on its batch (``x`` ``(agents, m, inputs)``, ``y``
        ``(agents, m)``), and its gradient ``(agents, P)``."""
        layers = self.unpack(params)
        acts, zs = [x], []
        for j, (w, b) in enumerate(layers):
            z = np.matmul(acts[-1], w) + b[:, None, :]
            zs.append(z)
            acts.append(np.maximum(z, 0.0) if j < len(layers) - 1 else z)
        logits = acts[-1]
        shifted = logits - logits.max(axis=2, keepdims=True)
        p = np.exp(shifted)
        p /= p.sum(axis=2, keepdims=True)
        k, m = y.shape
        rows, cols = np.arange(k)[:, None], np.arange(m)[None, :]
        loss = -np.log(np.maximum(p[rows, cols, y], 1e-300)).mean(axis=1)
        delta = p
        delta[rows, cols, y] -= 1.0
        delta /= m
        grads: list[NDArray[np.float64]] = []
        for j in range(len(layers) - 1, -1, -1):
            w, _ = layers[j]
            gw = np.matmul(acts[j].transpose(0, 2, 1), delta)
            gb = delta.sum(axis=1)
            grads[:0] = [gw.reshape(k, -1), gb]
            if j > 0:
                delta = np.matmul(delta, w.transpose(0, 2, 1)) * (zs[j - 1] > 0)
        return loss, np.concatenate(grads, axis=1)

    def accuracy(
        self, params: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.int64]
    ) -> NDArray[np.float64]:
        """Each agent's accuracy on shared examples ``x`` ``(m, inputs)``."""
        hit: NDArray[np.float64] = (self.logits(params, x).argmax(axis=2) == y[None, :]).mean(axis=1)
        return hit

    def variance_ratios(self, params: NDArray[np.float64]) -> NDArray[np.float64]:
        """Each agent's weight variance per layer over the layer's Xavier value ``(agents, layers)``."""
        return np.stack([params[:, s].var(axis=1) / x for s, x in zip(self.weights(), self.xavier())], axis=1)


@dataclass(frozen=True, slots=True)
class Xavier:
    """Initial parameters: every layer's weights drawn from N(0, 2 / (fan_in + fan_out)) (Glorot
    normal), biases 0; counter-based by agent id, so the same whatever the sharding. A
    `Population` column for a vector field (``params=Xavier(layout)``).

    Attributes:
        shared: Every agent starts from one model (agent 0's draw), as federated learning's
            clients start from the server's; else each draws its own (gossip learning).
    """

    layout: Layout
    shared: bool = False

    def draw_vectors(self, seed: int, ids: NDArray[np.int64], salt: int, dim: int) -> NDArray[np.float64]:
        if dim != self.layout.size:
            raise ConfigError(
                f"The model has {self.layout.size} parameters but the population's dim is {dim}; give "
                f"Population.of(..., dim={self.layout.size})."
            )
        out = np.zeros((len(ids), dim))
        if not len(ids):
            return out
        if self.shared:
            ids = np.zeros_like(ids)
        j = 0
        for (a, b), var in zip(self.layout.layers, self.layout.xavier()):
            normal = Normal(0.0, float(np.sqrt(var)))
            for c in range(a * b):
                out[:, j + c] = normal.draw(seed, ids, salt, j + c)
            j += a * b + b
        return out


def merge(
    params: NDArray[np.float64],
    received: NDArray[np.floating[Any]],
    local: NDArray[np.int64],
    counts: NDArray[np.int64],
    sums: NDArray[np.float64],
    layout: Layout,
    how: str,
) -> NDArray[np.float64]:
    """Each agent's model merged with those it received (an agent that got none keeps its own).

    ``average``: the mean of its own and the received models (FedAvg's operation; on a complete
    graph every agent gets the federated average). ``corrected``: that mean, with each layer's
    weights rescaled about their mean to the mean of the merged models' variances of that layer
    (variance-corrected averaging: averaging k + 1 uncorrelated models divides the variance
    by k + 1; this restores it). ``none``: no merging (isolated learners).

    Args:
        received: The received models ``(messages, P)``; ``local`` the receiver of each.
        counts: Models received per agent; ``sums`` their sum per agent ``(agents, P)``.
    """
    if how == "none":
        return params
    heard = counts > 0
    mean = (params + sums) / (1.0 + counts)[:, None]
    if how == "corrected":
        for s in layout.weights():
            own = params[:, s].var(axis=1)
            theirs = np.bincount(local, weights=received[:, s].var(axis=1), minlength=len(params))
            target = (own + theirs) / (1.0 + counts)
            w = mean[:, s]
            centre = w.mean(axis=1, keepdims=True)
            now = w.var(axis=1)
            scale = np.sqrt(np.divide(target, now, out=np.ones_like(now), where=now > 0))
            mean[:, s] = (w - centre) * scale[:, None] + centre
    elif how != "average":
        raise ConfigError(f"Unknown merge {how!r}; use one of: {', '.join(MERGES)}.")
    return np.where(heard[:, None], mean, params)
