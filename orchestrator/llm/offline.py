"""Offline models, served to litellm as the custom provider ``moot``.

- ``moot/echo``: deterministic, for tests. It answers with the last user
  message, verbatim. Tokens are counted as whitespace-separated words, so token
  totals can be predicted exactly.
- ``moot/simulated``: a seeded STAND-IN for a language model, not one. Asked for
  a protocol's reply model (the JSON schema in ``response_format``), it lets that
  reply's `Reply.simulate` read the prompt and play the protocol plausibly (move
  toward what the swarm view shows, drift toward the opinions heard); asked in
  plain text (an interview), it says so and repeats the state its prompt gave. Its
  answers depend only on the prompt and the call's seed, so runs replay exactly.

Both cost nothing and make no network call; `make demo` and the examples use
them unless given ``--model``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from typing import Any

import numpy as np

from agents.reply import Reply

__all__ = ["OFFLINE_MODELS", "model_label", "register"]

OFFLINE_MODELS = ("moot/echo", "moot/simulated")
_registered = False


def model_label(model: str) -> str:
    """A model's name as output shows it: an offline model labelled as the stand-in it is."""
    return (
        f"{model} (offline stand-in, not a language model)" if str(model).startswith("moot/") else str(model)
    )


def _words(text: str) -> int:
    return len(text.split())


def _prompt(messages: list[dict[str, Any]]) -> str:
    return "\n\n".join(str(m.get("content") or "") for m in messages)


def answer(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """The offline model's answer (the message content) to `messages`."""
    if model == "echo":
        users = [m for m in messages if m.get("role") == "user"]
        return str(users[-1].get("content") or "") if users else ""
    if model != "simulated":
        raise ValueError(f"Unknown offline model 'moot/{model}'; use one of: {', '.join(OFFLINE_MODELS)}.")
    prompt = _prompt(messages)
    digest = hashlib.sha256(f"{params.get('seed')}|{prompt}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    fmt = params.get("response_format") or {}
    schema = fmt.get("json_schema", {}).get("schema", {}) if isinstance(fmt, dict) else {}
    if not schema:  # a question in plain text (an interview): say what the prompt gave it
        state = prompt.split("Your state:\n", 1)[1].split("\n\n", 1)[0] if "Your state:\n" in prompt else ""
        shown = "; ".join(state.splitlines()) or "none given"
        return f"I am moot/simulated, an offline stand-in, not a language model. My state: {shown}."
    reply = _reply_named(str(schema.get("title", "")))
    if reply is None:
        return "I am moot/simulated, an offline stand-in; I answer only a protocol's reply model."
    return json.dumps(reply.simulate(prompt, rng))


def _reply_named(name: str) -> type[Reply] | None:
    """The reply class called `name`, importing the installed protocols if need be."""
    found = Reply.named(name)
    if found is None:
        from protocols.registry import available_protocols, get_protocol

        for proto in available_protocols():  # importing a protocol registers its replies
            with contextlib.suppress(Exception):
                get_protocol(proto)
        found = Reply.named(name)
    return found


def register() -> None:
    """Register the ``moot`` provider with litellm in this process (idempotent)."""
    global _registered
    if _registered:
        return
    import litellm
    from litellm import ModelResponse
    from litellm.llms.custom_llm import CustomLLM
    from litellm.types.utils import Choices, Usage
    from litellm.types.utils import Message as LLMMessage

    def respond(model: str, messages: list[dict[str, Any]], optional_params: dict[str, Any]) -> Any:
        started = time.perf_counter()
        text = answer(model, messages, optional_params)
        prompt_tokens = sum(_words(str(m.get("content") or "")) for m in messages)
        completion_tokens = _words(text)
        return ModelResponse(
            model=f"moot/{model}",
            choices=[
                Choices(index=0, finish_reason="stop", message=LLMMessage(role="assistant", content=text))
            ],
            usage=Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            ),
            response_ms=(time.perf_counter() - started) * 1000,
        )

    class MootOffline(CustomLLM):  # type: ignore[misc]
        def completion(self, model: str, messages: list[dict[str, Any]], *args: Any, **kw: Any) -> Any:
            return respond(model, messages, kw.get("optional_params") or {})

        async def acompletion(self, model: str, messages: list[dict[str, Any]], *args: Any, **kw: Any) -> Any:
            return respond(model, messages, kw.get("optional_params") or {})

    litellm.custom_provider_map = [
        *(p for p in litellm.custom_provider_map if p.get("provider") != "moot"),
        {"provider": "moot", "custom_handler": MootOffline()},
    ]
    litellm.register_model(
        {
            name: {
                "input_cost_per_token": 0.0,
                "output_cost_per_token": 0.0,
                "litellm_provider": "moot",
                "mode": "chat",
            }
            for name in OFFLINE_MODELS
        }
    )
    _registered = True
