"""Information asymmetry: the breadth-first baseline against the hop distances, unreachable facts,
facts that travel only along edges (from the log), the InfoNav agent's stand-in, the same log
whatever the hosts, bad input, the command line."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest

from orchestrator import ConfigError, launch, query
from protocols.info_asymmetry import InfoAsymmetry
from protocols.info_asymmetry.tasks import facts_of, paper_graph
from tests.orchestrator.helpers import PLACES, messages_hash, moot_cli


def _results(log: Path, run_id: str) -> list[dict]:
    return query(log, "SELECT * FROM info_task_results ORDER BY task", run_id=run_id).to_pylist()


def test_the_baseline_solves_every_task_in_twice_its_hop_distance(tmp_path: Path) -> None:
    log = tmp_path / "bfs.duckdb"
    proto = InfoAsymmetry(tasks=60, max_hops=4)
    assert (proto.network.number_of_nodes(), proto.network.number_of_edges()) == (140, 588)
    run = launch(
        proto.default_population(140), proto, rounds=30, seed=0, log=log, runtime="local", state_every=1
    )
    rows = _results(log, run.run_id)
    graph = paper_graph(0)
    assert len(rows) == 60 and {r["kind"] for r in rows} == {"lookup", "join", "schedule"}
    assert sorted({r["hops"] for r in rows}) == [1, 2, 3, 4]
    for r in rows:
        owners = [int(k.split(".")[0]) for k in proto.tasks[r["task"]].need]
        assert r["hops"] == max(
            nx.shortest_path_length(graph, r["asker"], o) for o in owners
        )  # networkx agrees
        assert r["solved"] and r["answer"] == r["truth"], r
        assert r["answered_round"] == 2 * r["hops"], r  # the ask goes out h hops, the tell comes back h
    assert run.stop_reason == "pending.max <= 0"
    assert run.rounds == 2 * 4 + 1  # stopped the round the last task was answered
    by_hops = query(
        log, "SELECT hops, success_rate, rounds FROM info_success_by_hops ORDER BY hops", run_id=run.run_id
    )
    assert by_hops.to_pylist() == [{"hops": h, "success_rate": 1.0, "rounds": 2.0 * h} for h in (1, 2, 3, 4)]


def test_a_fact_out_of_reach_is_never_found_and_facts_travel_only_along_edges(tmp_path: Path) -> None:
    graph = nx.disjoint_union(nx.path_graph(6), nx.path_graph(4))  # people 6..9 are out of reach of 0..5
    facts = {**facts_of(3, 0), **facts_of(8, 0)}
    tasks = [
        {"asker": 0, "kind": "lookup", "need": ["3.city"], "answer": facts["3.city"]},
        {"asker": 1, "kind": "lookup", "need": ["8.employer"], "answer": facts["8.employer"]},
    ]
    log = tmp_path / "reach.duckdb"
    proto = InfoAsymmetry(graph, tasks=tasks)
    run = launch(
        proto.default_population(10), proto, rounds=15, seed=0, log=log, runtime="local", state_every=1
    )
    near, far = _results(log, run.run_id)
    assert (near["solved"], near["answered_round"], near["hops"]) == (True, 6, 3)
    assert (far["solved"], far["answered_round"], far["hops"]) == (False, None, None)
    assert run.rounds == 15 and run.stop_reason == "rounds"  # the open task keeps it going to the budget
    # From the log: every message crosses an edge, and every fact told is the teller's own or one
    # told to it in an earlier round.
    sent = query(
        log,
        "SELECT round, sender, receiver, kind, payload FROM messages ORDER BY round, sender, seq",
        run_id=run.run_id,
    ).to_pylist()
    assert sent and all(graph.has_edge(m["sender"], m["receiver"]) for m in sent)
    heard: dict[int, dict[str, int]] = {}
    for m in sent:
        if m["kind"] != "tell":
            continue
        for key in json.loads(m["payload"])["facts"]:
            owner = int(key.split(".")[0])
            assert owner == m["sender"] or heard.get(m["sender"], {}).get(key, m["round"]) < m["round"], m
            heard.setdefault(m["receiver"], {}).setdefault(key, m["round"])
    assert not any(key.startswith("8.") for told in heard.values() for key in told)


def test_the_infonav_stand_in_plays_the_baseline_through_the_gateway(tmp_path: Path) -> None:
    graph = nx.connected_watts_strogatz_graph(20, 4, 0.2, seed=1)
    logs = {}
    for agent in ("rule", "llm"):
        log = tmp_path / f"{agent}.duckdb"
        proto = InfoAsymmetry(graph, tasks=6, max_hops=3, agent=agent)
        run = launch(
            proto.default_population(20), proto, rounds=10, seed=0, log=log, runtime="local", state_every=1
        )
        logs[agent] = (log, run)
    (rule_log, rule), (llm_log, llm) = logs["rule"], logs["llm"]
    assert messages_hash(rule_log, rule.run_id) == messages_hash(llm_log, llm.run_id)
    assert [r["answered_round"] for r in _results(rule_log, rule.run_id)] == [
        r["answered_round"] for r in _results(llm_log, llm.run_id)
    ]
    calls = query(
        llm_log,
        "SELECT count(*) AS n, count(error) AS e, any_value(model) AS m FROM llm_calls",
        run_id=llm.run_id,
    ).to_pylist()[0]
    assert calls == {"n": 20 * llm.rounds, "e": 0, "m": "moot/simulated"}


@pytest.mark.ray
def test_the_same_log_in_process_and_on_1_or_3_hosts(ray_cluster: object, tmp_path: Path) -> None:
    graph = nx.connected_watts_strogatz_graph(24, 4, 0.2, seed=2)
    seen = set()
    for where, kw in PLACES.items():
        log = tmp_path / f"{where}.duckdb"
        proto = InfoAsymmetry(graph, tasks=5, max_hops=3)  # the stand-in's log is the baseline's (above)
        run = launch(proto.default_population(24), proto, rounds=8, seed=0, log=log, state_every=1, **kw)
        answers = query(
            log, "SELECT task, answer, answered_round FROM info_task_results ORDER BY task", run_id=run.run_id
        ).to_pylist()
        seen.add((messages_hash(log, run.run_id), str(answers)))
    assert len(seen) == 1


def test_bad_tasks_and_graphs_are_one_line_errors_naming_the_value() -> None:
    graph = nx.path_graph(5)
    graph.add_node(5)  # person 5 knows no one
    city = facts_of(2, 0)["2.city"]
    with pytest.raises(
        ConfigError, match=r"Task 0 has unknown field\(s\) deadline; a task has: asker, kind, need"
    ):
        InfoAsymmetry(
            graph, tasks=[{"asker": 0, "kind": "lookup", "need": ["2.city"], "answer": city, "deadline": 3}]
        )
    with pytest.raises(ConfigError, match="Task 0 has no answer; give its exact answer"):
        InfoAsymmetry(graph, tasks=[{"asker": 0, "kind": "lookup", "need": ["2.city"]}])
    with pytest.raises(
        ConfigError, match="Task 0's asker 5 has no neighbours in the graph, so it can ask no one"
    ):
        InfoAsymmetry(graph, tasks=[{"asker": 5, "kind": "lookup", "need": ["2.city"], "answer": city}])
    with pytest.raises(ConfigError, match=r"Task 0 needs '2\.shoe'; name a fact '<person>\.<attribute>'"):
        InfoAsymmetry(graph, tasks=[{"asker": 0, "kind": "lookup", "need": ["2.shoe"], "answer": "x"}])
    with pytest.raises(ConfigError, match="The network has 140 people; run 140 agents"):
        InfoAsymmetry(tasks=3).default_population(100)


def test_the_command_line_runs_the_paper_sized_study(tmp_path: Path) -> None:
    log = tmp_path / "cli.duckdb"
    moot_cli(
        "run",
        "--protocol",
        "info_asymmetry",
        "--agents",
        "140",
        "--rounds",
        "12",
        "--local",
        "--log",
        str(log),
        "-o",
        "tasks=12",
        "--state-every",
        "1",
    )
    rows = query(log, "SELECT count(*) AS n, sum(solved::INTEGER) AS ok FROM info_task_results").to_pylist()[
        0
    ]
    assert rows == {"n": 12, "ok": 12}
