"""`RunLog`: the rows the run loop writes about a run, on a real DuckDB file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents import OpinionAgent, Population
from orchestrator import ConfigError, query
from orchestrator.coordinator import RunPlan
from orchestrator.log import LogWriter
from orchestrator.message_log import MessageLog
from orchestrator.run_log import RunLog
from protocols import Gossip


def plan(run_id: str) -> RunPlan:
    return RunPlan(
        population=Population.of(OpinionAgent, 10),
        protocol=Gossip(),
        run_id=run_id,
        seed=3,
        rounds=5,
        hosts=1,
        state_every=10,
        max_concurrency=1,
        stop=None,
        primary="opinion",
        fields=("opinion",),
        messages=MessageLog.parse("sample:0.5"),
        params={"arm": "control"},
        config={"rounds": 5},
    )


def rows(log: Path, sql: str) -> list[dict[str, Any]]:
    return list(query(log, sql).to_pylist())


def test_a_finished_run_has_its_row_its_events_and_its_reason(tmp_path: Path) -> None:
    log = tmp_path / "run.duckdb"
    writer = LogWriter(log)
    run = RunLog(plan("r1"), writer)
    run.start()
    run.config({"rounds": 5, "graph": {"nodes": 10}})
    run.event("note", "a graph note", round=0)
    run.finish(rounds=4, messages=40, seconds=1.5, reason="consensus")
    run.release()
    writer.close()
    assert rows(
        log,
        "SELECT run_id, seed, protocol, n_agents, n_hosts, status, rounds, messages, stop_reason, "
        "params->>'arm' AS arm, message_log, message_rate, config->'graph'->>'nodes' AS nodes FROM runs",
    ) == [
        {
            "run_id": "r1",
            "seed": 3,
            "protocol": "gossip",
            "n_agents": 10,
            "n_hosts": 1,
            "status": "finished",
            "rounds": 4,
            "messages": 40,
            "stop_reason": "consensus",
            "arm": "control",
            "message_log": "sample",
            "message_rate": 0.5,
            "nodes": "10",
        }
    ]
    assert rows(log, "SELECT round, kind, detail FROM events ORDER BY ts") == [
        {"round": 0, "kind": "note", "detail": "a graph note"},
        {"round": 3, "kind": "stopped", "detail": "consensus"},  # the last round played
    ]


def test_a_run_id_already_in_the_log_is_refused_and_the_first_run_kept(tmp_path: Path) -> None:
    log = tmp_path / "run.duckdb"
    writer = LogWriter(log)
    RunLog(plan("same"), writer).start()
    with pytest.raises(ConfigError) as info:
        RunLog(plan("same"), writer).start()
    assert str(info.value) == (
        f"run_id 'same' is already in the log {str(log)!r}; pick another run_id, "
        "or leave it out for a fresh one."
    )
    writer.close()
    assert rows(log, "SELECT run_id, status FROM runs") == [{"run_id": "same", "status": "running"}]


@pytest.mark.parametrize(
    ("exc", "status", "kind", "detail"),
    [
        (ValueError("bad value"), "failed", "error", "ValueError: bad value"),
        (KeyboardInterrupt("SIGTERM"), "interrupted", "interrupted", "interrupted (SIGTERM)"),
    ],
)
def test_a_run_that_ends_early_counts_what_reached_the_log(
    tmp_path: Path, exc: BaseException, status: str, kind: str, detail: str
) -> None:
    log = tmp_path / "run.duckdb"
    writer = LogWriter(log)
    run = RunLog(plan("r"), writer)
    run.start()
    for r in (0, 1):  # two rounds logged, 7 and 9 messages; the third was played but never logged
        writer.execute(
            "INSERT INTO metrics (run_id, round, name, value) VALUES ('r', ?, 'messages', ?)", [r, 7 + 2 * r]
        )
    logged = run.end(runtime=None, exc=exc, played=3, total=30, seconds=2.0)  # type: ignore[arg-type]
    run.release()
    writer.close()
    assert logged == 2
    assert rows(log, "SELECT status, rounds, messages, stop_reason FROM runs") == [
        {"status": status, "rounds": 2, "messages": 16, "stop_reason": detail}
    ]
    assert rows(log, "SELECT round, kind, detail FROM events") == [
        {"round": 3, "kind": kind, "detail": detail}
    ]
