from __future__ import annotations

import numpy as np

from agents.context import BatchContext, Context
from agents.rng import counter_integers, counter_uniform


def test_draws_do_not_depend_on_sharding() -> None:
    ids = np.arange(10_000)
    whole = counter_uniform(7, 3, ids)
    parts = np.concatenate([counter_uniform(7, 3, ids[:1234]), counter_uniform(7, 3, ids[1234:])])
    assert np.array_equal(whole, parts)


def test_draws_differ_by_seed_round_draw_and_stream() -> None:
    ids = np.arange(1000)
    base = counter_uniform(1, 0, ids)
    for other in (
        counter_uniform(2, 0, ids),
        counter_uniform(1, 1, ids),
        counter_uniform(1, 0, ids, 1),
        counter_uniform(1, 0, ids, stream=5),
    ):
        assert not np.array_equal(base, other)


def test_uniform_moments_and_integer_range() -> None:
    u = counter_uniform(0, 0, np.arange(200_000))
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005
    assert abs(u.var() - 1 / 12) < 0.002
    k = counter_integers(0, 0, np.arange(60_000), 6)
    counts = np.bincount(k, minlength=6)
    assert counts.min() > 9_500 and counts.max() < 10_500 and k.max() == 5


def test_context_rng_is_lazy_and_reproducible() -> None:
    a = Context(round=2, agent_id=5, seed=9).rng.random(3)
    b = Context(round=2, agent_id=5, seed=9).rng.random(3)
    c = Context(round=3, agent_id=5, seed=9).rng.random(3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    ctx = BatchContext(1, np.arange(10, 20), 4)
    assert np.array_equal(ctx.uniform()[5:], BatchContext(1, np.arange(15, 20), 4).uniform())


def test_plain_context_draws_equal_the_batch_draws() -> None:
    """ctx.uniform() is cheap and counter-based: the k-th draw equals BatchContext.uniform(k)."""
    from agents import BatchContext, Context

    ids = np.arange(50, 90, dtype=np.int64)
    batch = BatchContext(round=7, ids=ids, seed=11)
    u0, u1, ints = batch.uniform(0), batch.uniform(1), batch.integers(13, 2)
    for k, i in enumerate(ids):
        ctx = Context(round=7, agent_id=int(i), seed=11)
        assert ctx.uniform() == u0[k] and ctx.uniform() == u1[k] and ctx.integers(13) == ints[k]
        assert ctx.uniform(draw=0) == u0[k]  # an explicit draw number does not move the counter
        assert ctx.choice(["a", "b", "c"], draw=5) == "abc"[batch.integers(3, 5)[k]]
    other = Context(round=8, agent_id=50, seed=11)
    assert other.uniform() != u0[0]


def test_big_arrays_mixed_chunk_by_chunk_give_the_scalar_mixers_bits() -> None:
    """counter_bits works on a cache-sized chunk at a time, in place; across chunk boundaries,
    for negative and 2-D ids, it equals the plain-Python splitmix64 of `scalar_uniform`."""
    from agents.rng import _CHUNK, counter_bits, scalar_head, scalar_uniform

    ids = np.arange(-5, 3 * _CHUNK + 7, dtype=np.int64)
    bits = counter_bits(9, 4, ids, 2, stream=6)
    head = scalar_head(9, 4, 2, 6)
    picks = [0, 4, 5, _CHUNK - 1, _CHUNK, 2 * _CHUNK + 1, len(ids) - 1]
    assert [(bits[i] >> np.uint64(11)) * (1.0 / (1 << 53)) for i in picks] == [
        scalar_uniform(head, int(ids[i])) for i in picks
    ]
    square = ids[: 2 * _CHUNK].reshape(2, _CHUNK)
    assert np.array_equal(counter_bits(9, 4, square, 2, stream=6), bits[: 2 * _CHUNK].reshape(2, _CHUNK))
