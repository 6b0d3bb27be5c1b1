"""`LLMConfig`: how a run's LLM agents reach their models (limits, retries, budget, cache)."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError

__all__ = ["FORWARDED_ENV", "LLMConfig", "OFFLINE_ENV", "Redactor", "forwarded_env"]

OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the price list at import
    "LITELLM_OFFLINE_MODE": "true",  # newer litellm: no catalogue or tokenizer fetches
    "HF_HUB_OFFLINE": "1",  # no tokenizer downloads when litellm counts tokens
    "LITELLM_LOG": "ERROR",
}
"""Set in every process before litellm is imported (reference/litellm.md, section 2)."""

FORWARDED_ENV = re.compile(r"^[A-Z0-9_]*(_API_KEY|_API_BASE|_API_VERSION|_BASE_URL|_ORGANIZATION)$")
"""Provider settings the driver hands to its hosts (in the host set-up call, never logged)."""


def forwarded_env(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """The driver's provider keys and endpoints, for hosts on nodes that lack them."""
    return {k: v for k, v in os.environ.items() if FORWARDED_ENV.match(k) or k in extra}


_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.I)
_SHAPED = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 [REDACTED]"),
    (re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{8,}"), r"\1-[REDACTED]"),
    (re.compile(r"(?i)\b(api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,}"), r"\1[REDACTED]"),
)


@dataclass(frozen=True)
class Redactor:
    """Removes API keys from text before it is logged, cached, traced or printed.

    Every configured key (the values of ``*_API_KEY``-like variables a host was handed,
    and of `LLMConfig.api_key_env`) is replaced by ``[REDACTED]``, and so is anything
    shaped like one (``Bearer ...``, ``sk-...``, ``api_key=...``): a provider may echo
    the Authorization header in its error body.
    """

    secrets: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: dict[str, str], key_env: str | None = None) -> Redactor:
        names = {k for k in (*env, *os.environ) if _SECRET_NAME.search(k)}
        if key_env:
            names.add(key_env)
        values = {env.get(k) or os.environ.get(k) or "" for k in names}
        # Longest first, so that a key that contains another is removed whole.
        return cls(tuple(sorted((v for v in values if len(v) >= 6), key=len, reverse=True)))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[REDACTED]")
        for pattern, repl in _SHAPED:
            text = pattern.sub(repl, text)
        return text


@dataclass(frozen=True)
class LLMConfig:
    """How a run's LLM agents call their models.

    Keys never go here: litellm reads them from the environment (``OPENAI_API_KEY``,
    ``ANTHROPIC_API_KEY``, ...), and moot hands the driver's ``*_API_KEY`` and
    ``*_API_BASE`` variables to its hosts without logging them.

    Attributes:
        model: Overrides every agent's model (``--model``); None keeps each agent's own.
        api_base: Endpoint for an OpenAI-compatible server (``http://127.0.0.1:8000/v1``).
        api_key_env: Name of the variable holding the key for `api_base` (default: the
            provider's usual one, which litellm reads itself).
        max_in_flight: Calls in flight at once, over the whole run (split evenly over hosts).
        rpm: Requests per `window` seconds over the whole cluster (None: no limit).
        tpm: Tokens (prompt + completion) per `window` seconds over the cluster (None: no limit).
        window: The rate window in seconds (60 = per minute; tests shrink it).
        timeout: Seconds one attempt may take before it counts as a timeout.
        max_attempts: Attempts per call when the provider fails transiently (429, 5xx,
            timeouts, dropped connections); Retry-After is honoured.
        backoff: First back-off in seconds (doubled each attempt, full jitter, at most 30 s)
            when the provider gives no Retry-After.
        budget: Dollars the run may spend on calls; when crossed, no new call starts and
            the run stops after the round with stop reason ``budget``.
        cache: Response cache file (SQLite); a rerun with the same seed replays from it
            without calling any provider. None: beside the log as ``<log>.llm-cache``;
            ``""`` turns caching off.
        prices: Dollars per token for models litellm does not price, e.g.
            ``{"openai/my-model": (1e-6, 2e-6)}`` (prompt, completion).
        reply_attempts: How many times an agent asks again when a reply does not fit the
            protocol's reply model (the error is shown to the model each time).
        max_error_rate: A round in which every LLM call failed, or more than this share of
            them, ends the run as ``failed`` with an `LLMError` that says so (None: never),
            so that an outage is never read as agents that agree.
    """

    model: str | None = None
    api_base: str | None = None
    api_key_env: str | None = None
    max_in_flight: int = 64
    rpm: float | None = None
    tpm: float | None = None
    window: float = 60.0
    timeout: float = 60.0
    max_attempts: int = 4
    backoff: float = 0.5
    budget: float | None = None
    cache: str | None = None
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    reply_attempts: int = 2
    max_error_rate: float | None = 0.5

    def __post_init__(self) -> None:
        checks = [
            ("max_in_flight", self.max_in_flight, self.max_in_flight >= 1, "e.g. 64"),
            ("rpm", self.rpm, self.rpm is None or self.rpm > 0, "e.g. 500, or None for no limit"),
            ("tpm", self.tpm, self.tpm is None or self.tpm > 0, "e.g. 200000, or None for no limit"),
            ("window", self.window, self.window > 0, "60 for per-minute limits"),
            ("timeout", self.timeout, self.timeout > 0, "e.g. 60"),
            ("max_attempts", self.max_attempts, self.max_attempts >= 1, "e.g. 4 (1: no retries)"),
            ("backoff", self.backoff, self.backoff >= 0, "e.g. 0.5"),
            ("budget", self.budget, self.budget is None or self.budget >= 0, "dollars, e.g. 5.0"),
            ("reply_attempts", self.reply_attempts, self.reply_attempts >= 1, "e.g. 2"),
            (
                "max_error_rate",
                self.max_error_rate,
                self.max_error_rate is None or 0 <= self.max_error_rate <= 1,
                "a share in [0, 1], e.g. 0.5 (1: fail only when every call of a round fails)",
            ),
        ]
        for name, value, ok, hint in checks:
            if not ok:
                raise ConfigError(f"LLMConfig.{name}={value!r} is out of range; use {hint}.")
        if self.api_key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env):
            raise ConfigError(
                f"LLMConfig.api_key_env={self.api_key_env!r} must be the NAME of an environment "
                "variable (e.g. 'OPENAI_API_KEY'), never the key itself."
            )

    def with_overrides(self, **changes: Any) -> LLMConfig:
        """A copy with the given fields changed (None values are ignored)."""
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise ConfigError(
                f"Unknown LLM setting(s) {', '.join(sorted(unknown))}; known: "
                f"{', '.join(self.__dataclass_fields__)}."
            )
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def cache_path(self, log: Path) -> Path | None:
        """Where the response cache lives for a run logging to `log` (None: no cache)."""
        if self.cache == "":
            return None
        return Path(self.cache) if self.cache else log.with_name(log.name + ".llm-cache")

    def check_credentials(self, models: set[str]) -> None:
        """Refuse, before round 0, a run whose provider key is not set (no call could succeed).

        Args:
            models: The models the run's agents ask for (`model` overrides them all).
        """
        if self.api_key_env:
            if not os.environ.get(self.api_key_env):
                raise ConfigError(
                    f"LLMConfig.api_key_env names {self.api_key_env}, which is not set in this "
                    f"environment; export {self.api_key_env}=... before the run."
                )
            return
        from orchestrator.llm.gateway import _import_litellm

        for model in sorted({self.model} if self.model else models):
            if model.startswith("moot/"):
                continue
            litellm = _import_litellm({})
            try:
                missing = litellm.validate_environment(model).get("missing_keys") or []
            except Exception:  # litellm cannot tell for this provider: the first call will
                continue
            if missing:
                raise ConfigError(
                    f"Model {model!r} needs {', '.join(missing)}, which is not set in this environment; "
                    f"export it before the run (or give LLMConfig(api_key_env=NAME) for a local server)."
                )

    def per_host_in_flight(self, hosts: int) -> int:
        """Each host's share of `max_in_flight`."""
        return max(1, -(-self.max_in_flight // hosts))

    def describe(self) -> dict[str, Any]:
        """The settings as logged in ``runs.config`` (names of key variables, never keys)."""
        out = asdict(self)
        out["prices"] = {k: list(v) for k, v in self.prices.items()}
        return out
