"""What debaters see: peers' previous answers in debate rounds, none in reflection, never a
private belief; synchronous rounds; clear errors for a bad study."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from agents.batch import MessageBatch
from orchestrator.errors import ConfigError, ProtocolError
from protocols.debate import Debate
from protocols.debate.questions import strict_majority
from protocols.debate.world import DebateWorld, row_majority

KINDS = Debate().kind_table()


def world(**kw: object) -> DebateWorld:
    proto = Debate(n_questions=4, beliefs=True, **kw)  # type: ignore[arg-type]
    w = proto.build(12, 0).world
    assert isinstance(w, DebateWorld)
    return w


def answers(
    ids: list[int], values: list[float], texts: list[str], beliefs: list[float] | None = None
) -> MessageBatch:
    import pyarrow as pa

    n = len(ids)
    parts = [
        MessageBatch(
            np.array(ids),
            np.zeros(n, np.int32),
            np.full(n, KINDS.index("answer"), np.uint8),
            np.array(values, float),
            np.full(n, -1),
            pa.array(texts),
        )
    ]
    if beliefs is not None:
        parts.append(MessageBatch.broadcast(np.array(ids), "belief", np.array(beliefs, float), kinds=KINDS))
    both = MessageBatch.concat(parts)
    return both.take(np.lexsort((both.seq, both.sender)))


def play_round(w: DebateWorld, r: int, values: list[float], beliefs: list[float] | None = None) -> None:
    ids = list(range(12))
    w.apply(
        answers(
            ids,
            values,
            [f"reasoning of agent {i} in round {r}, answer {v}" for i, v in zip(ids, values)],
            beliefs,
        ),
        r,
        KINDS,
    )


def test_a_debate_prompt_holds_exactly_the_peers_previous_answers_and_a_reflection_prompt_none() -> None:
    w = world(strategies=["01"])
    play_round(w, 0, [float(i) for i in range(12)], beliefs=[5.4321] * 12)
    debate = w.observe(4, 1)  # society 1: agents 3, 4, 5
    text = debate.render()
    assert text.count("One agent response: ```") == 2
    assert "reasoning of agent 3 in round 0" in text and "reasoning of agent 5 in round 0" in text
    assert "agent 4 in round 0" not in text  # not its own
    play_round(w, 1, [float(i) for i in range(12)])
    reflection = w.observe(4, 2).render()
    assert "One agent response" not in reflection and "double check" in reflection
    # A private belief enters no observation: not the text, not the arrays.
    assert not any("5.4321" in w.observe(a, 2).render() for a in range(12))
    assert "5.4321" not in text
    assert not any(np.any(col == 5.4321) for col in w.observe_batch(np.arange(12), 2).values())
    assert w.belief[0] == 5.4321  # while the world does hold it (and logs it)
    assert set(w.observe_batch(np.arange(12), 1)) == {
        "solution",
        "peer_right",
        "own",
        "majority",
        "pattern",
        "pliability",
        "beliefs",
    }


def test_peer_right_says_whether_a_peer_one_sees_was_right() -> None:
    w = world(strategies=["00"])
    answers = [w.truth[i // 3] + 1.0 for i in range(12)]  # everyone wrong ...
    answers[3] = float(w.truth[1])  # ... but agent 3, in society 1 (agents 3, 4, 5)
    play_round(w, 0, answers)
    seen = w.observe_batch(np.arange(12), 1)["peer_right"]
    assert seen.tolist() == [False] * 3 + [False, True, True] + [False] * 6  # not oneself


def test_changing_one_round_r_answer_changes_no_round_r_prompt() -> None:
    a, b = world(strategies=["00"]), world(strategies=["00"])
    base = [float(i % 3) for i in range(12)]
    play_round(a, 0, base)
    play_round(b, 0, base)
    seen_a = [a.observe(i, 1).render() for i in range(12)]
    seen_b = [b.observe(i, 1).render() for i in range(12)]
    assert seen_a == seen_b
    changed = list(base)
    changed[0] = 99.0
    play_round(a, 1, base)
    play_round(b, 1, changed)  # agent 0's round-1 answer differs; every round-1 prompt was made before
    after_a, after_b = (
        [a.observe(i, 2).render() for i in range(12)],
        [b.observe(i, 2).render() for i in range(12)],
    )
    differ = [i for i in range(12) if after_a[i] != after_b[i]]
    assert differ == [1, 2]  # only agent 0's peers see it, and only from round 2


def test_a_sparse_graph_limits_whom_a_debater_sees() -> None:
    w = world(strategies=["0"], graph=nx.path_graph(3))  # 0 - 1 - 2
    play_round(w, 0, [float(i) for i in range(12)])
    assert w.observe(0, 1).render().count("One agent response") == 1
    assert w.observe(1, 1).render().count("One agent response") == 2


def test_row_majority_agrees_with_the_reference_rule() -> None:
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 3, size=(500, 4)).astype(float)
    rows[rng.random(rows.shape) < 0.2] = np.nan
    majority, distinct = row_majority(rows)
    for row, m, d in zip(rows, majority, distinct):
        ref = strict_majority([None if np.isnan(x) else x for x in row])
        got = None if np.isnan(m) or np.isinf(m) else m
        assert got == ref
        assert d == len({"none" if np.isnan(x) else x for x in row})


def test_round_beyond_the_strategy_is_refused_with_the_fix() -> None:
    w = world(strategies=["01"])
    with pytest.raises(
        ProtocolError,
        match=r"Round 3 has no thinking pattern: the strategies \(01\) cover rounds 1\.\.2 .* Run 3 rounds",
    ):
        w.observe(0, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategies": ["010", "01"]}, r"Strategy '01' has 2 rounds but '010' has 3"),
        ({"strategies": ["0a0"]}, r"Strategy '0a0' must be 0s \(debate\) and 1s \(reflection\)"),
        ({"strategies": ["01|01"]}, r"gives 2 per-agent patterns for societies of 3"),
        ({"size": 1}, r"A debate society needs at least 2 agents, got size=1"),
        (
            {"mixes": [["easygoing", "stubborn", "easygoing"]]},
            r"Unknown trait 'stubborn'; use easygoing, overconfident, or 'persona:<your text>'",
        ),
    ],
)
def test_bad_studies_get_clear_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Debate(**kwargs)  # type: ignore[arg-type]


def test_agents_must_make_whole_societies() -> None:
    with pytest.raises(
        ConfigError, match=r"10 agents do not make whole societies of 3; give a multiple of 3 \(e.g. 9\)"
    ):
        Debate().build(10, 0)
