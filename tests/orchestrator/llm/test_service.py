"""The run-wide LLM service: the sliding-window ledger, the budget, the persistent cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orchestrator.errors import LogError
from orchestrator.llm.service import Ledger, LLMService, Settlement


def max_in_window(starts: list[float], window: float) -> int:
    """The most starts that fall in any half-open window of `window` seconds (brute force)."""
    s = np.sort(np.asarray(starts))
    return int(max(np.searchsorted(s, s + window, side="left") - np.arange(len(s))))


def test_requests_are_paced_evenly_below_the_limit() -> None:
    service = LLMService(rpm=30, window=10.0)
    answers = service.admit([(None, 1)] * 100, [])
    answers += service.admit([(None, 1)] * 20, [])  # a later batch queues behind the first
    delays = np.array([a.delay for a in answers])
    spacing = (10.0 + max(0.05, 0.05 * 10.0)) / 30  # the window plus the documented 5% margin
    np.testing.assert_allclose(delays, np.arange(120) * spacing, atol=0.05)
    assert max_in_window(list(delays), 10.0) == 29  # 30 per window, less the margin


def test_the_token_limit_holds_in_every_window_and_settlements_correct_it() -> None:
    rng = np.random.default_rng(3)
    ledger = Ledger(1000, 60.0)
    starts, amounts = [], rng.integers(50, 400, 200)
    for a in amounts:
        t = ledger.earliest(starts[-1] if starts else 0.0, float(a))
        ledger.add(t, float(a))
        starts.append(t)
    s, a = np.asarray(starts), amounts
    for t in s:  # every window [t, t + 60) holds at most the limit
        assert a[(s >= t) & (s < t + 60.0)].sum() <= 1000
    # Settling a call at fewer tokens than reserved frees the difference at once.
    service = LLMService(tpm=1000, window=60.0)
    first = service.admit([(None, 900)], [])[0]
    assert service.admit([(None, 500)], [])[0].delay > 60  # 900 + 500 > 1000: next window
    late = service.admit([(None, 50)], [Settlement(first.ticket, 100, 0.0)])[0]
    assert late.delay > 60  # still FIFO behind the 500: grants never overtake each other
    fresh = LLMService(tpm=1000, window=60.0)
    t = fresh.admit([(None, 900)], [])[0].ticket
    assert fresh.admit([(None, 500)], [Settlement(t, 100, 0.0)])[0].delay == pytest.approx(0.0, abs=1e-3)


def test_the_budget_refuses_new_calls_once_spent() -> None:
    service = LLMService(budget=0.01)
    a, b = service.admit([(None, 10), (None, 10)], [])
    assert (a.verdict, b.verdict) == ("go", "go")
    c = service.admit([(None, 10)], [Settlement(a.ticket, 10, 0.006), Settlement(b.ticket, 10, 0.005)])[0]
    assert c.verdict == "budget"
    assert service.totals() == {"calls": 2.0, "spent": pytest.approx(0.011)}


def test_the_cache_survives_the_service(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.sqlite"
    one = LLMService(cache=str(path))
    (go,) = one.admit([("k1", 10)], [])
    assert go.verdict == "go"
    one.admit([], [Settlement(go.ticket, 12, 0.5, "k1", {"text": "hi", "prompt_tokens": 7})])
    one.close()
    two = LLMService(cache=str(path), budget=0.0)  # a spent budget does not stop cache hits
    hit, miss = two.admit([("k1", 10), ("k2", 10)], [])
    assert hit.verdict == "hit" and hit.cached == {"text": "hi", "prompt_tokens": 7}
    assert miss.verdict == "budget"


def test_an_unusable_cache_path_says_how_to_fix_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(LogError, match=r"Cannot open the LLM response cache .*cache=''"):
        LLMService(cache=str(blocker / "cache.sqlite"))
