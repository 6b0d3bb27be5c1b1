from __future__ import annotations

import pytest

from orchestrator.errors import ConfigError
from protocols import Gossip, available_protocols, get_protocol


def test_gossip_is_registered_by_entry_point() -> None:
    assert get_protocol("gossip") is Gossip
    assert "gossip" in available_protocols()


def test_unknown_protocol_names_the_known_ones() -> None:
    known = ", ".join(available_protocols())
    with pytest.raises(ConfigError) as info:
        get_protocol("gosip")
    assert str(info.value) == f"Unknown protocol 'gosip'; known: {known}. Is its package installed?"
