"""Debate runs: traits change how fast societies agree; the log's accuracy and conformity equal
what the test computes from the answers; same seed, same log on 1 and 3 Ray hosts."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from agents.population import Population
from orchestrator import LLMConfig, launch, query
from protocols.debate import Debate, LLMDebater, RuleDebater
from protocols.debate.questions import conforms, strict_majority
from tests.orchestrator.helpers import messages_hash


def answers_by_society(log: Path, run_id: str, size: int) -> dict[tuple[int, int], list[float | None]]:
    rows = query(
        log, f"SELECT round, sender, value FROM messages WHERE run_id = '{run_id}' AND kind = 'answer'"
    ).to_pylist()
    out: dict[tuple[int, int], list[float | None]] = defaultdict(lambda: [None] * size)
    for r in rows:
        out[(r["round"], r["sender"] // size)][r["sender"] % size] = r["value"]
    return out


def test_easygoing_societies_agree_sooner_than_overconfident_ones(tmp_path: Path) -> None:
    proto = Debate(n_questions=100, strategies=["00000"], mixes=["eee", "ooo"])
    run = launch(
        proto.default_population(3 * 1200),
        proto,
        rounds=6,
        seed=4,
        log=tmp_path / "d.duckdb",
        runtime="local",
        stop=lambda r, m: False,
    )
    rows = query(
        tmp_path / "d.duckdb",
        f"""SELECT mix, avg(coalesce(first_unanimous, 6)) AS rounds_to_unanimity, count(*) AS societies
            FROM (SELECT society, any_value(mix) AS mix, min(round) FILTER (unanimous) AS first_unanimous
                  FROM debate_by_round WHERE run_id = '{run.run_id}' GROUP BY society)
            GROUP BY mix ORDER BY mix""",
    ).to_pylist()
    assert [r["societies"] for r in rows] == [600, 600]
    easy, stubborn = (r["rounds_to_unanimity"] for r in rows)  # mix 0 = eee, mix 1 = ooo
    assert easy + 1.0 < stubborn, (easy, stubborn)


def test_accuracy_and_conformity_in_the_log_equal_the_tests_own(tmp_path: Path) -> None:
    log = tmp_path / "d.duckdb"
    proto = Debate(n_questions=7, strategies=["010"], mixes="machinesom")  # 4 mixes
    run = launch(
        proto.default_population(3 * 300),
        proto,
        rounds=4,
        seed=2,
        log=log,
        runtime="local",
        stop=lambda r, m: False,
    )
    truth = [float(q.answer) for q in proto.questions]
    answers = answers_by_society(log, run.run_id, 3)
    metrics = {
        (r["round"], r["name"]): r["value"]
        for r in query(
            log, f"SELECT round, name, value FROM metrics WHERE run_id = '{run.run_id}'"
        ).to_pylist()
    }
    for rnd in range(4):
        right = [strict_majority(answers[(rnd, s)]) == truth[s % 7] for s in range(300)]
        per_agent = [a == truth[s % 7] for s in range(300) for a in answers[(rnd, s)]]
        assert metrics[(rnd, "accuracy")] == pytest.approx(np.mean(right))
        assert metrics[(rnd, "agent_accuracy")] == pytest.approx(np.mean(per_agent))
    view = query(
        log,
        f"SELECT round, sum(accuracy * societies) / sum(societies) AS acc FROM debate_accuracy_by_round "
        f"WHERE run_id = '{run.run_id}' GROUP BY round ORDER BY round",
    ).to_pylist()
    assert [v["acc"] for v in view] == pytest.approx([metrics[(r, "accuracy")] for r in range(4)])
    # Conformity only over debate transitions: "010" debates into rounds 1 and 3.
    conf = query(
        log,
        f"SELECT from_round, conforming, tt, tf, ft, ff FROM debate_conformity "
        f"WHERE run_id = '{run.run_id}' ORDER BY from_round",
    ).to_pylist()
    assert [c["from_round"] for c in conf] == [0, 2]
    for c in conf:
        r = c["from_round"]
        counts = defaultdict(int)
        for s in range(300):
            before, after = answers[(r, s)], answers[(r + 1, s)]
            for b, a, ok in zip(before, after, conforms(before, after)):
                if ok:
                    counts[
                        "tt"
                        if b == truth[s % 7] and a == truth[s % 7]
                        else "tf"
                        if b == truth[s % 7]
                        else "ft"
                        if a == truth[s % 7]
                        else "ff"
                    ] += 1
        assert (c["tt"], c["tf"], c["ft"], c["ff"]) == (
            counts["tt"],
            counts["tf"],
            counts["ft"],
            counts["ff"],
        )
        assert c["conforming"] == sum(counts.values())
    # MachineSoM's situation 1: the majority of the *other* agents (count >= 2 among them).
    others = query(
        log,
        f"SELECT from_round, transitions, conforming FROM debate_conformity_others "
        f"WHERE run_id = '{run.run_id}' ORDER BY from_round",
    ).to_pylist()
    for c in others:
        r, conforming = c["from_round"], 0
        for s in range(300):
            before = ["none" if b is None else str(b) for b in answers[(r, s)]]
            after = ["none" if a is None else str(a) for a in answers[(r + 1, s)]]
            for i in range(3):
                rest = before[:i] + before[i + 1 :]
                top = max(rest.count(k) for k in rest)
                conforming += top >= 2 and rest.count(after[i]) == top
        assert (c["transitions"], c["conforming"]) == (900, conforming)
    assert [c["from_round"] for c in others] == [0, 2]
    assert sum(c["conforming"] for c in others) < sum(c["conforming"] for c in conf)  # it counts less


def test_llm_debaters_run_offline_through_the_whole_llm_path(tmp_path: Path) -> None:
    log = tmp_path / "llm.duckdb"
    proto = Debate(n_questions=5, strategies=["01"])
    run = launch(
        Population.of(LLMDebater, 15),
        proto,
        rounds=3,
        seed=1,
        log=log,
        runtime="local",
        llm=LLMConfig(cache=""),
    )
    calls = query(log, "SELECT count(*) AS n, count(error_type) AS e FROM llm_calls").to_pylist()[0]
    assert (calls["n"], calls["e"]) == (45, 0)
    rows = query(
        log,
        f"SELECT count(*) AS n, count(answer) AS answered FROM debate_answers WHERE run_id = '{run.run_id}'",
    ).to_pylist()[0]
    assert rows == {"n": 45, "answered": 45}


@pytest.mark.ray
def test_same_seed_same_log_in_process_and_on_1_and_3_ray_hosts(ray_cluster: object, tmp_path: Path) -> None:
    log = tmp_path / "d.duckdb"
    proto = Debate(n_questions=20, strategies=["010"], mixes="machinesom", beliefs=True)
    pop = Population.of(RuleDebater, 3 * 200, accuracy=0.5)
    runs = [
        launch(pop, proto, rounds=4, seed=9, log=log, runtime=rt, hosts=h, stop=lambda r, m: False)
        for rt, h in (("local", 1), ("ray", 1), ("ray", 3))
    ]
    assert [r.hosts for r in runs] == [1, 1, 3]
    hashes = {messages_hash(log, r.run_id) for r in runs}
    assert len(hashes) == 1 and next(iter(hashes))[0] == 600 * 4 * 2  # an answer and a belief each


def test_debate_raises_the_rule_based_societies_accuracy_and_easy_going_ones_more(tmp_path: Path) -> None:
    log = tmp_path / "gain.duckdb"
    proto = Debate(n_questions=20, strategies=["000"], mixes=["eee", "ooo"])
    run = launch(
        proto.default_population(3 * 2000),
        proto,
        rounds=4,
        seed=3,
        log=log,
        runtime="local",
        stop=lambda r, m: False,
    )
    acc = {
        (r["mix"], r["round"]): r["accuracy"]
        for r in query(
            log,
            f"SELECT mix, round, sum(accuracy * societies) / sum(societies) AS accuracy "
            f"FROM debate_accuracy_by_round WHERE run_id = '{run.run_id}' GROUP BY ALL",
        ).to_pylist()
    }
    easy = acc[(0, 3)] - acc[(0, 0)]
    stubborn = acc[(1, 3)] - acc[(1, 0)]
    assert easy > 0.15 and stubborn > 0.02 and easy > stubborn + 0.1, acc
