from __future__ import annotations

import numpy as np
import pyarrow as pa

from agents import Inbox, Message, MessageBatch


def test_from_messages_round_trip() -> None:
    msgs = [
        Message(kind="argument", text="no", receiver=2, payload={"x": [1, 2]}),
        Message(kind="opinion", value=0.5),
    ]
    batch = MessageBatch.from_messages(msgs, np.array([4, 4]), np.array([0, 1], np.int32))
    back = [batch.message(i, round=3) for i in range(2)]
    assert back[0].text == "no" and back[0].payload == {"x": [1, 2]} and back[0].receiver == 2
    assert back[1].value == 0.5 and back[1].text is None and back[1].receiver == -1
    assert [(m.sender, m.seq, m.round) for m in back] == [(4, 0, 3), (4, 1, 3)]


def test_concat_fills_missing_text_with_nulls() -> None:
    a = MessageBatch.broadcast(np.arange(2), "opinion", np.array([1.0, 2.0]))
    b = MessageBatch.from_messages([Message(kind="post", text="hi")], np.array([9]), np.array([0], np.int32))
    c = MessageBatch.concat([a, b])
    assert len(c) == 3 and c.text is not None
    assert c.text.to_pylist() == [None, None, "hi"]
    assert c.take(np.array([2, 0])).sender.tolist() == [9, 0]
    assert isinstance(c.slice(1, 3).text, pa.Array) and len(c.slice(1, 3)) == 2


def test_inbox_sum_and_mean_match_python() -> None:
    rng = np.random.default_rng(0)
    recv = np.sort(rng.integers(0, 50, 400))
    values = rng.random(400)
    batch = MessageBatch.broadcast(np.arange(400), "opinion", values).with_receivers(recv)
    offsets = np.zeros(51, np.int64)
    np.cumsum(np.bincount(recv, minlength=50), out=offsets[1:])
    inbox = Inbox.grouped(batch, offsets, round=0)
    mean, heard = inbox.mean()
    for i in range(50):
        mine = values[recv == i]
        assert heard[i] == (len(mine) > 0)
        if len(mine):
            assert abs(mean[i] - mine.mean()) < 1e-12
            assert [m.value for m in inbox.messages(i)] == mine.tolist()
