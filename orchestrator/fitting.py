"""Does iterative averaging explain these trajectories? Fit an influence matrix to logged opinions.

The question of the Weibo sentiment study (He, Proskurnikov & Sedakov, 2025):
given the opinion of n (macro-)agents over time, find the row-stochastic W,
optionally with a perception lag tau, that best explains

    x_i(t+1) = W[i, i] x_i(t) + sum_{j != i} W[i, j] x_j(t - tau)

by least squares (W >= 0, rows summing to 1), and report the share of the
variance it explains.

Example:
    >>> traj = trajectories("run.duckdb", run_id)          # needs state_every=1
    >>> fit = fit_influence(traj, support=graph)           # or lag=2, or no support
    >>> fit.r2, fit.weights
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from orchestrator.errors import ConfigError

__all__ = ["InfluenceFit", "Trajectory", "fit_influence", "simplex_least_squares", "trajectories"]

MAX_AGENTS = 2000


@dataclass(frozen=True)
class Trajectory:
    """Opinions over consecutive rounds.

    Attributes:
        rounds: The rounds, ascending and consecutive.
        values: ``values[t, i]``: agent (or group) i after round ``rounds[t]``.
        labels: The agent ids or group labels of the columns.
    """

    rounds: NDArray[np.int64]
    values: NDArray[np.float64]
    labels: NDArray[np.int64]


def trajectories(
    log: str | os.PathLike[str],
    run_id: str,
    field: str = "opinion",
    *,
    groups: Sequence[int] | NDArray[np.int64] | None = None,
    from_round: int = 0,
) -> Trajectory:
    """Read one run's logged trajectories of `field` (the run needs ``state_every=1``).

    Args:
        groups: One group label per agent (macro-agents, as the Weibo study's
            blogs): each column is then a group's mean. None: one column per agent.
        from_round: The first round kept. The default 0 skips the initial state
            (round -1): in round 0 no agent has heard anything yet, so the step
            from -1 to 0 is not an averaging step.

    Raises:
        ConfigError: The run is unknown, has no such field, or its states were not
            logged every round.
    """
    import re

    from orchestrator.log import query

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", field):
        raise ConfigError(f"field must be a state field name, got {field!r}; e.g. field='opinion'.")
    runs = query(log, "SELECT count(*) AS n FROM runs", run_id=run_id).column("n")
    if runs[0].as_py() == 0:
        raise ConfigError(
            f"No run {run_id!r} in {os.fspath(log)!r}; list them with: moot sql LOG 'FROM runs'."
        )
    table = query(
        log,
        f"SELECT round, agent, value FROM states WHERE field = '{field}' AND round >= {int(from_round)} "
        "ORDER BY round, agent",
        run_id=run_id,
    )
    if table.num_rows == 0:
        raise ConfigError(
            f"Run {run_id!r} logged no {field!r} states from round {from_round}; check the field."
        )
    rnd = table.column("round").to_numpy().astype(np.int64)
    agent = table.column("agent").to_numpy().astype(np.int64)
    value = table.column("value").to_numpy().astype(np.float64)
    rounds = np.unique(rnd)
    if len(rounds) < 2 or np.any(np.diff(rounds) != 1):
        raise ConfigError(
            f"Run {run_id!r} logged {field!r} in rounds {rounds[:6].tolist()}...; fitting needs every round. "
            "Run it with state_every=1 (moot run --state-every 1)."
        )
    ids = np.unique(agent)
    grid = np.full((len(rounds), len(ids)), np.nan)
    grid[rnd - rounds[0], np.searchsorted(ids, agent)] = value
    if groups is None:
        return Trajectory(rounds, grid, ids)
    g = np.asarray(groups)
    if len(g) != len(ids):
        raise ConfigError(f"groups has {len(g)} labels for {len(ids)} agents; give one per agent.")
    labels, col = np.unique(g, return_inverse=True)
    sums = np.zeros((len(rounds), len(labels)))
    np.add.at(sums.T, col, grid.T)
    return Trajectory(rounds, sums / np.bincount(col, minlength=len(labels)), labels.astype(np.int64))


@dataclass(frozen=True)
class InfluenceFit:
    """A fitted influence matrix and how well it explains the data.

    Attributes:
        weights: The row-stochastic W (n x n), ``weights[i, j]`` = i's weight on j.
        r2: Share of the variance of x(t+1) explained, pooled over agents (each
            agent's series centred on its own mean): 1 - SS_res / SS_tot.
        r2_by_agent: The same per agent (NaN for an agent whose series is constant).
        rmse: Root-mean-square residual.
        lag: The lag tau used.
        transitions: Number of (t, t+1) steps used, over all trajectories.
    """

    weights: NDArray[np.float64]
    r2: float
    r2_by_agent: NDArray[np.float64]
    rmse: float
    lag: int
    transitions: int


def _stack(data: Sequence[NDArray[np.float64]], lag: int) -> tuple[NDArray[np.float64], ...]:
    own, other, target = [], [], []
    for x in data:
        if len(x) < lag + 2:
            continue
        own.append(x[lag:-1])
        other.append(x[: len(x) - 1 - lag])
        target.append(x[lag + 1 :])
    if not own:
        raise ConfigError(f"Too few rounds to fit with lag {lag}: each trajectory needs at least {lag + 2}.")
    return np.concatenate(own), np.concatenate(other), np.concatenate(target)


def fit_influence(
    data: Trajectory | NDArray[np.float64] | Sequence[Trajectory | NDArray[np.float64]],
    *,
    lag: int = 0,
    support: object | None = None,
) -> InfluenceFit:
    """Least-squares row-stochastic influence matrix for one or more trajectories.

    Args:
        data: A `Trajectory`, a (rounds x agents) array, or several of them (runs
            of the same agents from different starts: more data, better identified).
        lag: Perception delay tau: agent i hears the others as they were tau rounds
            earlier (its own opinion is always the current one).
        support: Which weights may be non-zero: a networkx graph (an edge j -> i,
            or an undirected edge, lets i weigh j) or an (n x n) boolean array;
            an agent always weighs itself. None: every pair.

    Raises:
        ConfigError: Too few rounds, more than 2,000 columns, NaNs, or a support of the wrong size.
    """
    if isinstance(data, (Trajectory, np.ndarray)):
        data = [data]
    arrays = [np.asarray(d.values if isinstance(d, Trajectory) else d, np.float64) for d in data]
    n = arrays[0].shape[1]
    if any(a.ndim != 2 or a.shape[1] != n for a in arrays):
        raise ConfigError("Every trajectory must be a (rounds x agents) array over the same agents.")
    if n > MAX_AGENTS:
        raise ConfigError(
            f"{n:,} columns is too many to fit a dense W (at most {MAX_AGENTS:,}); group agents into "
            "macro-agents with trajectories(..., groups=labels)."
        )
    if any(np.isnan(a).any() for a in arrays):
        raise ConfigError(
            "The trajectories have NaNs (an agent missing in a round); drop those agents or rounds."
        )
    if isinstance(lag, bool) or not isinstance(lag, int) or lag < 0:
        raise ConfigError(f"lag must be a whole number >= 0, got {lag!r}.")
    allowed = _support(support, n)
    own, other, target = _stack(arrays, lag)
    w = np.zeros((n, n))
    residual = np.empty_like(target)
    for i in range(n):
        cols = np.flatnonzero(allowed[i])
        a = other[:, cols].copy()
        a[:, np.searchsorted(cols, i)] = own[:, i]
        w[i, cols] = simplex_least_squares(a, target[:, i])
        residual[:, i] = target[:, i] - a @ w[i, cols]
    centred = target - target.mean(axis=0)
    ss_tot = (centred**2).sum(axis=0)
    ss_res = (residual**2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        by_agent = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)
    total = float(ss_tot.sum())
    r2 = 1.0 - float(ss_res.sum()) / total if total > 0 else float("nan")
    return InfluenceFit(w, r2, by_agent, float(np.sqrt(np.mean(residual**2))), lag, len(target))


def _support(support: object | None, n: int) -> NDArray[np.bool_]:
    if support is None:
        return np.ones((n, n), bool)
    if hasattr(support, "edges"):
        mask = np.zeros((n, n), bool)
        for u, v in support.edges():  # type: ignore[attr-defined]
            if not (0 <= u < n and 0 <= v < n):
                raise ConfigError(f"The support graph has edge {(u, v)} outside the {n} columns.")
            mask[v, u] = True
            if not support.is_directed():  # type: ignore[attr-defined]
                mask[u, v] = True
    else:
        mask = np.asarray(support, bool).copy()
        if mask.shape != (n, n):
            raise ConfigError(f"support must be {n} x {n}, got {mask.shape}.")
    np.fill_diagonal(mask, True)
    return mask


def simplex_least_squares(
    a: NDArray[np.float64], b: NDArray[np.float64], max_iter: int = 500
) -> NDArray[np.float64]:
    """argmin ||a w - b|| over w >= 0 with sum(w) = 1 (a primal active-set method, as Lawson-Hanson's NNLS).

    Starts from the uniform weights, solves the equality-constrained problem on
    the free set, steps back to the boundary when that leaves the simplex, and
    frees the weight whose multiplier says it should grow, until none does.
    """
    k = a.shape[1]
    w = np.full(k, 1.0 / k)
    free = np.ones(k, bool)
    scale = max(float(np.abs(a).max(initial=0.0)), 1e-300) ** 2 * max(len(b), 1)
    tol = 1e-12 * scale
    for _ in range(max_iter):
        z = _equality_solve(a, b, free)
        while (z[free] < 0).any():
            neg = free & (z < 0)
            alpha = np.min(w[neg] / (w[neg] - z[neg]))
            w = w + alpha * (z - w)
            free &= w > 1e-15
            w[~free] = 0.0
            z = _equality_solve(a, b, free)
        w = z
        grad = a.T @ (a @ w - b)
        nu = -float(np.mean(grad[free]))
        slack = grad + nu
        slack[free] = np.inf
        j = int(np.argmin(slack))
        if slack[j] >= -tol:
            break
        free[j] = True
    return w


def _equality_solve(
    a: NDArray[np.float64], b: NDArray[np.float64], free: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """argmin ||a_F w_F - b|| with sum(w_F) = 1, zeros elsewhere (the KKT system, least squares)."""
    idx = np.flatnonzero(free)
    af = a[:, idx]
    m = len(idx)
    kkt = np.zeros((m + 1, m + 1))
    kkt[:m, :m] = af.T @ af
    kkt[:m, m] = kkt[m, :m] = 1.0
    rhs = np.concatenate([af.T @ b, [1.0]])
    sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
    out = np.zeros(a.shape[1])
    out[idx] = sol[:m]
    return out
