"""Information asymmetry (iAgents, InformativeBench): agents that each know only their own
person's facts, on a social network, solve tasks that need facts held several hops away. See
README.md.

Example:
    >>> proto = InfoAsymmetry(tasks=40)           # the paper-sized network, 140 people
    >>> launch(proto.default_population(140), proto, rounds=20, state_every=1)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import networkx as nx

from agents.agent import Agent
from agents.errors import ConfigError
from agents.population import Population
from protocols.gossip import Gossip
from protocols.info_asymmetry.agents import InfoNavAgent, InfoNavReply, Informant
from protocols.info_asymmetry.tasks import KINDS, Task, check_tasks, facts_of, generate_tasks, paper_graph
from protocols.stop import StopRule, Threshold

__all__ = ["InfoAsymmetry", "InfoNavAgent", "InfoNavReply", "Informant", "Task"]

# Every task of every run (from runs.config), with the asker's answer and its round (from the
# asker's last logged `answers`), whether it is right, and the messages and facts it took.
TASK_RESULTS = """WITH t AS (SELECT r.run_id, (j->>'id')::INTEGER AS task, (j->>'asker')::BIGINT AS asker,
            j->>'kind' AS kind, (j->>'hops')::INTEGER AS hops, j->>'answer' AS truth
        FROM runs r, unnest(from_json(r.config->'protocol'->'tasks', '["JSON"]')) AS u(j)
        WHERE r.protocol = 'info_asymmetry'),
    s AS (SELECT run_id, agent, arg_max(text, round) AS answers FROM states WHERE field = 'answers'
          GROUP BY run_id, agent),
    m AS (SELECT run_id, (payload->>'task')::INTEGER AS task, count(*) AS messages,
            count(*) FILTER (kind = 'ask') AS asks, count(*) FILTER (kind = 'tell') AS tells
          FROM messages WHERE kind IN ('ask', 'tell') GROUP BY ALL),
    f AS (SELECT m.run_id, (m.payload->>'task')::INTEGER AS task, count(DISTINCT k.key) AS facts
          FROM messages m JOIN t ON t.run_id = m.run_id AND t.task = (m.payload->>'task')::INTEGER
              AND m.receiver = t.asker,
              json_each(m.payload->'facts') AS k
          WHERE m.kind = 'tell' GROUP BY ALL)
SELECT t.run_id, t.task, t.asker, t.kind, t.hops, t.truth,
    json_extract_string(s.answers, '$."' || t.task || '".answer') AS answer,
    json_extract(s.answers, '$."' || t.task || '".round')::INTEGER AS answered_round,
    coalesce(json_extract_string(s.answers, '$."' || t.task || '".answer') = t.truth, false) AS solved,
    coalesce(m.messages, 0) AS messages, coalesce(m.asks, 0) AS asks, coalesce(m.tells, 0) AS tells,
    coalesce(f.facts, 0) AS facts_retrieved
FROM t LEFT JOIN s ON s.run_id = t.run_id AND s.agent = t.asker
    LEFT JOIN m ON m.run_id = t.run_id AND m.task = t.task
    LEFT JOIN f ON f.run_id = t.run_id AND f.task = t.task"""

SUCCESS_BY_HOPS = """SELECT run_id, hops, count(*) AS tasks, avg(solved::INTEGER) AS success_rate,
        avg(answered_round) FILTER (solved) AS rounds, avg(messages) AS messages,
        avg(facts_retrieved) AS facts_retrieved
    FROM info_task_results GROUP BY run_id, hops ORDER BY run_id, hops"""


class InfoAsymmetry(Gossip):
    """Agents on a social network, each with its person's private facts, solving tasks whose
    facts others hold. Agents message only their neighbours (a message to anyone else is an
    error); each task ends when its asker answers; the run ends when every task is answered
    (or at the round budget: an unreachable fact is never found).

    Args:
        graph: The social network (any networkx graph over 0..n-1); default one the size of
            InformativeBench's, 140 people and 588 relations (`tasks.paper_graph`).
        tasks: How many tasks to generate (askers all different), or the tasks themselves as
            dicts (asker, kind, need, answer; checked).
        kinds: Which kinds of task to generate, in turn: lookup, join, schedule.
        max_hops: Generated tasks need facts 1..max_hops hops from their asker.
        facts_seed: Seed of the people's facts and of the tasks.
        agent: ``rule`` (the breadth-first baseline, `Informant`) or ``llm`` (`InfoNavAgent`).
        model: The LLM agents' model (default the offline stand-in).
    """

    name = "info_asymmetry"
    kinds: ClassVar[tuple[str, ...]] = ("ask", "tell")
    default_field = None  # type: ignore[assignment]
    replies = (InfoNavReply,)  # type: ignore[assignment]
    instructions = "Find the facts your tasks need by asking your neighbours; answer when you know them."

    def __init__(
        self,
        graph: nx.Graph | None = None,
        *,
        tasks: int | Sequence[Mapping[str, Any]] = 40,
        kinds: Sequence[str] = KINDS,
        max_hops: int = 4,
        facts_seed: int = 0,
        agent: str = "rule",
        model: str = "moot/simulated",
    ) -> None:
        network = paper_graph(facts_seed) if graph is None else graph
        if not isinstance(network, nx.Graph) or network.is_directed():
            raise ConfigError(
                f"graph must be an undirected networkx graph (who may message whom), got {graph!r}."
            )
        if sorted(network.nodes) != list(range(network.number_of_nodes())):
            raise ConfigError(
                "The graph's nodes must be 0..n-1 (one per agent); relabel it "
                "(nx.convert_node_labels_to_integers)."
            )
        bad = [k for k in kinds if k not in KINDS]
        if bad or not kinds:
            raise ConfigError(f"Unknown task kind(s) {bad or kinds!r}; use some of: {', '.join(KINDS)}.")
        if agent not in ("rule", "llm"):
            raise ConfigError(
                f"agent must be 'rule' (breadth-first baseline) or 'llm' (InfoNav), got {agent!r}."
            )
        super().__init__(network, fanout=None, mode="push", tolerance=0.0)
        self.network = network
        self.facts_seed, self.max_hops, self.agent, self.model = facts_seed, max_hops, agent, model
        if isinstance(tasks, int):
            self.tasks = generate_tasks(network, tasks, facts_seed, max_hops, kinds)
        else:
            self.tasks = check_tasks(list(tasks), network, facts_seed)

    def natural_size(self) -> int | None:
        return int(self.network.number_of_nodes())

    def stop_rule(self, field: str | None) -> StopRule | None:
        return Threshold("pending.max", "<=", 0)  # every task answered

    def watched_fields(self) -> tuple[str, ...]:
        return ("pending",)

    def views(self) -> Mapping[str, str]:
        return {"info_task_results": TASK_RESULTS, "info_success_by_hops": SUCCESS_BY_HOPS}

    def default_population(self, n: int, agent: type[Agent] | None = None, **state: Any) -> Population:
        """One agent per person of the network, each with its facts and the tasks it asks."""
        people = self.network.number_of_nodes()
        if n != people:
            raise ConfigError(
                f"The network has {people} people; run {people} agents (--agents {people}), not {n}."
            )
        cls: type[Any] = agent or (InfoNavAgent if self.agent == "llm" else Informant)
        asked: dict[int, list[dict[str, Any]]] = {}
        for t in self.tasks:
            asked.setdefault(t.asker, []).append(json.loads(t.to_json()))
        extra = {"model": self.model} if issubclass(cls, InfoNavAgent) else {}
        people = [
            cls(
                id=i,
                facts=facts_of(i, self.facts_seed),
                tasks=asked.get(i, []),
                pending=len(asked.get(i, [])),
                **extra,
                **state,
            )
            for i in range(n)
        ]
        return Population.from_agents(people)

    def describe(self) -> dict[str, object]:
        out = super().describe()
        out.update(
            name=self.name,
            people=self.network.number_of_nodes(),
            relations=self.network.number_of_edges(),
            facts_seed=self.facts_seed,
            max_hops=self.max_hops,
            agent=self.agent,
            tasks=[json.loads(t.to_json()) for t in self.tasks],
        )
        return out

    def __repr__(self) -> str:
        return (
            f"InfoAsymmetry(people={self.network.number_of_nodes()}, "
            f"relations={self.network.number_of_edges()}, tasks={len(self.tasks)}, agent={self.agent!r})"
        )
