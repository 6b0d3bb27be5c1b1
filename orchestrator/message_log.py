"""How much of the message traffic reaches the log: every message, a sample, some rounds, counts, none.

Every message is the default, and what most studies want. Big runs can choose:

- ``MessageLog.sample(0.01)``: a seeded 1% of messages. Whether a message is kept
  is a hash of (seed, round, sender, seq, receiver), so the same seed keeps the
  same messages whatever the hosts. ``runs.message_rate`` holds the rate, so a
  query can scale counts back (``count(*) / message_rate``).
- ``MessageLog.every(k)``: every message of rounds 0, k, 2k, ...
- ``MessageLog.aggregate()``: per round and kind, the number of messages,
  distinct senders and receivers, and the mean value (``message_aggregates``).
- ``MessageLog.none()``: no message rows at all (``metrics`` still counts them).

Strings work too: ``"all"``, ``"none"``, ``"aggregate"``, ``"sample:0.01"``,
``"every:5"`` (and ``moot run --messages sample:0.01``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from agents.batch import MessageBatch
from agents.message import KINDS
from agents.rng import counter_uniform
from orchestrator.errors import ConfigError

__all__ = ["MessageLog", "actions_only", "const_column", "messages_table"]

Mode = Literal["all", "sample", "every", "aggregate", "none"]
_LOG_STREAM = 20
_KIND_DICT = pa.array(list(KINDS), pa.string())


@dataclass(frozen=True, slots=True)
class MessageLog:
    """Which delivered messages get a row in ``messages``.

    Attributes:
        mode: all, sample, every, aggregate or none.
        rate: Fraction kept (sample), 1 for all and every, 0 otherwise.
        period: Rounds between logged rounds (every), else 1.
    """

    mode: Mode = "all"
    rate: float = 1.0
    period: int = 1

    @classmethod
    def all(cls) -> MessageLog:
        """Every delivered message (the default)."""
        return cls()

    @classmethod
    def sample(cls, rate: float) -> MessageLog:
        """A seeded fraction `rate` of the messages, in every round."""
        if not 0.0 < rate <= 1.0:
            raise ConfigError(f"Message sample rate must be in (0, 1], got {rate!r}; e.g. sample:0.01.")
        return cls("sample", float(rate), 1)

    @classmethod
    def every(cls, period: int) -> MessageLog:
        """Every message of every `period`-th round (0, period, 2*period, ...)."""
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ConfigError(
                f"Message log period must be a whole number >= 1, got {period!r}; e.g. every:5."
            )
        return cls("every", 1.0, period)

    @classmethod
    def aggregate(cls) -> MessageLog:
        """Per round and kind: counts of messages, senders and receivers, and the mean value."""
        return cls("aggregate", 0.0, 1)

    @classmethod
    def none(cls) -> MessageLog:
        """No message rows (the ``metrics`` table still counts messages per round)."""
        return cls("none", 0.0, 1)

    @classmethod
    def parse(cls, spec: MessageLog | str) -> MessageLog:
        """A `MessageLog` from itself or a string: all, none, aggregate, sample:RATE, every:K."""
        if isinstance(spec, MessageLog):
            return spec
        name, _, arg = str(spec).partition(":")
        hint = "use all, none, aggregate, sample:RATE (e.g. sample:0.01) or every:K (e.g. every:5)"
        try:
            if name in ("all", "none", "aggregate") and not arg:
                return {"all": cls.all, "none": cls.none, "aggregate": cls.aggregate}[name]()
            if name == "sample" and arg:
                return cls.sample(float(arg))
            if name == "every" and arg:
                return cls.every(int(arg))
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"Cannot read message log {spec!r}: {exc}; {hint}.") from None
        raise ConfigError(f"Unknown message log {spec!r}; {hint}.")

    def logs_round(self, round: int) -> bool:
        """Whether any row for `round` is written."""
        return self.mode != "none" and round % self.period == 0

    def writes_rows(self, round: int) -> bool:
        """Whether `round`'s messages get rows (all, sample, every), written by the hosts."""
        return self.mode in ("all", "sample", "every") and self.logs_round(round)

    def select(self, batch: MessageBatch, round: int, seed: int) -> MessageBatch:
        """The messages of `batch` that get a row (sample mode keeps a seeded fraction)."""
        if self.mode != "sample" or self.rate >= 1.0:
            return batch
        with np.errstate(over="ignore"):
            key = (
                batch.sender.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
                ^ batch.receiver.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
                ^ batch.seq.astype(np.uint64)
            )
        keep = counter_uniform(seed, round, key.view(np.int64), stream=_LOG_STREAM) < self.rate
        return batch.take(np.flatnonzero(keep))

    def describe(self) -> dict[str, object]:
        return {"mode": self.mode, "rate": self.rate, "every": self.period}


def const_column(value: str, n: int) -> pa.DictionaryArray:
    """`n` copies of one string, dictionary-encoded (one value stored)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array([value]))


def vector_array(flat: NDArray[np.float64], dim: int, none: NDArray[np.bool_] | None = None) -> pa.Array:
    """``n * dim`` numbers as a list column of n vectors (``DOUBLE[]`` in the log), without copying
    the numbers; rows where `none` is set are NULL."""
    n = len(flat) // dim
    offsets = pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32))
    mask = pa.array(none) if none is not None and none.any() else None
    return pa.ListArray.from_arrays(offsets, pa.array(flat), mask=mask)


def messages_table(
    batch: MessageBatch, round: int, protocol: str, kinds: tuple[str, ...] = KINDS
) -> pa.Table:
    """A round's delivered messages (and actions, receiver NULL) shaped like a ``messages`` segment
    (every column but run_id, which is the segment's folder)."""
    n = len(batch)

    def strings(a: pa.Array | None) -> pa.Array:
        return pa.nulls(n, pa.string()) if a is None else a

    def masked(a: NDArray[Any], missing: NDArray[np.bool_]) -> pa.Array:
        return pa.array(a, mask=missing) if missing.any() else pa.array(a)  # no mask: no copy

    return pa.table(
        {
            "round": pa.array(np.full(n, round, np.int32)),
            "sender": pa.array(batch.sender),
            "seq": pa.array(batch.seq),
            "receiver": masked(batch.receiver, batch.receiver < 0),
            "topic": strings(batch.topic),
            "protocol": const_column(protocol, n),
            "kind": pa.DictionaryArray.from_arrays(
                pa.array(batch.kind), _KIND_DICT if kinds is KINDS else pa.array(list(kinds), pa.string())
            ),
            "value": masked(batch.value, np.isnan(batch.value)),
            "text": strings(batch.text),
            "payload": strings(batch.payload),
            "vector": _vector_column(batch),
        }
    )


def _vector_column(batch: MessageBatch) -> pa.Array:
    """The messages' vectors, NULL for a message without one (an all-NaN row)."""
    if batch.vector is None:
        return pa.nulls(len(batch), pa.list_(pa.float64()))
    v = np.ascontiguousarray(batch.vector, np.float64)
    return vector_array(v.ravel(), v.shape[1], np.isnan(v[:, 0]))


def actions_only(batches: list[MessageBatch], action_codes: NDArray[np.uint8]) -> list[MessageBatch]:
    """The actions among what hosts sent to the world (broadcasts are logged as delivered)."""
    return [b.take(np.flatnonzero(np.isin(b.kind, action_codes))) for b in batches]
