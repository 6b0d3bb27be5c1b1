"""A small study for the sweep tests: push gossip whose fanout comes from the sweep; with
``crash_round`` set, the run fails in that round (an agent raises); with ``wait`` set, round 0
waits until the file named by $MOOT_TEST_GO exists."""

import os
import time
from pathlib import Path

from agents import OpinionAgent, Population, Uniform
from orchestrator import launch, params
from protocols import Gossip

p = params()
crash_round = int(p.get("crash_round", -1))


def crash(round: int, metrics: dict[str, float]) -> None:
    if round == 0 and p.get("wait"):
        deadline = time.monotonic() + 120
        while not Path(os.environ["MOOT_TEST_GO"]).exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the test never said go")
            time.sleep(0.05)
    if round == crash_round:
        raise RuntimeError(f"this point fails in round {round}, as the test asked")


launch(
    Population.of(OpinionAgent, 400, opinion=Uniform()),
    Gossip(fanout=int(p.get("fanout", 1)), mode="push"),
    rounds=6,
    stop="never",
    log="ignored-the-sweep-sets-it.duckdb",
    progress=crash,
)
