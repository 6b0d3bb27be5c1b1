from __future__ import annotations

import numpy as np

from agents import BatchContext, Context, Inbox, MessageBatch, OpinionAgent


def test_act_and_act_batch_agree() -> None:
    rng = np.random.default_rng(1)
    n, m = 30, 200
    opinion, stub = rng.random(n), rng.random(n)
    recv = np.sort(rng.integers(0, n - 5, m))  # the last agents hear nothing
    batch = MessageBatch.broadcast(rng.integers(0, n, m), "opinion", rng.random(m)).with_receivers(recv)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(recv, minlength=n), out=offsets[1:])
    inbox = Inbox.grouped(batch, offsets, 0)
    state = {"opinion": opinion.copy(), "stubbornness": stub.copy()}
    out = OpinionAgent.act_batch(state, inbox, BatchContext(1, np.arange(n), 0))
    for i in range(n):
        agent = OpinionAgent(id=i, opinion=opinion[i], stubbornness=stub[i])
        msg = agent.act(inbox.messages(i), Context(1, i, 0))
        assert abs(agent.opinion - state["opinion"][i]) < 1e-12
        assert msg is not None and abs(msg.value - out.value[i]) < 1e-12
    assert np.array_equal(state["opinion"][-5:], opinion[-5:])


def test_fully_stubborn_agent_never_moves() -> None:
    agent = OpinionAgent(opinion=0.2, stubbornness=1.0)
    batch = MessageBatch.broadcast(np.arange(3), "opinion", np.array([1.0, 1.0, 1.0]))
    inbox = Inbox.grouped(batch.with_receivers(np.zeros(3, np.int64)), np.array([0, 3]), 0)
    agent.act(inbox.messages(0), Context(1, 0, 0))
    assert agent.opinion == 0.2
