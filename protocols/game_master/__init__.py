"""A game master and its players (Concordia): many independent scenes per run, each a GM and
its players; players say what they want to do, the GM decides what happens and what each
observes. See README.md.

Example:
    >>> proto = GameMaster("public_goods", scenes=100, engine="sequential")
    >>> launch(proto.default_population(proto.agents), proto, rounds=proto.rounds_needed, state_every=1)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from agents.agent import Agent
from agents.batch import MessageBatch
from agents.errors import AgentError, ConfigError
from agents.population import Population
from protocols.base import MessageProtocol, Router, check_receivers
from protocols.game_master.agents import (
    GMReply,
    LLMPlayer,
    LLMSceneMaster,
    PlayerReply,
    SceneMaster,
    ScenePlayer,
)
from protocols.game_master.scenario import Scenario, load_scenario
from protocols.stop import StopRule, Threshold

__all__ = [
    "GMReply",
    "GameMaster",
    "LLMPlayer",
    "LLMSceneMaster",
    "PlayerReply",
    "SceneMaster",
    "ScenePlayer",
]

PAYOFFS_BY_STRATEGY = """WITH o AS (SELECT run_id, receiver AS agent, (payload->>'payoff')::DOUBLE AS payoff
        FROM messages WHERE kind = 'observe' AND payload->>'payoff' IS NOT NULL),
    s AS (SELECT run_id, agent, text AS strategy FROM states WHERE round = -1 AND field = 'strategy')
SELECT o.run_id, s.strategy, count(DISTINCT o.agent) AS players, sum(o.payoff) / count(DISTINCT o.agent)
        AS payoff_per_player, avg(o.payoff) AS payoff_per_step
FROM o JOIN s USING (run_id, agent) GROUP BY ALL ORDER BY o.run_id, s.strategy"""

SCENE_EVENTS = """SELECT run_id, sender AS gm, round, (payload->>'step')::INTEGER AS step, receiver AS player,
        text AS observation, payload
    FROM messages WHERE kind = 'observe' ORDER BY run_id, sender, round, receiver"""


class SceneRouter(Router):
    """Keeps each scene to itself: a player's proposal goes to its GM, a GM's observations to
    its own players; anything else is an error naming the sender."""

    def __init__(self, n: int, size: int) -> None:
        self.n, self.size = n, size

    def route(self, outbox: MessageBatch, round: int, seed: int) -> MessageBatch:
        to_gm = outbox.receiver < 0
        receiver = np.where(to_gm, outbox.sender - outbox.sender % self.size, outbox.receiver)
        check_receivers(outbox.sender, receiver, self.n)
        same = receiver // self.size == outbox.sender // self.size
        between = (outbox.sender % self.size == 0) != (receiver % self.size == 0)
        bad = ~(same & between)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AgentError(
                f"Agent {int(outbox.sender[i])} sent a message to agent {int(receiver[i])}; in a scene, "
                "players talk to their game master and the game master to its own players only."
            )
        return outbox.with_receivers(receiver.astype(np.int64))

    def neighbours(self, agent: int) -> NDArray[np.int64]:
        start = agent - agent % self.size
        if agent == start:
            return np.arange(start + 1, start + self.size, dtype=np.int64)
        return np.array([start], np.int64)

    def describe(self) -> dict[str, object]:
        return {"scene_size": self.size}


class GameMaster(MessageProtocol):
    """Many independent scenes, each a game master (agent ``s * (players + 1)``) and its players.

    Args:
        scenario: A shipped scenario's name (``public_goods``, ``market``, ``village_council``), a
            JSON file, or a `Scenario`.
        scenes: How many scenes run side by side.
        engine: ``simultaneous`` or ``sequential``; default the scenario's.
        gm: ``rule`` (the scenario's rules) or ``llm`` (a language model; open-ended scenarios).
        players: ``rule`` or ``llm``.
        model: The LLM agents' model (default the offline stand-in).
        seed: Seed of what differs between scenes (the market's demands and values).
    """

    name = "game_master"
    kinds: ClassVar[tuple[str, ...]] = ("propose", "observe")
    replies = (PlayerReply, GMReply)
    instructions = "Say what you want to do; the game master decides what happens."

    def __init__(
        self,
        scenario: str | Path | Scenario | dict[str, Any] = "public_goods",
        *,
        scenes: int = 10,
        engine: str | None = None,
        gm: str | None = None,
        players: str | None = None,
        model: str = "moot/simulated",
        seed: int = 0,
    ) -> None:
        spec = load_scenario(scenario)
        if engine is not None:
            if engine not in ("simultaneous", "sequential"):
                raise ConfigError(f"engine must be 'simultaneous' or 'sequential', got {engine!r}.")
            spec = spec.model_copy(update={"engine": engine})
        self.spec = spec
        self.gm = gm or ("rule" if spec.rules else "llm")
        self.players = players or ("rule" if spec.rules else "llm")
        if self.gm == "rule" and not spec.rules:
            raise ConfigError(f"Scenario {spec.name!r} has no rules for a rule game master; use gm='llm'.")
        for what, value in (("gm", self.gm), ("players", self.players)):
            if value not in ("rule", "llm"):
                raise ConfigError(f"{what} must be 'rule' or 'llm', got {value!r}.")
        if scenes < 1:
            raise ConfigError(f"scenes must be >= 1, got {scenes}.")
        self.scenes, self.model, self.seed = scenes, model, seed

    @property
    def size(self) -> int:
        """Agents per scene: its game master and its players."""
        return self.spec.players + 1

    @property
    def agents(self) -> int:
        """Agents in all the scenes."""
        return self.scenes * self.size

    def natural_size(self) -> int | None:
        return self.agents

    @property
    def rounds_needed(self) -> int:
        """Rounds for every scene to play all its steps: the opening, two rounds per turn, and one
        for the players to read the last observations."""
        turns = self.spec.steps * (self.spec.players if self.spec.engine == "sequential" else 1)
        return 2 + 2 * turns

    def build(self, n_agents: int, seed: int) -> Router:
        if n_agents != self.agents:
            raise ConfigError(
                f"{self.scenes} scenes of {self.spec.players} players take {self.agents} agents, "
                f"not {n_agents}."
            )
        return SceneRouter(n_agents, self.size)

    def stop_rule(self, field: str | None) -> StopRule | None:
        return Threshold("open.max", "<=", 0)  # every scene played out

    def watched_fields(self) -> tuple[str, ...]:
        return ("open", "payoff")

    def views(self) -> Mapping[str, str]:
        return {"gm_payoffs_by_strategy": PAYOFFS_BY_STRATEGY, "gm_observations": SCENE_EVENTS}

    def default_population(self, n: int, agent: type[Agent] | None = None, **state: Any) -> Population:
        """Every scene's game master and players (rule or LLM as the protocol says)."""
        if n != self.agents:
            raise ConfigError(
                f"{self.scenes} scenes of {self.spec.players} players take {self.agents} agents "
                f"(--agents {self.agents}), not {n}."
            )
        spec, text = self.spec, self.spec.model_dump_json()
        llm: dict[str, Any] = {"model": self.model}
        rng = np.random.default_rng([self.seed, 0x676D])
        people: list[Agent] = []
        for s in range(self.scenes):
            gm_id = s * self.size
            ids = list(range(gm_id + 1, gm_id + self.size))
            gm_cls = LLMSceneMaster if self.gm == "llm" else SceneMaster
            people.append(
                gm_cls(id=gm_id, scene=s, players=ids, scenario=text, **(llm if self.gm == "llm" else {}))
            )
            for k, pid in enumerate(ids, 1):
                if self.players == "llm":
                    people.append(LLMPlayer(id=pid, scene=s, gm=gm_id, position=k, **llm, **state))
                    continue
                strategy = (
                    spec.strategies[(k - 1) % len(spec.strategies)] if spec.strategies else "conditional"
                )
                market = spec.rules == "market"
                people.append(
                    ScenePlayer(
                        id=pid,
                        scene=s,
                        gm=gm_id,
                        position=k,
                        strategy=strategy,
                        endowment=spec.endowment,
                        demand=int(rng.integers(spec.demand[0], spec.demand[1] + 1)) if market else 0,
                        value=float(rng.uniform(*spec.value)) if market else 0.0,
                        **state,
                    )
                )
        return Population.from_agents(people)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "scenario": json.loads(self.spec.model_dump_json()),
            "scenes": self.scenes,
            "gm": self.gm,
            "players": self.players,
            "model": self.model,
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        return (
            f"GameMaster({self.spec.name!r}, scenes={self.scenes}, engine={self.spec.engine!r}, "
            f"gm={self.gm!r})"
        )
