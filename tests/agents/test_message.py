from __future__ import annotations

import pytest

from agents import KINDS, Message
from orchestrator.errors import ConfigError


def test_message_fields_and_defaults() -> None:
    m = Message(kind="opinion", value=0.25)
    assert (m.kind, m.value, m.receiver, m.round, m.sender, m.seq) == ("opinion", 0.25, None, -1, -1, 0)


def test_a_malformed_kind_names_the_value_and_the_kinds() -> None:
    with pytest.raises(ConfigError) as info:
        Message(kind="Opinion!")
    assert str(info.value) == (
        "Invalid Message: kind 'Opinion!' is not a kind name (lowercase letters, digits, _); e.g. one of: "
        + ", ".join(KINDS)
        + "."
    )
    assert "vote" in KINDS
    # Kinds are open: a protocol may declare its own; the run refuses one it does not use.
    assert Message(kind="opnion").kind == "opnion"


def test_negative_receiver_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"^Invalid Message: receiver=-3: Input should be greater than or equal to 0"
    ):
        Message(kind="vote", receiver=-3)


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown field 'colour'; a Message has: kind, value, text"):
        Message(kind="post", colour="red")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match=r"kind is required"):
        Message(value=1.0)  # type: ignore[call-arg]
