"""Rows written where they are made: each host's segments, the views over them, a plain duckdb
CLI from anywhere, a moved run directory, a host killed mid-write, and `moot compact`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import orchestrator.log.segments
import orchestrator.run_log
from agents import OpinionAgent, Population, Uniform
from orchestrator import launch
from orchestrator.cli import app
from orchestrator.log import open_log
from orchestrator.log.segments import parts_dir
from protocols import Gossip, SmallWorld
from tests.orchestrator.helpers import moot_cli
from tests.orchestrator.s3_server import CREDENTIALS, S3, s3_server

DUCKDB_CLI = Path(sys.executable).with_name("duckdb")

QUERIES = (
    "SELECT count(*) FROM messages; "
    "SELECT count(*) FROM states; "
    "SELECT count(*) FROM agents; "
    "SELECT count(*) FROM consensus_by_round; "
    "SELECT count(*) FROM agreement_by_round((SELECT any_value(run_id) FROM runs), 'opinion', 0.1);"
)


@pytest.fixture
def keep_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs keep their segments (small runs are otherwise compacted into the file at the end)."""
    monkeypatch.setattr(orchestrator.run_log, "COMPACT_ROWS", 0)


def _gossip(log: Path, **kw: object):  # type: ignore[no-untyped-def]
    return launch(
        Population.of(OpinionAgent, 600, opinion=Uniform()),
        Gossip(SmallWorld(k=4, p=0.2), fanout=2),
        rounds=4,
        seed=5,
        log=log,
        stop="never",
        state_every=2,
        **kw,
    )  # type: ignore[arg-type]


def _cli_counts(log: Path, cwd: Path) -> list[int]:
    out = subprocess.run(
        [str(DUCKDB_CLI), "-json", str(log), "-c", QUERIES], cwd=cwd, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(chunk) for chunk in out.stdout.replace("]\n[", "]\x00[").split("\x00")]
    return [next(iter(r[0].values())) for r in rows]


def test_a_plain_duckdb_cli_reads_the_segments_from_anywhere_and_after_a_move(
    tmp_path: Path, keep_segments: None
) -> None:
    log = tmp_path / "study" / "run.duckdb"
    log.parent.mkdir()
    run = _gossip(log, runtime="local", hosts=2)
    files = sorted(p.name for p in (parts_dir(log) / "messages" / f"run_id={run.run_id}").iterdir())
    assert files == [f"r{r:08d}-h{h:05d}.parquet" for r in range(4) for h in range(2)]
    sent = int(run.sql("SELECT sum(value) FROM metrics WHERE name = 'messages'").column(0)[0].as_py())
    # 600 agents' state fields after rounds -1, 1, 3; one agents row each; 4 rounds of metrics
    expected = [sent, 600 * len(OpinionAgent.state_fields()) * 3, 600, 4, 3]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _cli_counts(log, elsewhere) == expected
    moved = tmp_path / "moved"
    shutil.move(str(log.parent), str(moved))
    assert _cli_counts(moved / "run.duckdb", elsewhere) == expected
    assert _cli_counts(moved / "run.duckdb", moved) == expected


def test_the_manifest_names_every_segment_with_its_rows_and_checksum(
    tmp_path: Path, keep_segments: None
) -> None:
    import zlib

    log = tmp_path / "run.duckdb"
    run = _gossip(log, runtime="local", hosts=3)
    con = open_log(log)
    manifest = con.execute(
        "SELECT table_name, round, host, file, rows, bytes, crc32 FROM segments"
    ).fetchall()
    per_table = dict(con.execute("SELECT table_name, sum(rows) FROM segments GROUP BY 1").fetchall())
    counted = {
        t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("agents", "messages", "states")
    }
    con.close()
    assert per_table == counted
    assert {(t, h) for t, r, h, *_ in manifest if t == "agents"} == {("agents", h) for h in range(3)}
    for _table, _round, _host, file, _rows, size, crc in manifest:
        data = (parts_dir(log) / file).read_bytes()
        assert (len(data), zlib.crc32(data)) == (size, crc)
    assert run.run_id in manifest[0][3]


_WRITER = """
import sys, numpy as np, pyarrow as pa
from orchestrator.log.segments import SegmentSink
from orchestrator.message_log import messages_table
from agents.batch import MessageBatch
sink = SegmentSink(sys.argv[1], "r1")
def batch(n):
    i = np.arange(n, dtype=np.int64)
    return MessageBatch(i, np.zeros(n, np.int32), np.zeros(n, np.uint8), np.ones(n), (i + 1) % n)
sink.write("messages", 0, 0, messages_table(batch(1000), 0, "gossip"))
print("round 0 written", flush=True)
while True:  # round 1, large, again and again: killed while writing one
    sink.write("messages", 1, 0, messages_table(batch(3_000_000), 1, "gossip"))
"""


def test_a_writer_killed_mid_segment_leaves_nothing_half_visible(tmp_path: Path) -> None:
    log = tmp_path / "run.duckdb"
    from orchestrator.log import LogWriter

    writer = LogWriter(log)  # the run's writer, open while its host writes
    folder = parts_dir(log) / "messages" / "run_id=r1"
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(parts_dir(log))],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    assert child.stdout is not None and child.stdout.readline().startswith("round 0")
    deadline = time.monotonic() + 60
    while not list(folder.glob("*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.001)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    writer.close()
    torn = list(folder.glob("*.tmp"))
    finished = [p for p in folder.glob("*.parquet")]
    con = open_log(log)
    rows = con.execute("SELECT round, count(*) FROM messages GROUP BY round ORDER BY round").fetchall()
    con.close()
    assert torn, "the writer was not caught mid-segment"
    # round 0 and any round-1 segment finished before the kill, each whole; the torn one unseen
    assert rows[0] == (0, 1000)
    assert len(finished) == 1 + (len(rows) == 2)
    assert rows[1:] in ([], [(1, 3_000_000)])


def test_compact_moves_the_rows_into_the_file_which_then_stands_alone(
    tmp_path: Path, keep_segments: None
) -> None:
    log = tmp_path / "run.duckdb"
    run = _gossip(log, runtime="local", hosts=2)
    before = _cli_counts(log, tmp_path)
    result = CliRunner().invoke(app, ["compact", str(log)])
    assert result.exit_code == 0, result.output
    assert f"{run.run_id}: {before[0] + before[1] + before[2]:,} rows moved" in result.output
    assert not (parts_dir(log) / "messages" / f"run_id={run.run_id}").exists()
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(log, alone / "copy.duckdb")  # the file without its folder
    assert _cli_counts(alone / "copy.duckdb", tmp_path) == before
    con = duckdb.connect()
    con.execute(f"ATTACH '{alone / 'copy.duckdb'}' AS c (READ_ONLY)")
    assert con.execute("SELECT count(*) FROM c.messages").fetchall()[0][0] == before[0]
    con.close()
    assert _cli_counts(log, alone) == before
    again = CliRunner().invoke(app, ["compact", str(log), "--run", run.run_id])
    assert again.exit_code == 2 and "has no segments to compact" in again.output


def test_small_runs_go_into_the_file_when_they_end(tmp_path: Path) -> None:
    log = tmp_path / "run.duckdb"
    run = _gossip(log, runtime="local", hosts=2)
    assert not (parts_dir(log) / "messages" / f"run_id={run.run_id}").exists()
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(log, alone / "copy.duckdb")  # no segments left: the file stands alone
    assert _cli_counts(alone / "copy.duckdb", alone) == _cli_counts(log, tmp_path)
    con = open_log(log)
    assert con.execute("SELECT count(*) FROM segments").fetchall()[0][0] == 0
    assert (
        con.execute("SELECT count(*) FROM _messages").fetchall()[0][0]
        == con.execute("SELECT count(*) FROM messages").fetchall()[0][0]
        > 0
    )
    con.close()


@pytest.mark.ray
def test_hosts_on_both_nodes_write_their_own_rows(
    ray_cluster: object, tmp_path: Path, keep_segments: None
) -> None:
    import ray

    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
    log = tmp_path / "spread.duckdb"
    run = _gossip(log, runtime="ray", hosts=4)
    local = _gossip(tmp_path / "local.duckdb", runtime="local", hosts=1)
    con = open_log(log)
    hosts = dict(con.execute("SELECT DISTINCT host, node FROM agents").fetchall())
    written = con.execute(
        "SELECT host, count(*), sum(rows) FROM segments WHERE table_name = 'messages' GROUP BY host ORDER BY host"
    ).fetchall()
    total = con.execute("SELECT count(*) FROM messages").fetchall()[0][0]
    (via_driver,) = con.execute("SELECT driver_rows FROM runs").fetchall()[0]
    con.close()
    assert via_driver == 0  # no message row crossed to the driver; each host wrote its own
    assert sorted(set(hosts.values())) == nodes  # hosts on the head and on the worker node
    assert [h for h, files, _ in written] == [0, 1, 2, 3] and all(files == 4 for _, files, _ in written)
    assert sum(rows for *_, rows in written) == total
    from tests.orchestrator.helpers import messages_hash

    assert messages_hash(log, run.run_id) == messages_hash(tmp_path / "local.duckdb", local.run_id)
    # Aggregates are counted in the hosts too: no row crosses, and the counts are the in-process ones.
    counted = _gossip(tmp_path / "agg.duckdb", runtime="ray", hosts=4, messages="aggregate")
    assert counted.sql("SELECT driver_rows FROM runs").column(0)[0].as_py() == 0
    alone = _gossip(tmp_path / "agg-local.duckdb", runtime="local", hosts=1, messages="aggregate")
    aggregates = "SELECT * EXCLUDE (run_id) FROM message_aggregates ORDER BY round, kind"
    assert counted.sql(aggregates).to_pylist() == alone.sql(aggregates).to_pylist()
    assert sum(r["messages"] for r in alone.sql(aggregates).to_pylist()) == counted.messages


@pytest.mark.ray
def test_segments_on_a_node_without_the_log_storage_are_gathered_at_the_end(
    ray_cluster: object, tmp_path: Path, keep_segments: None
) -> None:
    """Hosts told (MOOT_NODE_PARTS) that their node does not share the log's disk write there;
    the driver copies their segments beside the log, checked, once the rounds are over."""
    node_disk = tmp_path / "node-local"
    log = tmp_path / "log" / "run.duckdb"
    log.parent.mkdir()
    env = {"env_vars": {"MOOT_NODE_PARTS": str(node_disk)}}
    run = _gossip(log, runtime="ray", hosts=2, host_options={"num_cpus": 0, "runtime_env": env})
    local = _gossip(tmp_path / "local.duckdb", runtime="local", hosts=1)
    on_node = sorted(
        p.name for p in (node_disk / "run.duckdb.parts" / "messages" / f"run_id={run.run_id}").iterdir()
    )
    beside = sorted(p.name for p in (parts_dir(log) / "messages" / f"run_id={run.run_id}").iterdir())
    assert on_node == beside == [f"r{r:08d}-h{h:05d}.parquet" for r in range(4) for h in range(2)]
    assert run.result.timings["gather"] > 0
    # Its checkpoint (after the last round) went to the driver, which wrote it beside the log.
    saved = parts_dir(log) / "checkpoints" / f"run_id={run.run_id}" / "r00000003"
    assert sorted(p.name for p in saved.iterdir()) == ["driver.pkl", "host-00000.pkl", "host-00001.pkl"]
    assert not (node_disk / "run.duckdb.parts" / "checkpoints").exists()
    from tests.orchestrator.helpers import messages_hash

    assert messages_hash(log, run.run_id) == messages_hash(tmp_path / "local.duckdb", local.run_id)


def test_a_file_copied_without_its_segments_says_what_is_missing(tmp_path: Path, keep_segments: None) -> None:
    from orchestrator import LogError, query

    log = tmp_path / "run.duckdb"
    _gossip(log, runtime="local", hosts=2)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(log, alone / "copy.duckdb")
    with pytest.raises(LogError) as info:
        query(alone / "copy.duckdb", "SELECT count(*) FROM messages")
    assert str(info.value).startswith(
        f"The log's segment folder '{alone / 'copy.duckdb.parts'}' is missing: the hosts' rows live there."
    )


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    with s3_server() as server:
        yield server


@pytest.mark.ray
def test_hosts_write_to_an_object_store_and_the_driver_copies_the_rows_beside_the_log(
    ray_cluster: object, tmp_path: Path, s3: S3, keep_segments: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hosts on both nodes write their segments to an S3 server (no shared folder needed); the
    driver copies them beside the log, checked, and empties the store of the run."""
    log = tmp_path / "run.duckdb"
    env = {"env_vars": dict(CREDENTIALS)}  # (on a real cluster: each node's own credentials)
    monkeypatch.setattr(orchestrator.log.segments, "GATHER", 3)  # several batches a host
    run = _gossip(
        log,
        runtime="ray",
        hosts=2,
        host_options={"num_cpus": 0, "runtime_env": env},
        segments_uri=s3.uri("store-test"),
    )
    local = _gossip(tmp_path / "local.duckdb", runtime="local", hosts=1)
    from tests.orchestrator.helpers import messages_hash

    assert messages_hash(log, run.run_id) == messages_hash(tmp_path / "local.duckdb", local.run_id)
    con = duckdb.connect(str(log), read_only=True)
    listed = con.execute("SELECT host, file, bytes FROM segments").fetchall()
    hosts = {h for h, _, _ in listed}
    (via_driver,) = con.execute("SELECT driver_rows FROM runs").fetchall()[0]
    con.close()
    written = s3.written("store-test/")
    # Every segment in the manifest went through the store, with its bytes, then came beside the log.
    assert {f"store-test/run.duckdb.parts/{f}": b for _, f, b in listed} == {
        k: v for k, v in written.items() if k.endswith(".parquet")
    }
    assert hosts == {0, 1} and via_driver == 0 and len(listed) > 8
    assert all((parts_dir(log) / f).stat().st_size == b for _, f, b in listed)
    # The run's objects are gone from the store (pyarrow leaves empty folder markers, "name/").
    assert [k for k in s3.present("store-test/") if not k.endswith("/")] == []


def test_a_bad_segments_uri_is_refused_before_the_run_with_the_fix(tmp_path: Path, s3: S3) -> None:
    from orchestrator import ConfigError

    def go(uri: str) -> None:
        _gossip(tmp_path / "bad.duckdb", runtime="local", segments_uri=uri)

    with pytest.raises(
        ConfigError, match=r"is a path, not an object-store URI\. For a folder every node mounts"
    ):
        go(str(tmp_path / "parts"))
    with pytest.raises(
        ConfigError, match=r"carries a credential, which would be recorded with the run"
    ) as err:
        go(s3.uri("x") + "&secret_key=hunter2")
    assert "hunter2" not in str(err.value)
    with pytest.raises(ConfigError, match=r"Cannot write to --segments-uri .*Check the bucket, the endpoint"):
        go(s3.uri("x").replace("moot-test", "no-such-bucket"))
    assert (
        not (tmp_path / "bad.duckdb").exists()
        or not duckdb.connect(str(tmp_path / "bad.duckdb"), read_only=True)
        .execute("SELECT count(*) FROM runs")
        .fetchall()[0][0]
    )


def test_a_failed_run_keeps_the_whole_rounds_it_wrote_to_the_store(tmp_path: Path, s3: S3) -> None:
    """The store outlives the hosts: round 0 (whole) comes beside the log although the run failed
    in round 1, and round 1's half-written part does not."""
    from orchestrator import AgentError
    from tests.orchestrator.helpers import Boom

    log = tmp_path / "failed.duckdb"
    with pytest.raises(AgentError, match="no opinion today"):
        launch(
            Population.of(Boom, 300),
            Gossip(SmallWorld(k=4), fanout=2),
            rounds=4,
            seed=1,
            log=log,
            runtime="local",
            hosts=2,
            segments_uri=s3.uri("failed"),
        )
    con = duckdb.connect(str(log), read_only=True)
    assert con.execute("SELECT status FROM runs").fetchall() == [("failed",)]
    per_round = con.execute("SELECT round, count(*) FROM messages GROUP BY round").fetchall()
    con.close()
    assert per_round == [(0, 600)]  # 300 agents, fanout 2
    assert [k for k in s3.present("failed/") if not k.endswith("/")] == []


def test_moot_run_takes_a_segments_uri_and_names_a_bad_one(tmp_path: Path, s3: S3) -> None:
    log = tmp_path / "cli.duckdb"
    moot_cli(
        "run",
        "--local",
        "--agents",
        "500",
        "--rounds",
        "3",
        "--log",
        str(log),
        "--segments-uri",
        s3.uri("cli"),
    )
    con = duckdb.connect(str(log), read_only=True)
    (uri, rows) = con.execute(
        "SELECT config->>'segments_uri', (SELECT count(*) FROM messages) FROM runs"
    ).fetchall()[0]
    con.close()
    assert uri == s3.uri("cli") and rows > 0
    assert any(k.startswith("cli/cli.duckdb.parts/messages/") for k in s3.written("cli/"))
    bad = CliRunner().invoke(
        app, ["run", "--local", "--log", str(log), "--segments-uri", "s3://a/b?secret_key=x"]
    )
    assert bad.exit_code == 2 and "carries a credential" in bad.output  # (2: bad input)


STORE_KILLED = """
import os, signal, sys
from agents import OpinionAgent, Population, Uniform
from orchestrator import launch
from protocols import Gossip, SmallWorld

def die(round, metrics):
    if round == 3:
        os.kill(os.getpid(), signal.SIGKILL)

launch(Population.of(OpinionAgent, 400, opinion=Uniform()), Gossip(SmallWorld(k=4), fanout=2), rounds=50,
       seed=4, log=sys.argv[1], runtime="local", hosts=2, stop="never", segments_uri=sys.argv[2], progress=die)
"""


def test_a_killed_drivers_rounds_come_from_the_store_when_the_next_writer_opens_the_log(
    tmp_path: Path, s3: S3
) -> None:
    """The driver dies before it can gather: the next process to open the log for writing finds
    the run crashed and first brings its whole rounds from the store, then counts them."""
    from orchestrator.log import LogWriter

    log = tmp_path / "killed.duckdb"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", STORE_KILLED, str(log), s3.uri("killed")],
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == -signal.SIGKILL
    assert any(k.endswith(".parquet") for k in s3.present("killed/"))  # written, not yet gathered
    LogWriter(log).close()  # marks the run crashed, gathering its rounds first
    con = duckdb.connect(str(log), read_only=True)
    status, rounds, messages = con.execute("SELECT status, rounds, messages FROM runs").fetchall()[0]
    per_round = con.execute("SELECT round, count(*) FROM messages GROUP BY round ORDER BY round").fetchall()
    con.close()
    assert status == "crashed" and rounds >= 3
    assert per_round == [(r, 800) for r in range(rounds)] and messages == 800 * rounds  # 400 agents, fanout 2
    assert [k for k in s3.present("killed/") if not k.endswith("/")] == []
