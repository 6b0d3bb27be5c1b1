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
from agents.bounded_confidence import Deffuant, HegselmannKrause
from agents.context import BatchContext, Context
from agents.llm import LLMAgent
from agents.message import KINDS, Message, MessageKind
from agents.observation import Observation
from agents.opinion import ExpressedPrivate, FriedkinJohnsen, OpinionAgent
from agents.population import Choice, Normal, Population, Uniform
from agents.reply import Reply
from agents.vector import Vector, Vector32, vector_field
from agents.vector_opinion import VectorDeffuant, VectorDeGroot, VectorFriedkinJohnsen, VectorHegselmannKrause
from agents.voter import Voter

__all__ = [
    "ActResult",
    "Agent",
    "BatchContext",
    "Choice",
    "Context",
    "Deffuant",
    "ExpressedPrivate",
    "FriedkinJohnsen",
    "HegselmannKrause",
    "Inbox",
    "KINDS",
    "LLMAgent",
    "Message",
    "MessageBatch",
    "MessageKind",
    "Normal",
    "Observation",
    "OpinionAgent",
    "Population",
    "Reply",
    "Uniform",
    "Vector",
    "Vector32",
    "VectorDeGroot",
    "VectorDeffuant",
    "VectorFriedkinJohnsen",
    "VectorHegselmannKrause",
    "Voter",
    "vector_field",
]
