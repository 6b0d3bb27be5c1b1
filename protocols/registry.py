"""Finding protocols by name, through the entry-point group ``moot.protocols``.

A third-party package adds a protocol by declaring, in its pyproject.toml::

    [project.entry-points."moot.protocols"]
    my_protocol = "my_package.module:MyProtocol"
"""

from __future__ import annotations

from importlib.metadata import entry_points

from orchestrator.errors import ConfigError
from protocols.base import MessageProtocol

__all__ = ["ENTRY_POINT_GROUP", "available_protocols", "get_protocol"]

ENTRY_POINT_GROUP = "moot.protocols"


def available_protocols() -> list[str]:
    """Names of every installed protocol, sorted."""
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def get_protocol(name: str) -> type[MessageProtocol]:
    """The protocol class registered as `name`.

    Raises:
        ConfigError: No installed package registers that name.
    """
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, MessageProtocol)):
                raise ConfigError(
                    f"Entry point {name!r} ({ep.value}) is not a MessageProtocol subclass; "
                    "fix the package that registers it."
                )
            return cls
    known = ", ".join(available_protocols()) or "(none)"
    raise ConfigError(f"Unknown protocol {name!r}; known: {known}. Is its package installed?")
