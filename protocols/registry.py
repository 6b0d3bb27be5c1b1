"""Finding protocols by name, through the entry-point group ``moot.protocols``.

A third-party package adds a protocol by declaring, in its pyproject.toml::

    [project.entry-points."moot.protocols"]
    my_protocol = "my_package.module:MyProtocol"
"""

from __future__ import annotations

from agents.registry import available_plugins, load_plugin
from protocols.base import MessageProtocol

__all__ = ["ENTRY_POINT_GROUP", "available_protocols", "get_protocol"]

ENTRY_POINT_GROUP = "moot.protocols"


def available_protocols() -> list[str]:
    """Names of every installed protocol, sorted."""
    return available_plugins(ENTRY_POINT_GROUP)


def get_protocol(name: str) -> type[MessageProtocol]:
    """The protocol class registered as `name`.

    Raises:
        ConfigError: No installed package registers that name.
    """
    return load_plugin(ENTRY_POINT_GROUP, name, MessageProtocol, "protocol")  # type: ignore[type-abstract]
