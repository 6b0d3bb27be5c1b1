"""Runs on the in-process runtime: results that could fail, and errors that must be clear."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import networkx as nx
import numpy as np
import pytest

from agents import Agent, Message, OpinionAgent, Population, Uniform
from orchestrator import AgentError, ConfigError, LogError, launch
from protocols import Gossip, SmallWorld
from tests.orchestrator.helpers import PEAK, Boom, Lost, PlainOpinion, Rude, Slow, messages_hash


def strongly_connected_digraph(n: int, seed: int) -> nx.DiGraph:
    g = nx.gnp_random_graph(n, 0.12, seed=seed, directed=True)
    assert nx.is_strongly_connected(g) and nx.is_aperiodic(g)
    return g


def test_degroot_limit_is_the_left_perron_weighted_mean(log_path: Path) -> None:
    n = 40
    g = strongly_connected_digraph(n, seed=3)
    rng = np.random.default_rng(5)
    x0, s = rng.random(n), rng.uniform(0.1, 0.6, n)
    # Independently: x(t+1) = W x(t) with W = diag(s) + diag(1-s) D_in^-1 A^T.
    a = nx.to_numpy_array(g, nodelist=range(n))  # a[j, i] = 1 for edge j -> i
    w = np.diag(s) + np.diag(1 - s) @ (a.T / a.sum(axis=0)[:, None])
    vals, vecs = np.linalg.eig(w.T)
    pi = np.real(vecs[:, np.argmin(np.abs(vals - 1))])
    expected = float(pi @ x0 / pi.sum())

    pop = Population.of(OpinionAgent, n, opinion=x0, stubbornness=s)
    run = launch(
        pop, Gossip(g, fanout=None, tolerance=1e-10), rounds=2000, seed=1, log=log_path, runtime="local"
    )
    assert run.stop_reason == "consensus"
    assert abs(run.final["mean"] - expected) < 1e-6
    final = (
        run.sql(
            f"SELECT value FROM states WHERE run_id = '{run.run_id}' AND field = 'opinion' "
            f"AND round = {run.rounds - 1}"
        )
        .column("value")
        .to_numpy()
    )
    assert len(final) == n and np.max(np.abs(final - expected)) < 1e-6
    # Every edge carries one message per round: an exact row count.
    assert run.messages == run.rounds * g.number_of_edges()
    assert run.sql("SELECT count(*) AS c FROM messages").column("c")[0].as_py() == run.messages


def test_plain_and_vectorised_paths_agree(tmp_path: Path) -> None:
    proto = Gossip(SmallWorld(k=4, p=0.2), fanout=2, mode="push-pull")
    runs = [
        launch(
            Population.of(cls, 500, opinion=Uniform()),
            proto,
            rounds=15,
            seed=3,
            log=tmp_path / f"{cls.__name__}.duckdb",
            runtime="local",
            hosts=2,
        )
        for cls in (OpinionAgent, PlainOpinion)
    ]
    a, b = (
        r.sql("SELECT round, sender, seq, receiver, value FROM messages ORDER BY ALL").to_pandas()
        for r in runs
    )
    assert len(a) == len(b) == runs[0].messages > 0
    assert (
        a[["round", "sender", "seq", "receiver"]].values == b[["round", "sender", "seq", "receiver"]].values
    ).all()
    assert np.max(np.abs(a["value"].values - b["value"].values)) < 1e-12


def test_local_hosts_give_the_same_log(tmp_path: Path) -> None:
    pop = Population.of(OpinionAgent, 2000, opinion=Uniform())
    hashes = {
        h: messages_hash(
            tmp_path / f"h{h}.duckdb",
            launch(
                pop,
                Gossip(fanout=2),
                rounds=8,
                seed=9,
                log=tmp_path / f"h{h}.duckdb",
                runtime="local",
                hosts=h,
            ).run_id,
        )
        for h in (1, 3)
    }
    assert hashes[1] == hashes[3] and hashes[1][0] > 0


def test_consensus_view_and_tables(log_path: Path) -> None:
    run = launch(
        Population.of(OpinionAgent, 1000, opinion=Uniform()),
        Gossip(fanout=2, mode="push-pull"),
        rounds=200,
        seed=2,
        log=log_path,
        runtime="local",
    )
    assert run.stop_reason == "consensus" and run.final["spread"] < 1e-2
    view = run.sql("SELECT round, messages, spread FROM consensus_by_round ORDER BY round").to_pandas()
    logged = run.sql("SELECT count(*) AS c FROM messages").column("c")[0].as_py()  # every message a row
    assert len(view) == run.rounds and view["messages"].sum() == run.messages == logged
    assert view["spread"].iloc[-1] < 1e-2 <= view["spread"].iloc[-2]
    counts = run.sql(
        "SELECT (SELECT count(*) FROM agents) a, (SELECT count(DISTINCT round) FROM states) s, "
        "(SELECT status FROM runs) st, (SELECT count(*) FROM events WHERE kind = 'stopped') e"
    ).to_pylist()[0]
    assert counts == {"a": 1000, "s": 2 + (run.rounds - 1) // 10, "st": "finished", "e": 1}


def test_async_agents_run_concurrently_within_the_bound(log_path: Path) -> None:
    PEAK.update(now=0, max=0)
    run = launch(
        Population.of(Slow, 120),
        Gossip(SmallWorld(k=4, p=0.0), fanout=1),
        rounds=3,
        seed=0,
        log=log_path,
        runtime="local",
        max_concurrency=25,
    )
    assert PEAK["max"] == 25
    assert run.messages == 3 * 120
    payloads = run.sql("SELECT payload->>'heard' AS h FROM messages WHERE round = 2").column("h").to_pylist()
    assert sum(int(h) for h in payloads) == 120  # each round-1 message was heard once


def test_agent_returning_garbage_is_named_and_earlier_rounds_are_kept(log_path: Path) -> None:
    pop = Population.of(Rude, 200)
    with pytest.raises(AgentError) as info:
        launch(pop, Gossip(SmallWorld(k=4, p=0.0)), rounds=5, seed=0, log=log_path, runtime="local")
    assert str(info.value) == (
        "Agent 0 (Rude).act returned 'hello' (str) in round 2; return a Message, a reply of the protocol, a list of them, or None."
    )
    con = duckdb.connect(str(log_path), read_only=True)
    assert con.execute("SELECT count(*), max(round) FROM messages").fetchone() == (400, 1)
    status, reason = con.execute("SELECT status, stop_reason FROM runs").fetchone()  # type: ignore[misc]
    assert status == "failed" and "returned 'hello'" in reason
    assert con.execute("SELECT count(*) FROM events WHERE kind = 'error'").fetchone() == (1,)


def test_message_to_missing_agent(log_path: Path) -> None:
    with pytest.raises(
        AgentError, match=r"Agent 0 sent a message to agent 10000, which does not exist \(agents are 0..99\)"
    ):
        launch(
            Population.of(Lost, 100), Gossip(SmallWorld(k=4, p=0.0)), rounds=2, log=log_path, runtime="local"
        )


def test_unknown_protocol_and_bad_arguments(log_path: Path) -> None:
    pop = Population.of(OpinionAgent, 10)
    with pytest.raises(
        ConfigError, match=r"Unknown protocol 'gosip'; known: .*gossip.*Is its package installed"
    ):
        launch(pop, "gosip", log=log_path)
    with pytest.raises(ConfigError, match="rounds must be a whole number >= 1, got 0"):
        launch(pop, "gossip", rounds=0, log=log_path)
    with pytest.raises(ConfigError, match="Unknown runtime 'cloud'"):
        launch(pop, "gossip", runtime="cloud", log=log_path)  # type: ignore[arg-type]


def test_log_in_missing_directory(tmp_path: Path) -> None:
    bad = tmp_path / "nope" / "run.duckdb"
    with pytest.raises(ConfigError) as info:
        launch(Population.of(OpinionAgent, 10), "gossip", log=bad, runtime="local")
    assert str(info.value) == (
        f"Log directory '{bad.parent}' does not exist (log path '{bad}'); "
        f"create it (mkdir -p {bad.parent}) or pick another log path."
    )


def test_log_locked_by_another_process(log_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,sys; c=duckdb.connect({str(log_path)!r}); print('ok', flush=True); "
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(
            LogError, match=rf"The log '{log_path}' is locked by process {holder.pid} .*use another log path"
        ):
            launch(Population.of(OpinionAgent, 10), "gossip", log=log_path, runtime="local")
    finally:
        holder.communicate("")
    # Once free, the same path works.
    again = launch(
        Population.of(OpinionAgent, 64, opinion=Uniform()), "gossip", rounds=2, log=log_path, runtime="local"
    )
    assert again.messages == 128


def test_agent_that_raises_is_named_with_its_cause(log_path: Path) -> None:
    with pytest.raises(AgentError) as info:
        launch(
            Population.of(Boom, 64), Gossip(SmallWorld(k=4, p=0.0)), rounds=3, log=log_path, runtime="local"
        )
    first, *frames = str(info.value).splitlines()
    assert first == "Agent 5 (Boom).act raised ValueError('no opinion today') in round 1."
    # The agent's own frames follow, down to the line that raised (and none of the host's).
    helpers = str(Path(__file__).with_name("helpers.py"))
    assert frames[0] == "In the agent's code (most recent call last):"
    assert frames[1].startswith(f'  File "{helpers}", line ') and frames[1].endswith(", in act")
    assert frames[2] == '    raise ValueError("no opinion today")'
    assert len(frames) == 3
    assert isinstance(info.value.__cause__, ValueError)


def test_vectorised_path_is_chosen_when_act_batch_is_defined() -> None:
    from agents import Agent

    assert OpinionAgent.uses_batch() and not PlainOpinion.uses_batch() and not Agent.uses_batch()


class Twice(OpinionAgent):
    """A vectorised class that sends two messages per agent, with careless seqs."""

    @classmethod
    def act_batch(cls, state, inbox, ctx):  # type: ignore[no-untyped-def]
        from agents import MessageBatch

        one = MessageBatch.broadcast(ctx.ids, "opinion", state["opinion"])
        return MessageBatch.concat([one, one])  # seq 0 twice per sender, senders unsorted


class Impostor(OpinionAgent):
    @classmethod
    def act_batch(cls, state, inbox, ctx):  # type: ignore[no-untyped-def]
        from agents import MessageBatch

        return MessageBatch.broadcast(ctx.ids + 1, "opinion", state["opinion"])


def test_act_batch_output_gets_unique_ids_and_checked_senders(log_path: Path) -> None:
    run = launch(
        Population.of(Twice, 128, opinion=Uniform()),
        Gossip(SmallWorld(k=4, p=0.0), fanout=1),
        rounds=2,
        log=log_path,
        runtime="local",
    )
    dupes = (
        run.sql(
            "SELECT count(*) AS n FROM (SELECT round, sender, seq, receiver FROM messages "
            "GROUP BY ALL HAVING count(*) > 1)"
        )
        .column("n")[0]
        .as_py()
    )
    seqs = run.sql("SELECT DISTINCT seq FROM messages ORDER BY seq").column("seq").to_pylist()
    assert dupes == 0 and seqs == [0, 1] and run.messages == 2 * 128 * 2
    with pytest.raises(
        AgentError, match=r"Impostor.act_batch sent a message as agent 128, outside its block \(0..127\)"
    ):
        launch(Population.of(Impostor, 128), "gossip", rounds=2, log=log_path, runtime="local")


class Typo(Agent):
    def act(self, inbox, ctx):  # type: ignore[no-untyped-def]
        return Message(kind="opnion", value=1.0)


def test_a_kind_the_protocol_does_not_use_names_the_agent_and_the_kinds(log_path: Path) -> None:
    with pytest.raises(AgentError) as info:
        launch(
            Population.of(OpinionAgent, 10) + Population.of(Typo, 3),
            Gossip(),
            rounds=2,
            log=log_path,
            runtime="local",
        )
    assert str(info.value) == (
        "Agent 10 (Typo) sent a message of kind 'opnion' in round 0, which gossip does not use; its kinds are: "
        "opinion, argument, vote, post, move, reply, signal."
    )


def test_an_empty_population_is_refused_before_anything_starts(log_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^The population is empty; add agents with Population.of\(cls, n\)\.$"
    ):
        launch(Population.of(OpinionAgent, 0), "gossip", log=log_path, runtime="local")
    assert not log_path.exists()


def test_a_used_run_id_is_refused_before_ray_starts(log_path: Path) -> None:
    launch(Population.of(OpinionAgent, 64), "gossip", rounds=1, log=log_path, runtime="local", run_id="dup")
    script = f"""
import ray
from agents import OpinionAgent, Population
from orchestrator import ConfigError, launch
try:
    launch(Population.of(OpinionAgent, 64), "gossip", rounds=1, log={str(log_path)!r}, runtime="ray", run_id="dup")
except ConfigError as exc:
    print("refused:", exc)
print("ray started:", ray.is_initialized())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == [
        f"refused: run_id 'dup' is already in the log '{log_path}'; pick another run_id, or leave it out for a fresh one.",
        "ray started: False",
    ]
