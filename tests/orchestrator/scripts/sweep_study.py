"""A small study for the sweep tests: push gossip whose fanout comes from the sweep."""

from agents import OpinionAgent, Population, Uniform
from orchestrator import launch, params
from protocols import Gossip

p = params()
launch(
    Population.of(OpinionAgent, 400, opinion=Uniform()),
    Gossip(fanout=int(p.get("fanout", 1)), mode="push"),
    rounds=6,
    stop="never",
    log="ignored-the-sweep-sets-it.duckdb",
)
