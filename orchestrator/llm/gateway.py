"""The LLM client a host hands its agents: every call through `litellm.acompletion`.

Around litellm, moot's own policy (reference/litellm.md sections 6 and 7):
a bound on calls in flight, admission by the run's `LLMService` (cluster-wide
rate limits, budget, cache), retries with back-off that honour Retry-After on
429 and 503, a timeout per attempt, and one `llm_calls` row per call. litellm's
own retries are off (``num_retries=0``, ``max_retries=0``), and it is imported
lazily, once per process, with its network fetches turned off.

Admission requests are batched: every call that wants to start in the same
turn of the event loop goes to the service in one message, with the
settlements of the calls that finished since.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from orchestrator.llm.config import OFFLINE_ENV, LLMConfig, Redactor
from orchestrator.llm.service import Admission, LLMService, Request, Settlement

__all__ = ["CALL_COLUMNS", "Completion", "Gateway", "LLMSetup", "LocalLink", "ServiceLink", "cache_key"]

_RETRYABLE = (
    "RateLimitError",
    "ServiceUnavailableError",
    "InternalServerError",
    "BadGatewayError",
    "Timeout",
    "APIConnectionError",
)
_MAX_BACKOFF = 30.0
_LATE = 0.05
"""Seconds a granted call may start late before it asks for a new slot."""
_MAX_READMIT = 20
MAX_ANSWER = 65_536
"""Characters of an answer moot keeps at most: a longer one is a failed call (``too_long``),
never cached, shown to an agent or logged whole."""
_AUTH = re.compile(
    r"missing credentials|api[ _-]?key|authenticat|unauthori[sz]ed|permission denied|forbidden", re.I
)
"""Provider errors that no retry can mend (a missing or wrong key): classified ``auth``."""


class ServiceLink(Protocol):
    """How a host reaches the run's `LLMService` (directly, or through a Ray actor)."""

    async def admit(self, requests: list[Request], settle: list[Settlement]) -> list[Admission]:
        """Settle finished calls and admit new ones (see `LLMService.admit`)."""
        ...


class LocalLink:
    """The service in this process (the in-process runtime)."""

    def __init__(self, service: LLMService) -> None:
        self.service = service

    async def admit(self, requests: list[Request], settle: list[Settlement]) -> list[Admission]:
        return self.service.admit(requests, settle)


@dataclass(frozen=True)
class LLMSetup:
    """What each host needs to call models: the settings, the service, the provider env.

    Attributes:
        config: The run's `LLMConfig`.
        link: The run's service.
        env: Provider keys and endpoints from the driver, set in the host's process
            (never logged; hidden from repr).
    """

    config: LLMConfig
    link: ServiceLink
    env: dict[str, str] = field(default_factory=dict, repr=False)
    run_id: str = ""
    """The run whose calls these are: a cached answer this run paid for (before a crash it was
    resumed from) logs its cost again, and counts against the budget, once."""


@dataclass
class Completion:
    """One call's outcome, as the agent sees it.

    Attributes:
        text: The model's answer ("" when the call failed).
        error_type: None on success; else ``timeout``, ``rate_limited``, ``budget``,
            ``provider``, ... (the agent adds ``invalid_json``/``schema`` when the
            answer does not fit).
        error: What went wrong, in words.
        cached: Whether the answer came from the response cache.
        model: The model that answered (after `LLMConfig.model` overrides the agent's).
        row: Index of its `llm_calls` row within this host's round.
    """

    text: str
    model: str = ""
    error_type: str | None = None
    error: str | None = None
    cached: bool = False
    row: int = -1
    finish_reason: str | None = None
    cache: tuple[str, dict[str, Any]] | None = field(default=None, repr=False)
    """(key, record) to cache once the agent has validated the answer (set by the gateway)."""

    @property
    def ok(self) -> bool:
        return self.error_type is None


CALL_COLUMNS: dict[str, pa.DataType] = {
    "round": pa.int32(),
    "agent": pa.int64(),
    "call": pa.int32(),
    "host": pa.int32(),
    "model": pa.string(),
    "prompt_tokens": pa.int32(),
    "completion_tokens": pa.int32(),
    "cost": pa.float64(),
    "latency_s": pa.float64(),
    "queued_s": pa.float64(),
    "cache_hit": pa.bool_(),
    "attempts": pa.int32(),
    "finish_reason": pa.string(),
    "error_type": pa.string(),
    "error": pa.string(),
}
"""The columns of an `llm_calls` row as hosts report them (the log adds ``run_id``)."""


def cache_key(
    model: str, messages: list[dict[str, str]], params: dict[str, Any], agent: int, round: int
) -> str:
    """The cache key of a call: model, messages, parameters (temperature, seed, reply schema,
    max tokens), agent and round."""
    blob = json.dumps([model, messages, params, agent, round], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def call_seed(seed: int, agent: int, round: int) -> int:
    """The `seed` sent with a call, from the run's seed, the agent and the round."""
    digest = hashlib.sha256(f"{seed}|{agent}|{round}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


_litellm: Any = None


def _import_litellm(env: dict[str, str]) -> Any:
    """Import litellm once per process, offline-safe and quiet; register moot's offline models."""
    global _litellm
    if _litellm is not None:
        return _litellm
    for k, v in OFFLINE_ENV.items():
        os.environ.setdefault(k, v)
    for k, v in env.items():
        os.environ.setdefault(k, v)
    import litellm

    litellm.suppress_debug_info = True
    litellm.disable_hf_tokenizer_download = True
    # moot registers no litellm callbacks, so prompts go to no litellm sink. Its redaction
    # for them (turn_off_message_logging) deep-copies every call: 2-3 ms of CPU each here.
    litellm.callbacks = []
    litellm.telemetry = False
    from orchestrator.llm.offline import register

    register()
    # The first call in a process pays ~0.5 s of lazy set-up; pay it now, offline, so
    # that it never delays a call that the rate limiter has already scheduled.
    litellm.completion(model="moot/echo", messages=[{"role": "user", "content": "warm up"}])
    _litellm = litellm
    return litellm


class Gateway:
    """One host's LLM client (``ctx.llm``); see the module docstring.

    Args:
        setup: The run's LLM set-up.
        host: This host's index (logged with each call).
        hosts: How many hosts share the run's in-flight bound.
        seed: The run's seed.
    """

    def __init__(self, setup: LLMSetup, host: int, hosts: int, seed: int) -> None:
        self.config = setup.config
        self.link = setup.link
        self.env = setup.env
        self.run_id = setup.run_id
        self.host = host
        self.seed = seed
        self.in_flight = self.config.per_host_in_flight(hosts)
        self.reply_attempts = self.config.reply_attempts
        self._gate: asyncio.Semaphore | None = None
        self._pending: list[tuple[str | None, int, asyncio.Future[Admission]]] = []
        self._settle: list[Settlement] = []
        self._pumping = False
        self._calls: dict[tuple[int, int], int] = {}
        self._rows: dict[str, list[Any]] = {k: [] for k in CALL_COLUMNS}
        self._spans: list[tuple[int, int]] = []  # each row's call, past the in-flight gate (ns)
        self._events: list[tuple[int, int, str, str]] = []
        self._unpriced: set[str] = set()
        self._priced = False
        self._cacheable: dict[int, tuple[str, dict[str, Any]]] = {}  # row -> (key, record)
        self.redact = Redactor.from_env(setup.env, self.config.api_key_env)

    # -- what agents call ------------------------------------------------------------------

    async def complete(
        self,
        *,
        agent: int,
        round: int,
        messages: list[dict[str, str]],
        model: str,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        """Ask `model` for a chat completion; never raises for provider failures.

        Returns:
            A `Completion`: the text, or the error that ended the call (also logged).
        """
        litellm = _import_litellm(self.env)
        self._register_prices(litellm)
        model = self.config.model or model
        params: dict[str, Any] = {
            "temperature": temperature,
            "seed": call_seed(self.seed, agent, round),
        }
        if max_tokens is not None:
            params["max_tokens"] = max_tokens
        if response_format is not None:
            params["response_format"] = response_format
        key = cache_key(model, messages, params, agent, round)
        estimate = sum(len(m.get("content") or "") for m in messages) // 4 + (max_tokens or 256)
        call = self._calls.get((agent, round), 0)
        self._calls[(agent, round)] = call + 1
        row = dict.fromkeys(CALL_COLUMNS)
        row.update(round=round, agent=agent, call=call, host=self.host, model=model, attempts=0)
        started = time.perf_counter()
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.in_flight)
        async with self._gate:
            through = time.time_ns()
            out = await self._call(litellm, model, messages, params, key, estimate, row, started)
            span = (through, time.time_ns())
        waited = row["queued_s"] if row["queued_s"] is not None else time.perf_counter() - started
        row["queued_s"] = waited
        row["latency_s"] = time.perf_counter() - started - waited
        out.row = self._add_row(row)
        if out.cache is not None:  # cached only once the agent has validated it (`reject`)
            self._cacheable[out.row] = out.cache
            out.cache = None
        self._spans.append(span)
        out.model = model
        return out

    def reject(self, completion: Completion, error_type: str, error: str) -> None:
        """Mark a call whose answer the agent could not use (its row gets the error; the answer
        is not cached)."""
        self._cacheable.pop(completion.row, None)
        if 0 <= completion.row < len(self._rows["error_type"]):
            self._rows["error_type"][completion.row] = error_type
            self._rows["error"][completion.row] = self.redact(error)[:500]

    def note(self, round: int, kind: str, detail: str, agent: int = -1) -> None:
        """Record an event (an agent that gave up this round), for the ``events`` table."""
        self._events.append((round, agent, kind, self.redact(detail)[:1000]))

    # -- what the host calls ------------------------------------------------------------------

    async def flush(self) -> None:
        """Send the settlements still held, and the answers to cache (end of the host's round)."""
        for key, record in self._cacheable.values():
            self._settle.append(Settlement(-1, 0, 0.0, key, record))
        self._cacheable = {}
        if self._settle:
            done, self._settle = self._settle, []
            await self.link.admit([], done)

    def drain(self) -> tuple[pa.Table | None, list[tuple[int, str, str]], list[tuple[int, int]]]:
        """This round's `llm_calls` rows (sorted by round, agent and call), events, and when each
        row's call was in flight (wall-clock ns, from past the in-flight gate to its answer, for
        trace spans); then forget them."""
        rows, events = self._rows, [(r, k, d) for r, _, k, d in sorted(self._events)]
        spans = self._spans
        self._rows = {k: [] for k in CALL_COLUMNS}
        self._spans = []
        self._events = []
        self._calls = {}
        if not rows["round"]:
            return None, events, []
        table = pa.table({k: pa.array(v, t) for (k, t), v in zip(CALL_COLUMNS.items(), rows.values())})
        order = pc.sort_indices(
            table, [("round", "ascending"), ("agent", "ascending"), ("call", "ascending")]
        )
        return table.take(order), events, [spans[i] for i in order.to_pylist()]

    # -- inside ------------------------------------------------------------------

    def _add_row(self, row: dict[str, Any]) -> int:
        for k, v in row.items():
            self._rows[k].append(v)
        return len(self._rows["round"]) - 1

    async def _admit(self, key: str | None, tokens: int) -> Admission:
        fut: asyncio.Future[Admission] = asyncio.get_running_loop().create_future()
        self._pending.append((key, tokens, fut))
        if not self._pumping:
            self._pumping = True
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._pump()))
        return await fut

    async def _pump(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                done, self._settle = self._settle, []
                try:
                    answers = await self.link.admit([(k, t) for k, t, _ in batch], done)
                except Exception as exc:
                    for _, _, fut in batch:
                        fut.set_exception(exc)
                    continue
                for (_, _, fut), ans in zip(batch, answers):
                    fut.set_result(ans)
        finally:
            self._pumping = False

    async def _call(
        self,
        litellm: Any,
        model: str,
        messages: list[dict[str, str]],
        params: dict[str, Any],
        key: str,
        estimate: int,
        row: dict[str, Any],
        started: float,
    ) -> Completion:
        cfg = self.config
        admission = await self._admit(key if cfg.cache != "" else None, estimate)
        if admission.verdict == "hit" and admission.cached is not None:
            return self._from_cache(admission.cached, row)
        row["cache_hit"] = False
        extra: dict[str, Any] = {}
        if cfg.api_base:
            extra["api_base"] = cfg.api_base
        if cfg.api_key_env and os.environ.get(cfg.api_key_env):
            extra["api_key"] = os.environ[cfg.api_key_env]
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            for _ in range(_MAX_READMIT):
                if admission.verdict == "budget":
                    return self._failed(row, "budget", f"the budget of ${cfg.budget} is spent; no call made")
                due = loop.time() + admission.delay
                if admission.delay > 0:
                    await asyncio.sleep(admission.delay)
                if loop.time() - due <= _LATE:
                    break
                # Woken too late to keep the pace: sending now could crowd the provider's window.
                self._settle.append(Settlement(admission.ticket, 0, 0.0))
                admission = await self._admit(None, estimate)
            attempt += 1
            row["attempts"] = attempt
            if attempt == 1:  # what came before was waiting: the in-flight bound, the rate limits
                row["queued_s"] = time.perf_counter() - started
            try:
                resp = await asyncio.wait_for(
                    litellm.acompletion(
                        model=model,
                        messages=messages,
                        timeout=cfg.timeout,
                        num_retries=0,
                        max_retries=0,
                        **params,
                        **extra,
                    ),
                    cfg.timeout + 5.0,  # litellm's own timeout should fire first
                )
            except (asyncio.TimeoutError, Exception) as exc:
                kind = "Timeout" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
                self._settle.append(Settlement(admission.ticket, 0, 0.0))
                if model.startswith("moot/"):  # an offline model's failure is a bug, not weather
                    return self._failed(row, "offline_model", _describe(exc, kind))
                if kind in ("AuthenticationError", "PermissionDeniedError") or (
                    kind != "RateLimitError" and _AUTH.search(str(exc))
                ):
                    return self._failed(row, "auth", _describe(exc, kind))  # no retry mends a key
                if kind not in _RETRYABLE or attempt >= cfg.max_attempts:
                    return self._failed(row, _error_type(kind), _describe(exc, kind))
                wait = _retry_after(exc)
                if wait is None:
                    cap = min(_MAX_BACKOFF, cfg.backoff * 2**attempt)
                    wait = cap * _fraction(f"{key}|{attempt}")  # full jitter, the same on a rerun
                await asyncio.sleep(wait)
                admission = await self._admit(None, estimate)
                continue
            return self._succeeded(litellm, model, resp, row, key, admission)

    def _from_cache(self, c: dict[str, Any], row: dict[str, Any]) -> Completion:
        """A cached answer. One this very run paid for (in an attempt cut short, then resumed)
        keeps its cost, which counts against the budget again; any other cost nothing."""
        own = bool(self.run_id) and c.get("run") == self.run_id
        cost = c.get("cost") if own else 0.0
        if own and cost:
            self._settle.append(Settlement(-1, 0, float(cost)))
        row.update(
            prompt_tokens=c["prompt_tokens"],
            completion_tokens=c["completion_tokens"],
            cost=cost,
            cache_hit=True,
            finish_reason=c.get("finish_reason"),
        )
        return Completion(c["text"], cached=True, finish_reason=c.get("finish_reason"))

    def _succeeded(
        self, litellm: Any, model: str, resp: Any, row: dict[str, Any], key: str, admission: Admission
    ) -> Completion:
        choice = resp.choices[0]
        text = choice.message.content or ""
        if len(text) > MAX_ANSWER:
            self._settle.append(Settlement(admission.ticket, 0, 0.0))
            return self._failed(
                row, "too_long", f"the answer has {len(text):,} characters, over moot's {MAX_ANSWER:,}"
            )
        usage = getattr(resp, "usage", None)
        pt = int(getattr(usage, "prompt_tokens", 0) or 0)
        ct = int(getattr(usage, "completion_tokens", 0) or 0)
        # litellm prices each response itself (from its price list and `prices`); asking
        # again with completion_cost() costs ~5 ms of CPU per call for an unpriced model.
        cost = (getattr(resp, "_hidden_params", None) or {}).get("response_cost")
        if cost is None and model not in self._unpriced:
            self._unpriced.add(model)
            self.note(
                row["round"],
                "llm_unpriced",
                f"litellm has no price for {model!r}; its calls log cost NULL and count $0 "
                "against the budget. Give LLMConfig(prices={model: (prompt, completion)}).",
            )
        finish = getattr(choice, "finish_reason", None)
        row.update(prompt_tokens=pt, completion_tokens=ct, cost=cost, finish_reason=finish)
        record = {
            "text": text,
            "prompt_tokens": pt,
            "completion_tokens": ct,
            "finish_reason": finish,
            "cost": cost,
            "run": self.run_id,
        }
        self._settle.append(Settlement(admission.ticket, pt + ct, float(cost or 0.0)))
        cache = (key, record) if self.config.cache != "" else None
        return Completion(text, finish_reason=finish, cache=cache)

    def _failed(self, row: dict[str, Any], error_type: str, error: str) -> Completion:
        error = self.redact(error)
        row.update(error_type=error_type, error=error[:500], cache_hit=False)
        return Completion("", error_type=error_type, error=error)

    def _register_prices(self, litellm: Any) -> None:
        if self._priced or not self.config.prices:
            self._priced = True
            return
        litellm.register_model(
            {
                name: {
                    "input_cost_per_token": p,
                    "output_cost_per_token": c,
                    "litellm_provider": name.split("/", 1)[0],
                    "mode": "chat",
                }
                for name, (p, c) in self.config.prices.items()
            }
        )
        self._priced = True


def _fraction(text: str) -> float:
    """A number in [0, 1) from `text` (a seeded jitter that needs no global random state)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") / 2**64


def _error_type(kind: str) -> str:
    return {
        "RateLimitError": "rate_limited",
        "Timeout": "timeout",
        "APIConnectionError": "connection",
        "ServiceUnavailableError": "unavailable",
        "InternalServerError": "server_error",
        "BadGatewayError": "server_error",
        "AuthenticationError": "auth",
        "BadRequestError": "bad_request",
        "NotFoundError": "not_found",
        "ContextWindowExceededError": "context_window",
    }.get(kind, "provider")


def _describe(exc: BaseException, kind: str) -> str:
    text = str(exc).split("Traceback (most recent call last)", 1)[0]
    text = " ".join(text.split()) or kind
    return f"{kind}: {text}"[:500]


def _retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked us to wait (Retry-After on a 429 or 503), if it said."""
    headers: Any = None
    response = getattr(exc, "response", None)
    if response is not None:
        headers = getattr(response, "headers", None)
    if not headers:
        headers = getattr(exc, "litellm_response_headers", None)
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds <= 600 else None
