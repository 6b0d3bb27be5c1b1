"""Graphs and log readers shared by the opinion-dynamics tests."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from orchestrator import query
from protocols import Topology


def complete_replicas(sizes: list[int]) -> tuple[Topology, NDArray[np.int64]]:
    """Disjoint complete graphs of the given sizes, and each node's component index.

    Many independent small systems in one run: one launch instead of hundreds.
    """
    src, dst, comp = [], [], []
    start = 0
    for c, n in enumerate(sizes):
        u = np.repeat(np.arange(n), n - 1)
        v = (u + np.tile(np.arange(1, n), n)) % n
        src.append(u + start)
        dst.append(v + start)
        comp.append(np.full(n, c))
        start += n
    topo = Topology.from_edges(start, np.concatenate(src), np.concatenate(dst), undirected=False)
    return topo, np.concatenate(comp)


def graph_replicas(graph: nx.Graph, k: int) -> tuple[Topology, NDArray[np.int64]]:
    """k disjoint copies of `graph` (nodes 0..n-1), and each node's copy index."""
    n = graph.number_of_nodes()
    e = np.array(graph.edges(), np.int64)
    shift = np.repeat(np.arange(k) * n, len(e))
    u, v = np.tile(e[:, 0], k) + shift, np.tile(e[:, 1], k) + shift
    return Topology.from_edges(n * k, u, v, undirected=True), np.repeat(np.arange(k), n)


def states_at(log: Path, run_id: str, field: str, round: int | None = None) -> NDArray[np.float64]:
    """A field's values by agent id after `round` (default: the last logged round)."""
    where = "(SELECT max(round) FROM states)" if round is None else str(round)
    t = query(
        log,
        f"SELECT value FROM states WHERE field = '{field}' AND round = {where} ORDER BY agent",
        run_id=run_id,
    )
    return t.column("value").to_numpy()


def metric(log: Path, run_id: str, name: str) -> NDArray[np.float64]:
    """A metric's value in every round, in round order."""
    t = query(log, f"SELECT value FROM metrics WHERE name = '{name}' ORDER BY round", run_id=run_id)
    return t.column("value").to_numpy()


def states_hash(log: Path, run_id: str) -> str:
    """md5 of a run's states, in (round, agent, field) order."""
    t = query(
        log,
        "SELECT md5(string_agg(concat_ws(',', round, agent, field, value, vector), ';' ORDER BY round, agent, field)) AS h "
        "FROM states",
        run_id=run_id,
    )
    return str(t.column("h")[0].as_py())
