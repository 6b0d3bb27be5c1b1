"""Aggregated messages counted in the hosts: the same numbers as counting the whole batch in
one place, bit-for-bit the same however the agents are sharded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents import Population
from agents.batch import MessageBatch
from orchestrator import launch
from orchestrator.aggregates import received, senders, table
from orchestrator.tree import shard_bounds
from protocols.social_feed import RuleUser, SocialFeed

N, M, DIM = 700, 5000, 3
KINDS = ("a", "b", "c")


def _deliveries() -> MessageBatch:
    """M deliveries in (sender, seq, receiver) order, some without a value or a vector."""
    rng = np.random.default_rng(7)
    sender = np.sort(rng.integers(0, N // 2, M))  # half the agents send, to all the others
    seq = np.zeros(M, np.int64)
    receiver = rng.integers(0, N, M)
    order = np.lexsort((receiver, seq, sender))
    value = rng.normal(size=M)
    value[rng.random(M) < 0.2] = np.nan
    vector = rng.normal(size=(M, DIM))
    vector[rng.random(M) < 0.3] = np.nan
    return MessageBatch(
        sender=sender[order],
        receiver=receiver[order],
        seq=seq,
        kind=rng.integers(0, len(KINDS), M).astype(np.uint8),
        value=value,
        vector=vector,
    )


def _counted_in_hosts(batch: MessageBatch, hosts: int) -> list[dict[str, object]]:
    bounds = shard_bounds(N, hosts)
    parts = []
    for d in range(hosts):
        here = np.flatnonzero((batch.receiver >= bounds[d]) & (batch.receiver < bounds[d + 1]))
        parts.append(received(batch.take(here), int(bounds[d]), int(bounds[d + 1]), bounds))
    sent = [senders(*(marks[h] for _, marks in parts)) for h in range(hosts)]
    return table([c for c, _ in parts], sent, 3, "run", KINDS).to_pylist()


def test_counts_and_means_equal_one_count_of_the_whole_batch() -> None:
    batch = _deliveries()
    rows = _counted_in_hosts(batch, 3)
    assert [r["kind"] for r in rows] == list(KINDS)
    for code, row in enumerate(rows):
        sel = batch.kind == code
        values = batch.value[sel]
        vectors = batch.vector[sel]  # type: ignore[index]
        assert row["messages"] == sel.sum()
        assert row["senders"] == len(np.unique(batch.sender[sel]))
        assert row["receivers"] == len(np.unique(batch.receiver[sel]))
        assert row["value_mean"] == pytest.approx(np.nanmean(values), rel=0, abs=1e-12)
        has = ~np.isnan(vectors[:, 0])
        assert np.allclose(row["vector_mean"], vectors[has].mean(axis=0), rtol=0, atol=1e-12)
        assert row["round"] == 3 and row["run_id"] == "run"


def test_the_numbers_do_not_depend_on_the_sharding() -> None:
    batch = _deliveries()
    one = _counted_in_hosts(batch, 1)
    for hosts in (2, 5, 11):
        assert _counted_in_hosts(batch, hosts) == one  # floats compared exactly


def test_a_kind_without_values_has_null_means() -> None:
    batch = _deliveries()
    bare = MessageBatch(
        sender=batch.sender, seq=batch.seq, kind=batch.kind, value=np.full(M, np.nan), receiver=batch.receiver
    )
    rows = _counted_in_hosts(bare, 2)
    assert all(r["value_mean"] is None and r["vector_mean"] is None for r in rows)
    assert sum(int(r["messages"]) for r in rows) == M  # type: ignore[call-overload]


def test_a_worlds_deliveries_are_counted_as_the_full_log_counts_them(tmp_path: Path) -> None:
    """The feed's world delivers most messages (exposures); counted in 1 or 3 hosts, the
    aggregates are what SQL counts over the same run logging every message."""
    proto = SocialFeed(posts=30, activation=0.3)
    pop = Population.of(RuleUser, 600)

    def run(name: str, messages: str, hosts: int) -> list[dict[str, object]]:
        done = launch(
            pop, proto, rounds=3, seed=5, log=tmp_path / name, runtime="local", hosts=hosts, messages=messages
        )
        return done.sql(
            "SELECT * EXCLUDE (run_id) FROM message_aggregates ORDER BY round, kind::VARCHAR"
        ).to_pylist()

    full = launch(pop, proto, rounds=3, seed=5, log=tmp_path / "all.duckdb", runtime="local", hosts=2)
    expected = full.sql(
        """SELECT round, kind::VARCHAR AS kind, count(*) AS messages, count(DISTINCT sender) AS senders,
                  count(DISTINCT receiver) AS receivers, avg(value) AS value_mean
           FROM messages WHERE receiver IS NOT NULL GROUP BY ALL ORDER BY round, kind"""
    ).to_pylist()
    three = run("three.duckdb", "aggregate", 3)
    assert three == run("one.duckdb", "aggregate", 1)
    assert "shown" in {r["kind"] for r in three} and len(three) == len(expected)
    for got, want in zip(three, expected):
        assert (got["round"], str(got["kind"]), got["messages"], got["senders"], got["receivers"]) == tuple(
            want[k] for k in ("round", "kind", "messages", "senders", "receivers")
        )
        assert got["value_mean"] == pytest.approx(want["value_mean"], rel=1e-12, nan_ok=True)
