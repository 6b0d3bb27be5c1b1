"""The local objectives of distributed black-box consensus optimisation: standard test functions,
each agent's shifted by its own offset, so that the agents disagree on where the optimum is and
the global objective (their sum) has its optimum somewhere between.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from agents.errors import ConfigError

__all__ = ["FUNCTIONS", "evaluate", "global_objective"]

FUNCTIONS = ("sphere", "rosenbrock", "rastrigin", "ackley")
"""Sphere (convex), Rosenbrock (a curved valley), Rastrigin and Ackley (many local minima)."""


def evaluate(function: str, x: NDArray[np.float64], shift: NDArray[np.float64]) -> NDArray[np.float64]:
    """``f(x - shift)`` per row of ``x`` ``(k, dim)`` (each row its own shift): every function has
    its minimum, 0, at ``x = shift``."""
    z = x - shift
    if function == "sphere":
        out: NDArray[np.float64] = np.einsum("ij,ij->i", z, z)
    elif function == "rastrigin":
        out = 10.0 * z.shape[1] + (z * z - 10.0 * np.cos(2.0 * math.pi * z)).sum(axis=1)
    elif function == "ackley":
        out = (
            -20.0 * np.exp(-0.2 * np.sqrt((z * z).mean(axis=1)))
            - np.exp(np.cos(2.0 * math.pi * z).mean(axis=1))
            + 20.0
            + math.e
        )
    elif function == "rosenbrock":
        u = z + 1.0  # the classic valley, its minimum moved to z = 0
        out = (100.0 * (u[:, 1:] - u[:, :-1] ** 2) ** 2 + (u[:, :-1] - 1.0) ** 2).sum(axis=1)
    else:
        raise ConfigError(f"Unknown function {function!r}; use one of: {', '.join(FUNCTIONS)}.")
    return out


def global_objective(function: str, point: NDArray[np.float64], shifts: NDArray[np.float64]) -> float:
    """The global objective at one point: the sum of every agent's local objective there."""
    return float(evaluate(function, np.broadcast_to(point, shifts.shape), shifts).sum())
