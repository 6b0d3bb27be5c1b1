"""Parameter sweeps: the grid as concurrent runs into one log, parameters in runs.config,
one SQL query across them, and an interrupted sweep finished without redoing anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agents import OpinionAgent, Population, Uniform
from orchestrator import ConfigError, launch, query, sweep
from orchestrator.cli import app
from orchestrator.sweeps import parse_values
from protocols import Gossip
from tests.conftest import ROOT
from tests.orchestrator.helpers import messages_hash, moot_cli

SCRIPT = ROOT / "tests" / "orchestrator" / "scripts" / "sweep_study.py"


def runs(log: Path) -> list[dict[str, Any]]:
    return query(
        log,
        "SELECT run_id, status, seed, json_extract_string(config, '$.params.fanout') AS fanout, "
        "params->>'fanout' AS p_fanout, messages, started_at FROM runs ORDER BY run_id",
    ).to_pylist()


def test_the_cli_runs_the_grid_into_one_log_and_a_rerun_finishes_only_what_is_missing(tmp_path: Path) -> None:
    log = tmp_path / "sweep.duckdb"
    first = CliRunner().invoke(
        app,
        ["sweep", str(SCRIPT), "--param", "fanout=1,2", "--param", "seed=0..1", "--log", str(log), "--local"],
    )
    assert first.exit_code == 0, first.output
    assert "4 points: 4 ran, 0 already done, 0 failed" in " ".join(first.output.split())
    rows = runs(log)
    assert [r["run_id"] for r in rows] == [f"sweep.fanout={f}.seed={s}" for f in (1, 2) for s in (0, 1)]
    assert [(r["fanout"], r["p_fanout"], r["seed"]) for r in rows] == [
        (str(f), str(f), s) for f in (1, 2) for s in (0, 1)
    ]
    assert all(r["status"] == "finished" for r in rows)
    # Push gossip with fanout f: every agent sends f messages a round, 400 agents, 6 rounds.
    assert [r["messages"] for r in rows] == [400 * f * 6 for f in (1, 2) for s in (0, 1)]
    # One query compares them: mean messages per round by fanout, across the seeds.
    compared = query(
        log,
        "SELECT r.params->>'fanout' AS fanout, avg(m.value) AS per_round FROM runs r JOIN metrics m USING (run_id) "
        "WHERE m.name = 'messages' GROUP BY 1 ORDER BY 1",
    ).to_pylist()
    assert compared == [{"fanout": "1", "per_round": 400.0}, {"fanout": "2", "per_round": 800.0}]
    assert not (tmp_path / "sweep.duckdb.points").exists()  # merged parts are removed

    # The grid grows (as if the first sweep had been interrupted half-way): only new points run.
    before = {r["run_id"]: r["started_at"] for r in rows}
    second = moot_cli(
        "sweep", str(SCRIPT), "--param", "fanout=1,2,4", "--param", "seed=0..1", "--log", str(log), "--local"
    )
    assert "6 points: 2 ran, 4 already done, 0 failed" in " ".join(second.output.split())
    after = runs(log)
    assert len(after) == 6
    assert {r["run_id"]: r["started_at"] for r in after if r["run_id"] in before} == before


@pytest.mark.parametrize("compacted", [True, False], ids=["compacted", "segments"])
def test_a_merged_run_is_the_run_a_direct_launch_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compacted: bool
) -> None:
    if not compacted:  # the point keeps its segments: the merge moves them beside the sweep's log
        monkeypatch.setenv("MOOT_COMPACT_ROWS", "0")
    log = tmp_path / "s.duckdb"
    result = sweep(SCRIPT, {"fanout": [2], "seed": [5]}, log=log, local=True)
    held = log.with_name("s.duckdb.parts") / "messages" / "run_id=s.fanout%3D2.seed%3D5"
    assert held.is_dir() == (not compacted)
    assert result.ran == ["s.fanout=2.seed=5"] and not result.failed
    direct = tmp_path / "direct.duckdb"
    run = launch(
        Population.of(OpinionAgent, 400, opinion=Uniform()),
        Gossip(fanout=2, mode="push"),
        rounds=6,
        seed=5,
        stop="never",
        log=direct,
        runtime="local",
    )
    assert messages_hash(log, "s.fanout=2.seed=5") == messages_hash(direct, run.run_id)


@pytest.mark.ray
def test_points_run_concurrently_on_the_ray_cluster(ray_cluster: Any, tmp_path: Path) -> None:
    log = tmp_path / "ray.duckdb"
    result = sweep(
        SCRIPT,
        {"fanout": [1, 2]},
        log=log,
        address=ray_cluster.address,
        concurrency=2,
        extra_args=["--hosts", "2"],
    )
    assert sorted(result.ran) == ["ray.fanout=1", "ray.fanout=2"], result.failed
    nodes = query(
        log, "SELECT run_id, count(DISTINCT node) AS nodes FROM agents GROUP BY run_id ORDER BY run_id"
    ).to_pylist()
    assert [n["nodes"] for n in nodes] == [2, 2]  # each run's hosts on both nodes of the cluster
    spans = query(log, "SELECT max(started_at) < min(finished_at) AS overlapped FROM runs").to_pylist()
    assert spans == [{"overlapped": True}]  # the two runs were going at the same time


def test_a_failing_point_is_reported_and_the_others_land(tmp_path: Path) -> None:
    result = sweep(SCRIPT, {"fanout": [1, 0]}, log=tmp_path / "f.duckdb", local=True)
    assert result.ran == ["f.fanout=1"]
    assert list(result.failed) == ["f.fanout=0"]
    assert "fanout" in result.failed["f.fanout=0"]


def test_a_point_that_fails_mid_run_lands_in_the_log_marked_failed(tmp_path: Path) -> None:
    log = tmp_path / "m.duckdb"
    result = sweep(SCRIPT, {"crash_round": [-1, 3]}, log=log, local=True)
    assert result.ran == ["m.crash_round=-1"] and list(result.failed) == ["m.crash_round=3"]
    got = query(log, "SELECT run_id, status, rounds FROM runs ORDER BY run_id").to_pylist()
    assert got == [
        {"run_id": "m.crash_round=-1", "status": "finished", "rounds": 6},
        {"run_id": "m.crash_round=3", "status": "failed", "rounds": 4},  # rounds 0-3 logged
    ]
    logged = query(log, "SELECT count(DISTINCT round) AS n FROM metrics WHERE run_id = 'm.crash_round=3'")
    assert logged.to_pylist() == [{"n": 4}]
    assert not (tmp_path / "m.duckdb.points").exists()  # nothing left behind


def test_a_point_whose_merge_fails_is_reported_its_part_kept_and_a_rerun_redoes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the sweep's log open (a user's DuckDB shell) while a point finishes."""
    log, go = tmp_path / "x.duckdb", tmp_path / "go"
    monkeypatch.setenv("MOOT_TEST_GO", str(go))
    holder = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.read()"
    )
    lockers: list[subprocess.Popen[str]] = []

    def hold_the_log_once_the_first_point_lands(done: int, total: int, run_id: str) -> None:
        if run_id == "x.wait=0":  # merged; x.wait=1 waits in round 0 until `go` exists
            locker = subprocess.Popen(
                [sys.executable, "-c", holder, str(log)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            lockers.append(locker)
            assert locker.stdout is not None and locker.stdout.readline() == "held\n"
            go.touch()

    try:
        result = sweep(
            SCRIPT,
            {"wait": [0, 1]},
            log=log,
            concurrency=2,
            local=True,
            progress=hold_the_log_once_the_first_point_lands,
        )
    finally:
        for locker in lockers:
            locker.communicate("")  # let it go
    assert result.ran == ["x.wait=0"] and list(result.failed) == ["x.wait=1"]
    part = tmp_path / "x.duckdb.points" / "x.wait=1.duckdb"
    said = result.failed["x.wait=1"]
    assert said.startswith(f"Could not merge {str(part)!r} into {str(log)!r}: ")
    assert said.endswith("; the part is kept. Run the sweep again to redo this point.")
    assert part.exists()
    assert [r["run_id"] for r in runs(log)] == ["x.wait=0"]  # nothing half-merged

    again = sweep(SCRIPT, {"wait": [0, 1]}, log=log, concurrency=2, local=True)
    assert (again.skipped, again.ran, again.failed) == (["x.wait=0"], ["x.wait=1"], {})
    assert [(r["run_id"], r["status"], r["messages"]) for r in runs(log)] == [
        ("x.wait=0", "finished", 2400),
        ("x.wait=1", "finished", 2400),
    ]
    assert not part.parent.exists()


@pytest.mark.parametrize(
    ("key", "text", "values"),
    [
        ("fanout", "1,2,4", [1, 2, 4]),
        ("seed", "0..3", [0, 1, 2, 3]),
        ("graph", "ring,small_world", ["ring", "small_world"]),
        ("eps", "0.1", [0.1]),
    ],
)
def test_param_values(key: str, text: str, values: list[Any]) -> None:
    assert parse_values(key, text) == values


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9..0", "--param seed=9..0: the range is empty; write the smaller end first."),
        ("a..b", "--param seed=a..b: a range is two whole numbers, e.g. seed=0..9 (0 to 9 included)."),
        ("1,,2", "--param seed=1,,2: an empty value; e.g. seed=1,2,4."),
    ],
)
def test_bad_param_values_name_the_fix(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_values("seed", text)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("script", "params", "concurrency", "message"),
    [
        (
            "missing.py",
            {"seed": [0]},
            1,
            "No script at '{tmp}/missing.py'; give the path of a .py study that calls launch().",
        ),
        ("study.py", {}, 1, "A sweep needs at least one parameter; e.g. --param seed=0..9."),
        ("study.py", {"seed": [0]}, 0, "concurrency must be >= 1, got 0."),
    ],
)
def test_a_sweep_refuses_what_it_cannot_run(
    tmp_path: Path, script: str, params: dict[str, list[int]], concurrency: int, message: str
) -> None:
    (tmp_path / "study.py").write_text("print('never run')\n")
    with pytest.raises(ConfigError) as info:
        sweep(tmp_path / script, params, log=tmp_path / "sweep.duckdb", concurrency=concurrency, local=True)
    assert str(info.value) == message.format(tmp=tmp_path)
    assert not (tmp_path / "sweep.duckdb").exists()
