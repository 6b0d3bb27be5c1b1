"""`LLMAgent`: an agent whose `act` asks a language model for the protocol's reply.

It renders its persona, the protocol's instructions, what it observes, what it
heard and its own recent replies into chat messages; asks the model for the
protocol's reply model (a JSON schema); validates the answer; and, when the
answer does not fit, asks again with the error shown, a bounded number of
times. An answer that still does not fit is logged (``llm_calls.error`` and an
``events`` row) and the agent does nothing that round; the run goes on.

It never calls a provider itself: the host hands it a client as ``ctx.llm``
(see `orchestrator.llm`), which applies the run's limits, retries, budget and cache.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from agents.agent import ActResult, Agent
from agents.client import LLMClient
from agents.context import Context
from agents.errors import ConfigError, MootError
from agents.message import Message
from agents.reply import Reply

__all__ = ["LLMAgent", "LLMClient", "parse_reply"]

FEEDBACK_LIMIT = 400
"""Characters of a bad answer and of its error shown back to the model."""


def parse_reply(text: str, model: type[Reply]) -> Reply:
    """The reply in a model's answer: a JSON object (code fences allowed) that fits `model`.

    Raises:
        ValueError: ``invalid_json: ...`` or ``schema: ...``, saying what is wrong.
    """
    body = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", body, re.S)
    if fenced:
        body = fenced.group(1).strip()
    if not body.startswith("{"):
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end <= start:
            raise ValueError(f"invalid_json: the answer holds no JSON object: {_clip(text)}")
        body = body[start : end + 1]
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid_json: {exc.msg} (character {exc.pos}): {_clip(text)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"schema: expected a JSON object, got {type(data).__name__}")
    try:
        return model(**data)
    except (ValidationError, ConfigError, TypeError) as exc:
        raise ValueError(f"schema: {_clip(str(exc))}") from None


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= FEEDBACK_LIMIT else text[:FEEDBACK_LIMIT] + f"... ({len(text)} chars)"


class LLMAgent(Agent):
    """An agent played by a language model, through litellm.

    Subclass it to add state the protocol uses (an ``opinion``); a reply's
    `Reply.state` sets the fields the agent has.

    Example:
        >>> class Voter(LLMAgent):
        ...     opinion: float = 0.5
        >>> pop = Population.of(Voter, 100, persona="You are a cautious voter.",
        ...                     model="openai/gpt-4o-mini")

    Attributes:
        persona: The system prompt: who this agent is.
        model: Any litellm model string (``openai/gpt-4o-mini``, ``hosted_vllm/...``,
            ``ollama/llama3``, ``anthropic/...``); ``moot/simulated`` is an offline
            stand-in, not a language model.
        temperature: Sampling temperature.
        max_tokens: Cap on the answer's length.
        memory: How many of its own past rounds the agent is shown.
        history: Its recent replies (kept by the agent; the last `memory` rounds).
    """

    persona: str = "You are an agent in a multi-agent study."
    model: str = "moot/simulated"
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(300, ge=1)
    memory: int = Field(3, ge=0)
    history: list[str] = Field(default_factory=list)

    unlogged: ClassVar[tuple[str, ...]] = ("persona", "model")

    own_fields: ClassVar[tuple[str, ...]] = (
        "persona",
        "model",
        "temperature",
        "max_tokens",
        "memory",
        "history",
    )

    async def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        client: LLMClient | None = ctx.llm
        if client is None:
            raise MootError(
                f"{type(self).__name__} needs an LLM client in ctx.llm; run it with launch(...) (which "
                "hands one to every host), not by calling act() directly."
            )
        reply_model = self.reply_model(ctx)
        messages = self.render(inbox, ctx, reply_model)
        schema = json.loads(_schema_text(reply_model))  # a fresh copy: providers may edit it
        fmt = {"type": "json_schema", "json_schema": {"name": reply_model.__name__, "schema": schema}}
        attempts = max(1, client.reply_attempts)
        problem = ""
        for _ in range(attempts):
            done = await client.complete(
                agent=self.id,
                round=ctx.round,
                messages=messages,
                model=self.model,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                response_format=fmt,
            )
            if not done.ok:
                client.note(
                    ctx.round, "llm_call_failed", f"agent {self.id} ({done.model}): {done.error}", self.id
                )
                return None
            try:
                reply = parse_reply(done.text, reply_model)
            except ValueError as exc:
                problem = str(exc)
                kind = problem.split(":", 1)[0]
                if done.finish_reason == "length":
                    kind, problem = "truncated", f"truncated: the answer hit max_tokens; {problem}"
                client.reject(done, kind, problem)
                messages = [
                    *messages,
                    {"role": "assistant", "content": _clip(done.text)},
                    {
                        "role": "user",
                        "content": f"That answer could not be used ({problem}). Answer again with only "
                        f"a JSON object that fits the {reply_model.__name__} schema.",
                    },
                ]
                continue
            self._remember(ctx.round, reply)
            return reply
        client.note(
            ctx.round,
            "llm_reply_invalid",
            f"agent {self.id} ({done.model}) gave no usable {reply_model.__name__} in {attempts} "
            f"attempt(s); it does nothing this round. Last problem: {problem}",
            self.id,
        )
        return None

    def reply_model(self, ctx: Context) -> type[Reply]:
        """The reply this agent asks for: the protocol's first (override to choose another)."""
        if not ctx.replies:
            raise ConfigError(
                f"{type(self).__name__} needs a protocol with reply models (swarm_grid, gossip, ...); "
                "this protocol publishes none."
            )
        return ctx.replies[0]

    def render(self, inbox: list[Message], ctx: Context, reply_model: type[Reply]) -> list[dict[str, str]]:
        """The chat messages for this round: persona + instructions, then what it sees and heard."""
        system = self.persona.strip()
        if ctx.instructions:
            system += "\n\n" + ctx.instructions.strip()
        system += (
            f"\n\nAnswer with one JSON object that fits this schema ({reply_model.__name__}):\n"
            + _schema_text(reply_model)
        )
        parts = [f"Round {ctx.round}. You are agent {self.id}."]
        state = self.state_text()
        if state:
            parts.append("Your state:\n" + state)
        seen = ctx.observation
        if seen is not None:
            parts.append(seen.render())
        heard = seen.render_inbox(inbox) if seen is not None else None  # a protocol's own way
        if heard is not None:
            parts.append(heard)
        elif inbox:
            parts.append("Messages you received:\n" + "\n".join(_heard(m) for m in inbox))
        else:
            parts.append("Messages you received: none.")
        if self.memory and self.history:
            parts.append("Your previous replies:\n" + "\n".join(self.history[-self.memory :]))
        return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]

    def interview(self, question: str, round: int) -> list[dict[str, str]]:
        """The chat messages that put `question` to this agent as it was after `round`: its
        persona, its state and its memory (`history`), and the question, to be answered in
        plain text (`orchestrator.interview`; the answer changes nothing in the run)."""
        system = (
            self.persona.strip()
            + "\n\nAn interviewer asks you about the study you take part in. Your answer changes "
            "nothing in it. Answer in plain text, in a few sentences."
        )
        parts = [f"After round {round}. You are agent {self.id}."]
        state = self.state_text()
        if state:
            parts.append("Your state:\n" + state)
        if self.memory and self.history:
            parts.append("Your previous replies:\n" + "\n".join(self.history[-self.memory :]))
        parts.append("Question: " + question.strip())
        return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]

    def state_text(self) -> str:
        """The agent's own state as shown to the model (fields a subclass adds)."""
        names = [n for n in self.state_fields() if n not in self.own_fields]
        return "\n".join(f"{n}: {_show(getattr(self, n))}" for n in names)

    def _remember(self, round: int, reply: Reply) -> None:
        for name, value in reply.state().items():
            if name in type(self).model_fields and name not in self.own_fields:
                setattr(self, name, value)
        if self.memory:
            self.history = [*self.history, f"round {round}: {reply.model_dump_json()}"][-self.memory :]


@functools.cache
def _schema_text(model: type[Reply]) -> str:
    """A reply model's JSON schema as text (pydantic takes ~2 ms to make one: once per class)."""
    return json.dumps(model.model_json_schema())


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _heard(m: Message) -> str:
    who = f"agent {m.sender}" if m.sender >= 0 else "the world"
    said = [m.kind]
    if m.value is not None:
        said.append(_show(m.value))
    if m.text:
        said.append(f'"{m.text}"')
    return f"- {who}: " + " ".join(said)
