"""Plain-Python agents that draw random numbers: ctx.rng (a numpy Generator) vs ctx.uniform().

A voter model on the plain `act` path, 1,000 agents on a small world: each round
every agent adopts the opinion of one message it heard, picked at random. The
same model draws with `ctx.rng.integers` or with the counter-based
`ctx.integers`; messages per second over 30 rounds, in-process.

    python benchmarks/plain_draws.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_io import today, write

from agents import Agent, Context, Message, Population, Uniform
from orchestrator import launch
from protocols import Gossip, SmallWorld


class VoterRng(Agent):
    opinion: float = 0.0

    def act(self, inbox: list[Message], ctx: Context) -> Message:
        if inbox:
            self.opinion = float(inbox[int(ctx.rng.integers(len(inbox)))].value or 0.0)
        return Message(kind="opinion", value=self.opinion)


class VoterCounter(VoterRng):
    def act(self, inbox: list[Message], ctx: Context) -> Message:
        if inbox:
            self.opinion = float(inbox[ctx.integers(len(inbox))].value or 0.0)
        return Message(kind="opinion", value=self.opinion)


class NoDraw(VoterRng):
    def act(self, inbox: list[Message], ctx: Context) -> Message:
        if inbox:
            self.opinion = float(inbox[0].value or 0.0)
        return Message(kind="opinion", value=self.opinion)


def rate(cls: type[Agent]) -> dict[str, float]:
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        run = launch(
            Population.of(cls, 1000, opinion=Uniform()),
            Gossip(SmallWorld(k=6, p=0.3), fanout=2, mode="push-pull", tolerance=0.0),
            rounds=30,
            log=Path(tempfile.mkdtemp()) / "d.duckdb",
            runtime="local",
            state_every=0,
        )
        best = max(best, run.messages / (time.perf_counter() - t0))
    return {"messages_per_s": round(best)}


def main() -> None:
    rows = {
        name: rate(cls)
        for name, cls in (("no draw", NoDraw), ("ctx.rng", VoterRng), ("ctx.integers", VoterCounter))
    }
    stamp = today()
    print(
        write(
            "plain_draws",
            {"date": stamp, "rows": rows},
            f"plain voter model, 1,000 agents, 30 rounds, in-process ({stamp}, best of 3)",
            ["draws with", "messages/s"],
            [[k, v["messages_per_s"]] for k, v in rows.items()],
        )
    )


if __name__ == "__main__":
    main()
