"""Debate societies: MachineSoM's collaboration strategies and Du et al.'s multi-agent debate.

A run holds thousands of societies, each a small group answering one question:
round 0 is an independent answer; each later round has a thinking pattern per
society (and optionally per agent): ``0`` debate (see the previous-round answers
of the peers one sees) or ``1`` reflection (see only one's own), MachineSoM's
strategies being strings such as ``"010"``. See reference/debate.md, and
`protocols.debate.world` for how societies enumerate the study's grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.errors import ConfigError
from protocols.base import DirectRouter, MessageProtocol
from protocols.debate.agents import DebateAnswer, LLMDebater, RuleDebater
from protocols.debate.questions import Question, arithmetic, load_jsonl
from protocols.debate.world import TRAITS, DebateView, DebateWorld
from protocols.stop import StopRule, Threshold

if TYPE_CHECKING:
    import networkx as nx

    from agents.agent import Agent
    from agents.population import Population

__all__ = ["Debate", "DebateAnswer", "DebateView", "DebateWorld", "LLMDebater", "Question", "RuleDebater"]

_SHORT = {"e": "easygoing", "o": "overconfident"}


def machinesom_mixes(size: int = 3) -> list[list[str]]:
    """MachineSoM's societies: k easy-going agents first, then overconfident ones, k = 0..size."""
    return [["easygoing"] * k + ["overconfident"] * (size - k) for k in range(size + 1)]


class Debate(MessageProtocol):
    """Many debate societies in one run.

    Args:
        questions: ``"arithmetic"`` (Du et al.'s, generated offline), a JSONL path, or `Question`s.
        n_questions: How many arithmetic questions (with ``"arithmetic"``).
        size: Agents per society (at least 2).
        strategies: Thinking patterns for rounds 1..R, one string per configuration (``"010"``);
            ``"010|010|110"`` gives each position its own. Societies cycle over them.
        mixes: Trait mixes, one trait per position: names (``easygoing``, ``overconfident``,
            ``persona:<your text>``) or a string of e/o letters (``"eeo"``); ``"machinesom"``
            gives MachineSoM's four (k easy-going, k = 0..size).
        graph: Who sees whom within a society: None (everyone) or a networkx graph on ``size`` nodes.
        beliefs: Ask for a private belief each round (DEBATE's second channel).
        seed: Seed of the arithmetic questions.
        faithful_letters: Read multiple-choice answers as MachineSoM's code does, its string
            comparison ``"A" <= x <= "D"`` included (which takes "(about)" for an answer);
            off by default (only an option's letter counts).

    Example:
        >>> proto = Debate(strategies=["000", "010"], mixes="machinesom")
        >>> launch(proto.default_population(3 * 1000), proto, rounds=4)
    """

    name = "debate"
    instructions = (
        "You answer a question with your group. Give your answer, and your reasoning in a few sentences."
    )
    kinds = ("answer", "belief")
    action_kinds = ("answer", "belief")
    replies = (DebateAnswer,)

    def __init__(
        self,
        questions: str | Sequence[Question] = "arithmetic",
        *,
        n_questions: int = 100,
        size: int = 3,
        strategies: Sequence[str] | str = ("000",),
        mixes: Sequence[Sequence[str] | str] | str | None = None,
        graph: nx.Graph | None = None,
        beliefs: bool = False,
        seed: int = 0,
        faithful_letters: bool = False,
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 2:
            raise ConfigError(f"A debate society needs at least 2 agents, got size={size!r}; e.g. size=3.")
        if isinstance(questions, str):
            self.questions = (
                arithmetic(n_questions, seed) if questions == "arithmetic" else load_jsonl(questions)
            )
            self.source = questions if questions == "arithmetic" else str(Path(questions).name)
        else:
            self.questions = list(questions)
            self.source = "given"
            if not self.questions:
                raise ConfigError("questions is empty; give 'arithmetic', a JSONL path, or Question objects.")
        self.size = size
        self.strategies = [strategies] if isinstance(strategies, str) else list(strategies)
        self.patterns = _patterns(self.strategies, size)
        self.traits, self.mixes = _mixes(mixes, size)
        self.visible = _visible(graph, size)
        self.beliefs = bool(beliefs)
        self.faithful_letters = bool(faithful_letters)

    def build(self, n_agents: int, seed: int) -> DirectRouter:
        if n_agents % self.size:
            raise ConfigError(
                f"{n_agents} agents do not make whole societies of {self.size}; give a multiple of "
                f"{self.size} (e.g. {n_agents - n_agents % self.size or self.size})."
            )
        world = DebateWorld(
            n_agents,
            self.size,
            self.questions,
            self.patterns,
            self.strategies,
            self.mixes,
            self.traits,
            self.visible,
            self.beliefs,
            self.faithful_letters,
        )
        return DirectRouter(n_agents, world)

    def stop_rule(self, field: str | None) -> StopRule | None:
        return Threshold("unanimous", ">=", 1.0)

    def default_population(self, n: int, agent: type[Agent] | None = None, **state: Any) -> Population:
        from agents.population import Population

        return Population.of(agent or RuleDebater, n, **state)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "questions": self.source,
            "n_questions": len(self.questions),
            "size": self.size,
            "strategies": self.strategies,
            "traits": self.traits,
            "mixes": [[self.traits[t] for t in m] for m in self.mixes.tolist()],
            "beliefs": self.beliefs,
            **({"faithful_letters": True} if self.faithful_letters else {}),
            # The answer key as codes, one per question: with the study's grid (module docstring of
            # protocols.debate.world) the SQL views derive every agent's society, question and truth.
            "truths": [q.truth for q in self.questions],
        }

    def views(self) -> Mapping[str, str]:
        from protocols.debate.views import VIEWS

        return VIEWS

    def __repr__(self) -> str:
        return f"Debate(size={self.size}, strategies={self.strategies}, questions={self.source!r})"


def _patterns(strategies: list[str], size: int) -> np.ndarray:
    if not strategies:
        raise ConfigError("strategies is empty; give at least one, e.g. strategies=['000'].")
    out = []
    length = None
    for s in strategies:
        parts = s.split("|") if "|" in s else [s] * size
        if len(parts) != size:
            raise ConfigError(
                f"Strategy {s!r} gives {len(parts)} per-agent patterns for societies of {size}; give one "
                f"string (every agent alike) or {size} separated by '|'."
            )
        for p in parts:
            if not p or set(p) - {"0", "1"}:
                raise ConfigError(
                    f"Strategy {s!r} must be 0s (debate) and 1s (reflection), one per round after the first, "
                    "e.g. '010'."
                )
            if length is None:
                length = len(p)
            elif len(p) != length:
                raise ConfigError(
                    f"Strategy {s!r} has {len(p)} rounds but {strategies[0]!r} has {length}; every "
                    "strategy of a study covers the same rounds."
                )
        out.append([[int(c) for c in p] for p in parts])
    return np.asarray(out, np.uint8)


def _mixes(mixes: Sequence[Sequence[str] | str] | str | None, size: int) -> tuple[list[str], np.ndarray]:
    if mixes is None:
        mixes = [["easygoing"] * size]
    elif mixes == "machinesom":
        mixes = machinesom_mixes(size)
    elif isinstance(mixes, str):
        mixes = [mixes]
    names: list[str] = []
    rows = []
    for mix in mixes:
        traits = [_SHORT.get(c, c) for c in mix] if isinstance(mix, str) and set(mix) <= set(_SHORT) else mix
        if isinstance(traits, str):
            traits = [traits] * size
        if len(traits) != size:
            raise ConfigError(
                f"Trait mix {mix!r} has {len(traits)} traits for societies of {size}; give {size}."
            )
        row = []
        for t in traits:
            if t not in TRAITS and not str(t).startswith("persona:"):
                raise ConfigError(
                    f"Unknown trait {t!r}; use {', '.join(TRAITS)}, or 'persona:<your text>' for your own."
                )
            if t not in names:
                names.append(t)
            row.append(names.index(t))
        rows.append(row)
    return names, np.asarray(rows, np.int64)


def _visible(graph: nx.Graph | None, size: int) -> np.ndarray:
    if graph is None:
        return ~np.eye(size, dtype=bool)
    nodes = sorted(graph.nodes)
    if nodes != list(range(size)):
        raise ConfigError(
            f"The debate graph must have nodes 0..{size - 1} (one per position), got {nodes[:10]}."
        )
    out = np.zeros((size, size), bool)
    for u, v in graph.edges:
        if u != v:
            out[u, v] = True
            if not graph.is_directed():
                out[v, u] = True
    return out
