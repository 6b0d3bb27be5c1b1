"""OpenTelemetry: one trace per run across the driver and the hosts, exported for real.

In-process with the SDK's in-memory exporter; on the session's two-node Ray cluster
to a real OTLP/HTTP receiver on 127.0.0.1; LLM calls as spans; files beside the
log from the CLI; and nothing of OpenTelemetry loaded when tracing is off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agents import OpinionAgent, Population, Uniform
from orchestrator import ConfigError, LLMConfig, launch, query
from orchestrator.llm.stub import StubServer
from protocols import Gossip
from protocols.gossip import LLMOpinionAgent
from tests.conftest import ROOT
from tests.orchestrator.helpers import moot_cli
from tests.orchestrator.otlp_receiver import OTLPReceiver


def opinion_run(log: Path, runtime: str, hosts: int, trace: object, rounds: int = 4) -> Any:
    return launch(
        Population.of(OpinionAgent, 1000, opinion=Uniform()),
        Gossip(fanout=2),
        rounds=rounds,
        seed=3,
        log=log,
        runtime=runtime,  # type: ignore[arg-type]
        hosts=hosts,
        trace=trace,  # type: ignore[arg-type]
        stop="never",
    )


def per_round(log: Path, run_id: str) -> dict[int, tuple[float, str | None, str | None]]:
    """{round: (messages, trace_id, span_id)} from the metrics table."""
    rows = query(
        log,
        f"SELECT round, max(value) FILTER (name = 'messages') AS m, any_value(trace_id) AS t, "
        f"any_value(span_id) AS s, count(DISTINCT trace_id) AS nt FROM metrics WHERE run_id = '{run_id}' "
        "GROUP BY round",
    ).to_pylist()
    assert all(r["nt"] in (0, 1) for r in rows)  # every row of a round carries the same ids
    return {r["round"]: (r["m"], r["t"], r["s"]) for r in rows}


def check_tree(spans: list[dict[str, Any]], log: Path, run_id: str, hosts: int, rounds: int) -> None:
    """The run's spans form one tree: run > setup, rounds > host steps, log writes; and the metrics
    table names each round's span. `spans`: dicts of name, trace, id, parent, attributes, resource."""
    assert len({s["trace"] for s in spans}) == 1
    names = Counter(s["name"] for s in spans)
    assert names == {
        "moot.run": 1,
        "moot.setup": 1,
        "moot.round": rounds,
        "moot.host.step": rounds * hosts,
        "moot.log.write": rounds,
    }
    (run,) = [s for s in spans if s["name"] == "moot.run"]
    assert not run["parent"] and run["attributes"]["moot.run_id"] == run_id
    rounds_by_id = {s["id"]: s for s in spans if s["name"] == "moot.round"}
    assert all(s["parent"] == run["id"] for s in rounds_by_id.values())
    logged = per_round(log, run_id)
    for span_id, rs in rounds_by_id.items():
        r = rs["attributes"]["moot.round"]
        messages, trace_id, metric_span = logged[r]
        assert (trace_id, metric_span) == (run["trace"], span_id)  # SQL joins a round to its span
        assert rs["attributes"]["moot.messages"] == messages
        steps = [s for s in spans if s["name"] == "moot.host.step" and s["parent"] == span_id]
        assert sorted(s["attributes"]["moot.host"] for s in steps) == list(range(hosts))
        assert all(s["attributes"]["moot.round"] == r for s in steps)
        assert sum(s["attributes"]["moot.messages"] for s in steps) == messages
        assert sum(s["attributes"]["moot.agents"] for s in steps) == 1000
    writes = [s for s in spans if s["name"] == "moot.log.write"]
    assert {s["parent"] for s in writes} == set(rounds_by_id)


def sdk_spans(exporter: InMemorySpanExporter) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "trace": f"{s.context.trace_id:032x}",
            "id": f"{s.context.span_id:016x}",
            "parent": f"{s.parent.span_id:016x}" if s.parent else "",
            "attributes": dict(s.attributes),
            "resource": dict(s.resource.attributes),
        }
        for s in exporter.get_finished_spans()
    ]


def test_in_process_a_run_is_one_trace_of_rounds_host_steps_and_log_writes(log_path: Path) -> None:
    exporter = InMemorySpanExporter()
    run = opinion_run(log_path, "local", 3, exporter)
    spans = sdk_spans(exporter)
    check_tree(spans, log_path, run.run_id, hosts=3, rounds=4)
    # In-process hosts still make their own spans, under their own resource.
    steps = [s for s in spans if s["name"] == "moot.host.step"]
    assert {s["resource"]["moot.process"] for s in steps} == {"host"}
    assert {s["resource"]["moot.host"] for s in steps} == {0, 1, 2}


@pytest.mark.ray
def test_on_two_ray_nodes_one_trace_reaches_a_real_otlp_receiver_from_driver_and_both_hosts(
    ray_cluster: Any, log_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        run = opinion_run(log_path, "ray", 2, "otlp", rounds=3)
    assert receiver.content_types == {"application/x-protobuf"}
    spans = [
        {
            "name": s.name,
            "trace": s.trace_id,
            "id": s.span_id,
            "parent": s.parent_id,
            "attributes": s.attributes,
            "resource": s.resource,
        }
        for s in receiver.spans
    ]
    check_tree(spans, log_path, run.run_id, hosts=2, rounds=3)
    pids = {
        (s["resource"]["moot.process"], s["resource"].get("moot.host")): s["resource"]["process.pid"]
        for s in spans
    }
    assert pids[("driver", None)] == os.getpid()
    host_pids = {pids[("host", 0)], pids[("host", 1)]}
    assert len(host_pids) == 2 and os.getpid() not in host_pids  # three processes, one trace
    assert len(set(run.nodes)) == 2  # and the hosts were on both nodes
    assert {"moot.messages", "moot.round.duration", "moot.messages_per_second"} <= receiver.metric_names


def test_llm_calls_are_spans_under_their_host_step_timed_as_they_ran(
    log_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOOT_TEST_KEY", "sk-local")
    exporter = InMemorySpanExporter()
    with StubServer(latency=0.05) as stub:
        run = launch(
            Population.of(LLMOpinionAgent, 40, opinion=Uniform()),
            Gossip(fanout=1),
            rounds=2,
            seed=5,
            log=log_path,
            runtime="local",
            llm=LLMConfig(
                model="openai/stub", api_base=stub.url, api_key_env="MOOT_TEST_KEY", max_in_flight=8, cache=""
            ),
            trace=exporter,
        )
    spans = exporter.get_finished_spans()
    calls = [s for s in spans if s.name == "moot.llm.call"]
    steps = {s.context.span_id: s for s in spans if s.name == "moot.host.step"}
    (logged,) = query(
        log_path,
        f"SELECT count(*) AS n, sum(prompt_tokens) AS p, sum(completion_tokens) AS c FROM llm_calls WHERE run_id = '{run.run_id}'",
    ).to_pylist()
    assert len(calls) == logged["n"] == 80
    assert sum(s.attributes["gen_ai.usage.input_tokens"] for s in calls) == logged["p"]
    assert sum(s.attributes["gen_ai.usage.output_tokens"] for s in calls) == logged["c"]
    for call in calls:
        step = steps[call.parent.span_id]
        assert step.attributes["moot.round"] == call.attributes["moot.round"]
        assert step.start_time <= call.start_time <= call.end_time <= step.end_time
        assert call.end_time - call.start_time >= 0.05e9  # the stub's latency
    # The in-flight bound shows in the spans: at most 8 overlap, and more than one did.
    edges = sorted([(c.start_time, 1) for c in calls] + [(c.end_time, -1) for c in calls])
    level = peak = 0
    for _, d in edges:
        level += d
        peak = max(peak, level)
    assert 1 < peak <= 8


def test_the_cli_writes_jsonl_beside_the_log_and_the_metrics_rows_carry_the_trace(tmp_path: Path) -> None:
    log = tmp_path / "cli.duckdb"
    moot_cli(
        "run",
        "--local",
        "--agents",
        "500",
        "--rounds",
        "3",
        "--stop",
        "never",
        "--log",
        str(log),
        "--trace",
        "jsonl",
    )
    lines = [json.loads(x) for x in (tmp_path / "cli.duckdb.traces.jsonl").read_text().splitlines()]
    rounds = {x["attributes"]["moot.round"]: x["context"] for x in lines if x["name"] == "moot.round"}
    assert sorted(rounds) == [0, 1, 2]
    logged = query(log, "SELECT DISTINCT round, trace_id, span_id FROM metrics ORDER BY round").to_pylist()
    assert [(r["trace_id"], r["span_id"]) for r in logged] == [
        (rounds[r]["trace_id"], rounds[r]["span_id"])
        for r in range(3)  # the same text: no 0x
    ]
    assert all(len(x["context"]["trace_id"]) == 32 for x in lines)
    metric_lines = (tmp_path / "cli.duckdb.metrics.jsonl").read_text()
    assert '"moot.round.duration"' in metric_lines


def test_untraced_runs_load_nothing_of_opentelemetry_and_log_null_ids(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from agents import OpinionAgent, Population, Uniform\n"
        "from orchestrator import launch\n"
        "from protocols import Gossip\n"
        f"run = launch(Population.of(OpinionAgent, 300, opinion=Uniform()), Gossip(fanout=2), rounds=2, log={str(tmp_path / 'u.duckdb')!r}, runtime='local')\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))\n"
        "print(run.sql('SELECT count(*) FILTER (trace_id IS NOT NULL OR span_id IS NOT NULL) AS traced, count(*) AS n FROM metrics').to_pylist())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOOT_TRACE", "OTEL_"))}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    modules, counts = out.stdout.strip().splitlines()
    assert modules == "[]"
    assert counts == "[{'traced': 0, 'n': 16}]"  # 2 rounds x 8 metrics, none with ids


@pytest.mark.parametrize(
    ("env", "trace", "message"),
    [
        (
            {},
            "zipkin",
            "Unknown trace exporter 'zipkin' (from trace); use one of none, console, otlp, jsonl: e.g. --trace otlp with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318.",
        ),
        (
            {"MOOT_TRACE": "jaeger"},
            None,
            "Unknown trace exporter 'jaeger' (from MOOT_TRACE); use one of none, console, otlp, jsonl: e.g. --trace otlp with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318.",
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL='grpc': moot exports OTLP over http/protobuf (port 4318 of a collector); set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf.",
        ),
    ],
)
def test_a_wrong_exporter_is_refused_before_anything_runs(
    env: dict[str, str], trace: str | None, message: str, log_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as err:
        opinion_run(log_path, "local", 1, trace)
    assert str(err.value) == message
    assert not log_path.exists()  # refused before the log was opened
