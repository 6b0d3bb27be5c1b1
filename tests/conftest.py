"""Fixtures by cost: most tests need no Ray; one session-wide two-node Ray cluster serves the rest."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bind every Ray process to loopback: left alone, Ray advertises this machine's
# interface address and a driver may fail to reach a GCS listening on 127.0.0.1.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ray workers import test modules (agents defined in tests) by name.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
os.environ.pop("MOOT_ADDRESS", None)
os.environ.pop("MOOT_RUNTIME", None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that uses the session's Ray cluster carries the `ray` marker, so that
    ``-m "not ray"`` runs no Ray at all."""
    unmarked = [
        item.nodeid
        for item in items
        if "ray_cluster" in getattr(item, "fixturenames", ()) and item.get_closest_marker("ray") is None
    ]
    if unmarked:
        raise pytest.UsageError(f"Tests use ray_cluster without @pytest.mark.ray: {', '.join(unmarked)}")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    """A real Ray cluster of two nodes on 127.0.0.1, one CPU each, started once.

    The second node also offers 2 units of a custom resource, `big_model`.
    """
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False},
    )
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", resources={"big_model": 2})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "run.duckdb"


def python() -> str:
    return sys.executable
