"""`LLMConfig` and the `Redactor`: settings checked with the fix named, keys never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import ConfigError
from orchestrator.llm.config import LLMConfig, Redactor, forwarded_env


def test_the_redactor_removes_configured_keys_and_key_shaped_text() -> None:
    redact = Redactor.from_env({"MY_API_KEY": "plain-secret-value"}, None)
    assert redact("got plain-secret-value back") == "got [REDACTED] back"
    assert redact("Authorization: Bearer abc.def-123456") == "Authorization: Bearer [REDACTED]"
    assert redact("key sk-proj-ABCDEF123456 was wrong") == "key sk-[REDACTED] was wrong"
    assert redact('{"api_key": "zz9-plural-z-alpha"}') == '{"api_key": "[REDACTED]"}'
    assert redact("nothing to hide here") == "nothing to hide here"


def test_a_key_that_contains_another_is_removed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHORT_TOKEN", "abcdef")
    redact = Redactor.from_env({"LOCAL_KEY": "abcdefghij"}, None)
    assert redact("x abcdefghij y abcdef z") == "x [REDACTED] y [REDACTED] z"
    assert Redactor.from_env({"TINY_KEY": "abc"}, None)("abc") == "abc"  # too short to be a key


def test_hosts_get_provider_settings_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_API_KEY", "k1")
    monkeypatch.setenv("ACME_API_BASE", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ACME_PASSWORD", "p")
    got = forwarded_env(("MY_EXTRA",))
    assert got["ACME_API_KEY"] == "k1" and got["ACME_API_BASE"] == "http://127.0.0.1:9/v1"
    assert "ACME_PASSWORD" not in got


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("max_in_flight", 0, "LLMConfig.max_in_flight=0 is out of range; use e.g. 64."),
        ("rpm", -1.0, "LLMConfig.rpm=-1.0 is out of range; use e.g. 500, or None for no limit."),
        ("budget", -0.5, "LLMConfig.budget=-0.5 is out of range; use dollars, e.g. 5.0."),
        (
            "max_error_rate",
            1.5,
            "LLMConfig.max_error_rate=1.5 is out of range; use a share in [0, 1], e.g. 0.5 "
            "(1: fail only when every call of a round fails).",
        ),
        (
            "api_key_env",
            "sk-live-0123456789",
            "LLMConfig.api_key_env='sk-live-0123456789' must be the NAME of an environment variable "
            "(e.g. 'OPENAI_API_KEY'), never the key itself.",
        ),
    ],
)
def test_bad_settings_name_the_fix(setting: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        LLMConfig(**{setting: value})  # type: ignore[arg-type]
    assert str(info.value) == message


def test_overrides_cache_and_shares(tmp_path: Path) -> None:
    config = LLMConfig(max_in_flight=10).with_overrides(rpm=30.0, model=None)
    assert (config.rpm, config.model, config.max_in_flight) == (30.0, None, 10)
    with pytest.raises(ConfigError, match=r"^Unknown LLM setting\(s\) rmp; known: model, api_base,"):
        config.with_overrides(rmp=30)
    assert config.cache_path(tmp_path / "a.duckdb") == tmp_path / "a.duckdb.llm-cache"
    assert LLMConfig(cache="").cache_path(tmp_path / "a.duckdb") is None
    assert [config.per_host_in_flight(h) for h in (1, 3, 20)] == [10, 4, 1]


def test_an_unset_key_variable_is_refused_before_any_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOOT_TEST_UNSET_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        LLMConfig(api_key_env="MOOT_TEST_UNSET_KEY").check_credentials({"openai/gpt-4o-mini"})
    assert str(info.value) == (
        "LLMConfig.api_key_env names MOOT_TEST_UNSET_KEY, which is not set in this environment; "
        "export MOOT_TEST_UNSET_KEY=... before the run."
    )
    monkeypatch.setenv("MOOT_TEST_UNSET_KEY", "set")
    LLMConfig(api_key_env="MOOT_TEST_UNSET_KEY").check_credentials({"openai/gpt-4o-mini"})
