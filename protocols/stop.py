"""Stop rules: when a run is done, decided from each round's metrics.

A rule looks at the metrics of the round just played and returns a reason to
stop, or None to go on. Rules combine with ``|`` (stop when any fires); the
first that fires names the reason logged in ``runs.stop_reason``. The round
budget always applies as well.

Example:
    >>> from protocols import Consensus, Stationary, Threshold
    >>> rule = Consensus("opinion", tol=1e-3) | Stationary(tol=1e-9) | Threshold("variance", "<", 1e-6)
    >>> launch(population, Gossip(), stop=rule, rounds=500)

From the command line: ``moot run --stop consensus:1e-3 --stop stationary --stop "variance<1e-6"``.
"""

from __future__ import annotations

import math
import operator
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agents.errors import ConfigError

__all__ = [
    "AnyOf",
    "Consensus",
    "Custom",
    "Never",
    "Stationary",
    "StopRule",
    "Threshold",
    "parse_stop",
    "stop_rule",
]

Metrics = Mapping[str, float]
StopFn = Callable[[int, Metrics], "bool | str | None"]


class StopRule(ABC):
    """Base of stop rules: one required method, `check`."""

    @abstractmethod
    def check(self, round: int, metrics: Metrics) -> str | None:
        """The reason to stop after `round`, or None to go on."""

    def fields(self) -> frozenset[str]:
        """State fields whose statistics this rule reads (hosts compute them)."""
        return frozenset()

    def needs_change(self) -> bool:
        """Whether this rule reads ``max_change`` (hosts then track state changes)."""
        return False

    def __or__(self, other: StopRule | StopFn) -> AnyOf:
        return AnyOf((self, stop_rule(other)))

    def __ror__(self, other: StopFn) -> AnyOf:
        return AnyOf((stop_rule(other), self))

    def describe(self) -> str:
        """The rule in words, as logged in ``runs.config``."""
        return repr(self)


@dataclass(frozen=True)
class Consensus(StopRule):
    """Stop when a numeric field's spread (max - min over all agents) is below `tol`.

    Args:
        field: The state field; every agent class that has it counts.
        tol: The spread under which the population agrees.
    """

    field: str = "opinion"
    tol: float = 1e-2

    def __post_init__(self) -> None:
        if not self.tol >= 0:
            raise ConfigError(f"Consensus tol must be >= 0, got {self.tol!r}.")

    def check(self, round: int, metrics: Metrics) -> str | None:
        spread = metrics.get(f"{self.field}.spread")
        if spread is not None and spread < self.tol:
            return "consensus"
        return None

    def fields(self) -> frozenset[str]:
        return frozenset({self.field})

    def describe(self) -> str:
        return f"consensus({self.field} spread < {self.tol:g})"


class Never(StopRule):
    """Never stop early: play the whole round budget (``--stop never``)."""

    def check(self, round: int, metrics: Metrics) -> str | None:
        return None

    def describe(self) -> str:
        return "never"


@dataclass(frozen=True)
class Stationary(StopRule):
    """Stop when no agent's numeric state changed by more than `tol` for `patience` rounds.

    Reads the ``max_change`` metric: the largest absolute change of any numeric
    state field of any agent in the round. Models that settle into clusters
    (Hegselmann-Krause) stop here instead of spending the whole budget. Round 0
    never counts: in a message-passing protocol agents have heard nothing yet. Nor
    does a round in which nothing acted (no message, no action: every LLM call
    failed, say): a state that nobody touched is not a state that settled.
    """

    tol: float = 1e-9
    patience: int = 1

    def __post_init__(self) -> None:
        if not self.tol >= 0:
            raise ConfigError(f"Stationary tol must be >= 0, got {self.tol!r}.")
        if self.patience < 1:
            raise ConfigError(f"Stationary patience must be >= 1 round, got {self.patience!r}.")

    def check(self, round: int, metrics: Metrics) -> str | None:
        change = metrics.get("max_change")
        idle = metrics.get("messages") == 0 and not metrics.get("actions")  # nothing acted: no evidence
        still = change is not None and change <= self.tol and not idle
        calm = self.__dict__.get("_calm", 0) + 1 if still and round > 0 else 0
        self.__dict__["_calm"] = calm  # consecutive calm rounds; reset at round 0 of every run
        return "stationary" if calm >= self.patience else None

    def needs_change(self) -> bool:
        return True

    def describe(self) -> str:
        return f"stationary(max_change <= {self.tol:g})"


_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Threshold(StopRule):
    """Stop when a metric crosses a value: ``Threshold("score", ">=", 10)``.

    Args:
        metric: A metric name as written to the ``metrics`` table (``variance``,
            ``spread``, ``messages``, a protocol's ``score``, ``field.mean``).
        op: One of ``<``, ``<=``, ``>``, ``>=``, ``==``.
        value: The threshold.
    """

    metric: str
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ConfigError(f"Unknown comparison {self.op!r} in a Threshold; use one of {', '.join(_OPS)}.")

    def check(self, round: int, metrics: Metrics) -> str | None:
        if self.metric not in metrics:
            known = ", ".join(sorted(metrics))
            raise ConfigError(
                f"Stop rule {self.describe()} reads metric {self.metric!r}, which this run does not "
                f"produce; its metrics are: {known}."
            )
        v = metrics[self.metric]
        if not math.isnan(v) and _OPS[self.op](v, self.value):
            return f"{self.metric} {self.op} {self.value:g}"
        return None

    def fields(self) -> frozenset[str]:
        head, _, stat = self.metric.rpartition(".")
        return (
            frozenset({head})
            if head and stat in ("mean", "variance", "min", "max", "spread")
            else frozenset()
        )

    def describe(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Custom(StopRule):
    """A callable as a rule: ``fn(round, metrics)`` returns True or a reason to stop.

    Runs on the driver (the coordinator), after each round.
    """

    fn: StopFn
    name: str = ""

    def check(self, round: int, metrics: Metrics) -> str | None:
        out = self.fn(round, metrics)
        if out is None or out is False:
            return None
        if out is True:
            return self.name or getattr(self.fn, "__name__", "custom")
        if isinstance(out, str):
            return out
        raise ConfigError(
            f"Stop callable {self.describe()} returned {out!r}; return True, a reason string, or None/False."
        )

    def describe(self) -> str:
        return self.name or getattr(self.fn, "__name__", "custom")


@dataclass(frozen=True)
class AnyOf(StopRule):
    """Stop when any of `rules` fires; the first in order names the reason."""

    rules: tuple[StopRule, ...]

    def check(self, round: int, metrics: Metrics) -> str | None:
        for rule in self.rules:
            reason = rule.check(round, metrics)
            if reason is not None:
                return reason
        return None

    def fields(self) -> frozenset[str]:
        return frozenset().union(*(r.fields() for r in self.rules))

    def needs_change(self) -> bool:
        return any(r.needs_change() for r in self.rules)

    def __or__(self, other: StopRule | StopFn) -> AnyOf:
        return AnyOf((*self.rules, stop_rule(other)))

    def describe(self) -> str:
        return " | ".join(r.describe() for r in self.rules)


def stop_rule(rule: StopRule | StopFn | str) -> StopRule:
    """A `StopRule` from a rule, a callable, or a spec string (see `parse_stop`)."""
    if isinstance(rule, StopRule):
        return rule
    if isinstance(rule, str):
        return parse_stop(rule)
    if callable(rule):
        return Custom(rule)
    raise ConfigError(
        f"A stop rule must be a StopRule, a callable (round, metrics) -> bool, or a spec string; "
        f"got {rule!r}."
    )


_COMPARISON = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|<|>)\s*(\S+)\s*$")


def parse_stop(spec: str) -> StopRule:
    """A rule from its command-line spelling.

    ``consensus`` / ``consensus:TOL`` / ``consensus:FIELD:TOL``; ``stationary`` /
    ``stationary:TOL``; ``METRIC<VALUE`` (also ``<=``, ``>``, ``>=``, ``==``);
    ``never`` (the round budget only). Several specs separated by ``|`` combine.
    """
    parts = [p for p in spec.split("|") if p.strip()]
    if len(parts) > 1:
        return AnyOf(tuple(parse_stop(p) for p in parts))
    text = spec.strip()
    hint = (
        "e.g. consensus:0.001, consensus:opinion:0.001, stationary:1e-9, 'variance<1e-4', 'score>=10', never"
    )
    m = _COMPARISON.match(text)
    try:
        if m:
            return Threshold(m.group(1), m.group(2), float(m.group(3)))
        name, *args = text.split(":")
        if name == "never" and not args:
            return Never()
        if name == "consensus" and len(args) <= 2:
            if len(args) == 2:
                return Consensus(args[0], float(args[1]))
            return Consensus(tol=float(args[0])) if args else Consensus()
        if name == "stationary" and len(args) <= 1:
            return Stationary(float(args[0])) if args else Stationary()
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"Cannot read stop rule {spec!r}: {exc}; {hint}.") from None
    raise ConfigError(f"Unknown stop rule {spec!r}; {hint}.")
