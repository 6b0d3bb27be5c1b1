"""The influence-matrix fit: recovers a known W from a logged DeGroot run, and says when it cannot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest

from agents import OpinionAgent, Population, Uniform
from orchestrator import ConfigError, fit_influence, launch, trajectories
from orchestrator.fitting import simplex_least_squares
from protocols import Gossip, influence_graph


def _known_w(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = np.zeros((n, n))
    for i in range(n):
        others = rng.choice(np.delete(np.arange(n), i), 3, replace=False)
        w[i, others] = rng.random(3)
        w[i, i] = rng.random()
    return w / w.sum(axis=1, keepdims=True)


def _run(
    log: Path, n: int, opinion: Any, gossip: Gossip, rounds: int, seed: int, state_every: int = 1
) -> Any:
    """A logged DeGroot run of `n` OpinionAgents, the whole round budget."""
    pop = Population.of(OpinionAgent, n, opinion=opinion)
    return launch(
        pop, gossip, rounds=rounds, seed=seed, log=log, runtime="local", state_every=state_every, stop="never"
    )


def test_fit_recovers_a_known_w_from_logged_degroot_runs(log_path: Path) -> None:
    n = 15
    w = _known_w(n, 1)
    graph = influence_graph(w)
    gossip = Gossip(graph, fanout=None, weight="weight")
    runs = [
        _run(log_path, n, Uniform(0.0, 1.0), gossip, 12, seed) for seed in range(4)
    ]  # four starts pin every weight
    data = [trajectories(log_path, r.run_id) for r in runs]
    assert data[0].values.shape == (12, n) and list(data[0].rounds) == list(range(12))
    on_graph = fit_influence(data, support=graph)
    assert np.max(np.abs(on_graph.weights - w)) < 1e-8
    assert on_graph.r2 > 0.999999 and on_graph.transitions == 4 * 11
    dense = fit_influence(data)  # no support given: every pair may weigh
    assert np.max(np.abs(dense.weights - w)) < 1e-6
    assert np.allclose(dense.weights.sum(axis=1), 1.0) and (dense.weights >= 0).all()
    lagged = fit_influence(data, lag=2)  # the wrong lag explains less
    assert lagged.r2 < on_graph.r2 and lagged.lag == 2


def test_a_fixed_w_explains_sampled_gossip_only_in_part(log_path: Path) -> None:
    """Push-pull gossip with fanout 2 is averaging with a random W each round: a fixed W fits it only roughly."""
    n = 40
    graph = nx.connected_watts_strogatz_graph(n, 4, 0.2, seed=2)
    run = _run(log_path, n, Uniform(0.0, 1.0), Gossip(graph, fanout=1, mode="push-pull"), 30, 3)
    fit = fit_influence(trajectories(log_path, run.run_id), support=graph)
    assert 0.5 < fit.r2 < 0.99  # most of the variance, not all: the real W changes every round
    assert np.allclose(fit.weights.sum(axis=1), 1.0)


def test_groups_average_agents_into_macro_agents(log_path: Path) -> None:
    run = _run(log_path, 6, np.arange(6) / 5, Gossip(nx.cycle_graph(6), fanout=None), 3, 0)
    whole = trajectories(log_path, run.run_id)
    grouped = trajectories(log_path, run.run_id, groups=[0, 0, 1, 1, 1, 2])
    assert list(grouped.labels) == [0, 1, 2]
    assert np.allclose(grouped.values[:, 1], whole.values[:, 2:5].mean(axis=1))


def test_simplex_least_squares_meets_the_optimality_conditions() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        a, b = rng.normal(size=(30, 6)), rng.normal(size=30)
        w = simplex_least_squares(a, b)
        assert abs(w.sum() - 1) < 1e-12 and (w >= 0).all()
        grad = a.T @ (a @ w - b)
        nu = -grad[w > 0].mean()
        assert np.allclose(grad[w > 0] + nu, 0, atol=1e-9)  # stationary on the support
        assert (grad[w == 0] + nu >= -1e-9).all()  # no zero weight wants to grow
        for _ in range(50):  # and no random point of the simplex does better
            v = rng.dirichlet(np.ones(6))
            assert np.sum((a @ w - b) ** 2) <= np.sum((a @ v - b) ** 2) + 1e-12


def test_fit_needs_every_round_logged(log_path: Path) -> None:
    run = _run(log_path, 10, Uniform(), Gossip(nx.cycle_graph(10), fanout=None), 25, 0, state_every=10)
    with pytest.raises(ConfigError, match="state_every=1"):
        trajectories(log_path, run.run_id)
    with pytest.raises(ConfigError, match="No run 'nope'"):
        trajectories(log_path, "nope")
    with pytest.raises(ConfigError, match="lag must be"):
        fit_influence(np.zeros((5, 3)), lag=-1)
