"""Stop rules on their own: what fires when, combining, and the command-line spelling."""

from __future__ import annotations

import pytest

from orchestrator.errors import ConfigError
from protocols import AnyOf, Consensus, Custom, Stationary, Threshold, parse_stop


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
