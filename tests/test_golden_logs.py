"""The logs of four fixed studies, hashed: a refactoring of the run loop, the hosts or the log must
leave every row as it was (the hashes below were recorded before the architecture work of
issue 17). In-process here; on 3 Ray hosts in the `ray` test, which must give the same hashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from agents import OpinionAgent, Population, Uniform
from orchestrator import launch
from protocols import Gossip, SmallWorld
from protocols.debate import Debate
from protocols.social_feed import RuleUser, SocialFeed
from protocols.swarm_grid import SwarmGrid

_HASHES = {
    "messages": "SELECT count(*), md5(string_agg(concat_ws(',', round, sender, seq, receiver, kind, value, "
    "text, payload), ';' ORDER BY round, sender, seq, receiver)) FROM messages",
    "states": "SELECT count(*), md5(string_agg(concat_ws(',', round, agent, field, value, text), ';' "
    "ORDER BY round, agent, field)) FROM states",
    "metrics": "SELECT count(*), md5(string_agg(concat_ws(',', round, name, value), ';' ORDER BY round, name)) "
    "FROM metrics WHERE name <> 'seconds'",
}


def _study(name: str) -> tuple[Population, Any, int]:
    if name == "gossip":
        return (
            Population.of(OpinionAgent, 500, opinion=Uniform()),
            Gossip(SmallWorld(k=4, p=0.2), fanout=2),
            6,
        )
    if name == "debate":
        proto = Debate(n_questions=5, strategies=["010"], mixes="machinesom")
        return proto.default_population(3 * 40), proto, 4
    if name == "swarm":
        proto = SwarmGrid("foraging")
        return proto.default_population(12), proto, 8
    proto = SocialFeed(posts=20, activation=0.3, graph="barabasi_albert")
    return Population.of(RuleUser, 300), proto, 5


def log_hashes(log: Path, name: str, **kw: Any) -> dict[str, tuple[int, str]]:
    pop, proto, rounds = _study(name)
    launch(pop, proto, rounds=rounds, seed=11, log=log, stop="never", state_every=2, **kw)
    con = duckdb.connect(str(log), read_only=True)
    try:
        return {table: tuple(con.execute(sql).fetchall()[0]) for table, sql in _HASHES.items()}  # type: ignore[misc]
    finally:
        con.close()


RECORDED: dict[str, dict[str, tuple[int, str]]] = {
    "gossip": {
        "messages": (6000, "b95b2e69106e1c6be3c931b1213c4bc9"),
        "states": (4000, "ed8ad48428d0bae43871d82e053a975b"),
        "metrics": (42, "3f6dfa1cfc37060507db25f4ded67833"),
    },
    "debate": {
        "messages": (480, "257c5ea9fc4011a98676d9c73429c238"),
        "states": (1080, "910a8195155ef5b0142bee806bf5003b"),
        "metrics": (35, "9a3b679e25e3483de97504dcec691ccb"),
    },
    "swarm": {
        "messages": (137, "e967714f9fc1bf2d140294fe50814c9f"),
        "states": (360, "e12d34244d53451bc4b1629517e43636"),
        "metrics": (132, "9e69c20dcb62b65370887a8b09c92fae"),
    },
    "feed": {
        "messages": (849, "74a6acffe44609dcb8576efcd872915e"),
        "states": (9600, "725ad6734aeec20adc7a8583bef985bb"),
        "metrics": (105, "b3d8cd17a638aad8bfe22d9838677439"),
    },
}


@pytest.mark.parametrize("name", ["gossip", "debate", "swarm", "feed"])
def test_a_fixed_study_logs_exactly_what_it_logged_before(tmp_path: Path, name: str) -> None:
    assert log_hashes(tmp_path / "g.duckdb", name, runtime="local") == RECORDED[name]


@pytest.mark.ray
@pytest.mark.parametrize("name", ["gossip", "debate", "swarm", "feed"])
def test_the_same_on_three_ray_hosts(ray_cluster: object, tmp_path: Path, name: str) -> None:
    assert log_hashes(tmp_path / "g.duckdb", name, runtime="ray", hosts=3) == RECORDED[name]
