"""Finding agent classes by name, through the entry-point group ``moot.agents``.

``moot run --protocol gossip --agent hegselmann_krause`` looks the class up
here. A third-party package adds agents by declaring, in its pyproject.toml::

    [project.entry-points."moot.agents"]
    my_agent = "my_package.module:MyAgent"
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TypeVar

from agents.agent import Agent
from agents.errors import ConfigError

__all__ = ["AGENT_ENTRY_POINTS", "available_agents", "available_plugins", "get_agent", "load_plugin"]

AGENT_ENTRY_POINTS = "moot.agents"
T = TypeVar("T")


def available_plugins(group: str) -> list[str]:
    """Names registered under entry-point `group`, sorted."""
    return sorted(ep.name for ep in entry_points(group=group))


def load_plugin(group: str, name: str, base: type[T], what: str) -> type[T]:
    """The class registered as `name` under entry-point `group`, checked to subclass `base`.

    Raises:
        ConfigError: No installed package registers that name, or it is not a `base`.
    """
    for ep in entry_points(group=group):
        if ep.name == name:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise ConfigError(
                    f"Entry point {name!r} ({ep.value}) is not a {base.__name__} subclass; fix the package "
                    "that registers it."
                )
            return cls
    known = ", ".join(available_plugins(group)) or "(none)"
    raise ConfigError(f"Unknown {what} {name!r}; known: {known}. Is its package installed?")


def available_agents() -> list[str]:
    """Names of every registered agent class, sorted."""
    return available_plugins(AGENT_ENTRY_POINTS)


def get_agent(name: str) -> type[Agent]:
    """The agent class registered as `name`.

    Raises:
        ConfigError: No installed package registers that name.
    """
    return load_plugin(AGENT_ENTRY_POINTS, name, Agent, "agent")
