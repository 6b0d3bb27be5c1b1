"""Finding agent classes by name, through the entry-point group ``moot.agents``.

``moot run --protocol gossip --agent hegselmann_krause`` looks the class up
here. A third-party package adds agents by declaring, in its pyproject.toml::

    [project.entry-points."moot.agents"]
    my_agent = "my_package.module:MyAgent"
"""

from __future__ import annotations

from importlib.metadata import entry_points

from agents.agent import Agent
from orchestrator.errors import ConfigError

__all__ = ["AGENT_ENTRY_POINTS", "available_agents", "get_agent"]

AGENT_ENTRY_POINTS = "moot.agents"


def available_agents() -> list[str]:
    """Names of every registered agent class, sorted."""
    return sorted(ep.name for ep in entry_points(group=AGENT_ENTRY_POINTS))


def get_agent(name: str) -> type[Agent]:
    """The agent class registered as `name`.

    Raises:
        ConfigError: No installed package registers that name.
    """
    for ep in entry_points(group=AGENT_ENTRY_POINTS):
        if ep.name == name:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Agent)):
                raise ConfigError(
                    f"Entry point {name!r} ({ep.value}) is not an Agent subclass; fix the package that "
                    "registers it."
                )
            return cls
    known = ", ".join(available_agents()) or "(none)"
    raise ConfigError(f"Unknown agent {name!r}; known: {known}. Is its package installed?")
