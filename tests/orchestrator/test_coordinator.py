"""The coordinator's round metrics: the same bits on any number of hosts, and numpy's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.coordinator import combine_stats
from orchestrator.host import ChunkStats, HostStats, shard_bounds

N = 1_001  # not a multiple of the chunk: the last chunk is short


def host_stats(hosts: int, opinion: np.ndarray, energy: np.ndarray, changes: list[float]) -> list[HostStats]:
    bounds = shard_bounds(N, hosts)
    out = []
    for h in range(hosts):
        ids = np.arange(bounds[h], bounds[h + 1], dtype=np.int64)
        fields = (ChunkStats.of(opinion[ids], ids), ChunkStats.of(energy[ids], ids))
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
