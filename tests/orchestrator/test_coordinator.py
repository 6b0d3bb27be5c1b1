"""The coordinator's round metrics: the same bits on any number of hosts, and numpy's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.coordinator import combine_stats
from orchestrator.host import FieldStats, HostStats, shard_bounds

N = 1_001  # not a multiple of the chunk: the last chunk is short


def host_stats(hosts: int, opinion: np.ndarray, energy: np.ndarray, changes: list[float]) -> list[HostStats]:
    bounds = shard_bounds(N, hosts)
    out = []
    for h in range(hosts):
        lo, hi = int(bounds[h]), int(bounds[h + 1])
        ids = np.arange(lo, hi, dtype=np.int64)
        fields = (FieldStats.of(opinion[ids], ids, lo, hi), FieldStats.of(energy[ids], ids, lo, hi))
        out.append(HostStats(sent=10 * (h + 1), fields=fields, max_change=changes[h % len(changes)]))
    return out


@pytest.mark.parametrize("hosts", [2, 3, 7, 16])
def test_a_rounds_metrics_are_bit_for_bit_the_same_on_any_number_of_hosts(hosts: int) -> None:
    rng = np.random.default_rng(4)
    opinion, energy = rng.normal(0.3, 2.0, N), rng.uniform(5, 6, N) * 1e6
    one_logged, one_seen = combine_stats(
        host_stats(1, opinion, energy, [0.5]), ("opinion", "energy"), "opinion"
    )
    many_logged, many_seen = combine_stats(
        host_stats(hosts, opinion, energy, [0.5]), ("opinion", "energy"), "opinion"
    )
    del one_logged["messages"], many_logged["messages"]  # hosts deliver what they deliver
    assert many_logged == one_logged and {k: v for k, v in many_seen.items() if k != "messages"} == {
        k: v for k, v in one_seen.items() if k != "messages"
    }


def test_the_metrics_are_numpys_and_name_the_fields() -> None:
    rng = np.random.default_rng(5)
    opinion, energy = rng.normal(0.3, 2.0, N), rng.uniform(5, 6, N)
    logged, seen = combine_stats(
        host_stats(3, opinion, energy, [float("nan"), 0.25, 0.75]), ("opinion", "energy"), "opinion"
    )
    assert logged["messages"] == 10 + 20 + 30
    assert logged["agents"] == N
    assert logged["max_change"] == 0.75  # NaN (not tracked on a host) is ignored
    for name, values, prefix in (("opinion", opinion, ""), ("energy", energy, "energy.")):
        expected = {
            "mean": values.mean(),
            "variance": values.var(),
            "min": values.min(),
            "max": values.max(),
            "spread": np.ptp(values),
        }
        for stat, value in expected.items():
            assert logged[prefix + stat] == pytest.approx(value, rel=1e-12)
            assert seen[f"{name}.{stat}"] == logged[prefix + stat]  # stop rules read field.stat
    assert "energy.agents" not in logged and "opinion.mean" not in logged


def test_a_run_with_no_watched_field_counts_no_agents() -> None:
    logged, seen = combine_stats([HostStats(sent=4, fields=()), HostStats(sent=5, fields=())], (), None)
    assert logged == {"messages": 9.0, "agents": 0.0} and seen == logged


def _tree_stats(values: np.ndarray, ids: np.ndarray, n: int, hosts: int) -> list[HostStats]:
    bounds = shard_bounds(n, hosts)
    out = []
    for h in range(hosts):
        lo, hi = int(bounds[h]), int(bounds[h + 1])
        mine = (ids >= lo) & (ids < hi)
        out.append(HostStats(sent=0, fields=(FieldStats.of(values[mine], ids[mine], lo, hi),)))
    return out


@pytest.mark.parametrize("hosts", [2, 5, 16])
def test_a_field_held_by_some_agents_only_combines_the_same_on_any_hosts(hosts: int) -> None:
    n = 5_000
    rng = np.random.default_rng(7)
    ids = np.sort(rng.choice(n, 1_300, replace=False))  # whole chunks and gaps without the field
    ids = ids[(ids // 64) % 3 != 1]
    values = rng.normal(1.0, 3.0, len(ids))
    one = combine_stats(_tree_stats(values, ids, n, 1), ("x",), "x")[0]
    many = combine_stats(_tree_stats(values, ids, n, hosts), ("x",), "x")[0]
    assert many == one
    assert one["agents"] == len(ids) and one["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert one["variance"] == pytest.approx(values.var(), rel=1e-12)


def test_a_host_sends_a_few_tree_nodes_not_one_per_chunk() -> None:
    n, hosts = 1_000_000, 3
    values = np.random.default_rng(8).random(n)
    stats = _tree_stats(values, np.arange(n, dtype=np.int64), n, hosts)
    chunks = -(-n // 64)
    for s in stats:
        assert len(s.fields[0].level) <= 2 * chunks.bit_length()  # O(log n), against 5,208 chunks a host
    logged = combine_stats(stats, ("x",), "x")[0]
    assert logged["mean"] == pytest.approx(values.mean(), rel=1e-12)
