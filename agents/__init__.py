"""The SDK for defining agents: plain Python and numpy, no Ray.

Example:
    >>> from agents import Agent, Message
    >>> class Stubborn(Agent):
    ...     opinion: float = 0.0
    ...     def act(self, inbox, ctx):
    ...         return Message(kind="opinion", value=self.opinion)
"""

from agents.agent import ActResult, Agent
from agents.batch import Inbox, MessageBatch
from agents.context import BatchContext, Context
from agents.llm import LLMAgent
from agents.message import KINDS, Message, MessageKind
from agents.opinion import OpinionAgent
from agents.population import Normal, Population, Uniform
from agents.reply import Reply

__all__ = [
    "ActResult",
    "Agent",
    "BatchContext",
    "Context",
    "Inbox",
    "KINDS",
    "LLMAgent",
    "Message",
    "MessageBatch",
    "MessageKind",
    "Normal",
    "OpinionAgent",
    "Population",
    "Reply",
    "Uniform",
]
