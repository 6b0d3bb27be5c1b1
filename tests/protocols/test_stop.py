"""Stop rules (`protocols.stop`): on their own (what fires when, combining, the command-line
spelling), then in real runs, each firing at the round computed independently here."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from agents import Agent, Message, OpinionAgent, Population
from orchestrator import ConfigError, launch
from protocols import AnyOf, Consensus, Custom, Gossip, Stationary, Threshold, parse_stop
from tests.orchestrator.helpers import BoundedConfidence


def test_consensus_reads_the_fields_spread() -> None:
    rule = Consensus("belief", tol=0.1)
    assert rule.fields() == {"belief"}
    assert rule.check(2, {"belief.spread": 0.05}) == "consensus"
    assert rule.check(2, {"belief.spread": 0.1}) is None
    assert rule.check(2, {"spread": 0.0}) is None  # another field's spread is not this one's


def test_stationary_skips_round_zero_and_counts_calm_rounds() -> None:
    rule = Stationary(tol=1e-6, patience=2)
    assert rule.needs_change()
    assert rule.check(0, {"max_change": 0.0}) is None
    assert rule.check(1, {"max_change": 0.0}) is None
    assert rule.check(2, {"max_change": 1e-3}) is None
    assert rule.check(3, {"max_change": 1e-7}) is None
    assert rule.check(4, {"max_change": 0.0}) == "stationary"
    assert rule.check(0, {"max_change": 0.0}) is None  # a new run starts over


def test_stationary_never_reads_a_round_in_which_nothing_acted_as_calm() -> None:
    rule = Stationary(tol=1e-6)
    assert rule.check(0, {"max_change": 0.0, "messages": 0.0}) is None
    for r in range(1, 5):  # an outage: no message, no action, nothing moved
        assert rule.check(r, {"max_change": 0.0, "messages": 0.0, "actions": 0.0}) is None
    assert rule.check(5, {"max_change": 0.0, "messages": 0.0, "actions": 3.0}) == "stationary"  # acted
    rule.check(0, {"max_change": 0.0})
    assert rule.check(1, {"max_change": 0.0, "messages": 12.0}) == "stationary"


def test_threshold_and_an_unknown_metric() -> None:
    rule = Threshold("score", ">=", 10)
    assert rule.check(5, {"score": 9.0}) is None
    assert rule.check(6, {"score": 10.0}) == "score >= 10"
    with pytest.raises(
        ConfigError, match=r"reads metric 'scroe', which this run does not produce; its metrics are: score"
    ):
        Threshold("scroe", ">=", 10).check(0, {"score": 1.0})
    with pytest.raises(ConfigError, match=r"Unknown comparison '=>'"):
        Threshold("score", "=>", 1)
    assert Threshold("belief.mean", ">", 0).fields() == {"belief"}


def test_rules_combine_with_or_and_the_first_names_the_reason() -> None:
    rule = Consensus(tol=0.01) | Threshold("variance", "<", 1e-3) | (lambda r, m: r >= 7)
    assert isinstance(rule, AnyOf) and len(rule.rules) == 3
    assert rule.check(1, {"opinion.spread": 1.0, "variance": 0.5}) is None
    assert rule.check(2, {"opinion.spread": 0.001, "variance": 1e-4}) == "consensus"
    assert rule.check(3, {"opinion.spread": 1.0, "variance": 1e-4}) == "variance < 0.001"
    assert rule.check(7, {"opinion.spread": 1.0, "variance": 0.5}) == "<lambda>"
    assert rule.fields() == {"opinion"}


def test_custom_rules_return_true_or_a_reason() -> None:
    def budget(round: int, metrics: dict[str, float]) -> str | None:
        return "enough messages" if metrics["messages"] > 100 else None

    assert Custom(budget).check(0, {"messages": 101}) == "enough messages"
    with pytest.raises(ConfigError, match=r"returned 3; return True, a reason string"):
        Custom(lambda r, m: 3, name="odd").check(0, {})  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("consensus", Consensus()),
        ("consensus:0.001", Consensus(tol=0.001)),
        ("consensus:belief:0.5", Consensus("belief", 0.5)),
        ("stationary", Stationary()),
        ("stationary:1e-6", Stationary(1e-6)),
        ("variance<1e-4", Threshold("variance", "<", 1e-4)),
        ("score >= 10", Threshold("score", ">=", 10.0)),
    ],
)
def test_parse_stop(spec: str, expected: object) -> None:
    assert parse_stop(spec) == expected


def test_parse_stop_errors() -> None:
    with pytest.raises(ConfigError, match=r"Unknown stop rule 'consensu'; e.g. consensus:0.001"):
        parse_stop("consensu")
    with pytest.raises(ConfigError, match=r"Cannot read stop rule 'stationary:abc'"):
        parse_stop("stationary:abc")
    combined = parse_stop("consensus:0.1 | stationary")
    assert combined == AnyOf((Consensus(tol=0.1), Stationary()))


# ---- in real runs ------------------------------------------------------------------------------


def hk_step(x: np.ndarray, eps: float) -> np.ndarray:
    near = np.abs(x[:, None] - x[None, :]) <= eps
    return (near * x[None, :]).sum(axis=1) / near.sum(axis=1)


def test_stationary_stops_a_clustering_model_when_it_settles(log_path: Path) -> None:
    """Hegselmann-Krause never reaches consensus at eps=0.1; it freezes into clusters."""
    n, eps, tol = 120, 0.1, 1e-12
    x0 = np.random.default_rng(3).random(n)
    # Independently: round r >= 1 computes x(r) = HK(x(r-1)); stop at the first calm round.
    x, expected = x0.copy(), None
    for r in range(1, 500):
        nxt = hk_step(x, eps)
        if np.max(np.abs(nxt - x)) <= tol:
            expected = r
            break
        x = nxt
    assert expected is not None and expected > 3
    clusters = len(np.unique(np.round(x, 9)))
    assert clusters >= 3

    run = launch(
        Population.of(BoundedConfidence, n, opinion=x0, epsilon=eps),
        Gossip(nx.complete_graph(n), fanout=None),
        rounds=500,
        stop=Stationary(tol=tol),
        log=log_path,
        runtime="local",
    )
    assert (run.stop_reason, run.rounds - 1) == ("stationary", expected)
    final = run.sql(f"SELECT value FROM states WHERE field = 'opinion' AND round = {expected} ORDER BY agent")
    assert np.max(np.abs(final.column("value").to_numpy() - x)) < 1e-9
    change = run.sql("SELECT round, value FROM metrics WHERE name = 'max_change' ORDER BY round").to_pylist()
    assert [c["round"] for c in change] == list(range(expected + 1)) and change[-1]["value"] <= tol
    assert run.sql("SELECT stop_reason FROM runs").to_pylist() == [{"stop_reason": "stationary"}]


def test_a_metric_threshold_fires_at_the_round_degroot_predicts(log_path: Path) -> None:
    n = 30
    g = nx.cycle_graph(n)
    rng = np.random.default_rng(8)
    x0, s = rng.random(n), np.full(n, 0.5)
    a = nx.to_numpy_array(g, nodelist=range(n))
    w = np.diag(s) + np.diag(1 - s) @ (a.T / a.sum(axis=0)[:, None])
    threshold = 0.2 * np.var(x0)
    x, expected = x0.copy(), None
    for r in range(1, 1000):  # round 0 hears nothing; round r holds W^r x0
        x = w @ x
        if np.var(x) < threshold:
            expected = r
            break
    assert expected is not None

    run = launch(
        Population.of(OpinionAgent, n, opinion=x0, stubbornness=s),
        Gossip(g, fanout=None),
        rounds=1000,
        stop=Threshold("variance", "<", threshold) | Stationary(),
        log=log_path,
        runtime="local",
    )
    assert run.stop_reason == f"variance < {threshold:g}"
    assert run.rounds - 1 == expected


def test_stop_from_a_callable_and_from_a_spec_string(tmp_path: Path) -> None:
    pop = Population.of(OpinionAgent, 200)
    run = launch(
        pop, Gossip(), rounds=50, stop=lambda r, m: r == 4, log=tmp_path / "a.duckdb", runtime="local"
    )
    assert (run.rounds, run.stop_reason) == (5, "<lambda>")
    run = launch(pop, Gossip(), rounds=50, stop="messages>0", log=tmp_path / "b.duckdb", runtime="local")
    assert (run.rounds, run.stop_reason) == (1, "messages > 0")


def test_a_user_can_stop_a_running_run(log_path: Path) -> None:
    run = launch(
        Population.of(OpinionAgent, 5000),
        Gossip(tolerance=0.0),
        rounds=100_000,
        log=log_path,
        runtime="local",
        wait=False,
    )
    import time

    deadline = time.monotonic() + 60
    while run.round < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    run.stop("enough")
    assert run.wait(timeout=60).stop_reason == "enough" and run.rounds < 100_000


class Talker(Agent):
    """Has no opinion at all."""

    mood: str = "fine"

    def act(self, inbox: list[Message], ctx: object) -> Message:
        return Message(kind="post", text=self.mood)


def test_a_watched_field_no_agent_has_is_refused(log_path: Path) -> None:
    """Bug 2: Gossip(field='opnion') ran with agents=0 and could never stop."""
    pop = Population.of(OpinionAgent, 100)
    with pytest.raises(ConfigError) as info:
        launch(pop, Gossip(field="opnion"), rounds=3, log=log_path, runtime="local")
    assert str(info.value) == (
        "Gossip watches field 'opnion', which no agent class in the population has as a numeric field; "
        "numeric fields: opinion, stubbornness. Fix field=..., or add the field to the agents."
    )
    assert not log_path.exists()
    with pytest.raises(
        ConfigError, match=r"Stop rule consensus\(belief spread < 0.01\) reads field 'belief'"
    ):
        launch(pop, Gossip(), rounds=3, stop="consensus:belief:0.01", log=log_path, runtime="local")
    # A population with no opinion at all: nothing is watched, and the budget ends the run.
    run = launch(Population.of(Talker, 50), Gossip(), rounds=3, log=log_path, runtime="local")
    assert run.stop_reason == "rounds" and "spread" not in run.final


def test_a_second_field_gets_its_own_statistics(log_path: Path) -> None:
    pop = Population.of(
        OpinionAgent, 300, opinion=np.linspace(0, 1, 300), stubbornness=np.linspace(0, 1, 300)
    )
    run = launch(pop, Gossip(), rounds=2, stop="stubbornness.mean > 2", log=log_path, runtime="local")
    names = {r["name"] for r in run.sql("SELECT DISTINCT name FROM metrics").to_pylist()}
    assert {"mean", "spread", "stubbornness.mean", "stubbornness.spread"} <= names
    mean = run.sql("SELECT value FROM metrics WHERE name = 'stubbornness.mean' AND round = 1").to_pylist()
    assert mean == [{"value": pytest.approx(0.5)}]


def test_a_callable_rule_reads_the_round_and_the_run_totals(log_path: Path) -> None:
    from agents import Uniform

    limit = 25_000
    run = launch(
        Population.of(OpinionAgent, 2000, opinion=Uniform()),
        Gossip(fanout=2, mode="push-pull", tolerance=0.0),
        rounds=100,
        seed=4,
        log=log_path,
        runtime="local",
        stop=lambda round, metrics: metrics["total_messages"] >= limit,
    )
    per_round = (
        run.sql("SELECT messages FROM consensus_by_round ORDER BY round").column("messages").to_pylist()
    )
    totals = np.cumsum(per_round)
    assert run.rounds == int(np.argmax(totals >= limit)) + 1  # the first round whose total reached it
    assert totals[-2] < limit <= totals[-1] and max(per_round) < limit  # a per-round reading never would
