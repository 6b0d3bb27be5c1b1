"""OASIS's recommender scores against reference/oasis.md's test vectors and hand-made cases."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from protocols.social_feed.ranking import hashed_vectors, hot, interest_top_k, recency

T = (datetime(2024, 8, 6, 8, 0, 0) - datetime(1970, 1, 1)).total_seconds()


def test_hot_score_matches_the_reference_test_vectors() -> None:
    likes, dislikes = np.array([8, 0, 1, 0]), np.array([0, 1, 0, 0])
    np.testing.assert_array_equal(
        hot(likes, dislikes, np.full(4, T)), [13087.6408011, 13086.7377111, 13086.7377111, 13086.7377111]
    )


def test_one_vote_does_not_change_the_ranking_two_do() -> None:
    created = np.array([T, T + 60.0])  # post 1 is a minute newer, so it leads
    base = hot(np.array([0, 0]), np.array([0, 0]), created)
    one = hot(np.array([1, 0]), np.array([0, 0]), created)
    two = hot(np.array([2, 0]), np.array([0, 0]), created)
    assert np.argmax(base) == np.argmax(one) == 1
    assert np.argmax(two) == 0


def test_recency_is_one_at_age_zero_and_zero_at_171_8() -> None:
    np.testing.assert_allclose(recency(np.array([0.0, 171.8])), [np.log(2.718), 0.0], atol=1e-12)
    assert recency(np.array([1000.0]))[0] < -6  # clipped below the pole, still a number


def test_interest_top_k_on_a_hand_made_case() -> None:
    users = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    s = np.float32(np.sqrt(0.5))
    posts = np.array([[1.0, 0.0], [s, s], [0.0, 1.0], [-1.0, 0.0]], np.float32)
    weight = np.array([0.5, 1.0, 1.0, 1.0])
    # user 0: scores 0.5, 0.707, 0, -1 -> posts 1, 0; user 1: 0, 0.707, 1, 0 -> posts 2, 1
    np.testing.assert_array_equal(interest_top_k(users, posts, weight, 2), [[1, 0], [2, 1]])
    # fewer posts than k: every post, best first, then -1
    np.testing.assert_array_equal(interest_top_k(users[:1], posts[:2], weight[:2], 3), [[1, 0, -1]])


def test_interest_top_k_agrees_with_a_full_sort() -> None:
    rng = np.random.default_rng(1)
    users = rng.normal(size=(300, 16)).astype(np.float32)
    posts = rng.normal(size=(500, 16)).astype(np.float32)
    users /= np.linalg.norm(users, axis=1, keepdims=True)
    posts /= np.linalg.norm(posts, axis=1, keepdims=True)
    weight = rng.random(500)
    got = interest_top_k(users, posts, weight, 5)
    score = (users @ posts.T).astype(np.float64) * weight
    want = np.argsort(-score, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(got, want)


def test_hashed_vectors_bring_texts_that_share_words_together() -> None:
    v = hashed_vectors(
        ["climate policy and carbon tax", "a carbon tax for climate", "football results tonight", ""]
    )
    assert abs(np.linalg.norm(v[0]) - 1) < 1e-6 and not v[3].any()
    assert v[0] @ v[1] > 0.5 > abs(v[0] @ v[2])
