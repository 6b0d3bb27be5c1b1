"""The debate world: societies, their questions and configurations, and the answers so far.

Agents ``[s*size, (s+1)*size)`` form society s. Societies enumerate the study's
grid, question fastest: society s gets question ``s % Q``, strategy
``(s // Q) % S``, trait mix ``(s // (Q*S)) % M`` and repeat ``s // (Q*S*M)``.

Each round every agent's answer (and, where the study asks, its private belief)
is an action on the world. Round r's observations are built from the answers of
round r-1 only, frozen before any round-r answer is applied: the debate is
synchronous, as MachineSoM's and Du et al.'s code make it. A private belief is
kept and logged but never enters any observation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from agents.batch import MessageBatch
from agents.errors import ProtocolError
from protocols.debate.questions import LETTERS, Question, answer_code
from protocols.world import Observation, World

__all__ = ["DebateView", "DebateWorld", "TRAITS", "row_majority"]

TRAITS: dict[str, tuple[str, str, float]] = {
    # name: (MachineSoM's induction, its character, how readily a rule-based debater joins a majority)
    "easygoing": (
        "You are {role} and {character}. Please keep this in mind.",
        "are objective and unbiased, and you can be persuaded if other agent's answers make sense",
        0.7,
    ),
    "overconfident": (
        "Imagine you are {role} and {character}. Please keep this in mind.",
        "are confident in your answer and often persuades other agents to believe in you",
        0.15,
    ),
}
CUSTOM_PLIABILITY = 0.4
ROLES = {
    "number": "an expert skilled in solving mathematical problems",
    "boxed": "an expert skilled in solving mathematical problems",
    "choice": "an expert in biology, chemistry, computer science, mathematics, physics",
    "text": "an expert",
}
INITIAL, DEBATE, REFLECTION = -1, 0, 1

DEBATE_PROMPTS = {  # (prefix, suffix) around the peers' answers: Du et al.'s and MachineSoM's wording
    "number": (
        "These are the recent/updated opinions from other agents: ",
        "\n\n Use these opinions carefully as additional advice, can you provide an updated "
        "answer? Make sure to state your answer at the end of the response.",
    ),
    "choice": (
        "These are the solutions to the problem from other agents: ",
        "\n\n Using the reasoning from other agents as additional advice, can you give an "
        "updated answer? Examine your solution and that other agents step by step. Put your "
        "answer in the form (X) at the end of your response.",
    ),
    "boxed": (
        "These are the solutions to the problem from other agents:",
        "\n\nUsing the reasoning from other agents as additional information and referring to "
        "your historical answers, can you give an updated answer? Put your answer in the form "
        "\\boxed{answer}, at the end of your response.",
    ),
}
REFLECTION_PROMPTS = {
    "number": "Can you double check that your answer is correct? Make sure to state your answer at "
    "the end of the response.",
    "choice": "Can you double check that your answer is correct. Put your final answer in the form "
    "(X) at the end of your response.",
    "boxed": "Can you double check that your answer is correct? Please reiterate your answer, with "
    "your answer in the form \\boxed{answer}, at the end of your response.",
}
_NONE = -np.inf  # "no answer" while counting (MachineSoM counts None as an answer)


def trait_text(trait: str, kind: str) -> str:
    """The persona line a trait induces (a ``persona:...`` trait is its own text)."""
    if trait.startswith("persona:"):
        return trait[len("persona:") :].strip()
    line, character, _ = TRAITS[trait]
    return line.format(role=ROLES.get(kind, "an expert"), character=character)


def row_majority(rows: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Per row, MachineSoM's strict majority (NaN if none; -inf if "no answer" wins) and the number
    of distinct answers (no answer counts as one)."""
    v = np.where(np.isnan(rows), _NONE, rows)
    v.sort(axis=1)
    k = v.shape[1]
    counts = (v[:, :, None] == v[:, None, :]).sum(axis=2)
    top = counts.max(axis=1)
    at_top = (counts == top[:, None]).sum(axis=1)
    first = np.argmax(counts == top[:, None], axis=1)
    value = v[np.arange(len(v)), first]
    ok = (top >= 2) & (at_top == top)
    distinct = 1 + (v[:, 1:] != v[:, :-1]).sum(axis=1) if k > 1 else np.ones(len(v), np.int64)
    return np.where(ok, value, np.nan), distinct.astype(np.int64)


@dataclass(frozen=True)
class DebateView(Observation):
    """What one debater sees in one round.

    Attributes:
        agent: Its id.
        round: The round.
        question: Its society's question.
        pattern: ``initial`` (round 0), ``debate`` or ``reflection``.
        peers: The previous-round answers of the peers it sees (debate rounds; in agent order).
        trait: The persona line its trait induces.
        faithful_letters: Read choices as MachineSoM's code does (see `Debate`).
    """

    agent: int
    round: int
    question: Question
    pattern: str
    peers: tuple[str, ...] = ()
    trait: str = ""
    faithful_letters: bool = False

    def render(self) -> str:
        q = self.question
        parts = [self.trait, q.prompt()] if self.trait else [q.prompt()]
        if self.pattern == "debate":
            blocks = "".join(f"\n\n One agent response: ```{p}```" for p in self.peers)
            prefix, suffix = DEBATE_PROMPTS.get(q.kind, DEBATE_PROMPTS["number"])
            parts.append(prefix + blocks + suffix)
        elif self.pattern == "reflection":
            parts.append(REFLECTION_PROMPTS.get(q.kind, REFLECTION_PROMPTS["number"]))
        return "\n\n".join(parts)

    def render_inbox(self, messages: Sequence[Any]) -> str:
        """Nothing: debaters hear each other through the observation, not an inbox."""
        return ""

    def code(self, answer: str | None) -> float:
        """An answer given as text, as the number the log and the metrics use."""
        return answer_code(answer, self.question)


class DebateWorld(World):
    """Societies and their answers; see the module docstring.

    Args:
        n: Number of agents (a multiple of `size`).
        size: Agents per society.
        questions: The questions societies cycle over.
        patterns: Per strategy, per position in the society, per collaboration round: 0 debate,
            1 reflection (shape strategies x size x R).
        mixes: Per trait mix, the trait of each position.
        traits: The trait names (indexes of `mixes`).
        visible: Who sees whom within a society (size x size, no self).
        beliefs: Whether the study asks for private beliefs.
        faithful_letters: Read choices as MachineSoM's code does (see `Debate`).
    """

    apply_once = True
    """One host a node applies each round (the answers and beliefs it records are every host's);
    the others take its state (`snapshot`)."""

    def __init__(
        self,
        n: int,
        size: int,
        questions: Sequence[Question],
        patterns: NDArray[np.uint8],
        strategies: Sequence[str],
        mixes: NDArray[np.int64],
        traits: Sequence[str],
        visible: NDArray[np.bool_],
        beliefs: bool,
        faithful_letters: bool = False,
    ) -> None:
        self.n, self.size = n, size
        self.societies = n // size
        self.questions = list(questions)
        self.patterns, self.strategies = patterns, list(strategies)
        self.mixes, self.traits = mixes, list(traits)
        self.visible = visible
        self.complete = bool(visible.sum() == size * (size - 1))
        self.beliefs = beliefs
        self.faithful_letters = faithful_letters
        soc = np.arange(self.societies)
        q, s, m = len(self.questions), len(self.strategies), len(self.mixes)
        self.question = soc % q
        self.strategy = (soc // q) % s
        self.mix = (soc // (q * s)) % m
        self.repeat = soc // (q * s * m)
        self.truth = np.array([x.truth for x in self.questions])[self.question]
        ids = np.arange(n)
        self.position = ids % size
        self.trait = self.mixes[self.mix[ids // size], self.position]
        pliable = [TRAITS[t][2] if t in TRAITS else CUSTOM_PLIABILITY for t in self.traits]
        self.pliability = np.asarray(pliable)[self.trait]
        self.prev = np.full(n, np.nan)  # the answers of the last applied round
        self.before = np.full(n, np.nan)  # and of the round before it
        self.belief = np.full(n, np.nan)
        self.texts: dict[int, str] = {}  # answer texts of the last applied round (LLM debaters)
        self.applied = -1
        self._majority: tuple[int, NDArray[np.float64]] | None = None

    # -- what agents see -------------------------------------------------------------------

    def pattern_of(self, ids: NDArray[np.int64], round: int) -> NDArray[np.int64]:
        """Each agent's thinking pattern in `round`: -1 initial, 0 debate, 1 reflection."""
        if round == 0:
            return np.full(len(ids), INITIAL, np.int64)
        r = self.patterns.shape[2]
        if round > r:
            shown = ", ".join(sorted(set(self.strategies)))
            raise ProtocolError(
                f"Round {round} has no thinking pattern: the strategies ({shown}) cover rounds 1..{r} after "
                f"the initial answer. Run {r + 1} rounds, or give strategies with {round} characters."
            )
        out: NDArray[np.int64] = self.patterns[
            self.strategy[ids // self.size], self.position[ids], round - 1
        ].astype(np.int64)
        return out

    def majority_seen(self, ids: NDArray[np.int64]) -> NDArray[np.float64]:
        """Per agent, the strict majority of the previous round among itself and the peers it sees."""
        if self.complete:
            if self._majority is None or self._majority[0] != self.applied:
                rows = self.prev.reshape(self.societies, self.size)
                self._majority = (self.applied, row_majority(rows)[0])
            return self._majority[1][ids // self.size]
        out = np.full(len(ids), np.nan)
        rows = self.prev.reshape(self.societies, self.size)
        pos = self.position[ids]
        for p in np.unique(pos):
            cols = np.flatnonzero(self.visible[p] | (np.arange(self.size) == p))
            sel = np.flatnonzero(pos == p)
            out[sel] = row_majority(rows[ids[sel] // self.size][:, cols])[0]
        return out

    def peer_right(self, ids: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Per agent, whether a peer it sees gave the right answer in the previous round."""
        rows = self.prev.reshape(self.societies, self.size)
        right = rows == self.truth[:, None]
        out = np.zeros(len(ids), bool)
        pos = self.position[ids]
        for p in np.unique(pos):
            sel = np.flatnonzero(pos == p)
            out[sel] = right[ids[sel] // self.size][:, self.visible[p]].any(axis=1)
        return out

    def observe_batch(self, ids: NDArray[np.int64], round: int) -> Mapping[str, NDArray[Any]]:
        majority = self.majority_seen(ids) if round > 0 else np.full(len(ids), np.nan)
        return {
            "solution": self.truth[ids // self.size],  # the answer key: for simulated solvers only
            "peer_right": self.peer_right(ids) if round > 0 else np.zeros(len(ids), bool),
            "own": self.prev[ids],
            "majority": np.where(np.isinf(majority), np.nan, majority),
            "pattern": self.pattern_of(ids, round),
            "pliability": self.pliability[ids],
            "beliefs": np.full(len(ids), self.beliefs),
        }

    def observe(self, agent: int, round: int) -> DebateView:
        ids = np.array([agent])
        pattern = int(self.pattern_of(ids, round)[0])
        s, p = divmod(agent, self.size)
        question = self.questions[int(self.question[s])]
        peers: tuple[str, ...] = ()
        if pattern == DEBATE:
            others = s * self.size + np.flatnonzero(self.visible[p])
            peers = tuple(self._text(int(j), question) for j in others)
        trait = self.traits[int(self.trait[agent])]
        name = {INITIAL: "initial", DEBATE: "debate", REFLECTION: "reflection"}[pattern]
        return DebateView(
            agent, round, question, name, peers, trait_text(trait, question.kind), self.faithful_letters
        )

    def _text(self, agent: int, question: Question) -> str:
        if agent in self.texts:
            return self.texts[agent]
        v = self.prev[agent]
        if np.isnan(v):
            return "(no answer)"
        if question.kind == "choice" and 0 <= v < len(LETTERS):
            return f"The answer is ({LETTERS[int(v)]})."
        return f"The answer is {int(v) if v == int(v) else v}." if abs(v) < 2**52 else "(an answer)"

    # -- what the round does -------------------------------------------------------------------

    def apply(self, actions: MessageBatch, round: int, kinds: tuple[str, ...]) -> None:
        answers = actions.kind == kinds.index("answer")
        cur = np.full(self.n, np.nan)
        cur[actions.sender[answers]] = actions.value[answers]
        texts = {}
        if actions.text is not None:
            rows = np.flatnonzero(answers & ~np.asarray(actions.text.is_null()))
            for i, t in zip(rows.tolist(), actions.text.take(rows).to_pylist()):
                texts[int(actions.sender[i])] = str(t)
        if "belief" in kinds:
            b = actions.kind == kinds.index("belief")
            self.belief[actions.sender[b]] = actions.value[b]
        self.before, self.prev, self.texts, self.applied = self.prev, cur, texts, round

    def state_columns(self, ids: NDArray[np.int64]) -> Mapping[str, NDArray[np.float64]]:
        return {"belief": self.belief[ids]} if self.beliefs else {}

    def metrics(self, round: int) -> dict[str, float]:
        rows = self.prev.reshape(self.societies, self.size)
        majority, distinct = row_majority(rows)
        answered = ~np.isnan(rows)
        out = {
            "accuracy": float(np.mean(majority == self.truth)),
            "agent_accuracy": float(np.mean(rows == self.truth[:, None])),
            "unanimous": float(np.mean((distinct == 1) & answered.all(axis=1))),
            "distinct": float(distinct.mean()),
            "answered": float(answered.sum()),
        }
        if round > 0:
            before, now = self.before, self.prev
            out["changed"] = float(np.sum((before != now) & ~(np.isnan(before) & np.isnan(now))))
        return out

    def describe(self) -> dict[str, object]:
        """What the run adds to the study's description: how many societies, who sees whom."""
        return {
            "societies": self.societies,
            "visibility": "complete" if self.complete else self.visible.astype(int).tolist(),
        }
