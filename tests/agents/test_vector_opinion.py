"""Vector opinions: the four models in d dimensions against theory, d=1 against the scalar models
bit for bit, the same log whatever the hosts, the logging modes, and bad input.

Oracles are computed here from the models' equations (closed forms per coordinate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import networkx as nx
import numpy as np
import pytest

from agents import (
    Agent,
    Deffuant,
    FriedkinJohnsen,
    HegselmannKrause,
    Message,
    OpinionAgent,
    Population,
    Uniform,
    Vector,
    VectorDeffuant,
    VectorDeGroot,
    VectorFriedkinJohnsen,
    VectorHegselmannKrause,
    vector_field,
)
from orchestrator import AgentError, ConfigError, launch, query
from protocols import Complete, Gossip, SmallWorld
from tests.agents.opinion_helpers import states_hash
from tests.agents.test_opinion_dynamics import _weighted_graph
from tests.orchestrator.helpers import messages_hash


def _run(log: Path, pop: Population, gossip: Gossip, rounds: int, **kw: Any) -> Any:
    kw.setdefault("runtime", "local")
    kw.setdefault("messages", "none")
    kw.setdefault("stop", "never")
    return launch(pop, gossip, rounds=rounds, seed=kw.pop("seed", 7), log=log, **kw)


def vectors_at(log: Path, run_id: str, field: str, round: int | None = None) -> np.ndarray:
    """A vector field's values, (agents, dim) by agent id, after `round` (default: the last logged)."""
    where = "(SELECT max(round) FROM states)" if round is None else str(round)
    t = query(
        log,
        f"SELECT vector FROM states WHERE field = '{field}' AND round = {where} ORDER BY agent",
        run_id=run_id,
    )
    return np.array(t.column("vector").to_pylist(), np.float64)


# ---- DeGroot and Friedkin-Johnsen in d dimensions: closed forms per coordinate -------------------


def test_vector_degroot_on_a_weighted_graph_converges_to_the_closed_form_per_coordinate(
    log_path: Path,
) -> None:
    n, d = 25, 5
    graph, w = _weighted_graph(n, 1)
    x0 = np.random.default_rng(2).random((n, d))
    run = _run(
        log_path,
        Population.of(VectorDeGroot, n, dim=d, opinion=x0),
        Gossip(graph, fanout=None, weight="weight"),
        400,
        state_every=1,
    )
    after8 = x0.copy()
    for _ in range(8):  # round 0 only sends; rounds 1..8 each apply X <- W X
        after8 = w @ after8
    assert np.allclose(vectors_at(log_path, run.run_id, "opinion", 8), after8, rtol=0, atol=1e-12)
    # The consensus: every agent at pi^T X0, pi the left Perron vector of W (pi W = pi, sum 1).
    vals, vecs = np.linalg.eig(w.T)
    pi = np.real(vecs[:, np.argmin(np.abs(vals - 1))])
    pi /= pi.sum()
    final = vectors_at(log_path, run.run_id, "opinion")
    for k in range(d):
        assert np.max(np.abs(final[:, k] - pi @ x0[:, k])) < 1e-9, k


def test_vector_friedkin_johnsen_is_the_closed_form_column_by_column(log_path: Path) -> None:
    n, d = 30, 4
    graph, w = _weighted_graph(n, 3)
    rng = np.random.default_rng(4)
    u = rng.random((n, d))
    lam = rng.uniform(0.0, 0.9, n)
    pop = Population.of(VectorFriedkinJohnsen, n, dim=d, opinion=u, susceptibility=lam)
    run = _run(log_path, pop, Gossip(graph, fanout=None, weight="weight"), 400)
    closed = np.linalg.solve(np.eye(n) - np.diag(lam) @ w, np.diag(1 - lam) @ u)  # all d columns at once
    final = vectors_at(log_path, run.run_id, "opinion")
    for k in range(d):
        assert np.max(np.abs(final[:, k] - closed[:, k])) < 1e-9, k
    assert np.array_equal(vectors_at(log_path, run.run_id, "prejudice"), u)  # NaN default: the start


# ---- Bounded confidence in d dimensions ----------------------------------------------------------


def test_vector_hegselmann_krause_leaves_clusters_more_than_epsilon_apart(log_path: Path) -> None:
    n, d, eps = 300, 3, 0.25
    pop = Population.of(VectorHegselmannKrause, n, dim=d, epsilon=eps, opinion=Uniform(0.0, 1.0))
    run = _run(log_path, pop, Gossip(Complete(), fanout=None), 100, stop="stationary:0")
    assert run.stop_reason == "stationary"
    final = vectors_at(log_path, run.run_id, "opinion")
    clusters = np.unique(final, axis=0)
    assert len(clusters) >= 2
    gaps = np.linalg.norm(clusters[:, None, :] - clusters[None, :, :], axis=2)
    assert np.all(gaps[~np.eye(len(clusters), dtype=bool)] > eps)  # the hard bound, Euclidean
    # The same from the log in SQL: the closest two distinct final opinions, by list_distance.
    closest = (
        query(
            log_path,
            """WITH f AS (SELECT DISTINCT vector FROM states WHERE field = 'opinion' AND round = (SELECT max(round)
           FROM states)) SELECT min(list_distance(a.vector, b.vector)) AS gap FROM f a, f b WHERE a.vector <> b.vector""",
            run_id=run.run_id,
        )
        .column("gap")[0]
        .as_py()
    )
    assert closest == pytest.approx(gaps[~np.eye(len(clusters), dtype=bool)].min(), abs=1e-12)


def test_vector_deffuant_conserves_the_vector_mean(log_path: Path) -> None:
    n, d = 200, 3
    pop = Population.of(VectorDeffuant, n, dim=d, threshold=0.5, mu=0.5, opinion=Uniform(0.0, 1.0))
    run = _run(log_path, pop, Gossip(SmallWorld(k=4), mode="pairwise"), 60, state_every=10)
    x0, final = vectors_at(log_path, run.run_id, "opinion", -1), vectors_at(log_path, run.run_id, "opinion")
    assert np.max(np.abs(final.sum(axis=0) - x0.sum(axis=0))) < 1e-10
    assert np.max(np.abs(final - x0)) > 0.1  # and the agents did move


# ---- d = 1 is the scalar model, bit for bit; plain act is act_batch -------------------------------


SCALAR = [
    (OpinionAgent, VectorDeGroot, {"fanout": None, "weight": "weight"}, {}),
    (FriedkinJohnsen, VectorFriedkinJohnsen, {"fanout": 2, "mode": "push-pull"}, {"susceptibility": 0.7}),
    (HegselmannKrause, VectorHegselmannKrause, {"fanout": None}, {"epsilon": 0.3}),
    (Deffuant, VectorDeffuant, {"mode": "pairwise"}, {}),
]


def _logged(log: Path, run_id: str, column: str) -> tuple[list[Any], list[Any]]:
    """(states, messages) of a run, with the opinion as `column` (value, or vector[1])."""
    states = query(
        log,
        f"SELECT round, agent, field, CASE WHEN field = 'opinion' OR field = 'prejudice' THEN {column} "
        "ELSE value END AS v FROM states ORDER BY round, agent, field",
        run_id=run_id,
    ).to_pylist()
    messages = query(
        log,
        f"SELECT round, sender, seq, receiver, {column} AS v FROM messages ORDER BY round, sender, seq, receiver",
        run_id=run_id,
    ).to_pylist()
    return states, messages


@pytest.mark.parametrize(
    ("scalar", "vector", "options", "state"), SCALAR, ids=[c[1].__name__ for c in SCALAR]
)
def test_dim_1_gives_the_scalar_models_log_bit_for_bit(
    tmp_path: Path, scalar: type, vector: type, options: dict, state: dict
) -> None:
    graph, _ = _weighted_graph(40, 12)
    g = graph if "weight" in options else nx.Graph(graph.to_undirected())
    logs = []
    for cls, column, kw in ((scalar, "value", {}), (vector, "vector[1]", {"dim": 1})):
        log = tmp_path / f"{cls.__name__}.duckdb"
        pop = Population.of(cls, 40, opinion=Uniform(0.0, 1.0), **state, **kw)
        run = _run(log, pop, Gossip(g, **options), 8, messages="all", state_every=1)
        logs.append(_logged(log, run.run_id, column))
    assert len(logs[0][1]) > 40
    assert repr(logs[0]) == repr(logs[1])  # every number's repr (exact, NaN alike): the same bits


class PlainVectorHK(VectorHegselmannKrause):
    vectorised = False


class PlainVectorFJ(VectorFriedkinJohnsen):
    vectorised = False


class PlainVectorDeffuant(VectorDeffuant):
    vectorised = False


@pytest.mark.parametrize(
    ("fast", "plain", "options"),
    [
        (VectorHegselmannKrause, PlainVectorHK, {"fanout": None}),
        (VectorFriedkinJohnsen, PlainVectorFJ, {"fanout": None, "weight": "weight"}),
        (VectorDeffuant, PlainVectorDeffuant, {"mode": "pairwise"}),
    ],
    ids=["hk", "fj", "deffuant"],
)
def test_plain_act_and_act_batch_give_the_same_vectors(
    tmp_path: Path, fast: type, plain: type, options: dict
) -> None:
    graph, _ = _weighted_graph(40, 12)
    g = graph if "weight" in options else nx.Graph(graph.to_undirected())
    hashes = []
    for cls in (fast, plain):
        log = tmp_path / f"{cls.__name__}.duckdb"
        extra = {"epsilon": 0.4} if "epsilon" in cls.model_fields else {}
        pop = Population.of(cls, 40, dim=3, opinion=Uniform(0.0, 1.0), **extra)
        run = _run(log, pop, Gossip(g, **options), 8, messages="all", state_every=1)
        hashes.append((messages_hash(log, run.run_id), states_hash(log, run.run_id)))
    assert hashes[0] == hashes[1]


# ---- Same log whatever the hosts: tests/agents/test_opinion_dynamics.py ("vector") -----------------


# ---- Logging modes and metrics ---------------------------------------------------------------------


def test_logging_modes_apply_to_vector_messages_and_the_metrics_describe_the_cloud(tmp_path: Path) -> None:
    n, d = 200, 6
    pop = Population.of(VectorDeGroot, n, dim=d, opinion=Uniform(0.0, 1.0))
    gossip = Gossip(SmallWorld(k=4), fanout=2, mode="push")
    full = _run(tmp_path / "all.duckdb", pop, gossip, 4, messages="all", state_every=1)
    rows = query(
        tmp_path / "all.duckdb",
        "SELECT round, kind, vector FROM messages ORDER BY round, sender, seq, receiver",
        run_id=full.run_id,
    ).to_pylist()
    assert len(rows) == 4 * n * 2 and all(len(r["vector"]) == d for r in rows)
    agg = _run(tmp_path / "agg.duckdb", pop, gossip, 4, messages="aggregate")
    means = query(
        tmp_path / "agg.duckdb",
        "SELECT round, vector_mean FROM message_aggregates ORDER BY round",
        run_id=agg.run_id,
    ).to_pylist()
    for m in means:
        sent = np.array([r["vector"] for r in rows if r["round"] == m["round"]])
        assert np.allclose(m["vector_mean"], sent.mean(axis=0), rtol=0, atol=1e-12)
    sample = _run(tmp_path / "sample.duckdb", pop, gossip, 4, messages="sample:0.25")
    kept = query(tmp_path / "sample.duckdb", "SELECT count(*) AS n FROM messages", run_id=sample.run_id)
    assert 0.15 * len(rows) < kept.column("n")[0].as_py() < 0.35 * len(rows)
    every = _run(tmp_path / "every.duckdb", pop, gossip, 4, messages="every:2")
    by_round = query(
        tmp_path / "every.duckdb", "SELECT DISTINCT round FROM messages ORDER BY round", run_id=every.run_id
    )
    assert by_round.column("round").to_pylist() == [0, 2]
    # metrics: variance is the total variance, spread the widest entry's range (from the states)
    x = vectors_at(tmp_path / "all.duckdb", full.run_id, "opinion", 2)
    m = query(
        tmp_path / "all.duckdb",
        "SELECT variance, spread, min, max FROM consensus_by_round WHERE round = 2",
        run_id=full.run_id,
    ).to_pylist()[0]
    assert m["variance"] == pytest.approx(x.var(axis=0).sum(), rel=1e-12)
    assert m["spread"] == pytest.approx(np.ptp(x, axis=0).max(), rel=1e-12)
    assert (m["min"], m["max"]) == (x.min(), x.max())


def test_the_duckdb_cli_reads_vectors_from_another_directory(tmp_path: Path) -> None:
    import shutil
    import subprocess

    log = tmp_path / "v.duckdb"
    run = _run(
        log,
        Population.of(VectorDeGroot, 50, dim=3, opinion=Uniform()),
        Gossip(SmallWorld(k=4)),
        2,
        messages="all",
    )
    cli = shutil.which("duckdb", path=str(Path(__file__).parents[2] / ".venv" / "bin")) or "duckdb"
    out = subprocess.run(
        [
            cli,
            "-readonly",
            "-csv",
            "-noheader",
            str(log),
            "-c",
            f"SELECT count(*), min(len(vector)), max(array_cosine_similarity(vector::DOUBLE[3], vector::DOUBLE[3])) "
            f"FROM messages WHERE run_id = '{run.run_id}'",
        ],
        cwd=tmp_path.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    rows = query(log, "SELECT count(*) AS n FROM messages", run_id=run.run_id).column("n")[0].as_py()
    count, length, cosine = out.split(",")
    assert (int(count), int(length)) == (rows, 3) and float(cosine) == pytest.approx(1.0)


# ---- Bad input: one line, naming the agent and the fix ------------------------------------------


class WrongLength(Agent):
    opinion: Vector = vector_field(0.0)

    @classmethod
    def act_batch(cls, state: dict, inbox: Any, ctx: Any) -> Any:
        if ctx.round == 1:
            state["opinion"] = np.zeros((len(ctx.ids), 4))
        return ctx.broadcast("opinion", vector=state["opinion"])


class GoesNaN(Agent):
    opinion: Vector = vector_field(0.0)

    @classmethod
    def act_batch(cls, state: dict, inbox: Any, ctx: Any) -> Any:
        if ctx.round == 1:
            state["opinion"][3, 1] = np.nan
        return ctx.broadcast("opinion", vector=state["opinion"])


class SetsAScalar(Agent):
    opinion: Vector = vector_field(0.0)

    def act(self, inbox: list[Message], ctx: Any) -> Message:
        if ctx.round == 1 and self.id == 2:
            self.opinion = 0.5  # type: ignore[assignment]
        return Message(kind="opinion", value=1.0)


class SendsInf(Agent):
    opinion: Vector = vector_field(0.0)

    def act(self, inbox: list[Message], ctx: Any) -> Message:
        v = self.opinion.copy()
        if self.id == 4:
            v[0] = np.inf
        return Message(kind="opinion", vector=v)


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (
            WrongLength,
            r"WrongLength\.opinion is a vector of 3 per agent .* got shape \(10, 4\); in round 1, "
            r"WrongLength\.act_batch must leave state\['opinion'\] as \(10, 3\)\.",
        ),
        (
            GoesNaN,
            r"GoesNaN\.opinion must be finite in every entry, but agent 3 has \[ 0\. nan  0\.\] \(1 of 10 "
            r"agents\); in round 1, GoesNaN\.act_batch must leave",
        ),
        (
            SetsAScalar,
            r"SetsAScalar\.opinion of agent 2 is a vector of 3, but got 0\.5; in round 1, SetsAScalar\.act "
            r"must keep self\.opinion a vector of 3\.",
        ),
        (SendsInf, r"SendsInf agent\(s\) 4 sent a message vector with a NaN or infinite entry in round 0"),
    ],
    ids=["wrong-length", "non-finite", "scalar", "message"],
)
def test_bad_vectors_are_one_line_errors_naming_the_agent_and_the_fix(
    log_path: Path, cls: type, expected: str
) -> None:
    with pytest.raises(AgentError, match=expected) as info:
        _run(log_path, Population.of(cls, 10, dim=3), Gossip(SmallWorld(k=4)), 3)
    assert "\n" not in str(info.value).split("\nIn the agent's code")[0]
    con = duckdb.connect(str(log_path), read_only=True)
    assert con.sql("SELECT status FROM runs").fetchall() == [("failed",)]  # and the log says so


def test_population_refuses_bad_vectors_naming_the_value_and_the_fix() -> None:
    with pytest.raises(
        ConfigError,
        match=r"VectorDeGroot has vector field\(s\) opinion: give their length, e\.g\. "
        r"Population\.of\(VectorDeGroot, n, dim=16",
    ):
        Population.of(VectorDeGroot, 10)
    with pytest.raises(
        ConfigError, match=r"VectorDeGroot\.opinion is a vector of 3 per agent, got the scalar 0\.5;"
    ):
        Population.of(VectorDeGroot, 10, dim=3, opinion=0.5)
    with pytest.raises(ConfigError, match=r"shape \(10, 3\)\), but got shape \(10, 2\)"):
        Population.of(VectorDeGroot, 10, dim=3, opinion=np.zeros((10, 2)))
    bad = np.zeros((10, 3))
    bad[6, 2] = np.inf
    with pytest.raises(
        ConfigError, match=r"must be finite in every entry, but agent 6 has \[ 0\.  0\. inf\]"
    ):
        Population.of(VectorDeGroot, 10, dim=3, opinion=bad)
    with pytest.raises(ConfigError, match="OpinionAgent has no vector field; drop dim"):
        Population.of(OpinionAgent, 10, dim=3)


# ---- Durable: a fork sets a vector; the fork's log and the parent's agree before it -----------


def test_a_fork_sets_an_agents_vector_and_replays_the_rest(log_path: Path) -> None:
    from orchestrator import fork

    pop = Population.of(VectorDeGroot, 30, dim=3, opinion=Uniform())
    parent = _run(log_path, pop, Gossip(SmallWorld(k=4), fanout=None), 6, state_every=1, checkpoint_every=2)
    child = fork(log_path, parent.run_id, at=2, set={"5.opinion": [1.0, 0.0, 1.0]}, runtime="local")
    mine, theirs = (vectors_at(log_path, r.run_id, "opinion", 3) for r in (child, parent))
    p2 = vectors_at(log_path, parent.run_id, "opinion", 2)
    assert np.array_equal(vectors_at(log_path, child.run_id, "opinion", 2), p2)  # history copied
    # Round 3 reads the messages in flight from round 2 (the parent's): x5 = 0.5 set + 0.5 M, and
    # the parent's x5 = 0.5 x5(2) + 0.5 M gives M.
    heard_mean = 2 * theirs[5] - p2[5]
    assert np.allclose(mine[5], 0.5 * np.array([1.0, 0.0, 1.0]) + 0.5 * heard_mean, rtol=0, atol=1e-12)
    others = np.delete(np.arange(30), 5)
    assert np.array_equal(mine[others], theirs[others])  # nobody has heard the change yet
    with pytest.raises(
        ConfigError, match=r"opinion of agent 5 is a vector of 3, but got shape \(2,\)|shape \(1, 2\)"
    ):
        fork(log_path, parent.run_id, at=2, set={"5.opinion": [1.0, 0.0]}, runtime="local")
