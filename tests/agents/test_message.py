from __future__ import annotations

import pytest
from pydantic import ValidationError

from agents import KINDS, Message


def test_message_fields_and_defaults() -> None:
    m = Message(kind="opinion", value=0.25)
    assert (m.kind, m.value, m.receiver, m.round, m.sender, m.seq) == ("opinion", 0.25, None, -1, -1, 0)


def test_kind_is_a_literal() -> None:
    with pytest.raises(ValidationError, match="opinion"):
        Message(kind="opnion")  # type: ignore[arg-type]
    assert "vote" in KINDS


def test_negative_receiver_is_refused() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Message(kind="vote", receiver=-3)


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Message(kind="post", colour="red")  # type: ignore[call-arg]
