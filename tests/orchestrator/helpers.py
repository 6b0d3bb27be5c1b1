"""Agents and helpers shared by the orchestrator tests (importable by Ray workers)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from agents import Agent, Context, Message, OpinionAgent


class PlainOpinion(OpinionAgent):
    """OpinionAgent forced onto the plain-Python path."""

    vectorised: ClassVar[bool | None] = False


class Rude(Agent):
    """Returns a string instead of a message from `bad_round` on."""

    bad_round: int = 2

    def act(self, inbox: list[Message], ctx: Context) -> object:
        if ctx.round >= self.bad_round:
            return "hello"
        return Message(kind="post", text=f"round {ctx.round}")


class Lost(Agent):
    """Writes to an agent that does not exist."""

    def act(self, inbox: list[Message], ctx: Context) -> Message:
        return Message(kind="argument", text="anyone?", receiver=10_000)


PEAK = {"now": 0, "max": 0}


class Slow(Agent):
    """An async agent that waits, as an LLM agent would."""

    def act(self, inbox: list[Message], ctx: Context):  # type: ignore[no-untyped-def]
        async def go() -> Message:
            PEAK["now"] += 1
            PEAK["max"] = max(PEAK["max"], PEAK["now"])
            await asyncio.sleep(0.01)
            PEAK["now"] -= 1
            return Message(kind="signal", value=float(ctx.agent_id), payload={"heard": len(inbox)})

        return go()


PLACES: dict[str, dict[str, Any]] = {
    "local": {"runtime": "local"},
    "ray1": {"runtime": "ray", "hosts": 1},
    "ray3": {"runtime": "ray", "hosts": 3},
}
"""Where a determinism test runs the same study: in-process, and on 1 and 3 Ray hosts."""


def messages_hash(path: Path, run_id: str) -> tuple[int, str]:
    """(rows, md5) of a run's messages, sorted by (round, sender, seq, receiver)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(
            """SELECT count(*), md5(string_agg(concat_ws(',', round, sender, seq, receiver, kind,
                   value, text, payload, vector), ';' ORDER BY round, sender, seq, receiver))
               FROM messages WHERE run_id = ?""",
            [run_id],
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0]), str(row[1])


class Boom(Agent):
    """Raises in round 1."""

    def act(self, inbox: list[Message], ctx: Context) -> Message:
        if ctx.round == 1 and self.id == 5:
            raise ValueError("no opinion today")
        return Message(kind="opinion", value=1.0)


class Crash(Agent):
    """Kills its own process in round 2 (a host lost mid-run). Only for Ray hosts."""

    def act(self, inbox: list[Message], ctx: Context) -> Message:
        if ctx.round == 2 and self.id == 0:
            import os

            os._exit(1)
        return Message(kind="opinion", value=0.0)


class BoundedConfidence(Agent):
    """Hegselmann-Krause: move to the mean of the opinions heard within epsilon (and one's own)."""

    opinion: float = 0.0
    epsilon: float = 0.2

    @classmethod
    def act_batch(cls, state, inbox, ctx):  # type: ignore[no-untyped-def]
        import numpy as np

        from agents import MessageBatch

        op, eps = state["opinion"], state["epsilon"]
        near = np.abs(inbox.batch.value - op[inbox.local]) <= eps[inbox.local]
        total = np.bincount(inbox.local, weights=np.where(near, inbox.batch.value, 0.0), minlength=inbox.n)
        count = np.bincount(inbox.local, weights=near.astype(float), minlength=inbox.n)
        state["opinion"] = (total + op) / (count + 1.0)
        return MessageBatch.broadcast(ctx.ids, "opinion", state["opinion"])


class ChattyForager(Agent):
    """A forager that tells the agents in view where it saw food (exercises world delivery)."""

    heard: int = 0

    def act(self, inbox, ctx):  # type: ignore[no-untyped-def]
        from protocols.swarm_grid import SwarmMove

        self.heard += len(inbox)
        view = ctx.observation
        seen = any("F" in row for row in view.cells)
        action = ("UP", "DOWN", "LEFT", "RIGHT", "STAY")[ctx.integers(5)]
        return SwarmMove(action=action, message=f"food near {view.row},{view.col}" if seen else None)


def moot_cli(*args: str) -> Any:
    """`moot ARGS` through the CLI in this process (typer's runner); fails the test unless it succeeds."""
    from typer.testing import CliRunner

    from orchestrator.cli import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


class Fragile(OpinionAgent):
    """An OpinionAgent whose host process dies in round `die_round`, the first `times` times the
    host holding agent 0 gets there (one host, so that a restart never races another host's
    death): each death leaves a file ``<marker>.<k>`` behind."""

    marker: str = ""
    die_round: int = 5
    times: int = 1
    unlogged: ClassVar[tuple[str, ...]] = ("marker",)

    @classmethod
    def act_batch(cls, state: Any, inbox: Any, ctx: Any) -> Any:
        import os

        if ctx.round == int(state["die_round"][0]) and state["marker"][0] and ctx.ids[0] == 0:
            for k in range(int(state["times"][0])):
                try:
                    Path(f"{state['marker'][0]}.{k}").touch(exist_ok=False)
                except FileExistsError:
                    continue
                os._exit(1)  # the host's process dies, mid-round
        return super().act_batch(state, inbox, ctx)


def llm_gossip(log: Path, agents: int = 20, rounds: int = 3, **options: Any) -> Any:
    """A small run of LLM agents gossiping, in-process, on the offline stand-in."""
    from agents import Population, Uniform
    from orchestrator import launch
    from protocols.gossip import Gossip, LLMOpinionAgent

    pop = Population.of(LLMOpinionAgent, agents, opinion=Uniform())
    return launch(pop, Gossip(fanout=2), rounds=rounds, log=log, runtime="local", **options)
