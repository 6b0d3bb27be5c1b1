"""The opinion-dynamics models against theory: closed forms, conservation laws, martingales.

Every run goes through moot (gossip routing, hosts, the DuckDB log); the oracles
are computed independently here, from the model's equations or from known results
(reference/debate.md section 5).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest

from agents import (
    Deffuant,
    ExpressedPrivate,
    FriedkinJohnsen,
    HegselmannKrause,
    OpinionAgent,
    Population,
    Uniform,
    VectorHegselmannKrause,
    Voter,
)
from orchestrator import launch, query
from protocols import Complete, Gossip, SmallWorld, influence_graph
from protocols.stop import Stationary
from tests.agents.opinion_helpers import complete_replicas, graph_replicas, metric, states_at, states_hash
from tests.orchestrator.helpers import messages_hash


def _weighted_graph(n: int, seed: int) -> tuple[nx.DiGraph, np.ndarray]:
    """A random sparse row-stochastic W (each agent hears 2-4 others) and its graph."""
    rng = np.random.default_rng(seed)
    w = np.zeros((n, n))
    for i in range(n):
        others = rng.choice(np.delete(np.arange(n), i), rng.integers(2, 5), replace=False)
        w[i, others] = rng.random(len(others))
        w[i, i] = rng.random()
    w /= w.sum(axis=1, keepdims=True)
    return influence_graph(w), w


def _run(log: Path, pop: Population, gossip: Gossip, rounds: int, **kw: Any) -> Any:
    kw.setdefault("runtime", "local")
    kw.setdefault("messages", "none")
    kw.setdefault("stop", "never")
    return launch(pop, gossip, rounds=rounds, seed=kw.pop("seed", 7), log=log, **kw)


# ---- DeGroot and Friedkin-Johnsen ----------------------------------------------------------


def test_degroot_with_edge_weights_is_x_times_w(log_path: Path) -> None:
    graph, w = _weighted_graph(25, 1)
    x0 = np.random.default_rng(2).random(25)
    run = _run(
        log_path, Population.of(OpinionAgent, 25, opinion=x0), Gossip(graph, fanout=None, weight="weight"), 9
    )
    expect = x0.copy()
    for _ in range(8):  # round 0 only sends; rounds 1..8 each apply x <- W x
        expect = w @ expect
    assert np.allclose(states_at(log_path, run.run_id, "opinion"), expect, rtol=0, atol=1e-12)


def test_friedkin_johnsen_reaches_its_closed_form_and_stubborn_agents_stay(log_path: Path) -> None:
    n = 30
    graph, w = _weighted_graph(n, 3)
    rng = np.random.default_rng(4)
    x0 = rng.random(n)
    lam = rng.uniform(0.0, 0.9, n)
    lam[[0, 7]] = 0.0  # fully stubborn
    pop = Population.of(FriedkinJohnsen, n, opinion=x0, susceptibility=lam)
    run = _run(log_path, pop, Gossip(graph, fanout=None, weight="weight"), 400, state_every=1)
    closed = np.linalg.solve(np.eye(n) - np.diag(lam) @ w, (1 - lam) * x0)
    final = states_at(log_path, run.run_id, "opinion")
    assert np.max(np.abs(final - closed)) < 1e-8
    traj = query(
        log_path,
        "SELECT DISTINCT value FROM states WHERE field = 'opinion' AND agent IN (0, 7)",
        run_id=run.run_id,
    ).column("value")
    assert sorted(traj.to_pylist()) == sorted([x0[0], x0[7]])  # never moved, in any round
    assert np.ptp(final) > 0.1  # FJ does not reach consensus


def test_friedkin_johnsen_without_weights_splits_the_rest_equally(log_path: Path) -> None:
    n = 40
    graph = nx.connected_watts_strogatz_graph(n, 4, 0.3, seed=5)
    rng = np.random.default_rng(6)
    x0, lam, sw = rng.random(n), rng.uniform(0.2, 0.9, n), rng.uniform(0.1, 0.6, n)
    pop = Population.of(FriedkinJohnsen, n, opinion=x0, susceptibility=lam, self_weight=sw)
    run = _run(log_path, pop, Gossip(graph, fanout=None), 300)
    a = nx.to_numpy_array(graph, nodelist=range(n))
    w = (1 - sw)[:, None] * a / a.sum(axis=1, keepdims=True) + np.diag(sw)
    closed = np.linalg.solve(np.eye(n) - np.diag(lam) @ w, (1 - lam) * x0)
    assert np.max(np.abs(states_at(log_path, run.run_id, "opinion") - closed)) < 1e-8


# ---- EPO: expressed and private opinions ---------------------------------------------------


def test_epo_matches_its_equations_and_fixed_point(log_path: Path) -> None:
    n = 24
    graph, w = _weighted_graph(n, 8)
    rng = np.random.default_rng(9)
    x0, lam, phi = rng.random(n), rng.uniform(0.3, 0.9, n), rng.uniform(0.2, 0.9, n)
    pop = Population.of(ExpressedPrivate, n, opinion=x0, susceptibility=lam, resilience=phi)
    run = _run(log_path, pop, Gossip(graph, fanout=None, weight="weight"), 400, state_every=5)
    # The equations of Ye et al. (2019), iterated as matrices.
    d, o = np.diag(np.diag(w)), w - np.diag(np.diag(w))
    x, e = x0.copy(), x0.copy()
    for _ in range(4):
        x_new = lam * (d @ x + o @ e) + (1 - lam) * x0
        e = phi * x_new + (1 - phi) * (w @ e)
        x = x_new
    assert np.allclose(states_at(log_path, run.run_id, "opinion", 4), x, rtol=0, atol=1e-12)
    assert np.allclose(states_at(log_path, run.run_id, "expressed", 4), e, rtol=0, atol=1e-12)
    # Fixed point: x = L(Dx + Oe) + (I-L)x0 and e = Px + (I-P)We, one linear system.
    lm, ph, eye = np.diag(lam), np.diag(phi), np.eye(n)
    system = np.block([[eye - lm @ d, -lm @ o], [-ph, eye - (eye - ph) @ w]])
    fixed = np.linalg.solve(system, np.concatenate([(1 - lam) * x0, np.zeros(n)]))
    private, expressed = (
        states_at(log_path, run.run_id, "opinion"),
        states_at(log_path, run.run_id, "expressed"),
    )
    assert np.max(np.abs(private - fixed[:n])) < 1e-8
    assert np.max(np.abs(expressed - fixed[n:])) < 1e-8
    assert np.max(np.abs(private - expressed)) > 1e-3  # a persistent gap between belief and speech


def test_epo_with_full_resilience_is_friedkin_johnsen(log_path: Path) -> None:
    n = 20
    graph, w = _weighted_graph(n, 10)
    rng = np.random.default_rng(11)
    x0, lam = rng.random(n), rng.uniform(0.2, 0.9, n)
    pop = Population.of(ExpressedPrivate, n, opinion=x0, susceptibility=lam, resilience=1.0)
    run = _run(log_path, pop, Gossip(graph, fanout=None, weight="weight"), 300)
    closed = np.linalg.solve(np.eye(n) - np.diag(lam) @ w, (1 - lam) * x0)
    assert np.max(np.abs(states_at(log_path, run.run_id, "opinion") - closed)) < 1e-8
    assert np.max(np.abs(states_at(log_path, run.run_id, "expressed") - closed)) < 1e-8


# ---- Hegselmann-Krause ---------------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.15, 0.3])
def test_hegselmann_krause_clusters_are_more_than_epsilon_apart(log_path: Path, eps: float) -> None:
    n = 500
    pop = Population.of(HegselmannKrause, n, epsilon=eps, opinion=Uniform(0.0, 1.0))
    run = _run(log_path, pop, Gossip(Complete(), fanout=None), 100, stop=Stationary(0.0))
    assert run.stop_reason == "stationary"  # converged in finitely many rounds
    x0, final = states_at(log_path, run.run_id, "opinion", -1), states_at(log_path, run.run_id, "opinion")
    clusters = np.unique(final)
    assert np.all(np.diff(clusters) > eps)  # the hard bound
    assert len(clusters) <= int(1 / eps) + 1
    order = np.argsort(x0, kind="stable")
    assert np.all(np.diff(final[order]) >= 0)  # order preserved
    if eps <= 0.1:
        assert len(clusters) >= 3
    if eps >= 0.3:
        assert len(clusters) == 1
    # The log's own cluster count agrees.
    sql = query(
        log_path,
        f"SELECT clusters FROM clusters_by_round('{run.run_id}', 'opinion', 1e-9, 0) ORDER BY round DESC LIMIT 1",
    )
    assert sql.column("clusters")[0].as_py() == len(clusters)


# ---- Deffuant-Weisbuch ---------------------------------------------------------------------


def _major_clusters(x: np.ndarray, share: float = 0.1) -> int:
    x = np.sort(x)
    label = np.cumsum(np.r_[True, np.diff(x) > 1e-3])
    return int((np.bincount(label)[1:] >= share * len(x)).sum())


def test_deffuant_conserves_the_sum_and_forms_about_one_over_2d_clusters(log_path: Path) -> None:
    n, d = 300, 0.2
    counts = []
    for seed in range(3):
        pop = Population.of(Deffuant, n, threshold=d, mu=0.5, opinion=Uniform(0.0, 1.0))
        run = _run(
            log_path, pop, Gossip(Complete(), mode="pairwise"), 800, seed=seed, stop=Stationary(1e-9, 5)
        )
        assert run.stop_reason == "stationary"
        mean = metric(log_path, run.run_id, "mean")
        assert np.max(np.abs(mean - mean[0])) * n < 1e-12  # the sum, to floating-point precision
        counts.append(_major_clusters(states_at(log_path, run.run_id, "opinion")))
    assert abs(np.mean(counts) - int(1 / (2 * d))) <= 1, counts
    pop = Population.of(Deffuant, n, threshold=0.5, mu=0.3, opinion=Uniform(0.0, 1.0))
    run = _run(log_path, pop, Gossip(Complete(), mode="pairwise"), 800, stop="consensus:1e-6")
    assert run.stop_reason.startswith("consensus")  # d >= 0.5: consensus


def test_pairwise_exchange_is_a_matching_on_the_graph() -> None:
    from protocols.gossip import Pairs

    graph = nx.barabasi_albert_graph(400, 3, seed=1)
    router = Gossip(graph, mode="pairwise").build(400, 0)
    topo = router.topology
    matched = []
    for rnd in range(5):
        p = router.partners(rnd, 3)
        has = np.flatnonzero(p >= 0)
        assert np.array_equal(p[p[has]], has)  # symmetric: a partner's partner is oneself
        assert topo.has_edges(has, p[has]).all()  # partners are neighbours
        matched.append(len(has) / 400)
    assert min(matched) > 0.5
    assert not np.array_equal(router.partners(0, 3), router.partners(1, 3))  # a new matching each round
    assert np.array_equal(Pairs.of(topo).matching(3, 2), router.partners(2, 3))  # same on every host


def test_deffuant_refuses_more_than_one_partner(log_path: Path) -> None:
    from orchestrator import AgentError

    pop = Population.of(Deffuant, 50, opinion=Uniform(0.0, 1.0))
    with pytest.raises(AgentError, match=r"mode='pairwise'"):
        _run(log_path, pop, Gossip(Complete(), fanout=None), 3)


# ---- The voter model -----------------------------------------------------------------------


@pytest.mark.slow
def test_voter_model_on_complete_graphs_matches_the_martingale_and_n_ln_2(log_path: Path) -> None:
    k = 300  # independent systems per setting, all in one run
    groups = [(20, 10), (40, 20), (80, 40), (20, 5)]  # (N, initial number of +1)
    sizes = [n for n, _ in groups for _ in range(k)]
    topo, comp = complete_replicas(sizes)
    opinion = np.concatenate(
        [np.where(np.arange(n) < plus, 1.0, -1.0) for n, plus in groups for _ in range(k)]
    )
    pop = Population.of(Voter, len(opinion), opinion=opinion)
    run = _run(log_path, pop, Gossip(topo, mode="pull", fanout=1), 3000, stop=Stationary(0.0, 3))
    assert run.stop_reason == "stationary"
    final = states_at(log_path, run.run_id, "opinion")
    changed = states_at(log_path, run.run_id, "last_change")
    first = np.flatnonzero(np.r_[True, np.diff(comp) != 0])
    assert np.all(np.minimum.reduceat(final, first) == np.maximum.reduceat(final, first))  # all at consensus
    plus = np.maximum.reduceat(final, first) > 0
    time = np.maximum(np.maximum.reduceat(changed, first), 0)  # round of the last change
    times = {}
    for g, (n, ones) in enumerate(groups):
        sl = slice(g * k, (g + 1) * k)
        rho = ones / n
        assert abs(plus[sl].mean() - rho) < 3 * np.sqrt(rho * (1 - rho) / k), (n, ones, plus[sl].mean())
        if ones * 2 == n:
            sweeps = time[sl].mean() / 2  # a synchronous round at rate 1 is half a sweep
            times[n] = sweeps
            assert abs(sweeps / (n * np.log(2)) - 1) < 0.15, (n, sweeps)
    assert 1.6 < times[40] / times[20] < 2.4 and 1.6 < times[80] / times[40] < 2.4  # linear in N


def test_voter_model_conserves_degree_weighted_magnetisation(log_path: Path) -> None:
    graph = nx.barabasi_albert_graph(30, 2, seed=1)
    k = 400
    topo, _ = graph_replicas(graph, k)
    deg = np.array([d for _, d in sorted(graph.degree())], float)
    start = np.where(deg >= np.sort(deg)[-6], 1.0, -1.0)  # the hubs hold +1
    pop = Population.of(Voter, 30 * k, opinion=np.tile(start, k))
    run = _run(log_path, pop, Gossip(topo, mode="pull", fanout=1), 6)
    final = states_at(log_path, run.run_id, "opinion").reshape(k, 30)
    omega0, m0 = deg @ start / deg.sum(), start.mean()
    omega, m = final @ deg / deg.sum(), final.mean(axis=1)
    assert abs(omega.mean() - omega0) < 3 * omega.std(ddof=1) / np.sqrt(k)
    assert abs(m.mean() - m0) > 3 * m.std(ddof=1) / np.sqrt(k)  # the plain magnetisation is not conserved


# ---- Plain act and act_batch agree ---------------------------------------------------------


def _plain(cls: type) -> type:
    return type(f"Plain{cls.__name__}", (cls,), {"vectorised": False, "__module__": __name__})


PlainOpinion = _plain(OpinionAgent)
PlainFJ = _plain(FriedkinJohnsen)
PlainEPO = _plain(ExpressedPrivate)
PlainHK = _plain(HegselmannKrause)
PlainDeffuant = _plain(Deffuant)
PlainVoter = _plain(Voter)

CASES = [
    (OpinionAgent, PlainOpinion, {"fanout": None, "weight": "weight"}),
    (FriedkinJohnsen, PlainFJ, {"fanout": None, "weight": "weight"}),
    (ExpressedPrivate, PlainEPO, {"fanout": 2, "mode": "push-pull"}),
    (HegselmannKrause, PlainHK, {"fanout": None}),
    (Deffuant, PlainDeffuant, {"mode": "pairwise"}),
    (Voter, PlainVoter, {"mode": "push", "fanout": 2}),  # several heard: the draw among them
]


@pytest.mark.parametrize(("fast", "plain", "options"), CASES, ids=[c[0].__name__ for c in CASES])
def test_plain_act_and_act_batch_give_the_same_log(
    tmp_path: Path, fast: type, plain: type, options: dict
) -> None:
    graph, _ = _weighted_graph(40, 12)
    state: dict[str, Any] = {"opinion": Uniform(0.0, 1.0)}
    if fast is Voter:
        state = {"opinion": np.where(np.arange(40) % 3 == 0, 1.0, -1.0), "rate": 0.7}
    if fast is HegselmannKrause:
        state["epsilon"] = 0.3
    out = []
    for cls in (fast, plain):
        g = graph if "weight" in options else nx.Graph(graph.to_undirected())
        run = _run(
            tmp_path / f"{cls.__name__}.duckdb", Population.of(cls, 40, **state), Gossip(g, **options), 8
        )
        log = tmp_path / f"{cls.__name__}.duckdb"
        fields = query(log, "SELECT DISTINCT field FROM states ORDER BY field", run_id=run.run_id).column(0)
        out.append({f: states_at(log, run.run_id, f) for f in fields.to_pylist()})
    assert out[0].keys() == out[1].keys()
    for f in out[0]:
        assert np.array_equal(out[0][f], out[1][f], equal_nan=True), f


# ---- Same seed, same log, whatever the hosts ------------------------------------------------


def _studies() -> dict[str, tuple[Population, Gossip]]:
    graph, _ = _weighted_graph(120, 13)
    mixed = (
        Population.of(OpinionAgent, 30, opinion=Uniform())
        + Population.of(FriedkinJohnsen, 30, opinion=Uniform(), susceptibility=0.7)
        + Population.of(ExpressedPrivate, 30, opinion=Uniform(), resilience=0.4)
        + Population.of(HegselmannKrause, 30, opinion=Uniform(), epsilon=0.2)
    )
    return {
        "averaging": (mixed, Gossip(graph, fanout=None, weight="weight")),
        "deffuant": (
            Population.of(Deffuant, 200, opinion=Uniform()),
            Gossip(SmallWorld(k=4), mode="pairwise"),
        ),
        "voter": (
            Population.of(Voter, 200, opinion=np.where(np.arange(200) % 2, 1.0, -1.0), rate=0.8),
            Gossip(SmallWorld(k=4), mode="pull", fanout=1),
        ),
        "vector": (  # 4-dimensional opinions, as message vectors
            Population.of(VectorHegselmannKrause, 100, dim=4, epsilon=0.6, opinion=Uniform()),
            Gossip(SmallWorld(k=4), fanout=2, mode="push-pull"),
        ),
    }


@pytest.mark.ray
def test_every_model_gives_the_same_log_in_process_and_on_1_or_3_hosts(
    ray_cluster: object, tmp_path: Path
) -> None:
    places = {
        "local": {"runtime": "local"},
        "ray1": {"runtime": "ray", "hosts": 1},
        "ray3": {"runtime": "ray", "hosts": 3},
    }
    for name, (pop, gossip) in _studies().items():
        seen = set()
        # One Ray host against in-process is checked once (the mixed study); 3 hosts for every model.
        for where, kw in places.items() if name == "averaging" else list(places.items())[::2]:
            log = tmp_path / f"{name}-{where}.duckdb"
            run = _run(log, pop, gossip, 6, messages="all", state_every=1, **kw)
            seen.add((messages_hash(log, run.run_id), states_hash(log, run.run_id)))
        assert len(seen) == 1, name
        ((rows, _), _) = seen.pop()
        assert rows > 6 * 100, name


@pytest.mark.parametrize(
    "cls", [FriedkinJohnsen, PlainFJ, ExpressedPrivate, PlainEPO], ids=lambda c: c.__name__
)
def test_round_t_is_the_t_th_step_when_agents_start_away_from_their_prejudice(
    log_path: Path, cls: type
) -> None:
    n = 20
    graph, w = _weighted_graph(n, 11)
    rng = np.random.default_rng(12)
    x0, u, lam = rng.random(n), rng.random(n), rng.uniform(0.2, 0.9, n)
    pop = Population.of(cls, n, opinion=x0, prejudice=u, susceptibility=lam)
    run = _run(log_path, pop, Gossip(graph, fanout=None, weight="weight"), 3, state_every=1)
    # Round 0 hears nothing, so it takes no step: x(0) is where the agents started.
    assert np.array_equal(states_at(log_path, run.run_id, "opinion", 0), x0)
    x, e = x0.copy(), x0.copy()  # the textbook iteration, x(t+1) = L W x(t) + (I - L) u
    d, o = np.diag(np.diag(w)), w - np.diag(np.diag(w))
    phi = 0.5  # ExpressedPrivate's default resilience
    for t in (1, 2):
        if cls in (FriedkinJohnsen, PlainFJ):
            x = lam * (w @ x) + (1 - lam) * u
        else:
            x_new = lam * (d @ x + o @ e) + (1 - lam) * u
            e = phi * x_new + (1 - phi) * (w @ e)
            x = x_new
        assert np.allclose(states_at(log_path, run.run_id, "opinion", t), x, rtol=0, atol=1e-12)
