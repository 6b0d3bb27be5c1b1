"""The `moot` command, run as a user runs it."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from agents import OpinionAgent, Population
from orchestrator import launch, query
from orchestrator.cli import app
from tests.orchestrator.helpers import moot_cli

ROOT = Path(__file__).resolve().parents[2]
MOOT = str(Path(sys.executable).parent / "moot")


def test_run_builtin_study_in_process(tmp_path: Path) -> None:
    log = tmp_path / "cli.duckdb"
    result = moot_cli(
        "run",
        "--local",
        "--agents",
        "3000",
        "--rounds",
        "200",
        "--seed",
        "3",
        "--state-every",
        "0",
        "--log",
        str(log),
    )
    assert "stop reason" in result.output and "consensus" in result.output and str(log) in result.output
    con = duckdb.connect(str(log), read_only=True)
    spread, messages = con.execute("SELECT final_spread, messages FROM run_summary").fetchone()  # type: ignore[misc]
    assert spread < 0.01 and f"{messages:,}" in result.output
    assert con.execute("SELECT count(DISTINCT round), count(*) FROM states").fetchone() == (2, 2 * 2 * 3000)
    con.close()


@pytest.mark.parametrize(
    ("protocol", "kind", "agents"), [("debate", "answer", "120"), ("swarm_grid", "move", "12")]
)
def test_a_world_protocols_summary_counts_its_actions_and_shows_no_spread(
    tmp_path: Path, protocol: str, kind: str, agents: str
) -> None:
    log = tmp_path / "world.duckdb"
    args = ["run", "--local", "--protocol", protocol, "--agents", agents, "--rounds", "3", "--log", str(log)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(log), read_only=True)
    (actions,) = con.execute(f"SELECT count(*) FROM messages WHERE kind = '{kind}'").fetchone()  # type: ignore[misc]
    con.close()
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in result.output.splitlines()
        if line.count("│") == 3
    }
    assert actions > 0 and rows["actions"] == f"{actions:,}"
    assert "final spread" not in rows and "messages per second" not in rows
    assert "actions per second" in rows


def test_run_unknown_protocol_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--local", "--protocol", "gosip", "--log", str(tmp_path / "x.duckdb")]
    )
    assert result.exit_code == 2
    assert (
        "Unknown protocol 'gosip'; known:" in result.output and "Is its package installed?" in result.output
    )
    result = CliRunner().invoke(
        app, ["run", "--local", "-o", "fanout=0", "--log", str(tmp_path / "x.duckdb")]
    )
    assert result.exit_code == 2 and "fanout must be >= 1 or None" in result.output


def test_protocols_name_lists_its_options_and_defaults() -> None:
    result = CliRunner().invoke(app, ["protocols", "swarm_grid"])
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): (line.split("│")[2].strip(), line.split("│")[3].strip())
        for line in result.output.splitlines()
        if line.count("│") == 4
    }
    assert rows["view"] == ("int", "5") and rows["max_round"] == ("int", "100")
    assert rows["size"] == ("tuple[int, int] | int", "(10, 10)")
    assert set(rows) == {
        "task",
        "size",
        "view",
        "max_round",
        "physics",
        "self_echo",
        "faithful_prey",
        "faithful_flocking_seed",
        "faithful_pickup",
    }
    missing = CliRunner().invoke(app, ["protocols", "gosip"])
    assert (
        missing.exit_code == 2
        and "Unknown protocol 'gosip'; known: blackbox_consensus, debate," in missing.output
    )


def test_protocols_lists_gossip() -> None:
    result = CliRunner().invoke(app, ["protocols"])
    assert result.exit_code == 0 and "gossip" in result.output.split()


@pytest.mark.ray
@pytest.mark.slow
def test_example_script_joins_a_running_cluster(ray_cluster: object, tmp_path: Path) -> None:
    """`moot run script --address ...`: the same script, no code change, on the cluster."""
    env = dict(os.environ, MOOT_EXAMPLE_AGENTS="3000", MOOT_EXAMPLE_LOG=str(tmp_path / "ex.duckdb"))
    address = ray_cluster.address  # type: ignore[attr-defined]
    out = subprocess.run(
        [MOOT, "run", str(ROOT / "examples" / "gossip_consensus.py"), "--address", address],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "push-pull" in out.stdout and "consensus" in out.stdout
    con = duckdb.connect(str(tmp_path / "ex.duckdb"), read_only=True)
    rows = con.execute("SELECT count(*), count(DISTINCT n_hosts), min(stop_reason) FROM runs").fetchone()
    nodes = con.execute("SELECT count(DISTINCT node) FROM agents").fetchone()
    con.close()
    assert rows == (3, 1, "consensus") and nodes == (2,)


STUDY = """
from agents import OpinionAgent, Population, Uniform
from orchestrator import launch, params
from protocols import Gossip

p = params()
run = launch(Population.of(OpinionAgent, 200, opinion=Uniform()), Gossip(fanout=2),
             rounds=50, seed=3, log="script.duckdb", runtime="local", params={"arm": "x"})
print("RESULT", run.log.name, run.rounds, p.get("eps"))
"""


def test_script_runs_honour_the_command_line(tmp_path: Path) -> None:
    """Bug 4: --log, --seed, --rounds were silently ignored for a script."""
    script = tmp_path / "study.py"
    script.write_text(STUDY)
    log = tmp_path / "x.duckdb"
    out = subprocess.run(
        [MOOT, "run", str(script), "--rounds", "2", "--seed", "99", "--log", str(log), "-p", "eps=0.1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "RESULT x.duckdb 2 0.1" in out.stdout
    assert (
        f"moot run: log='{log}' from the command line (this launch in the script said 'script.duckdb')"
        in out.stderr
    )
    assert "moot run: seed=99 from the command line (this launch in the script said 3)" in out.stderr
    assert not (tmp_path / "script.duckdb").exists()
    con = duckdb.connect(str(log), read_only=True)
    row = con.execute("SELECT seed, rounds, params FROM runs").fetchone()
    con.close()
    assert row is not None and row[:2] == (99, 2) and json.loads(row[2]) == {"eps": 0.1, "arm": "x"}


def test_builtin_only_flags_are_refused_for_a_script(tmp_path: Path) -> None:
    script = tmp_path / "study.py"
    script.write_text(STUDY)
    result = CliRunner().invoke(app, ["run", str(script), "--agents", "5", "-o", "fanout=3"])
    assert result.exit_code == 2
    assert "--agents, -o/--option set the built-in study" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-o", "fanout=two"],
            "Option fanout='two' for protocol 'gossip' is not valid: Input should be a valid integer",
        ),
        (
            ["-o", "fanot=2"],
            "Unknown option 'fanot' for protocol 'gossip'; its options are: fanout, field, graph, mode, strict_graph, tolerance, weight.",
        ),
        (
            ["-o", "mode=pul"],
            "Option mode='pul' for protocol 'gossip' is not valid: Input should be 'push', 'pull', 'push-pull' or 'pairwise'",
        ),
        (["--agents", "0"], "--agents must be at least 1, got 0; e.g. --agents 1000."),
        (["--stop", "consensu"], "Unknown stop rule 'consensu'"),
        (["--messages", "sample:2"], "Message sample rate must be in (0, 1], got 2.0"),
        (
            ["-o", "graph=smallworld"],
            "Unknown graph 'smallworld'; known: barabasi_albert, complete, erdos_renyi, grid",
        ),
    ],
)
def test_cli_mistakes_name_the_value_and_the_fix(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["run", "--local", "--log", str(tmp_path / "x.duckdb"), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_cli_stop_messages_and_params(tmp_path: Path) -> None:
    log = tmp_path / "c.duckdb"
    moot_cli(
        "run",
        "--local",
        "--agents",
        "500",
        "--rounds",
        "40",
        "--log",
        str(log),
        "--stop",
        "variance<0.01",
        "--messages",
        "every:5",
        "-p",
        "arm=treatment",
        "-o",
        "graph=ring_lattice:k=4",
    )
    con = duckdb.connect(str(log), read_only=True)
    reason, params, mlog, graph, played = con.execute(
        "SELECT stop_reason, params, message_log, config->>'$.protocol.graph.generator', rounds FROM runs"
    ).fetchone()  # type: ignore[misc]
    rounds = {r[0] for r in con.execute("SELECT DISTINCT round FROM messages").fetchall()}
    con.close()
    assert reason == "variance < 0.01" and json.loads(params) == {"arm": "treatment"}
    assert played > 5  # so that every:5 logs more than round 0
    assert mlog == "every" and rounds == set(range(0, played, 5)) and graph == "RingLattice"


def test_run_llm_agents_from_the_command_line_with_a_budget_and_no_cache(tmp_path: Path) -> None:
    log = tmp_path / "llm.duckdb"
    result = moot_cli(
        "run",
        "--local",
        "--agent",
        "llm_opinion",
        "--agents",
        "60",
        "--rounds",
        "2",
        "--log",
        str(log),
        "--in-flight",
        "8",
        "--budget",
        "5",
        "--llm-cache",
        "",
        "--rpm",
        "100000",
    )
    con = duckdb.connect(str(log), read_only=True)
    calls = con.execute("SELECT count(*), count(error_type), min(model) FROM llm_calls").fetchall()
    llm = con.execute("SELECT config->'llm' FROM runs").fetchall()[0][0]
    con.close()
    assert calls == [(120, 0, "moot/simulated")]
    assert json.loads(llm)["max_in_flight"] == 8 and json.loads(llm)["budget"] == 5
    assert not (tmp_path / "llm.duckdb.llm-cache").exists()
    lines = [" ".join(line.split("│")[1:3]).split() for line in result.output.splitlines() if "│" in line]
    assert ["llm", "calls", "120"] in lines and ["llm", "errors", "0"] in lines


OPINION_MODELS = [
    ("degroot", [], "OpinionAgent", "push-pull"),
    ("friedkin_johnsen", ["-a", "susceptibility=0.8", "-a", "prejudice=0.5"], "FriedkinJohnsen", "push"),
    ("epo", ["-a", "resilience=0.3"], "ExpressedPrivate", "push"),
    ("hegselmann_krause", ["-a", "epsilon=0.15"], "HegselmannKrause", "push"),
    ("deffuant", ["-a", "threshold=0.3", "-a", "mu=0.25"], "Deffuant", "pairwise"),
    ("voter", ["-a", "opinion=choice:-1,1:0.3,0.7"], "Voter", "pull"),
]


@pytest.mark.parametrize(("name", "state", "cls", "mode"), OPINION_MODELS, ids=[m[0] for m in OPINION_MODELS])
def test_every_opinion_model_runs_by_name(
    tmp_path: Path, name: str, state: list[str], cls: str, mode: str
) -> None:
    log = tmp_path / "od.duckdb"
    args = ["run", "--local", "--protocol", "gossip", "--agent", name, *state, "--agents", "2000"]
    result = CliRunner().invoke(app, [*args, "--rounds", "5", "--log", str(log), "--state-every", "1"])
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(log), read_only=True)
    config = json.loads(con.execute("SELECT config FROM runs").fetchone()[0])  # type: ignore[index]
    assert config["population"][0]["class"].endswith(cls) and config["protocol"]["mode"] == mode
    given = dict(s.split("=", 1) for s in state[1::2])
    for field, value in given.items():
        if not value.startswith("choice"):
            got = con.execute(
                "SELECT DISTINCT value FROM states WHERE field = ? AND round = -1", [field]
            ).fetchall()
            assert got == [(float(value),)], field
    if name == "voter":  # -1/+1 drawn with P(+1) = 0.7: within 4 standard errors of 1400 of 2000
        plus = con.execute(
            "SELECT count(*) FROM states WHERE field = 'opinion' AND round = -1 AND value = 1"
        ).fetchone()
        assert abs(plus[0] - 1400) < 4 * (2000 * 0.21) ** 0.5  # type: ignore[index]
    opinions = con.execute("SELECT count(*) FROM states WHERE field = 'opinion' AND round = 4").fetchone()
    assert opinions == (2000,)
    con.close()


def test_opinion_metrics_ship_in_every_log(tmp_path: Path) -> None:
    log = tmp_path / "hk.duckdb"
    args = ["run", "--local", "--agent", "hegselmann_krause", "-a", "epsilon=0.1", "-o", "graph=complete"]
    result = CliRunner().invoke(app, [*args, "--agents", "400", "--log", str(log), "--stop", "stationary:0"])
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(log), read_only=True)
    rid, rounds = con.execute("SELECT run_id, rounds FROM runs").fetchone()  # type: ignore[misc]
    final = sorted(
        v
        for (v,) in con.execute(
            "SELECT value FROM states WHERE field = 'opinion' AND round = ?", [rounds - 1]
        ).fetchall()
    )
    expect = 1 + sum(b - a > 1e-9 for a, b in itertools.pairwise(final))
    got = con.execute(
        "SELECT clusters, major_clusters FROM clusters_by_round(?, 'opinion', 1e-9, 0.05) WHERE round = ?",
        [rid, rounds - 1],
    ).fetchone()
    assert got is not None and got[0] == expect and 3 <= got[1] <= got[0]
    con.close()
    result = moot_cli(
        "run",
        "--local",
        "--agent",
        "voter",
        "-o",
        "graph=complete",
        "--agents",
        "60",
        "--log",
        str(log),
        "--rounds",
        "2000",
        "--stop",
        "consensus:0.5",
        "--state-every",
        "0",
    )
    con = duckdb.connect(str(log), read_only=True)
    rid, rounds = con.execute(
        "SELECT run_id, rounds FROM runs WHERE protocol = 'gossip' ORDER BY started_at DESC"
    ).fetchone()  # type: ignore[misc]
    assert con.execute("SELECT rounds FROM consensus_time(?, 0.5)", [rid]).fetchone() == (rounds,)
    share = con.execute(
        "SELECT majority_share, abs(magnetisation) FROM majority_by_round(?, 'opinion') WHERE round = ?",
        [rid, rounds - 1],
    ).fetchone()
    assert share == (1.0, 1.0)
    con.close()


def test_a_bad_distribution_names_the_fix(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--local",
            "--agent",
            "voter",
            "-a",
            "opinion=choice:-1,1:0.5",
            "--log",
            str(tmp_path / "x.duckdb"),
        ],
    )
    assert result.exit_code == 2 and "one probability >= 0 per value" in result.output


def test_moot_sql_csv_quotes_only_what_needs_it_and_tables_are_not_cut_when_piped(tmp_path: Path) -> None:
    log = tmp_path / "q.duckdb"
    launch(Population.of(OpinionAgent, 100), "gossip", rounds=1, log=log, runtime="local")
    sql = "SELECT run_id, 'a,b' AS c, 'say \"hi\"' AS q, true AS t, NULL AS n, 2.5 AS x FROM runs"
    out = CliRunner().invoke(app, ["sql", str(log), sql, "--format", "csv"]).output
    (run_id,) = [r["run_id"] for r in query(log, "SELECT run_id FROM runs").to_pylist()]
    assert out == f'run_id,c,q,t,n,x\n{run_id},"a,b","say ""hi""",true,,2.5\n'  # a captured id has no quotes
    long = "x" * 300
    table = CliRunner().invoke(app, ["sql", str(log), f"SELECT '{long}' AS long"]).output  # piped
    assert long in table
    marked = CliRunner().invoke(app, ["sql", str(log), "SELECT '[bold]tag[/bold] [int, int]' AS t"]).output
    assert "[bold]tag[/bold] [int, int]" in marked  # cells are text, not Rich markup


def test_an_unreachable_address_fails_in_seconds_with_the_fix(tmp_path: Path) -> None:
    import socket
    import time

    with socket.socket() as s:  # a port nothing listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    out = subprocess.run(
        [
            MOOT,
            "run",
            "--agents",
            "100",
            "--address",
            f"127.0.0.1:{port}",
            "--log",
            str(tmp_path / "u.duckdb"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and time.monotonic() - started < 30
    said = " ".join(out.stderr.split())
    assert (
        f"error: Could not reach the Ray cluster at '127.0.0.1:{port}': [Errno 111] Connection refused;"
        in said
    )
    assert "start one with `ray start --head`, check the address, or drop --address to run locally." in said
