"""LLM agents against a local OpenAI-compatible stub with a fixed 200 ms latency.

1. 1,000 LLM agents (gossip, `LLMOpinionAgent`), 3 rounds, 100 calls in flight,
   in-process: seconds per round against the ideal 1,000 / 100 x 0.2 s = 2 s.
2. CPU per call: the driver process's CPU time per call for (1), and for the same
   number of bare `litellm.acompletion` calls with the same prompt and bound;
   moot's own share (rendering, gateway, admission, validation, accounting, the
   log) is the difference.
3. 10,000 LLM agents on 2 Ray hosts, 1,000 in flight: seconds per round, calls per second.

The stub runs in its own process (`python -m orchestrator.llm.stub`); on this
2-core machine it competes with moot for the same cores.

    python benchmarks/llm_concurrency.py
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_io import PeakRss, today, write

MODEL = "hosted_vllm/stub"  # litellm's own httpx path, as for a vLLM server
LATENCY = 0.2
PRICES = {MODEL: (1e-7, 2e-7)}  # priced, as real models are: litellm's cost lookup for an unpriced
# model costs it ~5 ms of CPU per call (its capability-generalisation search)


def start_stub() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.llm.stub", "--latency", str(LATENCY)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def population(n: int):  # type: ignore[no-untyped-def]
    from agents import Population, Uniform
    from protocols.gossip import LLMOpinionAgent

    return Population.of(LLMOpinionAgent, n, opinion=Uniform(0.0, 1.0))


def moot_run(url: str, n: int, rounds: int, in_flight: int, runtime: str, hosts: int) -> dict[str, object]:
    from orchestrator import LLMConfig, launch, query
    from protocols import Gossip

    log = Path(tempfile.mkdtemp()) / "llm.duckdb"
    cpu0 = time.process_time()
    with PeakRss() as peak:
        run = launch(
            population(n),
            Gossip(fanout=2),
            rounds=rounds,
            seed=1,
            log=log,
            runtime=runtime,
            hosts=hosts,
            stop=lambda r, m: False,
            llm=LLMConfig(
                model=MODEL, api_base=url, max_in_flight=in_flight, cache="", timeout=120, prices=PRICES
            ),
        )
    cpu = time.process_time() - cpu0
    per_round = [
        r["value"]
        for r in query(
            log,
            f"SELECT value FROM metrics WHERE run_id = '{run.run_id}' AND name = 'seconds' ORDER BY round",
        ).to_pylist()
    ]
    calls = query(log, "SELECT count(*) AS n, count(error_type) AS e FROM llm_calls").to_pylist()[0]
    return {
        "agents": n,
        "rounds": rounds,
        "in_flight": in_flight,
        "hosts": run.hosts,
        "runtime": runtime,
        "round_seconds": [round(s, 3) for s in per_round],
        "calls": calls["n"],
        "errors": calls["e"],
        "driver_cpu_ms_per_call": round(cpu / calls["n"] * 1000, 2),
        "setup_seconds": round(run.setup_seconds, 2),
        "peak_rss_gb": peak.gb,
    }


def bare_litellm(url: str, n: int, in_flight: int) -> dict[str, object]:
    """The same calls, straight through litellm (no moot): its own CPU per call."""
    from agents.context import Context
    from orchestrator.llm.gateway import _import_litellm
    from protocols.gossip import LLMOpinionAgent, OpinionReply

    litellm = _import_litellm({})
    ((p, c),) = PRICES.values()
    litellm.register_model(
        {
            MODEL: {
                "input_cost_per_token": p,
                "output_cost_per_token": c,
                "litellm_provider": "hosted_vllm",
                "mode": "chat",
            }
        }
    )
    agent = LLMOpinionAgent(id=1, opinion=0.4)
    msgs = agent.render([], Context(1, 1, 0, instructions="Decide.", replies=(OpinionReply,)), OpinionReply)
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "OpinionReply", "schema": OpinionReply.model_json_schema()},
    }

    async def main() -> None:
        gate = asyncio.Semaphore(in_flight)

        async def one(i: int) -> None:
            async with gate:
                await litellm.acompletion(
                    model=MODEL,
                    api_base=url,
                    messages=msgs,
                    temperature=0.7,
                    max_tokens=300,
                    seed=i,
                    response_format=fmt,
                    timeout=120,
                    num_retries=0,
                    max_retries=0,
                )

        await asyncio.gather(*(one(i) for i in range(n)))

    asyncio.run(main())  # warm
    cpu0, t0 = time.process_time(), time.perf_counter()
    asyncio.run(main())
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    return {
        "calls": n,
        "in_flight": in_flight,
        "seconds": round(wall, 2),
        "cpu_ms_per_call": round(cpu / n * 1000, 2),
    }


def child(which: str, url: str) -> None:
    os.environ.setdefault("OPENAI_API_KEY", "sk-local")
    if which == "moot_1k":
        out = moot_run(url, 1000, 3, 100, "local", 1)
    elif which == "bare_1k":
        out = bare_litellm(url, 1000, 100)
    else:
        out = moot_run(url, 10_000, 2, 1000, "ray", 2)
    print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    stub, url = start_stub()
    results: dict[str, dict[str, object]] = {}
    try:
        for which in ("moot_1k", "bare_1k", "moot_10k_ray"):
            out = subprocess.run(
                [sys.executable, __file__, which, url],
                capture_output=True,
                text=True,
                timeout=3600,
                check=True,
            )
            line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
            results[which] = json.loads(line[len("RESULT ") :])
            print(which, results[which], flush=True)
    finally:
        stub.terminate()
    m, b, big = results["moot_1k"], results["bare_1k"], results["moot_10k_ray"]
    ideal = 1000 / 100 * LATENCY
    overhead = round(float(m["driver_cpu_ms_per_call"]) - float(b["cpu_ms_per_call"]), 2)  # type: ignore[arg-type]
    data = {
        "date": today(),
        "machine": f"{os.cpu_count()} cores",
        "model": MODEL,
        "stub_latency_s": LATENCY,
        "ideal_round_seconds_1k": ideal,
        "moot_1k": m,
        "bare_litellm_1k": b,
        "moot_cpu_ms_per_call": overhead,
        "moot_10k_ray": big,
    }
    rounds_big = [float(s) for s in big["round_seconds"]]  # type: ignore[union-attr]
    rows: list[list[object]] = [
        [
            "1,000 agents, 100 in flight, in-process: seconds per round (ideal 2.0)",
            ", ".join(f"{s:.2f}" for s in m["round_seconds"]),
        ],  # type: ignore[union-attr]
        ["  CPU per call, whole driver (moot + litellm), ms", m["driver_cpu_ms_per_call"]],
        ["  CPU per call, bare litellm.acompletion, same calls, ms", b["cpu_ms_per_call"]],
        ["  CPU per call, moot's own share (difference), ms", overhead],
        [
            "10,000 agents, 1,000 in flight, 2 Ray hosts: seconds per round",
            ", ".join(f"{s:.1f}" for s in rounds_big),
        ],
        ["  calls per second", round(10_000 / (sum(rounds_big) / len(rounds_big)))],
        ["  peak memory, GB (driver + Ray)", big["peak_rss_gb"]],
    ]
    print(
        write(
            "llm_concurrency",
            data,
            f"LLM agents against a 200 ms stub ({today()}, {os.cpu_count()} cores)",
            ["measure", "value"],
            rows,
        )
    )


if __name__ == "__main__":
    if len(sys.argv) == 3:
        child(sys.argv[1], sys.argv[2])
    else:
        main()
