from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from orchestrator.errors import ConfigError
from protocols import ErdosRenyi, Grid, RingLattice, SmallWorld, Topology
from protocols.topology import BarabasiAlbert, Complete, GraphSpec


def edges(topo: Topology) -> set[tuple[int, int]]:
    return set(topo.to_networkx().edges())


def directed(g: nx.Graph) -> set[tuple[int, int]]:
    return set(g.edges()) | {(v, u) for u, v in g.edges()}


def test_ring_lattice_matches_networkx() -> None:
    assert edges(RingLattice(k=6).build(50, 0)) == directed(nx.watts_strogatz_graph(50, 6, 0))


def test_small_world_without_rewiring_is_the_lattice() -> None:
    assert edges(SmallWorld(k=4, p=0.0).build(40, 1)) == directed(nx.watts_strogatz_graph(40, 4, 0))


def test_small_world_is_seeded_and_keeps_size() -> None:
    a, b, c = (SmallWorld(k=4, p=0.2).build(2000, s) for s in (5, 5, 6))
    assert np.array_equal(a.targets, b.targets) and not np.array_equal(a.targets, c.targets)
    g = nx.Graph(a.to_networkx())
    assert 0.97 * 4000 <= g.number_of_edges() <= 4000  # a few rewirings collide
    assert nx.number_of_selfloops(g) == 0
    # Rewiring shortens paths: far below the lattice's n/(2k) = 250.
    assert nx.average_shortest_path_length(g) < 12


def test_grid_matches_networkx() -> None:
    g = nx.convert_node_labels_to_integers(nx.grid_2d_graph(6, 7), ordering="sorted")
    assert edges(Grid(cols=7).build(42, 0)) == directed(g)


def test_erdos_renyi_edge_count() -> None:
    topo = ErdosRenyi(p=0.01).build(1000, 3)
    g = nx.Graph(topo.to_networkx())
    expected = 0.01 * 1000 * 999 / 2
    assert 0.98 * expected <= g.number_of_edges() <= expected and nx.number_of_selfloops(g) == 0


def test_from_networkx_directed_and_positions() -> None:
    g = nx.gnp_random_graph(60, 0.1, seed=2, directed=True)
    topo = Topology.from_networkx(g)
    assert edges(topo) == set(g.edges())
    src = np.repeat(np.arange(topo.n), topo.out_degree)
    for e, (u, v) in enumerate(zip(src, topo.targets)):
        assert sorted(g.predecessors(int(v))).index(int(u)) == topo.in_position[e]
    assert np.array_equal(topo.in_degree, [g.in_degree(i) for i in range(60)])
    assert topo.has_edges(np.array([0, 1]), np.array([int(topo.neighbours(0)[0]), 1])).tolist() == [
        True,
        False,
    ]


def test_bad_node_labels_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="convert_node_labels_to_integers"):
        Topology.from_networkx(nx.Graph([("a", "b")]))


def test_bad_lattice_k() -> None:
    with pytest.raises(ConfigError, match="even k"):
        RingLattice(k=3).build(10, 0)


def test_barabasi_albert_is_preferential() -> None:
    from protocols import BarabasiAlbert

    n, m = 20_000, 2
    a, b = BarabasiAlbert(m=m).build(n, 4), BarabasiAlbert(m=m).build(n, 4)
    assert np.array_equal(a.targets, b.targets)
    g = nx.Graph(a.to_networkx())
    assert nx.number_of_selfloops(g) == 0 and nx.is_connected(g)
    assert 0.95 * (n - m) * m <= g.number_of_edges() <= (n - m) * m
    # Heavy tail, like networkx's own generator on the same size (uniform attachment would give ~15).
    ref = nx.barabasi_albert_graph(n, m, seed=4)
    ours, theirs = max(d for _, d in g.degree()), max(d for _, d in ref.degree())
    assert ours > 100 and 0.3 < ours / theirs < 3
    # Early nodes collect more links than late ones, on average.
    deg = a.out_degree
    assert deg[:100].mean() > 10 * deg[-10_000:].mean()


def test_influence_graph_round_trips_a_row_stochastic_matrix() -> None:
    import networkx as nx

    from protocols import influence_graph

    w = np.array([[0.5, 0.3, 0.2], [0.0, 1.0, 0.0], [0.6, 0.4, 0.0]])
    g = influence_graph(w)
    topo = Topology.from_networkx(g, "weight")
    # Edge j -> i carries W[i, j]; the diagonal is left to the agent.
    assert sorted(g.edges(data="weight")) == [(0, 2, 0.6), (1, 0, 0.3), (1, 2, 0.4), (2, 0, 0.2)]
    back = nx.to_numpy_array(topo.to_networkx(), nodelist=range(3)).T
    np.fill_diagonal(back, 1 - back.sum(axis=1))
    assert np.allclose(back, w)
    topo.check_weights()
    with pytest.raises(ConfigError, match=r"Row 1 of the influence matrix sums to 0\.9"):
        influence_graph([[1.0, 0.0], [0.5, 0.4]])


def test_weights_that_do_not_leave_room_for_the_agent_are_refused() -> None:
    import networkx as nx

    from protocols import Gossip

    g = nx.DiGraph()
    g.add_weighted_edges_from([(0, 2, 0.7), (1, 2, 0.6), (2, 0, 0.5), (0, 1, 0.1)])
    with pytest.raises(ConfigError, match=r"Agent 2 gives its in-neighbours weights summing to 1\.3"):
        Gossip(g, weight="weight").build(3, 0)
    g[0][2]["weight"] = -0.1
    with pytest.raises(ConfigError, match=r"Edge 0 -> 2 has weight -0\.1"):
        Gossip(g, weight="weight").build(3, 0)
    del g[0][1]["weight"]
    with pytest.raises(ConfigError, match=r"Edge \(0, 1\) has no 'weight' attribute"):
        Gossip(g, weight="weight").build(3, 0)
    with pytest.raises(ConfigError, match="reads edge weights from a networkx graph"):
        Gossip("small_world", weight="weight")


def test_complete_graph_matches_networkx_and_refuses_millions() -> None:
    import networkx as nx

    from protocols import Complete

    topo = Complete().build(7, 0)
    assert set(topo.to_networkx().edges()) == set(nx.complete_graph(7).to_directed().edges())
    with pytest.raises(ConfigError, match="complete graph on 1,000,000 agents"):
        Complete().build(1_000_000, 0)


_NAMED_SPECS = [
    RingLattice(k=4),
    SmallWorld(k=6, p=0.3),
    ErdosRenyi(p=0.01),
    Grid(),
    Grid(cols=16, torus=True),
    BarabasiAlbert(m=3),
    Complete(),
]


@pytest.mark.parametrize("spec", _NAMED_SPECS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("hosts", [1, 2, 3])
def test_graphs_built_in_the_hosts_are_the_graph_built_whole(spec: GraphSpec, hosts: int) -> None:
    """Each host's rows (and, after the hosts swap degrees and positions, every in-edge column
    routing reads) equal the driver-built graph's, and the digests add up to the whole's."""
    from orchestrator.host import shard_bounds
    from protocols.gossip import GossipRouter

    n, seed = 1024, 5
    whole = spec.build(n, seed)
    bounds = shard_bounds(n, hosts)
    router = GossipRouter(None, "push-pull", 2, graph=spec, n=n)  # type: ignore[arg-type]
    planned = [router.plan_shard(int(bounds[h]), int(bounds[h + 1]), bounds, seed) for h in range(hosts)]
    shared = [p[1] for p in planned]
    finished = [router.finish_shard(p[0], shared, [q[2][h] for q in planned]) for h, p in enumerate(planned)]
    parts = [r.topology for r, _ in finished]
    assert np.array_equal(np.concatenate([t.edge_source for t in parts]), whole.edge_source)
    assert np.array_equal(np.concatenate([t.targets for t in parts]), whole.targets)
    assert np.array_equal(np.concatenate([t.in_position for t in parts]), whole.in_position)
    assert all(np.array_equal(t.in_degree, whole.in_degree) for t in parts)
    assert router.describe_built([s for _, s in finished]) == GossipRouter(whole, "push-pull", 2).describe()


@pytest.mark.parametrize("spec", [RingLattice(k=6), SmallWorld(k=4, p=0.5)], ids=lambda s: type(s).__name__)
def test_a_lattice_shard_lists_only_edges_near_its_rows_and_misses_none(
    spec: GraphSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards of 5 hosts (rows wrapping the ring included), rewirings drawn 97 edges at a time:
    each host's rows equal the whole graph's, from far fewer edges than the whole list."""
    import protocols.topology

    monkeypatch.setattr(protocols.topology, "_REWIRE_CHUNK", 97)
    n, seed = 1000, 3
    whole = spec.build(n, seed)
    bounds = np.linspace(0, n, 6).astype(np.int64)
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        part = spec.shard(n, seed, lo, hi)
        rows = slice(whole.offsets[lo], whole.offsets[hi])
        assert np.array_equal(part.targets, whole.targets[rows])
        assert np.array_equal(part.edge_source, whole.edge_source[rows])
        assert len(spec.edges_near(n, seed, lo, hi)[0]) < 0.6 * len(spec.edges(n, seed)[0])


def test_a_host_built_graph_that_is_not_symmetric_is_refused() -> None:
    """Hosts mirror in-edges from out-edges; a generator whose edges go one way only is named."""
    from dataclasses import dataclass

    from orchestrator.errors import ProtocolError
    from orchestrator.host import shard_bounds
    from protocols.gossip import GossipRouter

    @dataclass(frozen=True)
    class Chain(GraphSpec):
        undirected = False

        def edges(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
            u = np.arange(n - 1, dtype=np.int64)
            return u, u + 1

    n, bounds = 256, shard_bounds(256, 2)
    router = GossipRouter(None, "push", 1, graph=Chain(), n=n)  # type: ignore[arg-type]
    planned = [router.plan_shard(int(bounds[h]), int(bounds[h + 1]), bounds, 0) for h in range(2)]
    with pytest.raises(ProtocolError, match="Chain gave a graph that is not symmetric"):
        router.finish_shard(planned[0][0], [p[1] for p in planned], [q[2][0] for q in planned])
