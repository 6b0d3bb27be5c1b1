"""The log's schema, and the locked-down connection user queries go through."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents import OpinionAgent, Population, Uniform
from orchestrator import ConfigError, LogError, QueryRefused, launch
from orchestrator.cli import app
from orchestrator.log import LogWriter, query
from protocols import Gossip

HOSTILE = {
    "INSERT INTO runs (run_id) VALUES ('x')": "read-only mode",
    "COPY messages TO '/tmp/moot-stolen.csv'": "file system operations are disabled",
    "SELECT * FROM read_csv('/etc/passwd')": "file system operations are disabled",
    "ATTACH '/tmp/other.duckdb' AS other": "file system operations are disabled",
    "INSTALL httpfs": "file system operations are disabled",
    "SET threads = 1": "the configuration has been locked",
    "DROP TABLE messages": "read-only mode",
    "LOAD httpfs": "disabled through configuration",
}


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("log") / "run.duckdb"
    launch(
        Population.of(OpinionAgent, 300, opinion=Uniform()),
        "gossip",
        rounds=5,
        seed=1,
        log=path,
        runtime="local",
    )
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("sql", list(HOSTILE))
def test_moot_sql_refuses_hostile_queries_and_changes_nothing(small_log: Path, sql: str) -> None:
    before = digest(small_log)
    result = CliRunner().invoke(app, ["sql", str(small_log), sql])
    assert result.exit_code == 2
    assert "Query refused" in result.output and HOSTILE[sql] in result.output
    assert "may only read it" in result.output
    assert digest(small_log) == before
    assert not Path("/tmp/moot-stolen.csv").exists()


def test_query_error_types(small_log: Path) -> None:
    with pytest.raises(QueryRefused):
        query(small_log, "CREATE TABLE t (a INT)")
    with pytest.raises(LogError, match="Query failed: Catalog Error: Table with name nope does not exist"):
        query(small_log, "SELECT * FROM nope")
    with pytest.raises(ConfigError, match="No log at"):
        query(small_log.parent / "missing.duckdb", "SELECT 1")


def test_moot_sql_reads(small_log: Path) -> None:
    result = CliRunner().invoke(
        app, ["sql", str(small_log), "SELECT count(*) AS n FROM messages", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    n = query(small_log, "SELECT sum(messages) AS m FROM consensus_by_round").column("m")[0].as_py()
    assert result.output.strip() == f'[{{"n": {n}}}]'


def test_many_runs_share_a_file(tmp_path: Path) -> None:
    path = tmp_path / "two.duckdb"
    a, b = (
        launch(
            Population.of(OpinionAgent, 100, opinion=Uniform()),
            "gossip",
            rounds=r,
            seed=r,
            log=path,
            runtime="local",
        )
        for r in (3, 4)
    )
    rows = query(path, "SELECT run_id, rounds, messages FROM run_summary ORDER BY rounds").to_pylist()
    assert rows == [
        {"run_id": a.run_id, "rounds": 3, "messages": a.messages},
        {"run_id": b.run_id, "rounds": 4, "messages": b.messages},
    ]


def test_writer_reports_a_failed_background_append(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "w.duckdb")

    def boom() -> None:
        raise LogError("disk full (simulated)")

    writer.submit(boom)
    with pytest.raises(LogError, match="simulated"):
        writer.flush()
    writer.close()


@pytest.fixture
def tiny_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 1 MiB filesystem (tmpfs), so the log really runs out of space."""
    import subprocess

    mnt = tmp_path / "tiny"
    mnt.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mnt)], capture_output=True)
    if made.returncode != 0:
        why = f"cannot mount a tmpfs here: {made.stderr.decode().strip()}"
        if os.environ.get("CI"):  # CI runs as root: this test must run there, never skip
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_is_a_clear_error_and_keeps_earlier_rounds(tiny_disk: Path, tmp_path: Path) -> None:
    import shutil

    import duckdb

    log = tiny_disk / "full.duckdb"
    with pytest.raises(LogError) as info:
        launch(
            Population.of(OpinionAgent, 3000, opinion=Uniform()),
            Gossip(tolerance=0.0),
            rounds=500,
            log=log,
            runtime="local",
        )
    assert str(info.value) == (
        f"The disk holding '{log}' is full; rows already appended are kept. "
        "Free space, or pass a log path on another disk."
    )
    copy = tmp_path / "copy.duckdb"
    shutil.copy(log, copy)
    shutil.copytree(tiny_disk / "full.duckdb.parts", tmp_path / "copy.duckdb.parts")  # the run directory
    if log.with_suffix(".duckdb.wal").exists():
        shutil.copy(log.with_suffix(".duckdb.wal"), tmp_path / "copy.duckdb.wal")
    con = duckdb.connect(str(copy))
    rounds, rows = con.execute("SELECT count(DISTINCT round), count(*) FROM messages").fetchone()  # type: ignore[misc]
    per_round = con.execute("SELECT count(*) FROM messages GROUP BY round").fetchall()
    con.close()
    assert rounds >= 1 and rows == sum(r[0] for r in per_round) and min(r[0] for r in per_round) >= 3000
    # The runs row counts what reached the log, or the next writer marks the run crashed.
    (status, logged) = duckdb.connect(str(copy)).execute("SELECT status, rounds FROM runs").fetchone()  # type: ignore[misc]
    assert status in ("failed", "running") and logged in (None, rounds)
    LogWriter(copy).close()  # the next writer: a run left running is marked crashed
    con = duckdb.connect(str(copy))
    status, logged = con.execute("SELECT status, rounds FROM runs").fetchone()  # type: ignore[misc]
    con.close()
    assert status in ("failed", "crashed") and logged == rounds


def test_agreement_macros_match_numpy(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "agree.duckdb"
    run = launch(
        Population.of(OpinionAgent, 500, opinion=Uniform()),
        Gossip(fanout=2, mode="push-pull"),
        rounds=60,
        seed=4,
        log=path,
        runtime="local",
        state_every=5,
    )
    got = query(path, f"SELECT * FROM agreement_by_round('{run.run_id}', 'opinion', 0.05)").to_pylist()
    states = query(
        path, "SELECT round, value FROM states WHERE field = 'opinion' ORDER BY round, agent"
    ).to_pandas()
    expected = []
    for rnd, group in states.groupby("round"):
        v = group["value"].to_numpy()
        expected.append((rnd, float(np.mean(np.abs(v - np.median(v)) <= 0.05))))
    assert [r["round"] for r in got] == [r for r, _ in expected]
    assert [r["share"] for r in got] == pytest.approx([share for _, share in expected])
    assert got[0]["round"] == -1 and got[0]["agents"] == 500
    first = next(r for r, share in expected if share >= 0.9)
    rounds = query(
        path, f"SELECT * FROM rounds_to_agreement('{run.run_id}', 'opinion', 0.05, 0.9)"
    ).to_pylist()
    assert rounds == [{"round": first}]


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_every_duckdb_type_prints_in_every_format(small_log: Path, fmt: str) -> None:
    """Bug 3: lists, structs and duckdb_settings() crashed --format csv with ArrowInvalid."""
    import csv
    import io
    import json

    for sql in ("SELECT * FROM test_all_types()", "SELECT * FROM duckdb_settings()", "SELECT [1,2] AS l"):
        result = CliRunner().invoke(app, ["sql", str(small_log), sql, "--format", fmt, "--limit", "3"])
        assert result.exit_code == 0, (sql, result.output[-500:])
    out = (
        CliRunner()
        .invoke(
            app,
            [
                "sql",
                str(small_log),
                "SELECT [1,2] AS l, {'a': 1, 'b': 'x'} AS s, 1.5 AS d, NULL AS n",
                "--format",
                fmt,
            ],
        )
        .output
    )
    if fmt == "csv":
        assert list(csv.reader(io.StringIO(out))) == [
            ["l", "s", "d", "n"],
            ["[1,2]", '{"a":1,"b":"x"}', "1.5", ""],
        ]
    elif fmt == "json":
        assert json.loads(out) == [{"l": [1, 2], "s": {"a": 1, "b": "x"}, "d": 1.5, "n": None}]
    else:
        assert "[1,2]" in out and '{"a":1,"b":"x"}' in out
    rows = CliRunner().invoke(
        app, ["sql", str(small_log), "SELECT * FROM test_all_types()", "--format", "json"]
    )
    assert len(json.loads(rows.output)) == 3


def test_query_errors_keep_duckdbs_hints(small_log: Path) -> None:
    """Bug 5: only the first line survived, losing 'Did you mean ...'."""
    with pytest.raises(LogError) as info:
        query(small_log, "SELECT * FROM mesages")
    assert 'Did you mean "messages"' in str(info.value)
    with pytest.raises(LogError) as info:
        query(small_log, "SELECT sendr FROM messages")
    assert "Candidate bindings" in str(info.value) and '"sender"' in str(info.value)
    result = CliRunner().invoke(app, ["sql", str(small_log), "SELECT * FROM mesages"])
    assert result.exit_code == 2 and 'Did you mean "messages"' in result.output


def test_run_sql_answers_about_its_own_run(tmp_path: Path) -> None:
    """Bug 6: after a second run into the same log, each round appeared twice."""
    path = tmp_path / "two.duckdb"
    pop = Population.of(OpinionAgent, 300, opinion=Uniform())
    a = launch(pop, Gossip(tolerance=0.0), rounds=4, seed=1, log=path, runtime="local")
    b = launch(pop, Gossip(tolerance=0.0), rounds=6, seed=2, log=path, runtime="local")
    for run in (a, b):
        rounds = run.sql("SELECT round, mean, spread FROM consensus_by_round ORDER BY round")
        assert rounds.column("round").to_pylist() == list(range(run.rounds))
        assert run.sql("SELECT count(*) AS c FROM messages").column("c")[0].as_py() == run.messages
        assert run.sql("SELECT run_id FROM run_summary").to_pylist() == [{"run_id": run.run_id}]
        agree = run.sql(f"SELECT * FROM agreement_by_round('{run.run_id}', 'opinion', 0.1)")
        assert agree.num_rows == 2  # the initial state and the last round
    assert a.sql("SELECT count(*) AS c FROM runs", all_runs=True).column("c")[0].as_py() == 2
    assert query(path, "SELECT count(*) AS c FROM consensus_by_round").column("c")[0].as_py() == 10
    scoped = CliRunner().invoke(
        app, ["sql", str(path), "SELECT count(*) AS c FROM metrics", "--run", a.run_id, "--format", "json"]
    )
    everything = query(path, f"SELECT count(*) AS c FROM metrics WHERE run_id = '{a.run_id}'")
    assert scoped.output.strip() == f'[{{"c": {everything.column("c")[0].as_py()}}}]'


def test_a_duplicate_run_id_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.duckdb"
    pop = Population.of(OpinionAgent, 100)
    launch(pop, "gossip", rounds=2, log=path, runtime="local", run_id="baseline")
    with pytest.raises(ConfigError) as info:
        launch(pop, "gossip", rounds=2, log=path, runtime="local", run_id="baseline")
    assert str(info.value) == (
        f"run_id 'baseline' is already in the log '{path}'; pick another run_id, or leave it out for a fresh one."
    )
    assert query(path, "SELECT count(*) AS c FROM runs").column("c")[0].as_py() == 1


def test_runs_record_population_graph_and_params(tmp_path: Path) -> None:
    """Four runs with different epsilon used to have identical rows."""
    import json

    import networkx as nx
    import numpy as np

    path = tmp_path / "cfg.duckdb"
    g = nx.karate_club_graph()
    pop = Population.of(OpinionAgent, 34, opinion=np.linspace(0, 1, 34), stubbornness=0.3)
    run = launch(
        pop, Gossip(g, fanout=None), rounds=2, log=path, runtime="local", params={"eps": 0.1, "arm": "a"}
    )
    config, params = run.sql("SELECT config, params FROM runs").to_pylist()[0].values()
    config, params = json.loads(config), json.loads(params)
    assert params == {"eps": 0.1, "arm": "a"} and config["params"] == params
    graph, topo = config["protocol"]["graph"], config["protocol"]["topology"]
    assert graph == {"generator": "networkx", "type": "Graph", "directed": False}
    assert topo["nodes"] == 34 and topo["edges"] == 2 * g.number_of_edges()
    (group,) = config["population"]
    assert group["class"] == "agents.opinion.OpinionAgent" and group["n"] == 34
    assert group["columns"]["stubbornness"] == 0.3 and group["columns"]["opinion"]["values"] == 34
    # Another graph, another hash; a named generator logs its parameters.
    other = launch(pop, Gossip(nx.cycle_graph(34), fanout=None), rounds=1, log=path, runtime="local")
    other_topo = json.loads(other.sql("SELECT config FROM runs").column("config")[0].as_py())["protocol"][
        "topology"
    ]
    assert other_topo["digest"] != topo["digest"]
    named = launch(pop, Gossip("small_world:k=4,p=0.1"), rounds=1, log=path, runtime="local")
    cfg = json.loads(named.sql("SELECT config FROM runs").column("config")[0].as_py())
    assert cfg["protocol"]["graph"] == {"generator": "SmallWorld", "k": 4, "p": 0.1}
    assert (
        query(path, "SELECT count(DISTINCT config->>'$.protocol.topology.digest') AS c FROM runs")
        .column("c")[0]
        .as_py()
        == 3
    )
