"""Swarm grid runs, as a user meets them: the CLI, SQL over the log, determinism, mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents import Agent, Message, Population
from orchestrator import AgentError, launch, query
from orchestrator.cli import app
from protocols.swarm_grid import SwarmGrid, SwarmMove
from tests.orchestrator.helpers import ChattyForager, messages_hash, moot_cli

PROTO = SwarmGrid("foraging", size=(24, 24), view=5, max_round=12)


def run_on(runtime: str, hosts: int, log: Path):  # type: ignore[no-untyped-def]
    return launch(
        Population.of(ChattyForager, 200),
        PROTO,
        rounds=12,
        seed=5,
        log=log,
        runtime=runtime,
        hosts=hosts,
        state_every=1,
    )


def world_metrics(log: Path, run_id: str) -> list[tuple[int, str, float]]:
    rows = query(
        log,
        f"SELECT round, name, value FROM metrics WHERE run_id = '{run_id}' AND name NOT IN ('seconds') ORDER BY ALL",
    )
    return [tuple(r.values()) for r in rows.to_pylist()]  # type: ignore[misc]


def test_same_seed_same_log_in_process_with_one_and_three_hosts(tmp_path: Path) -> None:
    runs = [run_on("local", h, tmp_path / f"l{h}.duckdb") for h in (1, 3)]
    assert runs[1].hosts == 3
    hashes = [messages_hash(r.log, r.run_id) for r in runs]
    assert hashes[0] == hashes[1] and hashes[0][0] > 0
    assert world_metrics(runs[0].log, runs[0].run_id) == world_metrics(runs[1].log, runs[1].run_id)
    said = runs[0].sql("SELECT count(*) AS n FROM messages WHERE kind = 'say'").column("n")[0].as_py()
    moves = (
        runs[0]
        .sql("SELECT count(*) AS n FROM messages WHERE kind = 'move' AND receiver IS NULL")
        .column("n")[0]
        .as_py()
    )
    assert said > 0 and moves == 200 * 12


@pytest.mark.ray
def test_same_seed_same_log_on_ray_with_one_and_three_hosts(ray_cluster: object, tmp_path: Path) -> None:
    local = run_on("local", 1, tmp_path / "local.duckdb")
    for hosts in (1, 3):
        ray_run = run_on("ray", hosts, tmp_path / f"ray{hosts}.duckdb")
        assert ray_run.hosts == hosts
        assert messages_hash(ray_run.log, ray_run.run_id) == messages_hash(local.log, local.run_id)
        assert world_metrics(ray_run.log, ray_run.run_id) == world_metrics(local.log, local.run_id)


def test_messages_reach_only_agents_within_view(tmp_path: Path) -> None:
    run = run_on("local", 2, tmp_path / "v.duckdb")
    far = run.sql(
        """SELECT count(*) AS n FROM messages m
           JOIN states s ON s.agent = m.sender AND s.round = m.round AND s.field = 'row'
           JOIN states sc ON sc.agent = m.sender AND sc.round = m.round AND sc.field = 'col'
           JOIN states r ON r.agent = m.receiver AND r.round = m.round AND r.field = 'row'
           JOIN states rc ON rc.agent = m.receiver AND rc.round = m.round AND rc.field = 'col'
           WHERE m.kind = 'say' AND (abs(s.value - r.value) > 2 OR abs(sc.value - rc.value) > 2)"""
    )
    assert far.column("n")[0].as_py() == 0
    near = run.sql("SELECT count(*) AS n FROM messages WHERE kind = 'say' AND sender <> receiver")
    assert near.column("n")[0].as_py() > 0
    assert (
        run.sql("SELECT max(length(text)) AS n FROM messages WHERE kind = 'say'").column("n")[0].as_py()
        <= 123
    )


def test_cli_prints_the_score_and_sql_answers_the_questions(tmp_path: Path) -> None:
    log = tmp_path / "cli.duckdb"
    result = moot_cli(
        "run",
        "--protocol",
        "swarm_grid",
        "-o",
        "task=pursuit",
        "--agents",
        "12",
        "--rounds",
        "100",
        "--local",
        "--log",
        str(log),
    )
    score = (
        query(log, "SELECT value FROM metrics WHERE name = 'score' ORDER BY round DESC LIMIT 1")
        .column("value")[0]
        .as_py()
    )
    assert f"│ score               │ {score:.6g}" in result.output
    per_round = CliRunner().invoke(
        app,
        ["sql", str(log), "SELECT round, score FROM swarm_score_by_round ORDER BY round", "--format", "json"],
    )
    assert per_round.exit_code == 0 and per_round.output.count('"round"') == 100
    # (swarm_idle_agents is checked against the logged cells, with sitters that surely never
    # move, in test_never_moved_agents_and_a_bad_action: here no agent need be idle.)


class Sitter(Agent):
    def act(self, inbox: list[Message], ctx: object) -> SwarmMove:
        return SwarmMove(action="STAY")


class Jumper(Agent):
    def act(self, inbox: list[Message], ctx: object) -> Message:
        return Message(kind="move", value=7.0 if getattr(ctx, "round", 0) >= 2 else 4.0)


def test_never_moved_agents_and_a_bad_action(tmp_path: Path) -> None:
    log = tmp_path / "bad.duckdb"
    run = launch(
        Population.of(Sitter, 3) + Population.of(ChattyForager, 9),
        SwarmGrid("foraging"),
        rounds=5,
        seed=1,
        log=log,
        runtime="local",
        state_every=1,
    )
    idle = run.sql("SELECT agent FROM swarm_idle_agents ORDER BY agent").column("agent").to_pylist()
    # Independently: agents whose logged cell never changed over the run.
    still = (
        run.sql(
            """SELECT agent FROM states WHERE field IN ('row', 'col') GROUP BY agent
           HAVING count(DISTINCT (round >= 0)::INT) > 0 AND max(value) FILTER (field = 'row') = min(value) FILTER (field = 'row')
              AND max(value) FILTER (field = 'col') = min(value) FILTER (field = 'col') ORDER BY agent"""
        )
        .column("agent")
        .to_pylist()
    )
    assert idle == still
    chose = run.sql("SELECT DISTINCT action FROM swarm_moves WHERE agent < 3").column("action").to_pylist()
    assert chose == ["STAY"]  # the sitters never chose to move (others may still have shoved them)
    with pytest.raises(AgentError) as info:
        launch(Population.of(Jumper, 12), SwarmGrid("pursuit"), rounds=5, log=log, runtime="local")
    assert str(info.value).startswith(
        "Agent 0 took move 7.0 in round 2, which the pursuit task does not have"
    )
    rounds = query(log, "SELECT run_id, count(DISTINCT round) AS r FROM messages GROUP BY run_id ORDER BY r")
    assert rounds.column("r").to_pylist() == [2, 5]  # the failed run kept its first two rounds
    status = query(log, "SELECT status FROM runs ORDER BY started_at").column("status").to_pylist()
    assert status == ["finished", "failed"]


def test_too_many_agents_is_a_clear_error(tmp_path: Path) -> None:
    from orchestrator import ConfigError

    with pytest.raises(ConfigError, match=r"^101 agents do not fit: the placement area has 64 free cells"):
        launch(
            Population.of(Sitter, 101),
            SwarmGrid("flocking"),
            rounds=2,
            log=tmp_path / "x.duckdb",
            runtime="local",
        )


def test_the_grid_is_applied_once_a_round_however_many_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One host applies each round; the others take its world's state (GridWorld.apply_once),
    and the log is the one every host applying it gave."""
    from protocols.swarm_grid.world import GridWorld

    calls: list[int] = []
    real = GridWorld.apply

    def counted(self: GridWorld, *args: object) -> None:
        calls.append(id(self))
        real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(GridWorld, "apply", counted)
    once = run_on("local", 3, tmp_path / "once.duckdb")
    assert len(calls) == 12 and len(set(calls)) == 1  # one world, once a round
    monkeypatch.setattr(GridWorld, "apply_once", False)
    every = run_on("local", 3, tmp_path / "every.duckdb")
    assert len(calls) == 12 + 3 * 12
    assert messages_hash(once.log, once.run_id) == messages_hash(every.log, every.run_id)
    assert world_metrics(once.log, once.run_id) == world_metrics(every.log, every.run_id)
    states = "SELECT round, agent, field, value FROM states WHERE field IN ('row', 'col') ORDER BY ALL"
    assert once.sql(states).to_pylist() == every.sql(states).to_pylist()  # followers' positions too
