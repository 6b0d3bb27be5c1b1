"""Vector state: fields that hold a fixed-length vector per agent (opinions on several issues, a
model's parameters, a point in a search space).

Declare the field with the `Vector` type (float64) or `Vector32` (float32), and give its length
once per population (``Population.of(cls, n, dim=16, ...)``). On the vectorised path the field
is one ``(n, dim)`` array in `act_batch`'s state; on the plain path each agent holds a 1-D
numpy array. The log keeps it in the ``vector`` column of ``states`` (one row per agent, field
and round, ``value`` NULL), as DuckDB ``DOUBLE[]``.

Example:
    >>> class Multi(Agent):
    ...     opinion: Vector = vector_field(0.0, ge=0.0, le=1.0)
    >>> Population.of(Multi, 1000, dim=16, opinion=Uniform(0, 1))
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, PlainSerializer, PlainValidator

from agents.errors import ConfigError

if TYPE_CHECKING:
    from agents.agent import Agent

__all__ = [
    "Vector",
    "Vector32",
    "VectorSpec",
    "check_vector",
    "vector_field",
    "vector_fields",
    "vector_spec",
]


@dataclass(frozen=True, slots=True)
class VectorSpec:
    """What a vector field holds: its dtype, and the bounds and finiteness of its entries."""

    dtype: str = "float64"
    ge: float | None = None
    le: float | None = None
    finite: bool = True

    def with_rules(self, ge: float | None, le: float | None, finite: bool) -> VectorSpec:
        return VectorSpec(self.dtype, ge, le, finite)


def _validator(dtype: str) -> PlainValidator:
    def check(value: Any) -> NDArray[Any]:
        arr = np.asarray(value, dtype)
        if arr.ndim != 1:
            raise ValueError(
                f"a vector field holds one 1-D array (got {type(value).__name__} of shape {arr.shape}); "
                "give a list or numpy array of the population's dim"
            )
        return arr

    return PlainValidator(check)


def _dump(arr: NDArray[Any]) -> list[float]:
    return [float(x) for x in np.asarray(arr).ravel()]


Vector = Annotated[NDArray[np.float64], _validator("float64"), PlainSerializer(_dump), VectorSpec("float64")]
"""A vector of float64 per agent; its length is the population's ``dim``."""

Vector32 = Annotated[
    NDArray[np.float32], _validator("float32"), PlainSerializer(_dump), VectorSpec("float32")
]
"""A vector of float32 per agent (half the memory; logged as DOUBLE all the same)."""

_RULES = "moot_vector_rules"


def vector_field(
    fill: float = 0.0, *, ge: float | None = None, le: float | None = None, finite: bool = True
) -> Any:
    """A vector field's default and rules: every entry starts at `fill` (NaN allowed only with
    ``finite=False``), and must stay within ``[ge, le]``.

    Example:
        >>> opinion: Vector = vector_field(0.5, ge=0.0, le=1.0)
    """
    return Field(default=fill, json_schema_extra={_RULES: {"ge": ge, "le": le, "finite": finite}})


def vector_spec(cls: type[Agent], name: str) -> VectorSpec | None:
    """The `VectorSpec` of `cls.name` (bounds from `vector_field`); None for a field that is no vector."""
    info = cls.model_fields.get(name)
    if info is None:
        return None
    spec = next((m for m in info.metadata if isinstance(m, VectorSpec)), None)
    if spec is None:
        return None
    extra = info.json_schema_extra
    rules = extra.get(_RULES) if isinstance(extra, dict) else None
    if isinstance(rules, dict):
        return spec.with_rules(rules.get("ge"), rules.get("le"), bool(rules.get("finite", True)))  # type: ignore[arg-type]
    return spec


@cache
def vector_fields(cls: type[Agent]) -> dict[str, VectorSpec]:
    """The vector fields of `cls`, by name (asked every round by the hosts: computed once per class;
    do not change the returned dict)."""
    out = {}
    for name in cls.state_fields():
        spec = vector_spec(cls, name)
        if spec is not None:
            out[name] = spec
    return out


def fill_value(cls: type[Agent], name: str) -> float:
    """The default entry of vector field `cls.name`."""
    default = cls.model_fields[name].default
    try:
        return float(default)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{cls.__name__}.{name} is a Vector whose default is {default!r}; give the default entry as "
            "one number: vector_field(0.0)."
        ) from None


def check_vector(
    cls: type[Agent], name: str, col: Any, dim: int, ids: NDArray[np.int64], fix: str
) -> NDArray[Any]:
    """Check a vector column: one row of `dim` entries per agent, finite, within bounds.

    Args:
        col: The column, ``(len(ids), dim)``.
        fix: What the user should change, said at the end of the error.

    Returns:
        The column as an array of the field's dtype.

    Raises:
        ConfigError: One line naming the class, field, first agent at fault, its value and `fix`.
    """
    spec = vector_spec(cls, name)
    assert spec is not None
    where = f"{cls.__name__}.{name}"
    arr = np.asarray(col)
    if arr.ndim != 2 or arr.shape != (len(ids), dim):
        if arr.ndim == 1 and len(arr) == len(ids):
            raise ConfigError(
                f"{where} is a vector of {dim} per agent, but got one number per agent (agent {int(ids[0])}: "
                f"{arr[0]!r}); {fix}"
            )
        raise ConfigError(
            f"{where} is a vector of {dim} per agent ({len(ids)} agents: shape ({len(ids)}, {dim})), but got "
            f"shape {arr.shape}; {fix}"
        )
    if arr.dtype.kind not in "fiub":
        raise ConfigError(f"{where} holds numbers, got dtype {arr.dtype}; {fix}")
    arr = arr.astype(spec.dtype, copy=False)
    rules: list[tuple[str, NDArray[np.bool_]]] = []
    if spec.finite:
        rules.append(("must be finite", np.isfinite(arr).all(axis=1)))
    with np.errstate(invalid="ignore"):
        if spec.ge is not None:
            rules.append((f"must be >= {spec.ge}", ((arr >= spec.ge) | np.isnan(arr)).all(axis=1)))
        if spec.le is not None:
            rules.append((f"must be <= {spec.le}", ((arr <= spec.le) | np.isnan(arr)).all(axis=1)))
    for rule, ok in rules:
        if not ok.all():
            bad = np.flatnonzero(~ok)
            i = int(bad[0])
            shown = np.array2string(arr[i], precision=4, threshold=6)
            raise ConfigError(
                f"{where} {rule} in every entry, but agent {int(ids[i])} has {shown} ({len(bad)} of "
                f"{len(arr)} agents); {fix}"
            )
    return arr


def one_vector(cls: type[Agent], name: str, value: Any, dim: int, agent: int, fix: str) -> NDArray[Any]:
    """One agent's vector (the plain path), checked as `check_vector` checks a column."""
    arr = np.asarray(value) if not isinstance(value, (int, float)) else None
    if arr is None or arr.ndim != 1:
        got = f"{value!r}" if arr is None else f"shape {arr.shape}"
        raise ConfigError(
            f"{cls.__name__}.{name} of agent {agent} is a vector of {dim}, but got {got}; {fix}"
        )
    row: NDArray[Any] = check_vector(cls, name, arr[None, :], dim, np.array([agent], np.int64), fix)[0]
    return row
