"""Diagnostics and export: each diagnostic equals an independent computation on a built case
(networkx on the same graph, Gini and the friendship paradox by hand, a text series with known
turnover); every protocol's log and a silent run are analysed without error; exports read back
equal the log's rows."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import networkx as nx
import numpy as np
import pyarrow.parquet as pq
import pytest

from agents import Agent, Context, Message, OpinionAgent, Population, Uniform
from orchestrator import launch
from orchestrator.analysis import METRICS, analyze, gini, hill_alpha, overall
from protocols import Gossip
from protocols.registry import get_protocol
from tests.conftest import ROOT

MOOT = str(Path(sys.executable).with_name("moot"))


class Scripted(Agent):
    """Sends one message a round to each agent named in `targets` ("3,7"), with `words` as text."""

    targets: str = ""
    words: str = ""

    def act(self, inbox: list[Message], ctx: Context) -> list[Message]:
        text = self.words.split("|")[ctx.round] if self.words else None
        return [
            Message(kind="opinion", value=1.0, receiver=int(t), text=text)
            for t in self.targets.split(",")
            if t
        ]


class Silent(Agent):
    opinion: float = 0.0
    vectorised: ClassVar[bool | None] = False

    def act(self, inbox: list[Message], ctx: Context) -> None:
        return None


def _built(tmp_path: Path, graph: nx.DiGraph, rounds: int = 4, words: dict[int, str] | None = None) -> Path:
    """A run whose messages are exactly `graph`'s edges, once per round each."""
    log = tmp_path / "built.duckdb"
    agents = [
        Scripted(
            targets=",".join(str(v) for v in sorted(graph.successors(u))), words=(words or {}).get(u, "")
        )
        for u in range(graph.number_of_nodes())
    ]
    launch(
        agents, Gossip(nx.complete_graph(graph.number_of_nodes())), rounds=rounds, log=log, runtime="local"
    )
    return log


def test_gini_and_the_hill_estimator_match_their_test_vectors() -> None:
    assert gini([1, 1, 1, 1]) == 0
    assert gini([0, 0, 0, 1]) == 0.75
    assert gini([1, 2, 3, 4]) == 0.25
    assert gini([0, 0, 0, 0, 0, 0, 0, 0, 1, 9]) == pytest.approx(0.88)
    x = [1, 1, 2, 3, 8]
    assert hill_alpha(x) == pytest.approx(1 + 5 / sum(math.log(v / 0.5) for v in x))


def test_each_graph_diagnostic_equals_networkx_on_the_same_graph(tmp_path: Path) -> None:
    graph = nx.gnp_random_graph(40, 0.12, seed=4, directed=True)
    log = _built(tmp_path, graph)
    got = overall(analyze(log, window=2))
    g = nx.DiGraph()
    g.add_weighted_edges_from((u, v, 4) for u, v in graph.edges())  # four rounds, one message each
    assert got["reciprocity"] == pytest.approx(nx.overall_reciprocity(g))
    pr = nx.pagerank(g, weight="weight")
    assert got["pagerank_top5"] == pytest.approx(sum(sorted(pr.values())[-5:]))
    hubs, auths = nx.hits(g, max_iter=1000)
    assert got["hits_hub_top"] == pytest.approx(max(hubs.values()))
    assert got["hits_authority_top"] == pytest.approx(max(auths.values()))
    assert got["assortativity"] == pytest.approx(nx.degree_assortativity_coefficient(g, x="out", y="in"))
    und = g.to_undirected()
    parts = nx.community.louvain_communities(und, weight="weight", seed=0)
    assert got["communities"] == len(parts)
    assert got["modularity"] == pytest.approx(nx.community.modularity(und, parts, weight="weight"))
    # By hand: the share of agents whose neighbours have, on average, more neighbours.
    deg = dict(und.degree())
    share = [np.mean([deg[w] for w in und[v]]) > deg[v] for v in und if deg[v]]
    assert got["friendship_paradox"] == pytest.approx(sum(share) / len(share))
    # Gini of messages sent, by the mean-absolute-difference definition (zeros kept).
    sent = np.array([4 * graph.out_degree(u) for u in range(40)], float)
    mad = np.abs(sent[:, None] - sent[None, :]).mean() / (2 * sent.mean())
    assert got["gini_sent"] == pytest.approx(mad)
    assert got["participation"] == pytest.approx(np.mean(sent > 0))
    assert got["influence_persistence_by_window"] == {"2": 1.0}  # the same graph in both windows
    assert {k.removesuffix("_by_window") for k in got} <= set(METRICS)


def test_lexical_turnover_of_a_hand_made_text_series(tmp_path: Path) -> None:
    graph = nx.DiGraph([(0, 1)])
    graph.add_nodes_from(range(2))
    log = _built(tmp_path, graph, rounds=3, words={0: "a b|b c|c d"})
    got = overall(analyze(log, window=1))
    # Window 1 has {b, c, "b c"}: born c and "b c" (2 of 3); gone a and "a b" (2 of 3).
    assert got["lexical_birth_by_window"] == {"1": pytest.approx(2 / 3), "2": pytest.approx(2 / 3)}
    assert got["lexical_death_by_window"] == {"1": pytest.approx(2 / 3), "2": pytest.approx(2 / 3)}


def test_a_run_with_no_message_is_analysed_without_error(tmp_path: Path) -> None:
    log = tmp_path / "silent.duckdb"
    launch(
        Population.of(Silent, 10),
        Gossip(nx.cycle_graph(10)),
        rounds=3,
        log=log,
        runtime="local",
        stop="never",
    )
    got = overall(analyze(log))
    assert got["participation"] == 0 and got["gini_sent"] == 0
    assert "reciprocity" not in got  # no graph: nothing to compute


CASES: dict[str, tuple[int, int, dict[str, Any]]] = {
    "gossip": (300, 6, {}),
    "swarm_grid": (20, 6, {"size": [12, 12]}),
    "social_feed": (60, 6, {}),
    "debate": (30, 4, {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_protocols_log_is_analysed(name: str, tmp_path: Path) -> None:
    agents, rounds, options = CASES[name]
    proto = get_protocol(name)(**options)
    log = tmp_path / f"{name}.duckdb"
    launch(
        proto.default_population(agents), proto, rounds=rounds, seed=3, log=log, runtime="local", stop="never"
    )
    table = analyze(log)
    assert set(table.column("metric").to_pylist()) <= set(METRICS)
    got = overall(table)
    assert got["agents"] == agents
    assert 0 <= got["participation"] <= 1


def test_an_llm_runs_log_is_analysed(tmp_path: Path) -> None:
    from tests.orchestrator.helpers import llm_gossip

    log = tmp_path / "llm.duckdb"
    llm_gossip(log)
    got = overall(analyze(log, window=1))
    assert got["participation"] == 1 and "lexical_death_by_window" in got  # its reasons are text


def test_export_round_trips_every_table_and_a_view(tmp_path: Path) -> None:
    log = tmp_path / "run.duckdb"
    pop = Population.of(OpinionAgent, 200, opinion=Uniform())
    launch(pop, Gossip(fanout=2), rounds=4, seed=1, log=log, runtime="local", run_id="a")
    launch(pop, Gossip(fanout=2), rounds=3, seed=2, log=log, runtime="local", run_id="b")
    out = tmp_path / "out"
    done = subprocess.run(
        [MOOT, "export", str(log), "--run", "a", "--to", str(out), "--view", "consensus_by_round"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    con = duckdb.connect(str(log), read_only=True)
    try:
        for table in ("messages", "states", "metrics", "agents", "runs", "consensus_by_round"):
            back = pq.read_table(out / f"{table}.parquet").to_pylist()
            rows = con.sql(f"SELECT * FROM {table} WHERE run_id = 'a'").to_arrow_table().to_pylist()
            key = lambda r: json.dumps(r, sort_keys=True, default=str)  # noqa: E731
            assert sorted(map(key, back)) == sorted(map(key, rows)), table
            assert f"{table}.parquet: {len(rows):,} rows" in done.stdout
    finally:
        con.close()


def test_moot_analyze_prints_json_keyed_by_the_metric_names(tmp_path: Path) -> None:
    graph = nx.gnp_random_graph(20, 0.2, seed=1, directed=True)
    log = _built(tmp_path, graph)
    done = subprocess.run(
        [MOOT, "analyze", str(log), "--format", "json", "--window", "2"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    direct = json.loads(json.dumps(overall(analyze(log, window=2))))
    assert got.keys() == direct.keys()
    for key, value in direct.items():  # (HITS's last digit varies between processes)
        assert got[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    assert got["reciprocity"] == pytest.approx(nx.overall_reciprocity(graph))


def test_a_big_runs_graph_diagnostics_use_a_hashed_sample_and_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.analysis import diagnostics

    graph = nx.gnp_random_graph(40, 0.3, seed=5, directed=True)
    log = _built(tmp_path, graph)
    monkeypatch.setattr(diagnostics, "GRAPH_AGENTS", 10)  # 40 agents: a sample of about a quarter
    table = analyze(log)
    kept = {a for (a,) in duckdb.sql("SELECT range FROM range(40) WHERE hash(range) % 4 = 0").fetchall()}
    sample = nx.DiGraph(graph.subgraph(kept))
    row = next(r for r in table.to_pylist() if r["metric"] == "pagerank_top5" and r["window"] is None)
    pr = nx.pagerank(sample)
    assert row["value"] == pytest.approx(sum(sorted(pr.values())[-5:]))
    assert "hashed sample of 1/4 of the agents" in json.loads(row["definition"])["graph"]
    recip = next(r for r in table.to_pylist() if r["metric"] == "reciprocity" and r["window"] is None)
    assert recip["value"] == pytest.approx(nx.overall_reciprocity(sample))
    sent = next(r for r in table.to_pylist() if r["metric"] == "gini_sent" and r["window"] is None)
    assert sent["value"] == pytest.approx(gini([4 * graph.out_degree(u) for u in range(40)]))  # every agent


def test_the_sql_macros_give_the_same_gini_and_reciprocity(tmp_path: Path) -> None:
    from orchestrator.log import query

    graph = nx.gnp_random_graph(30, 0.2, seed=9, directed=True)
    log = _built(tmp_path, graph)
    rid = query(log, "SELECT run_id FROM runs").to_pylist()[0]["run_id"]
    got = overall(analyze(log))
    gini_sql = query(log, f"SELECT * FROM activity_gini('{rid}', 30)").to_pylist()[0]["gini"]
    recip_sql = query(log, f"SELECT * FROM interaction_reciprocity('{rid}')").to_pylist()[0]["reciprocity"]
    assert gini_sql == pytest.approx(got["gini_sent"])
    assert recip_sql == pytest.approx(got["reciprocity"]) == pytest.approx(nx.overall_reciprocity(graph))
