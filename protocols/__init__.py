"""Message protocols and topologies: plain Python, numpy and networkx, no Ray."""

from protocols.base import MessageProtocol, Router
from protocols.gossip import Gossip, GossipRouter
from protocols.registry import available_protocols, get_protocol
from protocols.stop import AnyOf, Consensus, Custom, Never, Stationary, StopRule, Threshold, parse_stop
from protocols.topology import (
    BarabasiAlbert,
    Complete,
    ErdosRenyi,
    GraphSpec,
    Grid,
    RingLattice,
    SmallWorld,
    Topology,
    influence_graph,
)

__all__ = [
    "AnyOf",
    "BarabasiAlbert",
    "Complete",
    "Consensus",
    "Custom",
    "ErdosRenyi",
    "Gossip",
    "GossipRouter",
    "GraphSpec",
    "Grid",
    "MessageProtocol",
    "Never",
    "RingLattice",
    "Router",
    "SmallWorld",
    "Stationary",
    "StopRule",
    "Threshold",
    "Topology",
    "available_protocols",
    "get_protocol",
    "influence_graph",
    "parse_stop",
]
