from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from agents import Message, MessageBatch
from orchestrator.errors import AgentError, ConfigError
from protocols import Gossip, SmallWorld, Topology

N = 300


def graph() -> nx.DiGraph:
    return nx.gnp_random_graph(N, 0.05, seed=4, directed=True)


def route(mode: str, fanout: int | None, senders: np.ndarray, round: int = 3) -> MessageBatch:
    router = Gossip(graph(), fanout=fanout, mode=mode).build(N, 0)  # type: ignore[arg-type]
    out = MessageBatch.broadcast(senders, "opinion", senders / N)
    return router.route(out, round, seed=11)


def pairs(b: MessageBatch) -> list[tuple[int, int]]:
    return list(zip(b.sender.tolist(), b.receiver.tolist()))


def test_push_sends_fanout_distinct_neighbours() -> None:
    g = graph()
    d = route("push", 3, np.arange(N))
    for s in range(N):
        mine = d.receiver[d.sender == s]
        assert len(mine) == min(3, g.out_degree(s)) == len(set(mine.tolist()))
        assert set(mine.tolist()) <= set(g.successors(s))
    assert np.all(np.diff(d.sender) >= 0)  # ordered by sender


def test_pull_gives_each_receiver_fanout_in_neighbours() -> None:
    g = graph()
    d = route("pull", 2, np.arange(N))
    for r in range(N):
        heard = d.sender[d.receiver == r]
        assert len(heard) == min(2, g.in_degree(r))
        assert set(heard.tolist()) <= set(g.predecessors(r))


def test_push_pull_is_the_union_without_duplicates() -> None:
    push, pull, both = (set(pairs(route(m, 2, np.arange(N)))) for m in ("push", "pull", "push-pull"))
    both_list = pairs(route("push-pull", 2, np.arange(N)))
    assert both == push | pull and len(both_list) == len(both)


def test_fanout_none_is_every_edge() -> None:
    assert set(pairs(route("push", None, np.arange(N)))) == set(graph().edges())


def test_routing_does_not_depend_on_how_senders_are_split() -> None:
    router = Gossip(graph(), fanout=2, mode="push-pull").build(N, 0)
    out = MessageBatch.broadcast(np.arange(N), "opinion", np.arange(N) / N)
    whole = router.route(out, 5, 1)
    parts = [router.route(out.slice(a, b), 5, 1) for a, b in ((0, 77), (77, 200), (200, N))]
    joined = MessageBatch.concat(parts)
    assert pairs(whole) == pairs(joined) and np.array_equal(whole.value, joined.value)
    assert pairs(whole) != pairs(router.route(out, 6, 1))  # new draws each round


def test_direct_messages_are_checked() -> None:
    router = Gossip(SmallWorld(k=4, p=0.0), fanout=1).build(20, 0)
    ok = MessageBatch.from_messages(
        [Message(kind="vote", receiver=1), Message(kind="opinion")],
        np.array([0, 0]),
        np.array([0, 1], np.int32),
    )
    d = router.route(ok, 0, 0)
    assert d.receiver[0] == 1 and d.seq.tolist()[0] == 0 and len(d) == 2
    missing = MessageBatch.from_messages(
        [Message(kind="vote", receiver=99)], np.array([3]), np.array([0], np.int32)
    )
    with pytest.raises(
        AgentError, match=r"Agent 3 sent a message to agent 99, which does not exist \(agents are 0..19\)"
    ):
        router.route(missing, 0, 0)
    far = MessageBatch.from_messages(
        [Message(kind="vote", receiver=10)], np.array([3]), np.array([0], np.int32)
    )
    with pytest.raises(AgentError, match="not its neighbour"):
        router.route(far, 0, 0)


def test_bad_settings() -> None:
    with pytest.raises(ConfigError, match="Unknown gossip mode 'shout'"):
        Gossip(mode="shout")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="fanout must be >= 1"):
        Gossip(fanout=0)
    with pytest.raises(ConfigError, match="graph has 300 nodes but the population has 10"):
        Gossip(graph()).build(10, 0)
    with pytest.raises(
        ConfigError, match="Unknown graph 'smallworld'; known: barabasi_albert, complete, erdos_renyi, grid"
    ):
        Gossip("smallworld")


def test_default_stop_rule_is_consensus_on_the_watched_field() -> None:
    g = Gossip(tolerance=0.1)
    rule = g.stop_rule("opinion")
    assert rule is not None
    assert rule.check(3, {"opinion.spread": 0.05}) == "consensus"
    assert rule.check(3, {"opinion.spread": 0.5}) is None
    assert g.stop_rule(None) is None


def test_topology_neighbours() -> None:
    assert Topology.from_networkx(nx.path_graph(3)).neighbours(1).tolist() == [0, 2]


@pytest.mark.parametrize("mode", ["push", "pull", "push-pull"])
@pytest.mark.parametrize("fanout", [1, 2, 3])
def test_sampled_routing_keeps_exactly_the_edges_the_edge_walk_keeps(mode: str, fanout: int) -> None:
    import networkx as nx

    for graph in (SmallWorld(k=6, p=0.3), nx.barabasi_albert_graph(300, 3, seed=4)):
        router = Gossip(graph, fanout=fanout, mode=mode).build(300, 5)  # type: ignore[arg-type]
        topo = router.topology
        for senders in (np.arange(300), np.arange(40, 170), np.flatnonzero(np.arange(300) % 7 != 3)):
            deg = topo.out_degree[senders]
            for rnd in (0, 3):
                fast = router._sampled(senders, deg, rnd, 9)
                walk = router._walk(senders, np.zeros(len(senders), np.int32), deg, rnd, 9)
                assert np.array_equal(fast[0], walk[0]) and np.array_equal(fast[1], walk[1])


def _oddball_graph():  # type: ignore[no-untyped-def]
    """A 190-node ring with 19 self-loops, and 10 isolated nodes besides."""
    g = nx.cycle_graph(190)
    g.add_edges_from((i, i) for i in range(0, 200, 10) if i < 190)
    g.add_nodes_from(range(190, 200))
    return g


def test_self_loops_and_isolated_nodes_are_said_or_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agents import OpinionAgent, Population, Uniform
    from orchestrator import ConfigError, launch

    g = _oddball_graph()
    loops, isolated = nx.number_of_selfloops(g), sum(1 for n in g if g.degree(n) == 0)  # networkx's count
    assert (loops, isolated) == (19, 10)
    pop = Population.of(OpinionAgent, 200, opinion=Uniform())
    run = launch(pop, Gossip(g, fanout=2), rounds=2, log=tmp_path / "a.duckdb", runtime="local")
    err = capsys.readouterr().err
    assert f"moot: note: the graph has {loops} self-loop(s): those agents hear themselves" in err
    assert f"moot: note: the graph has {isolated} isolated node(s): those agents never hear anyone" in err
    assert run.sql("SELECT count(*) AS n FROM events WHERE kind = 'note'").to_pylist() == [{"n": 2}]
    with pytest.raises(
        ConfigError, match=rf"The graph has {loops} self-loop\(s\) and {isolated} isolated node\(s\)"
    ):
        launch(
            pop, Gossip(g, fanout=2, strict_graph=True), rounds=2, log=tmp_path / "b.duckdb", runtime="local"
        )
    launch(pop, Gossip(nx.cycle_graph(200), fanout=2), rounds=1, log=tmp_path / "c.duckdb", runtime="local")
    assert "note" not in capsys.readouterr().err  # a plain graph is not remarked on


def test_push_pull_on_many_hosts_routes_as_on_one(tmp_path: Path) -> None:
    """With more hosts than the graph's degree, each host tests only its own edges against the
    receivers' pulls instead of drawing every agent's pull: the same messages."""
    from agents import OpinionAgent, Population, Uniform
    from orchestrator import launch
    from tests.orchestrator.helpers import messages_hash

    pop = Population.of(OpinionAgent, 2048, opinion=Uniform())
    hashes = {}
    for hosts in (1, 8):
        log = tmp_path / f"h{hosts}.duckdb"
        run = launch(
            pop, Gossip(fanout=2, mode="push-pull"), rounds=4, seed=3, log=log, runtime="local", hosts=hosts
        )
        hashes[hosts] = messages_hash(log, run.run_id)
    assert hashes[1] == hashes[8] and hashes[1][0] > 2048 * 4


def test_a_named_graph_built_in_the_hosts_routes_and_logs_as_one_built_whole(tmp_path: Path) -> None:
    import json

    from agents import OpinionAgent, Population, Uniform
    from orchestrator import launch
    from tests.orchestrator.helpers import messages_hash

    pop = Population.of(OpinionAgent, 3000, opinion=Uniform())
    spec = SmallWorld(k=6, p=0.3)
    out = {}
    for name, graph in (("hosts", spec), ("driver", spec.build(3000, 4))):
        log = tmp_path / f"{name}.duckdb"
        run = launch(
            pop,
            Gossip(graph, fanout=2, mode="push-pull"),
            rounds=4,
            seed=4,
            log=log,
            runtime="local",
            hosts=3,
        )
        config = json.loads(run.sql("SELECT config FROM runs").column("config")[0].as_py())
        out[name] = (messages_hash(log, run.run_id), config["protocol"]["topology"])
    assert out["hosts"] == out["driver"] and out["hosts"][1]["edges"] > 3000 * 5
