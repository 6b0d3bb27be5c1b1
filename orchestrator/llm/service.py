"""The run's LLM service: one per run, shared by every host.

It holds what must be the same for the whole cluster: the rate ledger (requests
and tokens per window), the money spent against the budget, and the response
cache. Hosts talk to it in batches (one call per host per burst of agents, not
one per LLM call): each batch settles the calls that finished and asks for
admission of new ones. In-process runs call it directly; Ray runs hold it in one
small actor on the driver's node (`orchestrator.ray_runtime`).

Requests are paced: with `rpm` requests per `window`, grants are spaced evenly,
``window * 1.05 / rpm`` apart (the 5% margin absorbs the jitter between a grant
and its request reaching the provider), so no window of the provider's ever
sees more than `rpm`, bursts included. Tokens are a sliding window: a call is
granted the earliest start at which the window ending then holds at most `tpm`
tokens (estimated before the call, corrected with the provider's usage after).
A host that cannot send a granted call on time (its loop was busy) asks again
rather than send it late (`orchestrator.llm.gateway`).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import LogError

__all__ = ["Admission", "LLMService", "Ledger", "Request", "Settlement"]

Request = tuple[str | None, int]
"""A request for a call: (its cache key, or None to skip the cache; its estimated tokens)."""


@dataclass(frozen=True, slots=True)
class Admission:
    """The service's answer to one request for a call.

    Attributes:
        verdict: ``go`` (call after `delay` seconds), ``hit`` (the cache answered:
            `cached`), or ``budget`` (the budget is spent; do not call).
        delay: Seconds to wait before calling (rate limits).
        ticket: The call's entry in the token ledger (for its settlement).
        cached: The cached response (a dict), for ``hit``.
    """

    verdict: str
    delay: float = 0.0
    ticket: int = -1
    cached: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Settlement:
    """A finished call, reported back: its real tokens and cost, and what to cache."""

    ticket: int
    tokens: int
    cost: float
    key: str | None = None
    response: dict[str, Any] | None = None


class Ledger:
    """A sliding-window limit on the sum of amounts granted per `window` seconds."""

    def __init__(self, limit: float, window: float) -> None:
        self.limit = float(limit)
        self.window = window
        self.entries: deque[list[float]] = deque()  # [start time, amount], in start order

    def earliest(self, now: float, amount: float) -> float:
        """The earliest start >= now at which `amount` more fits in the window."""
        amount = min(amount, self.limit)
        while self.entries and self.entries[0][0] <= now - self.window:
            self.entries.popleft()
        total = 0.0
        for start, a in reversed(self.entries):
            total += a
            if total + amount > self.limit:
                return max(now, start + self.window)  # wait until this entry leaves
        return now

    def add(self, start: float, amount: float) -> list[float]:
        entry = [start, min(amount, self.limit)]
        self.entries.append(entry)
        return entry


class LLMService:
    """Rate ledger, budget and response cache for one run (see the module docstring).

    Args:
        rpm, tpm, window: The cluster-wide limits (None: no limit).
        budget: Dollars the run may spend (None: no budget).
        cache: SQLite file of cached responses (None: no cache).
        spent: Dollars spent already (a run resumed from a checkpoint).
    """

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        window: float = 60.0,
        budget: float | None = None,
        cache: str | None = None,
        spent: float = 0.0,
    ) -> None:
        margin = max(0.05, 0.05 * window)
        self.spacing = (window + margin) / rpm if rpm else 0.0
        self.tokens = Ledger(tpm, window + margin) if tpm else None
        self.budget = budget
        self.spent = spent
        self.calls = 0
        self.next_start = 0.0
        self._tickets: dict[int, list[float]] = {}
        self._next_ticket = 0
        self._db: sqlite3.Connection | None = None
        if cache:
            self._db = _open_cache(Path(cache))

    def admit(self, requests: list[Request], settle: list[Settlement]) -> list[Admission]:
        """Settle finished calls, then answer each request ``(cache key or None, estimated tokens)``."""
        self.settle(settle)
        hits = self._lookup([k for k, _ in requests if k])
        now = time.monotonic()
        out = []
        for key, tokens in requests:
            if key and key in hits:
                out.append(Admission("hit", cached=hits[key]))
                continue
            if self.budget is not None and self.spent >= self.budget:
                out.append(Admission("budget"))
                continue
            start = max(now, self.next_start)
            if self.tokens is not None:
                start = max(start, self.tokens.earliest(start, tokens))
            self.next_start = start + self.spacing
            ticket = self._next_ticket
            self._next_ticket += 1
            if self.tokens is not None:
                self._tickets[ticket] = self.tokens.add(start, tokens)
            self.calls += 1
            out.append(Admission("go", delay=start - now, ticket=ticket))
        return out

    def settle(self, done: list[Settlement]) -> None:
        """Record finished calls: correct their token reservations, add their cost, cache them."""
        rows = []
        for s in done:
            entry = self._tickets.pop(s.ticket, None)
            if entry is not None and self.tokens is not None:
                entry[1] = min(float(s.tokens), self.tokens.limit)
            if s.cost and math.isfinite(s.cost):
                self.spent += s.cost
            if s.key and s.response is not None:
                rows.append((s.key, json.dumps(s.response), time.time()))
        if rows and self._db is not None:
            for i in range(0, len(rows), 300):  # one statement per 300 rows (SQLite's variable limit)
                part = rows[i : i + 300]
                marks = ", ".join(["(?, ?, ?)"] * len(part))
                self._db.execute(
                    f"INSERT OR IGNORE INTO responses VALUES {marks}", [v for r in part for v in r]
                )
            self._db.commit()

    def totals(self) -> dict[str, float]:
        """Calls admitted and dollars spent so far."""
        return {"calls": float(self.calls), "spent": self.spent}

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _lookup(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        if not keys or self._db is None:
            return {}
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            marks = ",".join("?" * len(part))
            for key, text in self._db.execute(
                f"SELECT key, response FROM responses WHERE key IN ({marks})", part
            ).fetchall():
                out[key] = json.loads(text)
        return out


def _open_cache(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS responses "
            "(key TEXT PRIMARY KEY, response TEXT NOT NULL, created REAL)"
        )
        db.commit()
    except (sqlite3.Error, OSError) as exc:
        raise LogError(
            f"Cannot open the LLM response cache {str(path)!r}: {exc}; give another path with "
            "LLMConfig(cache=...) / --llm-cache, or turn the cache off with cache=''."
        ) from exc
    return db
