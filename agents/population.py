"""A population: which agent classes, how many, and their initial state.

A population is described, not materialised: `Population.of(OpinionAgent,
1_000_000, opinion=Uniform(0, 1))` costs nothing on the driver; each host builds
its own shard, drawing initial values counter-based by agent id so that the
values do not depend on the sharding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import numpy as np
from numpy.typing import NDArray

from agents.agent import Agent
from agents.errors import ConfigError
from agents.rng import counter_uniform
from agents.vector import check_vector, fill_value, vector_fields

__all__ = ["Block", "Choice", "Column", "Normal", "Population", "Uniform", "check_columns", "parse_column"]

_INIT_STREAM = 2


@dataclass(frozen=True, slots=True)
class Uniform:
    """Initial values drawn uniformly from [low, high), keyed by agent id."""

    low: float = 0.0
    high: float = 1.0

    def draw(self, seed: int, ids: NDArray[np.int64], salt: int, coord: int = 0) -> NDArray[np.float64]:
        u = counter_uniform(seed, -1 - salt, ids, coord, stream=_INIT_STREAM)
        return self.low + (self.high - self.low) * u


@dataclass(frozen=True, slots=True)
class Normal:
    """Initial values drawn from a normal distribution, keyed by agent id."""

    mean: float = 0.0
    std: float = 1.0

    def draw(self, seed: int, ids: NDArray[np.int64], salt: int, coord: int = 0) -> NDArray[np.float64]:
        u1 = counter_uniform(seed, -1 - salt, ids, 2 * coord, stream=_INIT_STREAM)
        u2 = counter_uniform(seed, -1 - salt, ids, 2 * coord + 1, stream=_INIT_STREAM)
        z = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
        return self.mean + self.std * z


@dataclass(frozen=True, slots=True)
class Choice:
    """Initial values drawn from a few values (discrete opinions), keyed by agent id.

    Args:
        values: The values, e.g. ``(-1, 1)``.
        p: Their probabilities (default: equal); must sum to 1.

    Example:
        >>> Choice((-1, 1), (0.3, 0.7))  # 30% hold -1
    """

    values: tuple[Any, ...] = (-1.0, 1.0)
    p: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not self.values:
            raise ConfigError("Choice needs at least one value, e.g. Choice((-1, 1)).")
        p = self.p
        if p is not None and (len(p) != len(self.values) or any(x < 0 for x in p) or abs(sum(p) - 1) > 1e-9):
            raise ConfigError(
                f"Choice{(self.values, p)}: give one probability >= 0 per value, summing to 1; "
                "e.g. Choice((-1, 1), (0.3, 0.7))."
            )

    @property
    def text(self) -> bool:
        """Whether the values are text (``Choice(["A", "B"])`` for a party, a group)."""
        return any(isinstance(v, str) for v in self.values)

    def draw(self, seed: int, ids: NDArray[np.int64], salt: int, coord: int = 0) -> NDArray[Any]:
        u = counter_uniform(seed, -1 - salt, ids, coord, stream=_INIT_STREAM)
        k = len(self.values)
        cum = np.cumsum(self.p if self.p is not None else np.full(k, 1.0 / k))
        pick = np.minimum(np.searchsorted(cum, u, side="right"), k - 1)
        return np.asarray(self.values, object if self.text else np.float64)[pick]


_DISTRIBUTIONS = (Uniform, Normal, Choice)

Column = float | int | bool | str | Sequence[Any] | NDArray[Any] | Uniform | Normal | Choice
"""An initial state column: a constant, one value per agent, or a distribution."""


@dataclass(frozen=True, slots=True)
class Block:
    """A contiguous run of same-class agents inside one host's shard.

    Attributes:
        cls: The agent class.
        ids: Global ids, ascending and contiguous.
        state: Numeric state columns (the vectorised path); a vector field's is ``(n, dim)``.
        agents: Agent objects (the plain-Python path), or None.
        dim: The length of the class's vector fields (None: it has none).
    """

    cls: type[Agent]
    ids: NDArray[np.int64]
    state: dict[str, NDArray[np.float64]]
    agents: list[Agent] | None
    dim: int | None = None


@dataclass(frozen=True, slots=True)
class _Group:
    cls: type[Agent]
    n: int
    columns: Mapping[str, Column] = field(default_factory=dict)
    agents: tuple[Agent, ...] | None = None
    dim: int | None = None


@dataclass(frozen=True, slots=True)
class Population:
    """Who is in the run. Combine groups with ``+``; ids follow the order given.

    Example:
        >>> pop = Population.of(OpinionAgent, 1000, opinion=Uniform(0, 1)) + Population.of(
        ...     OpinionAgent, 10, opinion=1.0, stubbornness=1.0)
        >>> len(pop)
        1010
    """

    groups: tuple[_Group, ...]

    @classmethod
    def of(
        cls, agent_cls: type[Agent], n: int, /, *, dim: int | None = None, **columns: Column
    ) -> Population:
        """`n` agents of `agent_cls`, with initial state given per field.

        Args:
            dim: The length of the class's vector fields (`agents.vector.Vector`), required when
                it has any. A vector field's column is a distribution (drawn per entry), an
                ``(n, dim)`` array, or one vector of `dim` entries that every agent starts with.
        """
        if not (isinstance(agent_cls, type) and issubclass(agent_cls, Agent)):
            raise ConfigError(
                f"Population.of needs an Agent subclass, got {agent_cls!r}; "
                "subclass agents.Agent and declare the state as fields."
            )
        if n < 0:
            raise ConfigError(f"Population size must be >= 0, got {n}.")
        fields = agent_cls.state_fields()
        vectors = vector_fields(agent_cls)
        _check_dim(agent_cls, vectors, dim)
        for name, col in columns.items():
            if name not in fields:
                raise ConfigError(
                    f"{agent_cls.__name__} has no state field {name!r}; its fields are: "
                    f"{', '.join(fields) or '(none)'}."
                )
            if name in vectors:  # checked whole where given whole; a distribution by one draw
                whole = isinstance(col, (Sequence, np.ndarray)) and np.ndim(col) == 2
                drawn = callable(getattr(col, "draw_vectors", None))  # its own checks; drawing is dear
                k = n if whole else 0 if drawn else min(n, 1)
                _vector_column(agent_cls, name, col, n, dim or 0, np.arange(k, dtype=np.int64))
                continue
            if isinstance(col, (Sequence, np.ndarray)) and not isinstance(col, str) and len(col) != n:
                raise ConfigError(
                    f"Column {name!r} has {len(col)} values for {n} agents; give one per agent."
                )
        # Fail on the driver, before anything runs: constants through the class's own
        # validation, arrays against the fields' constraints (vectorised).
        constants = {
            k: v for k, v in columns.items() if isinstance(v, (int, float, bool, str)) and k not in vectors
        }
        try:
            agent_cls.model_validate(constants)
        except ValueError as exc:
            raise ConfigError(
                f"Population.of({agent_cls.__name__}, ...) got invalid state {constants}: {_first_error(exc)}"
            ) from None
        if agent_cls.uses_batch():
            arrays = {
                k: np.asarray(v, np.float64)
                for k, v in columns.items()
                if isinstance(v, (Sequence, np.ndarray))
                and not isinstance(v, str)
                and not is_text_field(agent_cls, k)
                and k not in vectors
            }
            if arrays:  # (ids only where a column needs them: n may be billions)
                check_columns(agent_cls, arrays, np.arange(n, dtype=np.int64))
        return cls((_Group(agent_cls, n, dict(columns), dim=dim),))

    @classmethod
    def from_agents(cls, agents: Sequence[Agent]) -> Population:
        """A population of ready-made agent objects (small runs, mixed classes)."""
        for a in agents:
            if not isinstance(a, Agent):
                raise ConfigError(
                    f"Population.from_agents got {a!r} ({type(a).__name__}); give Agent instances."
                )
        runs = (tuple(run) for _, run in groupby(agents, key=type))
        return cls(tuple(_Group(type(run[0]), len(run), agents=run, dim=_agents_dim(run)) for run in runs))

    def __add__(self, other: Population) -> Population:
        return Population(self.groups + other.groups)

    def __len__(self) -> int:
        return sum(g.n for g in self.groups)

    def estimated_bytes(self) -> int:
        """A lower bound on the memory the agents' state takes once built (all shards together).

        Vectorised classes: 8 bytes per numeric field per agent, plus its id; objects:
        about 600 bytes per pydantic agent plus 60 per field (measured on CPython 3.11).
        """
        total = 0
        for g in self.groups:
            fields = len(g.cls.state_fields()) + len(vector_fields(g.cls)) * ((g.dim or 1) - 1)
            per = 8 * (fields + 1) if g.cls.uses_batch() and g.agents is None else 600 + 60 * fields
            total += g.n * per
        return total

    def describe(self) -> list[dict[str, object]]:
        """The groups: class, count and how each column was given (logged in ``runs.config``)."""
        out: list[dict[str, object]] = []
        for g in self.groups:
            entry: dict[str, object] = {"class": f"{g.cls.__module__}.{g.cls.__qualname__}", "n": g.n}
            if g.dim is not None:
                entry["dim"] = g.dim
            if g.agents is not None:
                entry["from_agents"] = True
            else:
                entry["columns"] = {name: _describe_column(col) for name, col in g.columns.items()}
            out.append(entry)
        return out

    @property
    def classes(self) -> list[type[Agent]]:
        """The agent classes, in order of first appearance."""
        return list(dict.fromkeys(g.cls for g in self.groups))

    def blocks(self, lo: int, hi: int, seed: int) -> list[Block]:
        """Build the agents with ids in [lo, hi): the shard of one host."""
        out: list[Block] = []
        start = 0
        for g in self.groups:
            a, b = max(lo, start), min(hi, start + g.n)
            if a < b:
                out.append(self._block(g, start, a, b, seed))
            start += g.n
        return out

    def spans(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The id ranges of the blocks `blocks` builds for ``[lo, hi)``: each group's part of it."""
        out: list[tuple[int, int]] = []
        start = 0
        for g in self.groups:
            a, b = max(lo, start), min(hi, start + g.n)
            if a < b:
                out.append((a, b))
            start += g.n
        return out

    @staticmethod
    def _block(g: _Group, start: int, a: int, b: int, seed: int) -> Block:
        ids = np.arange(a, b, dtype=np.int64)
        if g.agents is not None:
            agents = [
                m.model_copy(update={"id": int(i)}) for m, i in zip(g.agents[a - start : b - start], ids)
            ]
            return Block(g.cls, ids, {}, agents)
        fields = g.cls.state_fields()
        vectors = vector_fields(g.cls)
        if g.cls.uses_batch():
            state: dict[str, NDArray[np.float64]] = {}
            for salt, name in enumerate(fields):
                info = g.cls.model_fields[name]
                if name in vectors:
                    col = g.columns.get(name, _UNSET)
                    state[name] = _vector_column(
                        g.cls, name, col, g.n, g.dim or 0, ids, seed, salt, a - start
                    )
                    continue
                col = g.columns.get(name, info.default)
                if is_text_field(g.cls, name):  # text columns as object arrays, one str per agent
                    state[name] = np.asarray(_any_column(col, seed, ids, salt, a - start, b - start), object)
                    continue
                if isinstance(col, str) or not isinstance(
                    col, (int, float, *_DISTRIBUTIONS, Sequence, np.ndarray)
                ):
                    raise ConfigError(
                        f"{g.cls.__name__}.{name} is {_shown_type(info.annotation, col)}; a class with "
                        "act_batch holds numbers and text (fields annotated str) only. Make the field "
                        "one of them, or drop act_batch."
                    )
                state[name] = _column(col, seed, ids, salt, a - start, b - start)
            check_columns(g.cls, state, ids)
            return Block(g.cls, ids, state, None, g.dim)
        given = {
            name: _any_column(g.columns[name], seed, ids, salt, a - start, b - start)
            for salt, name in enumerate(fields)
            if name in g.columns and name not in vectors
        }
        for salt, name in enumerate(fields):  # vector fields: one array per agent
            if name in vectors:
                col = g.columns.get(name, _UNSET)
                rows = _vector_column(g.cls, name, col, g.n, g.dim or 0, ids, seed, salt, a - start)
                given[name] = list(rows)
        agents = []
        for k, i in enumerate(ids):
            values = {name: col[k] for name, col in given.items()}
            try:
                agents.append(g.cls.model_validate({"id": int(i), **values}))
            except ValueError as exc:
                raise ConfigError(
                    f"Agent {i} ({g.cls.__name__}) got invalid initial state {values}: {exc}"
                ) from exc
        return Block(g.cls, ids, {}, agents, g.dim)


def is_text_field(cls: type[Agent], name: str) -> bool:
    """Whether `cls.name` holds text (``str``, ``str | None``, a Literal of strings)."""
    info = cls.model_fields.get(name)
    if info is None:
        return False
    annotation = info.annotation
    if annotation is str:
        return True
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return all(isinstance(a, str) for a in args)
    if origin in (Union, UnionType):  # str | None
        return str in args and all(a in (str, type(None)) for a in args)
    return False


def parse_column(text: str) -> Column:
    """An initial state column from its command-line spelling (``moot run -a field=...``).

    ``uniform:LOW:HIGH``, ``normal:MEAN:STD``, ``choice:V1,V2,...`` (equally
    likely) or ``choice:V1,V2:P1,P2``, or a JSON value (``0.15``, ``true``).

    Example:
        >>> parse_column("uniform:0:1")
        Uniform(low=0.0, high=1.0)
        >>> parse_column("choice:-1,1:0.3,0.7")
        Choice(values=(-1.0, 1.0), p=(0.3, 0.7))
    """
    import json

    name, _, rest = text.partition(":")
    try:
        if name in ("uniform", "normal") and rest:
            a, _, b = rest.partition(":")
            return Uniform(float(a), float(b)) if name == "uniform" else Normal(float(a), float(b))
        if name == "choice" and rest:
            values, _, probs = rest.partition(":")
            return Choice(
                tuple(_number_or_text(v) for v in values.split(",")),
                tuple(float(p) for p in probs.split(",")) if probs else None,
            )
        value = json.loads(text)
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(
            f"Cannot read state value {text!r}; give a number, true/false, uniform:LOW:HIGH, "
            "normal:MEAN:STD or choice:V1,V2[:P1,P2] (e.g. -a opinion=uniform:0:1)."
        ) from None
    if isinstance(value, (int, float, bool)):
        return value
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return tuple(float(v) for v in value)  # one vector, every agent's (a Vector field)
    raise ConfigError(
        f"State value {text!r} is not a number; e.g. -a epsilon=0.15 or -a opinion=uniform:0:1."
    )


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        e = errors()[0]
        where = ".".join(str(p) for p in e.get("loc", ())) or "value"
        return f"{where}: {e.get('msg')} (got {e.get('input')!r})."
    return str(exc)


def _describe_column(col: Column) -> object:
    if isinstance(col, Uniform):
        return {"uniform": [col.low, col.high]}
    if isinstance(col, Normal):
        return {"normal": [col.mean, col.std]}
    if isinstance(col, Choice):
        return {"choice": list(col.values), "p": None if col.p is None else list(col.p)}
    if isinstance(col, (Sequence, np.ndarray)) and not isinstance(col, str):
        arr = np.asarray(col, np.float64)
        digest = hashlib.sha256(np.ascontiguousarray(arr, dtype="<f8").tobytes()).hexdigest()
        return {"values": len(arr), "mean": float(arr.mean()) if len(arr) else None, "sha256": digest}
    return col


_BOUNDS = (
    ("ge", np.greater_equal, ">="),
    ("gt", np.greater, ">"),
    ("le", np.less_equal, "<="),
    ("lt", np.less, "<"),
)


def check_columns(cls: type[Agent], state: Mapping[str, NDArray[np.float64]], ids: NDArray[np.int64]) -> None:
    """Check state columns against the fields' types and constraints, vectorised.

    What pydantic checks per object on the plain path, checked per column here:
    bounds (``Field(ge=, gt=, le=, lt=)``), whole numbers for ``int``, 0/1 for
    ``bool``, and finite values where a field forbids inf/nan.

    Raises:
        ConfigError: Naming the field, the rule, the first agent that breaks it and its value.
    """
    for name, col in state.items():
        info = cls.model_fields.get(name)
        if info is None:
            continue
        rules: list[tuple[str, NDArray[np.bool_]]] = []
        if info.annotation is bool:
            rules.append(("must be 0 or 1 (a bool)", (col == 0) | (col == 1)))
        elif info.annotation is int:
            rules.append(("must be a whole number (an int)", np.isfinite(col) & (col == np.round(col))))
        for meta in info.metadata:
            for attr, op, sign in _BOUNDS:
                bound = getattr(meta, attr, None)
                if bound is not None:
                    with np.errstate(invalid="ignore"):
                        rules.append((f"must be {sign} {bound}", op(col, bound) | np.isnan(col)))
            if getattr(meta, "allow_inf_nan", True) is False:
                rules.append(("must be finite", np.isfinite(col)))
        for rule, ok in rules:
            if not ok.all():
                bad = np.flatnonzero(~ok)
                i = int(bad[0])
                raise ConfigError(
                    f"{cls.__name__}.{name} {rule}, but agent {int(ids[i])} has {float(col[i])!r} "
                    f"({len(bad)} of {len(col)} agents out of range); fix the column given to "
                    "Population.of."
                )


def _any_column(col: Column, seed: int, ids: NDArray[np.int64], salt: int, a: int, b: int) -> list[Any]:
    """Initial values of one field of agents held as objects: numbers, or any value (a persona)."""
    if isinstance(col, str) or col is None:
        return [col] * len(ids)
    if isinstance(col, (Sequence, np.ndarray)) and not all(
        isinstance(v, (int, float, np.number)) for v in col[a:b]
    ):
        return list(col[a:b])
    values: list[Any] = _column(col, seed, ids, salt, a, b).tolist()
    return values


def _column(col: Column, seed: int, ids: NDArray[np.int64], salt: int, a: int, b: int) -> NDArray[np.float64]:
    """Initial values of one field for the agents `ids` (positions a:b of their group)."""
    if isinstance(col, _DISTRIBUTIONS):
        return col.draw(seed, ids, salt)
    if isinstance(col, (Sequence, np.ndarray)) and not isinstance(col, str):
        return np.asarray(col, dtype=np.float64)[a:b].copy()
    return np.full(len(ids), col, dtype=np.float64)


def _number_or_text(text: str) -> float | str:
    """A ``choice:`` value: a number where it reads as one, else the text itself (``choice:A,B``)."""
    try:
        return float(text)
    except ValueError:
        return text.strip()


def _shown_type(annotation: Any, value: Any) -> str:
    """A field's type as a user wrote it (``list[str]``), else its value's type."""
    if annotation is None:
        return type(value).__name__
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)


def _agents_dim(agents: Sequence[Agent]) -> int | None:
    """The length of ready-made agents' vector fields (all the same), or None without any."""
    names = list(vector_fields(type(agents[0])))
    if not names:
        return None
    dim = len(np.atleast_1d(getattr(agents[0], names[0])))
    fix = f"give every {type(agents[0]).__name__} vectors of one length."
    for a in agents:
        for name in names:
            check_vector(type(a), name, np.atleast_2d(getattr(a, name)), dim, np.array([a.id]), fix)
    return dim


_UNSET = object()
"""A vector field given no column: every entry starts at the field's default."""


def _check_dim(cls: type[Agent], vectors: Mapping[str, object], dim: int | None) -> None:
    """A class with vector fields gets a length for them; one without, none."""
    if vectors and dim is None:
        names = ", ".join(vectors)
        raise ConfigError(
            f"{cls.__name__} has vector field(s) {names}: give their length, e.g. "
            f"Population.of({cls.__name__}, n, dim=16, ...) (moot run --dim 16)."
        )
    if dim is not None and not vectors:
        raise ConfigError(
            f"Population.of({cls.__name__}, ..., dim={dim}): {cls.__name__} has no vector field; drop dim, "
            "or declare a field as agents.vector.Vector."
        )
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim < 1):
        raise ConfigError(f"dim must be a whole number >= 1, got {dim!r}.")


def _vector_column(
    cls: type[Agent],
    name: str,
    col: object,
    n: int,
    dim: int,
    ids: NDArray[np.int64],
    seed: int = 0,
    salt: int = 0,
    offset: int = 0,
) -> NDArray[Any]:
    """Initial values of vector field `name` for the agents `ids` (from position `offset` of their
    group of `n`): ``(len(ids), dim)``, checked."""
    fix = (
        f"give Population.of({cls.__name__}, ..., {name}=...) a distribution (Uniform(0, 1)), an array of "
        f"shape ({n}, {dim}), or one vector of {dim} entries."
    )
    k = len(ids)
    if callable(getattr(col, "draw_vectors", None)):  # a whole-vector draw (a model's initialisation)
        out = col.draw_vectors(seed, ids, salt, dim)  # type: ignore[attr-defined]
    elif isinstance(col, _DISTRIBUTIONS):
        out = np.empty((k, dim), np.float64)
        for j in range(dim):
            out[:, j] = col.draw(seed, ids, salt, j)
    elif isinstance(col, (Sequence, np.ndarray)) and not isinstance(col, str):
        arr = np.asarray(col)
        if arr.ndim == 2 and arr.shape[0] == n:
            out = arr[offset : offset + k]
        elif arr.ndim == 1 and len(arr) == dim:
            out = np.broadcast_to(arr, (k, dim))
        else:
            raise ConfigError(
                f"{cls.__name__}.{name} is a vector of {dim} per agent; got shape {arr.shape}; {fix}"
            )
    elif col is _UNSET:
        out = np.full((k, dim), fill_value(cls, name))
    else:
        raise ConfigError(
            f"{cls.__name__}.{name} is a vector of {dim} per agent, got the scalar {col!r}; {fix}"
        )
    return check_vector(cls, name, np.array(out), dim, ids, fix)
