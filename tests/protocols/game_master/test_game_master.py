"""The game master: rule scenes' payoffs against the rules applied by hand to the logged actions,
the two engines against each other, what players may observe, memory, the same log whatever the
hosts, bad scenarios, the command line."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import pytest

from orchestrator import ConfigError, launch, query
from protocols.game_master import GameMaster, LLMPlayer
from protocols.game_master.scenario import load_scenario
from tests.orchestrator.helpers import PLACES, messages_hash, moot_cli


def _play(tmp_path: Path, name: str, proto: GameMaster, **kw: object) -> tuple[Path, str]:
    log = tmp_path / f"{name}.duckdb"
    kw.setdefault("runtime", "local")
    run = launch(
        proto.default_population(proto.agents),
        proto,
        rounds=proto.rounds_needed,
        seed=0,
        log=log,
        state_every=1,
        **kw,
    )
    assert run.stop_reason == "open.max <= 0"  # every scene played out
    return log, run.run_id


def _messages(log: Path, run_id: str, kind: str) -> list[dict]:
    return query(
        log,
        f"SELECT round, sender, receiver, text, payload FROM messages WHERE kind = '{kind}' "
        "ORDER BY round, sender, seq",
        run_id=run_id,
    ).to_pylist()


@pytest.mark.parametrize("engine", ["simultaneous", "sequential"])
def test_public_goods_payoffs_are_the_rules_applied_by_hand_to_the_logged_actions(
    tmp_path: Path, engine: str
) -> None:
    proto = GameMaster("public_goods", scenes=5, engine=engine)
    spec = proto.spec
    log, run_id = _play(tmp_path, engine, proto)
    size = proto.size
    made: dict[tuple[int, int], dict[int, float]] = defaultdict(dict)  # (scene, step) -> position -> amount
    count: dict[int, int] = defaultdict(int)
    for m in _messages(log, run_id, "propose"):
        scene, position = divmod(m["sender"], size)
        made[(scene, count[m["sender"]])][position] = json.loads(m["payload"])["amount"]
        count[m["sender"]] += 1
    assert len(made) == 5 * spec.steps and all(len(v) == spec.players for v in made.values())
    paid = {}
    for m in _messages(log, run_id, "observe"):
        body = json.loads(m["payload"])
        if "payoff" in body:
            paid[(m["receiver"], body["step"])] = body["payoff"]
    for (scene, step), given in made.items():
        pot = sum(given.values())
        for position, c in given.items():  # the rule, by hand: keep the rest, share the multiplied pot
            expected = spec.endowment - c + spec.multiplier * pot / spec.players
            assert paid[(scene * size + position, step)] == pytest.approx(expected, abs=1e-12)
    totals = query(
        log,
        "SELECT agent, value FROM states WHERE field = 'payoff' AND round = (SELECT max(round) FROM states)",
        run_id=run_id,
    ).to_pylist()
    for row in totals:
        if row["agent"] % size:
            assert row["value"] == pytest.approx(sum(p for (a, _), p in paid.items() if a == row["agent"]))


def test_the_engines_differ_exactly_where_order_matters(tmp_path: Path) -> None:
    units = {}
    for engine in ("simultaneous", "sequential"):
        proto = GameMaster("market", scenes=60, engine=engine, seed=4)
        log, run_id = _play(tmp_path, engine, proto)
        got = {}
        for m in _messages(log, run_id, "observe"):
            body = json.loads(m["payload"])
            if "units" in body:
                got[m["receiver"]] = (body["asked"], body["units"])
        units[engine] = got
    spec, size = load_scenario("market"), 5
    shortages = 0
    for scene in range(60):
        players = range(scene * size + 1, scene * size + size)
        asked = [units["simultaneous"][p][0] for p in players]
        assert asked == [units["sequential"][p][0] for p in players]  # the same demands
        together = [units["simultaneous"][p][1] for p in players]
        in_turn = [units["sequential"][p][1] for p in players]
        if sum(asked) <= spec.stock:
            assert together == in_turn == asked  # enough for all: order does not matter
        else:
            shortages += 1
            total = sum(asked)
            assert together == [math.floor(q * spec.stock / total) for q in asked]  # pro rata, rounded down
            left, first_come = spec.stock, []
            for q in asked:
                first_come.append(min(q, left))
                left -= first_come[-1]
            assert in_turn == first_come and together != in_turn
    assert 0 < shortages < 60  # both cases are exercised


def test_players_observe_their_own_scene_and_never_anothers_secret(tmp_path: Path) -> None:
    proto = GameMaster("village_council", scenes=4)
    assert (proto.gm, proto.players) == ("llm", "llm")
    log, run_id = _play(tmp_path, "village", proto)
    secrets = proto.spec.private
    size = proto.size
    seen = _messages(log, run_id, "observe")
    assert len(seen) == 4 * 5 * (1 + proto.spec.steps)
    for m in seen:
        scene, position = divmod(m["receiver"], size)
        assert m["sender"] == scene * size  # from its own scene's game master
        others = [f"Scene {s}:" for s in range(4) if s != scene]
        assert not any(tag in m["text"] for tag in others)
        for who, secret in secrets.items():
            if int(who) != position:
                assert secret not in m["text"], (m["receiver"], who)
    # The players did say their secrets (the stand-in repeats its own), and the GM heard them:
    # what it withheld is in its own state, not in anyone's observation.
    states = (
        query(
            log,
            "SELECT text FROM states WHERE field = 'state' AND round = (SELECT max(round) FROM states)",
            run_id=run_id,
        )
        .column("text")
        .to_pylist()
    )
    assert all(any(secret in s for secret in secrets.values()) for s in states)
    assert any("[withheld]" in m["text"] for m in seen)
    calls = query(log, "SELECT count(*) AS n, count(error) AS e FROM llm_calls", run_id=run_id).to_pylist()[0]
    assert calls == {"n": 4 * proto.spec.steps * (5 + 1), "e": 0}  # each player and GM once a step


def test_a_players_memory_is_its_recent_observations_and_the_older_ones_that_match() -> None:
    player = LLMPlayer(
        recall=2,
        retrieve=1,
        observations=[
            "The well ran dry at noon.",
            "The miller left.",
            "Rain fell on the fields.",
            "Bread is scarce.",
            "Someone asks about the well and the noon bell.",
        ],
    )
    assert player.recalled() == [
        "The well ran dry at noon.",
        "Bread is scarce.",
        "Someone asks about the well and the noon bell.",
    ]


@pytest.mark.ray
def test_the_same_log_in_process_and_on_1_or_3_hosts(ray_cluster: object, tmp_path: Path) -> None:
    seen = set()
    for where, kw in PLACES.items():
        short = load_scenario("village_council").model_copy(update={"steps": 1})
        log, run_id = _play(tmp_path, where, GameMaster(short, scenes=2), **kw)
        seen.add(messages_hash(log, run_id))
    assert len(seen) == 1


def test_bad_scenarios_are_one_line_errors_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "rules": "public_goods", "players": 3, "steps": 2, "budget": 5}))
    with pytest.raises(
        ConfigError, match=r"bad\.json: Invalid scenario: unknown field 'budget'; a scenario has: name, "
    ):
        GameMaster(bad)
    with pytest.raises(
        ConfigError, match="No scenario 'auction'; give a JSON file or one of: market, public_goods"
    ):
        GameMaster("auction")
    with pytest.raises(
        ConfigError, match="Scenario 'village_council' has no rules for a rule game master; use gm='llm'"
    ):
        GameMaster("village_council", gm="rule")
    with pytest.raises(ConfigError, match="10 scenes of 4 players take 50 agents \\(--agents 50\\), not 40"):
        GameMaster("public_goods").default_population(40)


def test_the_command_line_runs_a_scenario(tmp_path: Path) -> None:
    log = tmp_path / "cli.duckdb"
    moot_cli(
        "run",
        "--protocol",
        "game_master",
        "--agents",
        "25",
        "--local",
        "--log",
        str(log),
        "-o",
        "scenario=public_goods",
        "-o",
        "scenes=5",
        "-o",
        "engine=sequential",
        "--state-every",
        "1",
    )
    rows = query(log, "SELECT strategy, players FROM gm_payoffs_by_strategy ORDER BY strategy").to_pylist()
    assert rows == [
        {"strategy": "conditional", "players": 10},
        {"strategy": "cooperator", "players": 5},
        {"strategy": "defector", "players": 5},
    ]
