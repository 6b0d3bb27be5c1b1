"""The Ray runtime on a real two-node cluster (127.0.0.1, one CPU per node)."""

from __future__ import annotations

import pickle
from pathlib import Path

import duckdb
import pytest
import ray

from agents import OpinionAgent, Population, Uniform
from orchestrator import AgentError, launch
from orchestrator.ray_runtime import RayRuntime
from protocols import Gossip, SmallWorld
from tests.orchestrator.helpers import Crash, PlainOpinion, Rude, Slow, messages_hash

pytestmark = pytest.mark.ray


def study(log: Path, **kw: object):  # type: ignore[no-untyped-def]
    pop = Population.of(OpinionAgent, 3000, opinion=Uniform()) + Population.of(
        PlainOpinion, 200, opinion=Uniform()
    )
    return launch(
        pop, Gossip(SmallWorld(k=6, p=0.3), fanout=2, mode="push-pull"), rounds=6, seed=42, log=log, **kw
    )  # type: ignore[arg-type]


def test_same_seed_same_log_in_process_and_on_1_or_3_hosts(ray_cluster: object, tmp_path: Path) -> None:
    results = {}
    for name, kw in {
        "local": {"runtime": "local"},
        "ray1": {"runtime": "ray", "hosts": 1},
        "ray3": {"runtime": "ray", "hosts": 3},
    }.items():
        run = study(tmp_path / f"{name}.duckdb", **kw)
        results[name] = messages_hash(tmp_path / f"{name}.duckdb", run.run_id)
    assert results["local"][0] > 3200 * 6  # every agent sent something every round
    assert results["local"] == results["ray1"] == results["ray3"]


def test_hosts_spread_over_both_nodes_and_log_matches_one_node(ray_cluster: object, tmp_path: Path) -> None:
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
    assert len(nodes) == 2
    spread = study(tmp_path / "spread.duckdb", runtime="ray", hosts=4)
    assert set(spread.nodes) == set(nodes)
    con = duckdb.connect(str(tmp_path / "spread.duckdb"), read_only=True)
    per_node = dict(con.execute("SELECT node, count(DISTINCT host) FROM agents GROUP BY node").fetchall())
    con.close()
    assert per_node == {nodes[0]: 2, nodes[1]: 2}
    one = study(tmp_path / "one.duckdb", runtime=_OneNode(nodes[0]), hosts=4)
    assert set(one.nodes) == {nodes[0]}
    assert messages_hash(tmp_path / "spread.duckdb", spread.run_id) == messages_hash(
        tmp_path / "one.duckdb", one.run_id
    )


class _OneNode(RayRuntime):
    """Every host on one node: the single-node baseline inside the same cluster."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def _nodes(self) -> list[str]:
        return [self.node]


def test_agent_error_crosses_the_actor_boundary_intact(ray_cluster: object, tmp_path: Path) -> None:
    with pytest.raises(AgentError) as info:
        launch(
            Population.of(Rude, 300),
            Gossip(SmallWorld(k=4, p=0.0)),
            rounds=4,
            log=tmp_path / "r.duckdb",
            runtime="ray",
            hosts=2,
        )
    assert str(info.value) == (
        "Agent 0 (Rude).act returned 'hello' (str) in round 2; return a Message, a reply of the protocol, a list of them, or None."
    )
    assert pickle.loads(pickle.dumps(info.value)).args == info.value.args
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM messages").fetchone() == (600,)
    con.close()


def test_ray_errors_are_translated_at_one_boundary() -> None:
    from orchestrator.errors import ClusterError
    from orchestrator.ray_runtime import _unwrap

    cause = AgentError("Agent 3 (X).act raised ValueError('boom') in round 1.")
    task_error = ray.exceptions.RayTaskError("step", "Traceback ...", cause)
    assert _unwrap(task_error) is cause
    died = _unwrap(ray.exceptions.RayActorError())
    assert isinstance(died, ClusterError) and "A host actor died" in str(died)
    assert "The log keeps every round so far" in str(died)
    other = ValueError("not ray")
    assert _unwrap(other) is other


def test_async_agents_on_ray_give_the_in_process_log(ray_cluster: object, tmp_path: Path) -> None:
    proto = Gossip(SmallWorld(k=4, p=0.2), fanout=2, mode="push")
    runs = {
        rt: launch(
            Population.of(Slow, 400),
            proto,
            rounds=3,
            seed=5,
            log=tmp_path / f"{rt}.duckdb",
            runtime=rt,
            hosts=2,
        )
        for rt in ("local", "ray")
    }
    hashes = {rt: messages_hash(tmp_path / f"{rt}.duckdb", run.run_id) for rt, run in runs.items()}
    assert hashes["local"] == hashes["ray"] and hashes["local"][0] == 3 * 400 * 2


def test_a_lost_host_is_a_cluster_error_and_the_log_keeps_earlier_rounds(
    ray_cluster: object, tmp_path: Path
) -> None:
    from orchestrator import ClusterError

    log = tmp_path / "lost.duckdb"
    with pytest.raises(ClusterError, match="A host actor died"):
        launch(
            Population.of(Crash, 256),
            Gossip(SmallWorld(k=4, p=0.0)),
            rounds=5,
            log=log,
            runtime="ray",
            hosts=2,
        )
    con = duckdb.connect(str(log), read_only=True)
    assert con.execute("SELECT count(*), max(round) FROM messages").fetchone() == (512, 1)
    assert con.execute("SELECT status FROM runs").fetchone() == ("failed",)
    con.close()


def test_hosts_asking_for_a_resource_land_where_it_is(ray_cluster: object, tmp_path: Path) -> None:
    nodes = {n["NodeID"]: n["Resources"] for n in ray.nodes() if n["Alive"]}
    (where,) = [node for node, res in nodes.items() if res.get("big_model")]
    run = study(
        tmp_path / "big.duckdb",
        runtime="ray",
        hosts=2,
        host_options={"num_cpus": 0, "resources": {"big_model": 1}},
    )
    assert run.nodes == (where,)
    local = study(tmp_path / "local.duckdb", runtime="local")
    assert messages_hash(tmp_path / "big.duckdb", run.run_id) == messages_hash(
        tmp_path / "local.duckdb", local.run_id
    )


def _idle_ids() -> set[str]:
    from orchestrator.ray_runtime import _IDLE

    return {a._actor_id.hex() for actors in _IDLE.values() for a in actors}


def test_a_finished_runs_hosts_serve_the_next_run_and_a_failed_runs_do_not(
    ray_cluster: object, tmp_path: Path
) -> None:
    """Host processes are kept idle after a run that ended well and taken by the next run in this
    process (the same actors, and the same log as fresh ones give); a failed run's are killed."""
    study(tmp_path / "a.duckdb", runtime="ray", hosts=2)
    kept = _idle_ids()
    assert len(kept) >= 2
    again = study(tmp_path / "b.duckdb", runtime="ray", hosts=2)
    assert _idle_ids() == kept  # the second run took two of them and gave them back
    local = study(tmp_path / "c.duckdb", runtime="local")
    assert messages_hash(tmp_path / "b.duckdb", again.run_id) == messages_hash(
        tmp_path / "c.duckdb", local.run_id
    )
    with pytest.raises(AgentError):
        launch(
            Population.of(Rude, 200), Gossip(SmallWorld(k=4)), rounds=3, log=tmp_path / "d.duckdb", hosts=2
        )
    assert len(_idle_ids()) == len(kept) - 2  # the failed run took two and they were killed
    study(tmp_path / "e.duckdb", runtime="ray", hosts=2, host_options={"num_cpus": 0.1})
    assert len(_idle_ids()) == len(kept) - 2  # hosts holding a CPU are never kept idle
    from orchestrator.ray_runtime import _IDLE

    study(tmp_path / "f0.duckdb", runtime="ray", hosts=2)
    dead = [a for actors in _IDLE.values() for a in actors]
    assert len(dead) >= 2
    for a in dead:  # idle hosts whose processes die while they wait
        ray.kill(a)
    after = study(tmp_path / "f.duckdb", runtime="ray", hosts=2)
    assert messages_hash(tmp_path / "f.duckdb", after.run_id) == messages_hash(
        tmp_path / "c.duckdb", local.run_id
    )
