"""What a run of LLM agents will cost, before it starts (``moot run ... --estimate``).

For a sample of the LLM agents, the prompts they would be sent are rendered round by round
as the run would render them (persona, instructions, state, the messages the protocol
delivers to them, their memory of their own replies), with the replies the offline
stand-in would give as stand-ins for the model's. Tokens are counted as the model counts
them (litellm's tokenizer for the model; words for the offline ``moot/*`` models, as they
count), extrapolated over every LLM agent and round (one call per agent per round: re-asks
after an unusable answer are not foreseen, and a stop rule may end the run sooner), and
priced from litellm's price list or `LLMConfig.prices` (``--price MODEL=IN,OUT``). No
model is called.

The messages an agent hears are the protocol's routing of one message from every agent (so
a gossip agent's inbox is sized as its graph and fanout make it); protocols whose agents
hear the world instead (swarm grid, feed, debate) are estimated from their observation
alone, which undercounts what they see later in the run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.batch import MessageBatch
from agents.context import Context
from agents.llm import LLMAgent
from agents.population import Population
from orchestrator.errors import ConfigError
from orchestrator.llm import LLMConfig
from orchestrator.llm.offline import model_label
from protocols.base import MessageProtocol, Router

__all__ = ["Estimate", "estimate"]


@dataclass(frozen=True)
class Estimate:
    """A run's expected LLM use (see the module docstring)."""

    model: str
    agents: int
    rounds: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    """Dollars; None when the model has no price (give one with ``--price``)."""
    counted_by: str
    sample: int

    def render(self) -> str:
        cost = (
            f"${self.cost:,.4f}"
            if self.cost is not None
            else "unknown: litellm has no price for it (--price MODEL=PROMPT,COMPLETION)"
        )
        return "\n".join(
            [
                f"estimate for {self.agents:,} LLM agents x {self.rounds:,} rounds, model "
                f"{model_label(self.model)} (no model called)",
                f"  calls:             {self.calls:,} (one per agent per round; a stop rule may end sooner)",
                f"  prompt tokens:     {self.prompt_tokens:,}",
                f"  completion tokens: {self.completion_tokens:,}",
                f"  cost:              {cost}",
                f"  from {self.sample} agents' prompts, rendered round by round; tokens counted by "
                f"{self.counted_by}",
            ]
        )


def _counter(model: str) -> tuple[Any, str]:
    """How `model` counts tokens: (count(messages or text), its name)."""
    if model.startswith("moot/"):

        def words(messages: Any = None, text: str = "") -> int:
            if messages is not None:
                return sum(len(str(m.get("content") or "").split()) for m in messages)
            return len(text.split())

        return words, "words (the offline models count words)"
    from orchestrator.llm.gateway import _import_litellm

    litellm = _import_litellm({})

    def tokens(messages: Any = None, text: str = "") -> int:
        if messages is not None:
            return int(litellm.token_counter(model=model, messages=messages))
        return int(litellm.token_counter(model=model, text=text))

    return tokens, f"litellm's tokenizer for {model}"


def _price(model: str, config: LLMConfig) -> tuple[float, float] | None:
    if model in config.prices:
        return config.prices[model]
    if model.startswith("moot/"):
        return 0.0, 0.0
    from orchestrator.llm.gateway import _import_litellm

    costs = _import_litellm({}).model_cost
    entry = costs.get(model) or costs.get(model.split("/", 1)[-1])
    if not entry or entry.get("input_cost_per_token") is None:
        return None
    return float(entry["input_cost_per_token"]), float(entry.get("output_cost_per_token") or 0.0)


def _inbox_sizes(
    protocol: MessageProtocol, router: Router, n: int, seed: int, kind: str, ids: list[int]
) -> dict[int, int]:
    """How many messages each of `ids` hears when every agent sends one (the protocol's routing)."""
    kinds = protocol.kind_table()
    if kind not in kinds:
        return dict.fromkeys(ids, 0)
    sent = MessageBatch.broadcast(np.arange(n, dtype=np.int64), kind, np.full(n, 0.5), kinds=kinds)
    got = router.route(sent, 1, seed)
    counts = np.bincount(got.receiver[got.receiver >= 0], minlength=n)
    return {i: int(counts[i]) for i in ids}


def estimate(
    population: Population,
    protocol: MessageProtocol,
    *,
    rounds: int,
    seed: int = 0,
    llm: LLMConfig | None = None,
    sample: int = 20,
) -> Estimate:
    """The expected calls, tokens and cost of running `population` over `protocol` for `rounds`
    rounds (see the module docstring); calls no model."""
    config = llm or LLMConfig()
    n = len(population)
    starts = np.cumsum([0, *(g.n for g in population.groups)])
    llm_ids = [
        i
        for g, s in zip(population.groups, starts)
        if issubclass(g.cls, LLMAgent)
        for i in range(int(s), int(s) + g.n)
    ]
    if not llm_ids:
        classes = ", ".join(c.__name__ for c in population.classes)
        raise ConfigError(f"--estimate: the population has no LLM agents ({classes}); it calls no model.")
    picked = [llm_ids[int(k)] for k in np.linspace(0, len(llm_ids) - 1, min(sample, len(llm_ids))).round()]
    agents: list[LLMAgent] = []
    for i in picked:
        (block,) = population.blocks(i, i + 1, seed)
        assert block.agents is not None
        agent = block.agents[0]
        assert isinstance(agent, LLMAgent)
        agents.append(agent)
    model = config.model or agents[0].model
    count, counted_by = _counter(model)
    replies = protocol.replies
    router = protocol.build(n, seed)
    world = router.world
    reply_model = agents[0].reply_model(Context(0, picked[0], seed, replies=replies))
    probe = reply_model.model_validate(reply_model.simulate("", np.random.default_rng(seed)))
    kind = probe.to_messages()[0].kind if probe.to_messages() else "opinion"
    heard = _inbox_sizes(protocol, router, n, seed, kind, picked)
    steady = min(rounds, max(a.memory for a in agents) + 2)  # after that, a prompt stops growing
    prompt = completion = 0.0
    rng = np.random.default_rng(seed)
    for agent, i in zip(agents, picked):
        agent = agent.model_copy(deep=True)
        per_round: list[tuple[int, int]] = []
        last_reply = probe
        for r in range(steady):
            ctx = Context(
                r,
                i,
                seed,
                observation=None if world is None else world.observe(i, 0),
                instructions=protocol.instructions,
                replies=replies,
            )
            inbox = (
                []
                if r == 0
                else [
                    m.model_copy(update={"sender": (i + k + 1) % n})
                    for k in range(heard[i])
                    for m in last_reply.to_messages()[:1]
                ]
            )
            messages = agent.render(inbox, ctx, reply_model)
            answer = reply_model.simulate("\n\n".join(m["content"] for m in messages), rng)
            reply = reply_model.model_validate(answer)
            per_round.append((count(messages=messages), count(text=json.dumps(answer))))
            agent._remember(r, reply)
            last_reply = reply
        tail = rounds - steady
        prompt += sum(p for p, _ in per_round) + tail * per_round[-1][0]
        completion += sum(c for _, c in per_round) + tail * per_round[-1][1]
    scale = len(llm_ids) / len(agents)
    prompt_tokens, completion_tokens = round(prompt * scale), round(completion * scale)
    price = _price(model, config)
    cost = None if price is None else prompt_tokens * price[0] + completion_tokens * price[1]
    return Estimate(
        model,
        len(llm_ids),
        rounds,
        len(llm_ids) * rounds,
        prompt_tokens,
        completion_tokens,
        None if cost is None or math.isnan(cost) else cost,
        counted_by,
        len(agents),
    )
