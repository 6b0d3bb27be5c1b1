"""People, their private facts, and tasks whose exact answers need facts that other people hold.

Every agent stands for one person and knows only that person's facts: ``city``, ``employer``,
``birthday`` and ``free`` (the slots of a 12-slot day the person is free, e.g. ``"2,5,7,9"``). A
fact is named ``"<person>.<attribute>"``. A task is asked by one agent and needs facts held by
others, some hops away on the social network:

- ``lookup``: "What is the city of person B?" (one fact);
- ``join``: "Do B and C live in the same city?" (two facts; ``yes`` or ``no``);
- ``schedule``: "What is the earliest slot when A, B and C are all free?" (everyone's ``free``;
  the answer is the slot, or ``none``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import networkx as nx
import numpy as np

from agents.errors import ConfigError

__all__ = [
    "ATTRIBUTES",
    "KINDS",
    "Task",
    "answer_of",
    "check_tasks",
    "facts_of",
    "generate_tasks",
    "paper_graph",
]

ATTRIBUTES = ("city", "employer", "birthday", "free")
KINDS = ("lookup", "join", "schedule")
CITIES = (
    "Lyon",
    "Porto",
    "Kyoto",
    "Quito",
    "Oslo",
    "Accra",
    "Perth",
    "Tunis",
    "Lima",
    "Riga",
    "Hanoi",
    "Dakar",
)
EMPLOYERS = ("a bakery", "a hospital", "a school", "a bank", "a lab", "a farm", "a shipyard", "a library")
SLOTS = 12


def paper_graph(seed: int = 0, people: int = 140, relations: int = 588) -> nx.Graph:
    """A connected social network the size of InformativeBench's (140 people, 588 relations):
    a seeded random graph with exactly that many edges, drawn again until it is connected."""
    for attempt in range(100):
        g = nx.gnm_random_graph(people, relations, seed=seed * 1000 + attempt)
        if nx.is_connected(g):
            return g
    raise ConfigError(
        f"No connected graph of {people} people and {relations} relations; give more relations."
    )


def facts_of(person: int, seed: int) -> dict[str, str]:
    """The private facts of `person` (seeded: the same in every process)."""
    rng = np.random.default_rng([seed, person, 0x66616374])
    free = sorted(int(s) for s in rng.choice(SLOTS, 5, replace=False))
    return {
        f"{person}.city": CITIES[int(rng.integers(len(CITIES)))],
        f"{person}.employer": EMPLOYERS[int(rng.integers(len(EMPLOYERS)))],
        f"{person}.birthday": f"{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}",
        f"{person}.free": ",".join(map(str, free)),
    }


def answer_of(kind: str, need: Sequence[str], facts: Mapping[str, str]) -> str:
    """The exact answer of a task of `kind`, from the facts it needs."""
    values = [facts[k] for k in need]
    if kind == "lookup":
        return values[0]
    if kind == "join":
        return "yes" if values[0] == values[1] else "no"
    if kind == "schedule":
        common = set.intersection(*(set(v.split(",")) for v in values))
        return str(min(int(s) for s in common)) if common else "none"
    raise ConfigError(f"Unknown task kind {kind!r}; use one of: {', '.join(KINDS)}.")


@dataclass(frozen=True)
class Task:
    """One task: who asks, what it needs, its exact answer, and how far the facts are.

    Attributes:
        id: Its index in the run.
        asker: The agent that must answer.
        kind: lookup, join or schedule.
        need: The facts it needs, ``"<person>.<attribute>"``.
        answer: The exact answer.
        question: The question in words.
        hops: The farthest needed fact's distance from the asker; None when one is unreachable.
    """

    id: int
    asker: int
    kind: str
    need: tuple[str, ...]
    answer: str
    question: str
    hops: int | None

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def _question(kind: str, asker: int, need: Sequence[str]) -> str:
    people = [k.split(".")[0] for k in need]
    if kind == "lookup":
        person, attribute = need[0].split(".")
        return f"What is the {attribute} of person {person}?"
    if kind == "join":
        return f"Do person {people[0]} and person {people[1]} live in the same city?"
    return f"What is the earliest slot (0-{SLOTS - 1}) when persons {', '.join(people)} are all free?"


def _hops(graph: nx.Graph, asker: int, need: Sequence[str]) -> int | None:
    dist = nx.single_source_shortest_path_length(graph, asker)
    far = [dist.get(int(k.split(".")[0])) for k in need]
    return None if any(d is None for d in far) else max(d for d in far if d is not None)


def generate_tasks(
    graph: nx.Graph, count: int, seed: int, max_hops: int = 4, kinds: Sequence[str] = KINDS
) -> list[Task]:
    """`count` tasks with exact answers, askers all different and with neighbours, the needed facts
    at 1..`max_hops` hops (as evenly spread over the distances as the graph allows), kinds in turn."""
    rng = np.random.default_rng([seed, 0x7461736B])
    askers = [int(a) for a in rng.permutation(graph.number_of_nodes()) if graph.degree(int(a)) > 0]
    if count > len(askers):
        raise ConfigError(f"{count} tasks need {count} askers with neighbours; the graph has {len(askers)}.")
    tasks = []
    for t, asker in enumerate(askers[:count]):
        kind = kinds[t % len(kinds)]
        dist = nx.single_source_shortest_path_length(graph, asker)
        want = 1 + t // len(kinds) % max_hops
        ring = [p for p, d in dist.items() if d == want] or [p for p, d in dist.items() if 0 < d <= max_hops]
        if kind == "lookup":
            person = int(rng.choice(ring))
            need: tuple[str, ...] = (f"{person}.{ATTRIBUTES[int(rng.integers(len(ATTRIBUTES)))]}",)
        elif kind == "join":
            near = [p for p, d in dist.items() if 0 < d <= want]
            need = (f"{int(rng.choice(ring))}.city", f"{int(rng.choice(near))}.city")
        else:
            need = (f"{asker}.free", f"{int(rng.choice(ring))}.free")
        facts: dict[str, str] = {}
        for key in need:
            facts.update(facts_of(int(key.split(".")[0]), seed))
        tasks.append(
            Task(
                t,
                asker,
                kind,
                need,
                answer_of(kind, need, facts),
                _question(kind, asker, need),
                _hops(graph, asker, need),
            )
        )
    return tasks


_TASK_FIELDS = ("asker", "kind", "need", "answer", "question")


def check_tasks(given: Sequence[Mapping[str, Any]], graph: nx.Graph, seed: int) -> list[Task]:
    """Tasks a user wrote (dicts with asker, kind, need, answer, and optionally question),
    checked: known fields and kinds, people in the graph, an asker with neighbours, an answer,
    the right one.

    Raises:
        ConfigError: One line naming the task, the value and the fix.
    """
    out = []
    n = graph.number_of_nodes()
    for t, spec in enumerate(given):
        unknown = sorted(set(spec) - set(_TASK_FIELDS))
        if unknown:
            raise ConfigError(
                f"Task {t} has unknown field(s) {', '.join(unknown)}; a task has: {', '.join(_TASK_FIELDS)}."
            )
        if spec.get("answer") in (None, ""):
            raise ConfigError(
                f"Task {t} has no answer; give its exact answer (answer='...'), which the run scores against."
            )
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"Task {t} has kind {kind!r}; use one of: {', '.join(KINDS)}.")
        asker = spec.get("asker")
        if not isinstance(asker, int) or not 0 <= asker < n:
            raise ConfigError(f"Task {t} has asker {asker!r}; give a person 0..{n - 1}.")
        if graph.degree(asker) == 0:
            raise ConfigError(
                f"Task {t}'s asker {asker} has no neighbours in the graph, so it can ask no one; connect it "
                "or choose another asker."
            )
        need = tuple(str(k) for k in spec.get("need") or ())
        for key in need:
            person, _, attribute = key.partition(".")
            if not person.isdigit() or int(person) >= n or attribute not in ATTRIBUTES:
                raise ConfigError(
                    f"Task {t} needs {key!r}; name a fact '<person>.<attribute>', person 0..{n - 1}, "
                    f"attribute one of {', '.join(ATTRIBUTES)}."
                )
        facts: dict[str, str] = {}
        for key in need:
            facts.update(facts_of(int(key.split(".")[0]), seed))
        exact = answer_of(kind, need, facts)
        if str(spec["answer"]) != exact:
            raise ConfigError(
                f"Task {t}'s answer {spec['answer']!r} is not what its facts give ({exact!r}); fix it."
            )
        question = str(spec.get("question") or _question(kind, asker, need))
        out.append(Task(t, asker, kind, need, exact, question, _hops(graph, asker, need)))
    return out
