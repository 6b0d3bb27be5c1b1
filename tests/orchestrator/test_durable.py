"""Durable runs: a run killed at any round and resumed, or whose host died, ends with the log of
a run never cut; forks repeat or change their parent exactly where they should."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import networkx as nx
import numpy as np
import pytest

import orchestrator
from agents import OpinionAgent, Population, Uniform
from orchestrator import ConfigError, launch
from orchestrator.checkpoint import checkpoint_dir, rounds_saved
from orchestrator.log import query
from protocols import Gossip
from protocols.registry import get_protocol
from tests.conftest import ROOT

MOOT = str(Path(sys.executable).with_name("moot"))

# Each table of a run, as one hash over its rows in a fixed order (wall-time metrics left out).
TABLES = {
    "messages": "round, sender, seq, receiver, kind, value, text, payload, topic",
    "states": "round, agent, field, value, text",
    "metrics": "round, name, value",
}


def table_hashes(log: Path, run_id: str) -> dict[str, tuple[int, int]]:
    """(rows, hash) of the run's messages, states and metrics."""
    con = duckdb.connect(str(log), read_only=True)
    try:
        out = {}
        for table, cols in TABLES.items():
            skip = " AND name <> 'seconds'" if table == "metrics" else ""
            out[table] = con.execute(
                f"SELECT count(*), hash(list(({cols}) ORDER BY {cols})) FROM {table} WHERE run_id = ?{skip}",
                [run_id],
            ).fetchall()[0]
        return out
    finally:
        con.close()


SIGNAL_AT = """
import os, signal, sys

def die(round, metrics):  # a signal to this very process after round MOOT_TEST_AT's progress call
    if round == int(os.environ.get("MOOT_TEST_AT", "-1")):
        os.kill(os.getpid(), int(os.environ.get("MOOT_TEST_SIGNAL", signal.SIGKILL)))
"""
"""The prelude of every study script here: `die`, given as its progress callback."""


def script(
    body: str, *args: object, at: int = -1, sig: int = signal.SIGKILL, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run SIGNAL_AT + `body` with `args` in a fresh process (signalled after round `at`)."""
    return subprocess.run(
        [sys.executable, "-c", SIGNAL_AT + body, *map(str, args)],
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "MOOT_TEST_AT": str(at),
            "MOOT_TEST_SIGNAL": str(int(sig)),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )


def moot(*args: object, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [MOOT, *map(str, args)],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


STUDY = """
import json
from orchestrator import launch
from protocols.registry import get_protocol

name, log, rounds, agents, run_id = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
proto = get_protocol(name)(**json.loads(sys.argv[6]))
launch(proto.default_population(agents), proto, rounds=rounds, seed=11, log=log, runtime="local",
       hosts=3, run_id=run_id, checkpoint_every=3, stop="never", state_every=4, progress=die)
"""

PROTOCOLS = {
    "gossip": (600, 10, {}),
    "swarm_grid": (192, 10, {"size": [30, 30]}),
    "social_feed": (192, 10, {}),
    "debate": (192, 4, {}),
}
"""Agents (three hosts' worth), rounds (debate's default strategies cover four) and options."""


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_a_driver_killed_at_a_random_round_resumes_to_the_log_of_a_run_never_cut(
    name: str, tmp_path: Path
) -> None:
    log = tmp_path / "run.duckdb"
    agents, rounds, options = PROTOCOLS[name]
    kill_at = random.Random(name).randrange(1, rounds - 1)  # a seeded draw, never the last round
    given = json.dumps(options)
    proto = get_protocol(name)(**options)  # the run never cut, here (the study script's launch)
    launch(
        proto.default_population(agents),
        proto,
        rounds=rounds,
        seed=11,
        log=log,
        runtime="local",
        hosts=3,
        run_id="whole",
        checkpoint_every=3,
        stop="never",
        state_every=4,
    )
    assert script(STUDY, name, log, rounds, agents, "cut", given, at=kill_at).returncode == -signal.SIGKILL
    moot("resume", log, "--run", "cut", "--local")
    assert table_hashes(log, "cut") == table_hashes(log, "whole")
    row = query(log, "SELECT status, rounds FROM runs WHERE run_id = 'cut'").to_pylist()[0]
    assert row == {"status": "finished", "rounds": rounds}
    (detail,) = [
        r["detail"] for r in query(log, "SELECT detail FROM events WHERE kind = 'resumed'").to_pylist()
    ]
    # From a checkpoint (every 3 rounds) before the kill, or from round 0.
    found = re.fullmatch(
        r"crashed; resumed from (the checkpoint after round (\d+)|round 0 \(no checkpoint\)) on 3 host\(s\)",
        detail,
    )
    assert found is not None, detail
    assert found.group(2) is None or (int(found.group(2)) % 3 == 2 and int(found.group(2)) < kill_at)


def _pop() -> Population:
    return Population.of(OpinionAgent, 640, opinion=Uniform())


def _gossip() -> Gossip:
    return Gossip(nx.random_regular_graph(4, 640, seed=1), fanout=None, tolerance=0.0)


def test_a_failed_run_resumes_on_another_number_of_hosts(tmp_path: Path) -> None:
    log = tmp_path / "run.duckdb"
    kw: dict[str, Any] = dict(rounds=12, seed=3, log=log, runtime="local", hosts=3, checkpoint_every=4)
    launch(_pop(), _gossip(), run_id="whole", **kw)

    def fail(r: int, metrics: object) -> None:
        if r == 9:
            raise RuntimeError("lost")

    with pytest.raises(RuntimeError):
        launch(_pop(), _gossip(), run_id="cut", progress=fail, **kw)
    assert rounds_saved(checkpoint_dir(log, "cut")) == [3, 7]
    run = orchestrator.resume(log, runtime="local", hosts=2)  # the latest run that did not finish
    assert run.run_id == "cut" and run.hosts == 2
    assert table_hashes(log, "cut") == table_hashes(log, "whole")


def test_a_finished_run_is_not_resumed_and_says_to_fork_it(tmp_path: Path) -> None:
    log = tmp_path / "run.duckdb"
    launch(_pop(), _gossip(), rounds=3, seed=3, log=log, runtime="local", hosts=1, run_id="done")
    with pytest.raises(ConfigError, match=r"Run 'done' finished; .*moot fork .* --run done --at ROUND"):
        orchestrator.resume(log, "done", runtime="local")


@pytest.mark.parametrize(
    ("at", "base"),
    [(5, -1), (9, 9), (10, 9)],  # from round 0; from the checkpoint at the fork; from an earlier one
)
def test_a_fork_without_change_repeats_its_parent_and_sees_its_whole_history(
    at: int, base: int, tmp_path: Path
) -> None:
    log = tmp_path / "run.duckdb"
    parent = launch(
        _pop(),
        _gossip(),
        rounds=12,
        seed=3,
        log=log,
        runtime="local",
        hosts=2,
        run_id="p",
        checkpoint_every=2,
    )
    assert rounds_saved(checkpoint_dir(log, "p")) == [9, 11]  # thinned: the two latest (no tenth yet)
    child = parent.fork(at=at, new_run_id="c", runtime="local")
    assert table_hashes(log, "c") == table_hashes(log, "p")
    row = query(log, "SELECT parent_run, fork_round FROM runs WHERE run_id = 'c'").to_pylist()[0]
    assert row == {"parent_run": "p", "fork_round": at}
    assert child.sql("SELECT count(DISTINCT round) AS n FROM metrics").to_pylist() == [{"n": 12}]
    (event,) = query(log, "SELECT detail FROM events WHERE run_id = 'c' AND kind = 'forked'").to_pylist()
    how = "its checkpoint there" if base == at else f"rounds {base + 1}..{at} played again"
    assert event["detail"] == f"from run p after round {at} ({how})"


def test_a_fork_that_sets_one_opinion_changes_only_what_that_agent_reaches(tmp_path: Path) -> None:
    log = tmp_path / "run.duckdb"
    graph = nx.random_regular_graph(4, 640, seed=1)
    pop = Population.of(OpinionAgent, 640, opinion=Uniform())
    launch(
        pop,
        Gossip(graph, fanout=None, tolerance=0.0),
        rounds=8,
        seed=3,
        log=log,
        runtime="local",
        hosts=2,
        run_id="p",
        checkpoint_every=3,
        state_every=1,
    )
    orchestrator.fork(log, "p", at=4, set={"7.opinion": 1.0}, new_run_id="c", runtime="local")

    def states(run: str, r: int) -> np.ndarray:
        rows = query(
            log,
            f"SELECT value FROM states WHERE run_id = '{run}' AND round = {r} AND field = 'opinion' "
            "ORDER BY agent",
        ).to_pylist()
        return np.array([x["value"] for x in rows])

    for r in range(5):  # the history up to the fork is the parent's
        assert np.array_equal(states("c", r), states("p", r))
    # Round 5: agent 7 acts from its new opinion; nobody else has heard it yet.
    assert set(np.flatnonzero(states("c", 5) != states("p", 5)).tolist()) == {7}
    sent = "SELECT sender, receiver, value FROM messages WHERE run_id = '{}' AND round = 5 ORDER BY ALL"
    p5, c5 = (query(log, sent.format(run)).to_pylist() for run in ("p", "c"))
    assert {m["sender"] for m in p5 if m not in c5} == {7}  # only agent 7's messages differ
    # Round 6: its neighbours heard it, and nobody else.
    assert set(np.flatnonzero(states("c", 6) != states("p", 6)).tolist()) == set(graph.neighbors(7)) | {7}


def test_a_fork_names_a_bad_round_agent_or_field(tmp_path: Path) -> None:
    log = tmp_path / "run.duckdb"
    launch(_pop(), _gossip(), rounds=4, seed=3, log=log, runtime="local", hosts=1, run_id="p")
    with pytest.raises(ConfigError, match=r"--at must be a round the parent played, 0\.\.3, got 9"):
        orchestrator.fork(log, "p", at=9, runtime="local")
    with pytest.raises(
        ConfigError, match=r"Agent 3 \(OpinionAgent\) has no state field 'mood'; its fields: opinion"
    ):
        orchestrator.fork(log, "p", at=1, set={"3.mood": 1}, new_run_id="bad", runtime="local")
    with pytest.raises(ConfigError, match=r"Gossip has no option 'fanin' to change"):
        orchestrator.fork(log, "p", at=1, options={"fanin": 2}, new_run_id="bad2", runtime="local")
    with pytest.raises(ConfigError, match=r"--set 640.opinion: no agent 640; the run's agents are 0\.\.639"):
        orchestrator.fork(log, "p", at=1, set={"640.opinion": 0.5}, new_run_id="bad3", runtime="local")
    assert query(log, "SELECT run_id FROM runs").to_pylist() == [{"run_id": "p"}]  # refused before any run


def _fragile(tmp_path: Path, marker: str, times: int = 1) -> Population:
    from tests.orchestrator.helpers import Fragile

    path = str(tmp_path / marker) if marker else ""
    return Population.of(Fragile, 640, opinion=Uniform(), marker=path, times=times)


@pytest.mark.ray
def test_a_host_that_dies_is_restarted_from_the_checkpoint_and_the_log_is_unchanged(
    ray_cluster: object, tmp_path: Path
) -> None:
    log = tmp_path / "run.duckdb"
    kw = dict(rounds=9, seed=3, log=log, runtime="ray", hosts=3, checkpoint_every=2)
    launch(_fragile(tmp_path, ""), _gossip(), run_id="calm", **kw)  # type: ignore[arg-type]
    run = launch(_fragile(tmp_path, "die"), _gossip(), run_id="hit", **kw)  # type: ignore[arg-type]
    assert (tmp_path / "die.0").exists()  # the host of agent 0 did die, in round 5
    assert run.stop_reason == "rounds"
    assert table_hashes(log, "hit") == table_hashes(log, "calm")
    events = query(log, "SELECT round, detail FROM events WHERE kind = 'restarted'").to_pylist()
    assert len(events) == 1 and events[0]["round"] == 4  # back to the checkpoint after round 3
    assert (
        events[0]["detail"].startswith("A host actor died")
        and "Restart 1 of 3, from round 4." in events[0]["detail"]
    )


@pytest.mark.ray
def test_a_host_that_keeps_dying_fails_the_run_resumably(ray_cluster: object, tmp_path: Path) -> None:
    log = tmp_path / "run.duckdb"
    kw = dict(rounds=8, seed=3, log=log, runtime="ray", hosts=2, checkpoint_every=2)
    launch(_fragile(tmp_path, "", times=2), _gossip(), run_id="calm", **kw)  # type: ignore[arg-type]
    with pytest.raises(
        orchestrator.HostLost, match=r"restarted 1 time\(s\) already; .*resumable from round 4"
    ):
        launch(_fragile(tmp_path, "die", times=2), _gossip(), run_id="hit", max_restarts=1, **kw)  # type: ignore[arg-type]
    row = query(log, "SELECT status, rounds FROM runs WHERE run_id = 'hit'").to_pylist()[0]
    assert row == {"status": "failed", "rounds": 5}  # rounds 0..4: round 5 never ended
    orchestrator.resume(log, "hit", runtime="ray", hosts=3)  # the third try passes round 5, on 3 hosts
    assert table_hashes(log, "hit") == table_hashes(log, "calm")


RAY_STUDY = """
import networkx as nx
from agents import OpinionAgent, Population, Uniform
from orchestrator import launch
from protocols import Gossip
from protocols.registry import get_protocol

log, run_id, address = sys.argv[1], sys.argv[2], sys.argv[3]
launch(Population.of(OpinionAgent, 640, opinion=Uniform()),
       Gossip(nx.random_regular_graph(4, 640, seed=1), fanout=2, mode="push-pull", tolerance=0.0),
       rounds=10, seed=5, log=log, address=address, hosts=3, run_id=run_id, checkpoint_every=3,
       progress=die)
"""


@pytest.mark.ray
def test_a_killed_driver_of_a_three_host_ray_run_resumes_to_the_same_log(
    ray_cluster: object, tmp_path: Path
) -> None:
    log = tmp_path / "run.duckdb"
    address = ray_cluster.address  # type: ignore[attr-defined]
    assert script(RAY_STUDY, log, "whole", address).returncode == 0
    kill_at = random.Random("ray").randrange(4, 9)
    assert script(RAY_STUDY, log, "cut", address, at=kill_at).returncode == -signal.SIGKILL
    moot("resume", log, "--address", address)
    assert table_hashes(log, "cut") == table_hashes(log, "whole")


SIGNALLED = """
from agents import OpinionAgent, Population, Uniform
from orchestrator import launch
from protocols import Gossip
from protocols.registry import get_protocol

log, run_id = sys.argv[1], sys.argv[2]
launch(Population.of(OpinionAgent, 640, opinion=Uniform()), Gossip(fanout=2, tolerance=0.0),
       rounds=9, seed=5, log=log, runtime="local", hosts=2, run_id=run_id, checkpoint_every=0,
       progress=die)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_leave_an_interrupted_run_that_resumes_to_the_same_log(
    sig: signal.Signals, tmp_path: Path
) -> None:
    log = tmp_path / "run.duckdb"
    launch(
        Population.of(OpinionAgent, 640, opinion=Uniform()),
        Gossip(fanout=2, tolerance=0.0),
        rounds=9,
        seed=5,
        log=log,
        runtime="local",
        hosts=2,
        run_id="whole",
        checkpoint_every=0,
    )  # SIGNALLED's, whole
    done = script(SIGNALLED, log, "cut", at=3, sig=sig)
    assert done.returncode == 1  # RunInterrupted, uncaught in the script
    assert (
        f"moot: run cut interrupted after round 4; the log keeps rounds 0..4: {log}; "
        f"go on with: moot resume {log} --run cut"
    ) in done.stderr
    assert query(log, "SELECT status FROM runs WHERE run_id = 'cut'").to_pylist() == [
        {"status": "interrupted"}
    ]
    # The signal came during round 3's progress call: round 4 was played, and the run stopped
    # after it with a checkpoint (none on schedule: checkpoint_every=0).
    assert rounds_saved(checkpoint_dir(log, "cut")) == [4]
    moot("resume", log, "--local")
    assert table_hashes(log, "cut") == table_hashes(log, "whole")


LLM_STUDY = """
from agents import Population, Uniform
from orchestrator import LLMConfig, launch
from protocols.gossip import Gossip, LLMOpinionAgent

log, run_id, url = sys.argv[1], sys.argv[2], sys.argv[3]
launch(Population.of(LLMOpinionAgent, 12, opinion=Uniform()), Gossip(graph="ring_lattice:k=2", fanout=1),
       rounds=5, seed=5, log=log, runtime="local", run_id=run_id, progress=die,
       llm=LLMConfig(model="openai/stub", api_base=url, api_key_env="MOOT_TEST_KEY",
                     cache=log + "." + run_id + ".cache"))
"""


def _prompts(requests: list[object]) -> set[str]:
    return {str(r.body["messages"]) for r in requests}  # type: ignore[attr-defined]


def test_a_resumed_llm_run_pays_for_no_call_it_made_before_the_kill(tmp_path: Path) -> None:
    from orchestrator.llm.stub import StubServer

    log = tmp_path / "run.duckdb"
    key = {"MOOT_TEST_KEY": "sk-test-0123456789"}
    with StubServer() as stub:
        assert script(LLM_STUDY, log, "whole", stub.url, **key).returncode == 0
        assert script(LLM_STUDY, log, "cut", stub.url, at=2, **key).returncode == -signal.SIGKILL
        before = list(stub.requests)
        moot("resume", log, "--run", "cut", "--local", **key)
        after = stub.requests[len(before) :]
    whole = 12 * 5  # one call per agent per round
    assert len(before) == whole + 12 * 3  # the whole run, then rounds 0..2 of the cut one
    assert after and not (_prompts(after) & _prompts(before[whole:]))  # nothing asked twice
    assert table_hashes(log, "cut") == table_hashes(log, "whole")
    hits = query(
        log,
        "SELECT round, bool_and(cache_hit) AS hit, count(*) AS n FROM llm_calls WHERE run_id = 'cut' "
        "GROUP BY round ORDER BY round",
    ).to_pylist()
    resumed_from = int(query(log, "SELECT round FROM events WHERE kind = 'resumed'").to_pylist()[0]["round"])
    for row in hits:  # rounds replayed after the checkpoint are answered by the cache
        assert row["n"] == 12
        assert row["hit"] == (resumed_from <= row["round"] <= 2)


def test_interviews_answer_from_each_agents_state_at_the_round_and_change_nothing(tmp_path: Path) -> None:
    from orchestrator.interview import interview
    from protocols.gossip import LLMOpinionAgent

    log = tmp_path / "run.duckdb"
    pop = Population.of(LLMOpinionAgent, 60, opinion=Uniform())
    launch(pop, Gossip(fanout=2), rounds=4, seed=1, log=log, runtime="local", run_id="llm", state_every=1)
    before = table_hashes(log, "llm")
    question = "Why did you change your mind?"
    for at in (0, 3):
        answers = interview(log, "llm", range(50), at, question).to_pylist()
        opinions = query(
            log,
            f"SELECT agent, value FROM states WHERE run_id = 'llm' AND round = {at} AND field = 'opinion' "
            "AND agent < 50 ORDER BY agent",
        ).to_pylist()
        assert [a["agent"] for a in answers] == list(range(50))
        for a, o in zip(answers, opinions):  # the stand-in repeats the state it was shown
            assert a["answer"].endswith(f"My state: opinion: {o['value']:.4g}.")
            assert a["model"] == "moot/simulated" and a["cached"] is False
    again = interview(log, "llm", [0], 3, question).to_pylist()[0]
    assert again["cached"] is True  # asked again: from the response cache
    logged = query(
        log, "SELECT round, count(*) AS n FROM interviews GROUP BY round ORDER BY round"
    ).to_pylist()
    assert logged == [{"round": 0, "n": 50}, {"round": 3, "n": 51}]
    assert table_hashes(log, "llm") == before  # the run itself is unchanged


def test_rule_based_agents_have_nobody_to_interview(tmp_path: Path) -> None:
    from orchestrator.interview import interview

    log = tmp_path / "run.duckdb"
    launch(_pop(), _gossip(), rounds=3, seed=3, log=log, runtime="local", run_id="p")
    with pytest.raises(
        ConfigError, match=r"Run 'p' has no LLM agents \(OpinionAgent\): there is nobody to ask"
    ):
        interview(log, "p", [0], 1, "Why?")


def test_a_run_whose_definition_cannot_be_saved_runs_on_without_checkpoints_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import threading

    log = tmp_path / "run.duckdb"
    made = type(
        "Made",
        (OpinionAgent,),
        {"__module__": __name__, "__annotations__": {"guard": ClassVar[Any]}, "guard": threading.Lock()},
    )
    run = launch(Population.of(made, 100), _gossip_small(), rounds=3, log=log, runtime="local", run_id="m")
    assert run.stop_reason == "rounds"
    assert "moot: note: run m has no checkpoints: its definition cannot be saved" in capsys.readouterr().err
    assert rounds_saved(checkpoint_dir(log, "m")) == []
    (note,) = query(log, "SELECT detail FROM events WHERE kind = 'note'").to_pylist()
    assert "cannot be resumed, forked or interviewed" in note["detail"]


def _gossip_small() -> Gossip:
    return Gossip(nx.random_regular_graph(4, 100, seed=1), fanout=None, tolerance=0.0)


def test_a_sweep_of_forks_makes_one_fork_per_point_and_keeps_finished_points(tmp_path: Path) -> None:
    log = tmp_path / "run.duckdb"
    graph = nx.random_regular_graph(4, 640, seed=1)
    launch(
        _pop(),
        Gossip(graph, fanout=2, mode="push-pull", tolerance=0.0),
        rounds=8,
        seed=3,
        log=log,
        runtime="local",
        hosts=2,
        run_id="p",
        checkpoint_every=3,
    )
    out = moot("fork", log, "--run", "p", "--at", 4, "--each", "fanout=2,3", "--local", COLUMNS="200")
    children = query(
        log, "SELECT run_id, fork_round, params FROM runs WHERE parent_run = 'p' ORDER BY 1"
    ).to_pylist()
    assert [c["run_id"] for c in children] == ["p.fork@4.fanout=2", "p.fork@4.fanout=3"]
    assert all(c["run_id"] in out.stdout for c in children)
    assert table_hashes(log, "p.fork@4.fanout=2") == table_hashes(log, "p")  # the parent's own option
    sent = "SELECT round, count(*) AS n FROM messages WHERE run_id = '{}' GROUP BY round ORDER BY round"
    p, three = (query(log, sent.format(r)).to_pylist() for r in ("p", "p.fork@4.fanout=3"))
    assert p[:5] == three[:5] and all(a["n"] < b["n"] for a, b in zip(p[5:], three[5:]))
    again = moot("fork", log, "--run", "p", "--at", 4, "--each", "fanout=2,3", "--local")
    assert "p.fork@4.fanout=3 finished already; kept" in again.stderr
    assert len(query(log, "SELECT run_id FROM runs").to_pylist()) == 3


def test_moot_interview_prints_the_answers_and_logs_them(tmp_path: Path) -> None:
    from protocols.gossip import LLMOpinionAgent

    log = tmp_path / "run.duckdb"
    pop = Population.of(LLMOpinionAgent, 8, opinion=Uniform())
    launch(
        pop,
        Gossip(graph="ring_lattice:k=2", fanout=1),
        rounds=2,
        seed=1,
        log=log,
        runtime="local",
        run_id="llm",
    )
    out = moot(
        "interview", log, "How sure are you?", "--run", "llm", "--agents", "0..2,5", "--at", 1, COLUMNS="250"
    )
    rows = query(log, "SELECT agent, answer FROM interviews ORDER BY agent").to_pylist()
    assert [r["agent"] for r in rows] == [0, 1, 2, 5]
    for r in rows:
        assert r["answer"].startswith("I am moot/simulated, an offline stand-in, not a language model.")
        assert r["answer"] in " ".join(out.stdout.split())
    assert "moot/simulated (offline stand-in, not a language model)" in " ".join(out.stdout.split())
