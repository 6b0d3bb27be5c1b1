"""Interviews: ask a run's LLM agents a question, each as it was after a round.

Each agent is rebuilt from the checkpoint after that round (persona, state, memory), asked
through the run's own LLM set-up (rate limits, response cache, budget; the offline stand-in
unless the run used a real model), and its answer goes to the ``interviews`` table. The run
itself is not touched: no row of it changes, and no host starts.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import orchestrator.checkpoint as checkpoint
from agents.llm import LLMAgent
from orchestrator.coordinator import RunPlan
from orchestrator.errors import ConfigError
from orchestrator.llm import LLMConfig, LLMService, LocalService
from orchestrator.llm.config import forwarded_env
from orchestrator.llm.gateway import Gateway, LLMSetup
from orchestrator.log import LogWriter, check_log_path
from orchestrator.message_log import const_column

__all__ = ["interview", "parse_agents"]


def parse_agents(text: str) -> list[int]:
    """Agent ids from ``0..99``, ``3,5,8`` or a mix (``0..4,10``)."""
    out: list[int] = []
    for part in str(text).split(","):
        lo, dots, hi = part.strip().partition("..")
        try:
            out.extend(range(int(lo), int(hi) + 1) if dots else [int(lo)])
        except ValueError:
            raise ConfigError(f"--agents {text!r}: give ids as 0..99, 3,5,8 or a mix.") from None
    return out


def _agents_at(folder: Path, round: int, bounds: Any, ids: list[int]) -> list[LLMAgent]:
    """The agents `ids` as the checkpoint after `round` holds them (each host's file read once)."""
    hosts = np.searchsorted(bounds, ids, side="right") - 1
    found: dict[int, LLMAgent] = {}
    for h in sorted(set(hosts.tolist())):
        state = checkpoint.read_host(folder, round, h)
        for block in state.blocks:
            wanted = [i for i in ids if block.ids[0] <= i <= block.ids[-1]]
            if not wanted:
                continue
            if block.agents is None or not issubclass(block.cls, LLMAgent):
                raise ConfigError(
                    f"Agent {wanted[0]} is a {block.cls.__name__}, a rule-based agent: there is nobody to "
                    "ask. Its state is in the states table; interview LLM agents only."
                )
            for i in wanted:
                agent = block.agents[i - int(block.ids[0])]
                assert isinstance(agent, LLMAgent)
                found[i] = agent
    return [found[i] for i in ids]


async def _ask(gateway: Gateway, agents: list[LLMAgent], question: str, round: int) -> list[Any]:
    try:
        return list(
            await asyncio.gather(
                *(
                    gateway.complete(
                        agent=a.id,
                        round=round,
                        messages=a.interview(question, round),
                        model=a.model,
                        temperature=a.temperature,
                        max_tokens=a.max_tokens,
                    )
                    for a in agents
                )
            )
        )
    finally:
        await gateway.flush()


def interview(
    log: str | os.PathLike[str],
    run_id: str,
    agents: Sequence[int],
    at: int,
    question: str,
    *,
    llm: LLMConfig | None = None,
) -> pa.Table:
    """Ask LLM agents `agents` of run `run_id` the `question`, each as it was after round `at`.

    Needs a checkpoint after round `at` (runs with LLM agents write one every round by
    default). The answers are returned and added to the log's ``interviews`` table.

    Args:
        llm: Settings for these calls (default: the run's own: its model, endpoint, limits,
            budget and response cache; an interview asked again is answered from the cache).

    Example:
        >>> orchestrator.interview("run.duckdb", "abc", range(50), at=3, question="Why?")
    """
    path = check_log_path(log)
    folder = checkpoint.checkpoint_dir(path, run_id)
    plan: RunPlan = checkpoint.load_plan(folder, run_id)
    if plan.llm is None:
        classes = ", ".join(c.__name__ for c in plan.population.classes)
        raise ConfigError(
            f"Run {run_id!r} has no LLM agents ({classes}): there is nobody to ask. Its agents' state "
            "is in the states table."
        )
    saved = checkpoint.rounds_saved(folder)
    if at not in saved:
        raise ConfigError(
            f"Run {run_id!r} has no checkpoint after round {at}; it has: "
            f"{', '.join(map(str, saved)) or 'none'}. Interview at one of those, or run with "
            "--checkpoint-every 1."
        )
    ids = sorted(set(int(i) for i in agents))
    n = len(plan.population)
    if not ids or ids[0] < 0 or ids[-1] >= n:
        raise ConfigError(f"--agents must name agents 0..{n - 1} of run {run_id!r}, got {list(agents)[:5]}.")
    if not question.strip():
        raise ConfigError("The question is empty; ask something, e.g. 'Why did you change your mind?'.")
    bounds = checkpoint.load_driver(folder, at).bounds
    rebuilt = _agents_at(folder, at, bounds, ids)
    config = llm or plan.llm
    service = LLMService(
        rpm=config.rpm, tpm=config.tpm, window=config.window, budget=config.budget, cache=plan.llm_cache
    )
    extra = (config.api_key_env,) if config.api_key_env else ()
    gateway = Gateway(LLMSetup(config, LocalService(service).link, forwarded_env(extra)), 0, 1, plan.seed)
    try:
        done = asyncio.run(_ask(gateway, rebuilt, question, at))
    finally:
        service.close()
    k = len(ids)
    table = pa.table(
        {
            "run_id": const_column(run_id, k),
            "round": pa.array([at] * k, pa.int32()),
            "agent": pa.array(ids, pa.int64()),
            "question": pa.array([question] * k, pa.string()),
            "answer": pa.array([d.text if d.ok else None for d in done], pa.string()),
            "model": pa.array([d.model for d in done], pa.string()),
            "cached": pa.array([bool(d.cached) for d in done], pa.bool_()),
            "error": pa.array([None if d.ok else d.error for d in done], pa.string()),
            "asked_at": pa.array([datetime.now(timezone.utc)] * k, pa.timestamp("us", tz="UTC")),
        }
    )
    writer = LogWriter(path)
    try:
        writer.append("interviews", table)
    finally:
        writer.close()
    return table
