"""Scenarios (JSON files a user can copy) and the rules a rule-based game master judges by.

A scenario names its rules (``public_goods``, ``market``) or none (open-ended: an LLM game master
judges). Rules are pure functions of the scene's state and the players' proposals, so a test can
apply them by hand to the logged actions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.errors import ConfigError
from agents.message import explain

__all__ = ["SCENARIOS", "Scenario", "load_scenario", "public_goods_payoffs", "market_allocation"]

SCENARIOS = Path(__file__).parent / "scenarios"
"""The shipped scenarios: public_goods.json, market.json, village_council.json."""

Engine = Literal["simultaneous", "sequential"]


class Scenario(BaseModel):
    """A scene's definition. Unknown fields are refused (a typo would otherwise be ignored).

    Attributes:
        name: Its name.
        rules: ``public_goods`` or ``market`` (a rule-based GM judges exactly), or None (an LLM GM).
        players: Players per scene.
        steps: Steps a scene lasts.
        engine: ``simultaneous`` (every player proposes, then the GM resolves them together) or
            ``sequential`` (players take turns; each sees what the ones before it did).
        endowment, multiplier, strategies: The public-goods game: tokens per step, the pot's
            multiplier, and the rule players' strategies by position (cooperator, defector,
            conditional).
        stock, price, demand, value: The market: units for sale each step, their price, and the
            ranges the buyers' demands and values are drawn from (seeded per scene).
        setting, facts, private: An open scene: what everyone knows, and what only player k knows
            (``private["k"]``; the GM never tells it to anyone else).
        opening: What every player is told first (``{field}`` filled from the scenario).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    rules: Literal["public_goods", "market"] | None = None
    players: int = Field(ge=1, le=64)
    steps: int = Field(ge=1, le=1000)
    engine: Engine = "simultaneous"
    endowment: float = Field(10.0, gt=0)
    multiplier: float = Field(1.6, gt=0)
    strategies: list[Literal["cooperator", "defector", "conditional"]] = Field(default_factory=list)
    stock: int = Field(10, ge=0)
    price: float = Field(3.0, ge=0)
    demand: tuple[int, int] = (1, 6)
    value: tuple[float, float] = (4.0, 9.0)
    setting: str = ""
    facts: dict[str, str] = Field(default_factory=dict)
    private: dict[str, str] = Field(default_factory=dict)
    opening: str = ""

    def opening_text(self) -> str:
        values = {k: v for k, v in self.model_dump().items() if isinstance(v, (int, float, str))}
        return self.opening.format(**values)


def load_scenario(spec: str | Path | Scenario | dict[str, Any]) -> Scenario:
    """A scenario: a shipped one by name (``public_goods``), a JSON file, a dict, or itself.

    Raises:
        ConfigError: An unknown name, an unreadable file, or a field that is unknown or wrong,
            in one line naming it.
    """
    if isinstance(spec, Scenario):
        return spec
    source = "the scenario"
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.suffix and not path.exists():
            path = SCENARIOS / f"{spec}.json"
        if not path.exists():
            shipped = ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.json")))
            raise ConfigError(f"No scenario {str(spec)!r}; give a JSON file or one of: {shipped}.")
        source = path.name
        try:
            spec = json.loads(path.read_text())
        except ValueError as exc:
            raise ConfigError(f"Scenario file {path} is not JSON: {exc}.") from None
    try:
        return Scenario.model_validate(spec)
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + explain(exc, "scenario", tuple(Scenario.model_fields))) from None


def public_goods_payoffs(scenario: Scenario, contributions: list[float]) -> list[float]:
    """Each player's payoff for one step: what it kept plus an equal share of the multiplied pot."""
    share = scenario.multiplier * sum(contributions) / scenario.players
    return [scenario.endowment - c + share for c in contributions]


def market_allocation(asked: list[int], stock: int, sequential: bool) -> list[int]:
    """Units each buyer gets, in player order. Enough stock: everyone gets what it asked.
    A shortage: sequentially, first come first served; simultaneously, pro rata rounded down."""
    total = sum(asked)
    if total <= stock:
        return list(asked)
    if sequential:
        out, left = [], stock
        for q in asked:
            got = min(q, left)
            out.append(got)
            left -= got
        return out
    return [math.floor(q * stock / total) for q in asked]
