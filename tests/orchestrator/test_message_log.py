"""Logging controls: sampled, every k-th round, aggregates only, none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents import OpinionAgent, Population, Uniform
from orchestrator import ConfigError, MessageLog, launch
from protocols import Gossip, SmallWorld

POP = Population.of(OpinionAgent, 2000, opinion=Uniform())
PROTO = Gossip(SmallWorld(k=4, p=0.2), fanout=2, mode="push-pull", tolerance=0.0)


def run_with(log: Path, messages: str, hosts: int = 1, rounds: int = 6):  # type: ignore[no-untyped-def]
    return launch(POP, PROTO, rounds=rounds, seed=5, log=log, runtime="local", hosts=hosts, messages=messages)


def test_sampled_messages_are_a_seeded_binomial_fraction(tmp_path: Path) -> None:
    full = run_with(tmp_path / "full.duckdb", "all")
    run = run_with(tmp_path / "s.duckdb", "sample:0.1")
    n = run.messages
    assert n == full.messages  # delivered messages are counted whatever is logged
    rows = run.sql("SELECT count(*) AS c FROM messages").column("c")[0].as_py()
    sd = np.sqrt(n * 0.1 * 0.9)
    assert abs(rows - 0.1 * n) < 4 * sd, (rows, n)
    meta = run.sql("SELECT message_log, message_rate, message_every FROM runs").to_pylist()
    assert meta == [{"message_log": "sample", "message_rate": 0.1, "message_every": 1}]
    # Scaling by the rate recovers the count; the kept rows are real messages of the full log.
    kept = run.sql("SELECT round, sender, seq, receiver, value FROM messages ORDER BY ALL").to_pandas()
    everything = full.sql("SELECT round, sender, seq, receiver, value FROM messages").to_pandas()
    merged = kept.merge(everything, on=["round", "sender", "seq", "receiver"], suffixes=("", "_full"))
    assert len(merged) == len(kept) and np.allclose(merged["value"], merged["value_full"])
    # The same seed keeps the same messages whatever the number of hosts.
    two = run_with(tmp_path / "s2.duckdb", "sample:0.1", hosts=3)
    other = two.sql("SELECT round, sender, seq, receiver, value FROM messages ORDER BY ALL").to_pandas()
    assert kept.equals(other)


def test_every_kth_round(tmp_path: Path) -> None:
    run = run_with(tmp_path / "e.duckdb", "every:3", rounds=7)
    rounds = run.sql("SELECT DISTINCT round FROM messages ORDER BY round").column("round").to_pylist()
    assert rounds == [0, 3, 6]
    per = run.sql("SELECT round, count(*) AS c FROM messages GROUP BY round ORDER BY round").to_pylist()
    counted = run.sql(
        "SELECT round, messages FROM consensus_by_round WHERE round IN (0, 3, 6) ORDER BY round"
    )
    assert [p["c"] for p in per] == counted.column("messages").to_pylist()


def test_aggregates_only(tmp_path: Path) -> None:
    full = run_with(tmp_path / "full.duckdb", "all")
    agg = run_with(tmp_path / "agg.duckdb", "aggregate", hosts=3)  # counted in 3 hosts
    assert agg.sql("SELECT count(*) AS c FROM messages").column("c")[0].as_py() == 0
    got = agg.sql("SELECT * EXCLUDE (run_id) FROM message_aggregates ORDER BY round").to_pandas()
    one = run_with(tmp_path / "one.duckdb", "aggregate")
    assert one.sql("SELECT * EXCLUDE (run_id) FROM message_aggregates ORDER BY round").to_pandas().equals(got)
    expected = full.sql(
        """SELECT round, kind, count(*) AS messages, count(DISTINCT sender) AS senders,
                  count(DISTINCT receiver) AS receivers, avg(value) AS value_mean
           FROM messages GROUP BY round, kind ORDER BY round"""
    ).to_pandas()
    assert len(got) == 6
    assert (
        got[["round", "messages", "senders", "receivers"]].values
        == expected[["round", "messages", "senders", "receivers"]].values
    ).all()
    assert np.allclose(got["value_mean"], expected["value_mean"])
    assert (got["kind"].astype(str) == "opinion").all()


def test_none_logs_no_messages_but_counts_them(tmp_path: Path) -> None:
    run = run_with(tmp_path / "n.duckdb", "none")
    full = run_with(tmp_path / "full.duckdb", "all")
    assert run.sql("SELECT count(*) AS c FROM messages").column("c")[0].as_py() == 0
    # Counted all the same: as many as the same run logging every message has rows.
    rows = full.sql("SELECT count(*) AS c FROM messages").column("c")[0].as_py()
    counted = run.sql("SELECT sum(messages) AS m FROM consensus_by_round").column("m")[0].as_py()
    assert counted == run.messages == rows > 0


def test_bad_specs() -> None:
    with pytest.raises(ConfigError, match=r"Message sample rate must be in \(0, 1\], got 1.5"):
        MessageLog.parse("sample:1.5")
    with pytest.raises(ConfigError, match=r"Unknown message log 'some'; use all, none, aggregate"):
        MessageLog.parse("some")
    with pytest.raises(ConfigError, match=r"Cannot read message log 'every:x'"):
        MessageLog.parse("every:x")
