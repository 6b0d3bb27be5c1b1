"""The feed world: cascades counted by hand, follow-based feeds, OASIS's action rules, refused
actions as rows, and the same log on 1 and 3 Ray hosts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import networkx as nx
import numpy as np
import pytest

from agents.agent import Agent
from agents.context import Context
from agents.message import Message
from agents.population import Population
from orchestrator import launch, query
from protocols.social_feed import FeedAction, FeedWorld, RuleUser, SocialFeed
from tests.orchestrator.helpers import messages_hash


class Script(Agent):
    """Plays the actions a test planned for (round, agent)."""

    plan: ClassVar[dict[tuple[int, int], list[FeedAction]]] = {}

    def act(self, inbox: list[Message], ctx: Context) -> list[FeedAction]:
        return self.plan.get((ctx.round, self.id), [])


def run_script(
    tmp_path: Path, plan: dict[tuple[int, int], list[FeedAction]], rounds: int, **kw: object
) -> tuple[Path, str]:
    Script.plan = plan
    log = tmp_path / "feed.duckdb"
    proto = SocialFeed(graph=None, posts=[(0, "the root post")], **kw)  # type: ignore[arg-type]
    run = launch(Population.of(Script, 6), proto, rounds=rounds, seed=1, log=log, runtime="local")
    return log, run.run_id


def rows(log: Path, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r.values()) for r in query(log, sql).to_pylist()]


def test_cascade_scale_depth_and_breadth_on_a_hand_built_tree(tmp_path: Path) -> None:
    # root (post 0, user 0) <- a (user 1), b (user 2) in round 0; a <- c (user 3) in round 1
    plan = {
        (0, 1): [FeedAction(action="repost", post_id=0)],
        (0, 2): [FeedAction(action="repost", post_id=0)],
        (1, 3): [FeedAction(action="repost", post_id=1)],  # a repost of a repost
        (2, 4): [FeedAction(action="quote_post", post_id=3, content="deeper")],
    }
    log, _ = run_script(tmp_path, plan, rounds=3)
    assert rows(log, "SELECT post, parent, root, kind FROM feed_posts ORDER BY post") == [
        (1, 0, 0, "repost"),
        (2, 0, 0, "repost"),
        (3, 1, 0, "repost"),
        (4, 3, 0, "quote"),
    ]
    assert rows(
        log, "SELECT round, scale, depth, max_breadth FROM cascade_by_round WHERE root = 0 ORDER BY round"
    ) == [(0, 3, 1, 2), (1, 4, 2, 2), (2, 5, 3, 2)]


def test_oasis_action_rules_and_refusals_are_rows_not_crashes(tmp_path: Path) -> None:
    plan = {
        (0, 1): [FeedAction(action="like_post", post_id=0), FeedAction(action="like_post", post_id=0)],
        (0, 2): [FeedAction(action="like_post", post_id=99), FeedAction(action="follow", user_id=3)],
        (1, 1): [FeedAction(action="like_post", post_id=0)],
        (1, 2): [FeedAction(action="unfollow", user_id=3), FeedAction(action="unfollow", user_id=3)],
        (1, 4): [FeedAction(action="repost", post_id=0), FeedAction(action="repost", post_id=0)],
        (0, 5): [FeedAction(action="mute", user_id=2), FeedAction(action="mute", user_id=2)],
        (1, 5): [FeedAction(action="mute", user_id=2), FeedAction(action="mute", user_id=3)],
    }
    log, _ = run_script(tmp_path, plan, rounds=2)
    refused = rows(
        log, "SELECT round, sender, text FROM messages WHERE kind = 'refused' ORDER BY round, sender, seq"
    )
    assert refused == [
        (0, 1, "already liked post 0"),
        (0, 2, "post 99 does not exist"),
        (0, 5, "already muted user 2"),  # OASIS refuses a second mute, in the round or later
        (1, 1, "already liked post 0"),
        (1, 2, "not following"),
        (1, 4, "already reposted post 0"),
        (1, 5, "already muted user 2"),
    ]
    assert rows(log, "SELECT sender, receiver, value FROM messages WHERE kind = 'liked'") == [(1, 0, 0.0)]
    assert rows(
        log, "SELECT round, name, value FROM metrics WHERE name IN ('follow_edges', 'likes') ORDER BY ALL"
    ) == [(0, "follow_edges", 1.0), (0, "likes", 1.0), (1, "follow_edges", 0.0), (1, "likes", 0.0)]


def test_a_follow_based_feed_holds_only_followed_authors_posts() -> None:
    g = nx.DiGraph()
    g.add_nodes_from(range(8))
    g.add_edges_from([(0, 1), (0, 2), (5, 6)])
    proto = SocialFeed(
        recommender="follow",
        graph=g,
        posts=[(a, f"p{a}") for a in (1, 2, 3, 4, 6, 1, 7)],
        following=3,
        activation=1.0,
    )
    world = proto.build(8, 0).world
    assert isinstance(world, FeedWorld)
    feeds = world.feeds(np.arange(8), 0)
    for user, feed in enumerate(feeds.tolist()):
        authors = {int(world.author[p]) for p in feed if p >= 0}
        assert authors <= set(g.successors(user))
    assert sorted(p for p in feeds[0] if p >= 0) == [0, 1, 5]  # users 1 and 2's posts
    assert [p for p in feeds[3] if p >= 0] == []


@pytest.mark.ray
def test_same_seed_same_log_and_feeds_in_process_and_on_1_and_3_ray_hosts(
    ray_cluster: object, tmp_path: Path
) -> None:
    log = tmp_path / "feed.duckdb"
    proto = SocialFeed(posts=30, activation=0.3)
    pop = Population.of(RuleUser, 600)
    runs = [
        launch(pop, proto, rounds=4, seed=5, log=log, runtime=rt, hosts=h)
        for rt, h in (("local", 1), ("ray", 1), ("ray", 3))
    ]
    assert [r.hosts for r in runs] == [1, 1, 3]
    hashes = {messages_hash(log, r.run_id) for r in runs}
    assert len(hashes) == 1 and next(iter(hashes))[0] > 100
    world = proto.build(600, 5).world
    assert isinstance(world, FeedWorld)
    ids = np.arange(600)
    whole = world.feeds(ids, 0)
    halves = np.concatenate([world.feeds(ids[:300], 0), world.feeds(ids[300:], 0)])
    np.testing.assert_array_equal(whole, halves)  # a user's feed does not depend on its shard


def test_llm_users_act_only_when_active_and_their_actions_land(tmp_path: Path) -> None:
    from orchestrator import LLMConfig
    from protocols.social_feed import LLMUser

    log = tmp_path / "llm.duckdb"
    proto = SocialFeed(posts=20, activation=0.5)
    run = launch(
        Population.of(LLMUser, 40), proto, rounds=3, seed=2, log=log, runtime="local", llm=LLMConfig(cache="")
    )
    world = proto.build(40, 2).world
    assert isinstance(world, FeedWorld)
    active = sum(int(world.active(np.arange(40), r).sum()) for r in range(3))
    assert rows(log, f"SELECT count(*), count(error_type) FROM llm_calls WHERE run_id = '{run.run_id}'") == [
        (active, 0)
    ]
    acted = rows(log, "SELECT count(*) FROM messages WHERE kind IN ('post', 'repost', 'like', 'follow')")[0][
        0
    ]
    assert 0 < acted <= active


def test_herd_effect_up_seeded_posts_end_higher_than_control_and_down(tmp_path: Path) -> None:
    log = tmp_path / "herd.duckdb"
    votes = [(p, 1) for p in range(0, 10)] + [(p, -1) for p in range(10, 20)]
    proto = SocialFeed("reddit", posts=30, votes=votes, activation=0.2, graph=None, max_rec=30)
    pop = Population.of(RuleUser, 3000, herd=1.0, post_p=0.0, repost_p=0.0, follow_p=0.0)
    launch(pop, proto, rounds=8, seed=3, log=log, runtime="local")
    means = dict(rows(log, "SELECT grp, avg(score) FROM herd_by_post GROUP BY grp"))
    assert means["up"] > means["control"] > means["down"], means
    # Each group's score is its seeded votes plus the likes and dislikes the log records on its posts.
    for grp, lo, hi, seeded in (("up", 0, 10, 10), ("down", 10, 20, -10), ("control", 20, 30, 0)):
        total = rows(log, f"SELECT sum(score) FROM herd_by_post WHERE grp = '{grp}'")[0][0]
        logged = rows(
            log,
            "SELECT count(*) FILTER (kind = 'liked') - count(*) FILTER (kind = 'disliked') FROM messages "
            f"WHERE kind IN ('liked', 'disliked') AND value >= {lo} AND value < {hi}",
        )[0][0]
        assert total == logged + seeded, grp


def test_exposures_are_exactly_the_feeds_and_sampled_at_the_stated_rate(tmp_path: Path) -> None:
    from agents.rng import counter_uniform
    from protocols.social_feed.world import _EXPOSE, SHOWN_SEQ

    for rate in (1.0, 0.5):
        log = tmp_path / f"exp{rate}.duckdb"
        proto = SocialFeed(posts=40, activation=0.3, exposures=rate)
        run = launch(Population.of(RuleUser, 500), proto, rounds=2, seed=4, log=log, runtime="local")
        world = proto.build(500, 4).world
        assert isinstance(world, FeedWorld)
        ids = np.arange(500)
        active = ids[world.active(ids, 0)]
        if rate < 1:
            active = active[counter_uniform(4, 0, active, 0, stream=_EXPOSE) < rate]
        feeds = world.feeds(active, 0)
        want = sorted(
            (int(u), int(p), SHOWN_SEQ + j) for u, f in zip(active, feeds) for j, p in enumerate(f) if p >= 0
        )
        got = rows(
            log,
            f"SELECT receiver, value::BIGINT, seq FROM messages WHERE run_id = '{run.run_id}' "
            "AND kind = 'shown' AND round = 0 ORDER BY ALL",
        )
        assert got == want and len(got) > 50


def test_stance_polarization_per_round_matches_the_logged_stances(tmp_path: Path) -> None:
    log = tmp_path / "stance.duckdb"
    fixed = launch(
        Population.of(RuleUser, 800),
        SocialFeed(posts=40, activation=0.3),
        rounds=3,
        seed=6,
        log=log,
        runtime="local",
    )
    moving = launch(
        Population.of(RuleUser, 800, like_p=0.9),
        SocialFeed(posts=40, activation=0.3, influence=0.3),
        rounds=3,
        seed=6,
        log=log,
        runtime="local",
    )
    still = rows(log, f"SELECT variance FROM stance_by_round WHERE run_id = '{fixed.run_id}' ORDER BY round")
    assert len({v for (v,) in still}) == 1  # influence 0: stances never move
    moved = rows(log, f"SELECT variance FROM stance_by_round WHERE run_id = '{moving.run_id}' ORDER BY round")
    assert len({v for (v,) in moved}) == 3
    # The metric is the variance of the stances the log holds for the last round.
    final = rows(
        log,
        f"SELECT var_pop(value) FROM states WHERE run_id = '{moving.run_id}' AND field = 'stance' "
        f"AND round = 2",
    )[0][0]
    assert abs(final - moved[-1][0]) < 1e-12


def test_hourly_activation_follows_the_clock() -> None:
    # Users 0-99 are awake only 13:00-13:59, users 100-199 only 14:00-14:59; a round is 30 minutes.
    act = np.zeros((200, 24))
    act[:100, 13] = 1.0
    act[100:, 14] = 1.0
    proto = SocialFeed(activation=act, start_hour=13.0, step_minutes=30.0, posts=5)
    world = proto.build(200, 0).world
    assert isinstance(world, FeedWorld)
    ids = np.arange(200)
    for rnd, awake in (
        (0, range(0, 100)),
        (1, range(0, 100)),
        (2, range(100, 200)),
        (3, range(100, 200)),
        (4, []),
    ):
        assert np.flatnonzero(world.active(ids, rnd)).tolist() == list(awake)
    from orchestrator.errors import ConfigError

    with pytest.raises(
        ConfigError,
        match=r"activation must be a probability, one per user \(200\), or one per user and hour \(200 x 24\), each in 0..1; got shape \(24,\)",
    ):
        SocialFeed(activation=np.ones(24)).build(200, 0)


def test_comments_go_to_the_root_are_shown_and_their_votes_follow_oasis_rules(tmp_path: Path) -> None:
    plan = {
        (0, 1): [FeedAction(action="repost", post_id=0)],
        (1, 2): [FeedAction(action="create_comment", post_id=1, content="on the repost")],  # -> root 0
        (1, 3): [FeedAction(action="create_comment", post_id=42, content="nowhere")],
        (2, 4): [
            FeedAction(action="like_comment", comment_id=0),
            FeedAction(action="like_comment", comment_id=0),
        ],
        (2, 5): [
            FeedAction(action="dislike_comment", comment_id=0),
            FeedAction(action="like_comment", comment_id=7),
        ],
    }
    log, _ = run_script(tmp_path, plan, rounds=3)
    assert rows(log, "SELECT comment, post, author, round, score FROM feed_comments") == [(0, 0, 2, 1, 0)]
    assert rows(log, "SELECT round, sender, text FROM messages WHERE kind = 'refused' ORDER BY ALL") == [
        (1, 3, "post 42 does not exist"),
        (2, 4, "already liked comment 0"),
        (2, 5, "comment 7 does not exist"),
    ]
    assert rows(log, "SELECT sender, receiver FROM messages WHERE kind = 'commented'") == [
        (2, 0)
    ]  # to the root's author
    with pytest.raises(Exception, match=r"like_comment needs comment_id"):
        FeedAction(action="like_comment", post_id=3).to_messages()


def test_actions_on_a_quote_stay_on_it_and_on_a_repost_go_to_what_it_reposted(tmp_path: Path) -> None:
    # OASIS's code: likes, comments and reposts aimed at a repost land on what it reposted, but a
    # quote is a post of its own and keeps them (reference/oasis.md 1.2 says "the root": wrong).
    plan = {
        (0, 1): [FeedAction(action="quote_post", post_id=0, content="so true")],  # post 1, a quote
        (1, 2): [FeedAction(action="like_post", post_id=1)],  # likes the quote
        (1, 3): [FeedAction(action="create_comment", post_id=1, content="on the quote")],
        (1, 4): [FeedAction(action="repost", post_id=1)],  # post 2: shares the quote
        (1, 5): [FeedAction(action="repost", post_id=0)],  # post 3: shares the root
        (2, 4): [
            FeedAction(action="repost", post_id=0),  # allowed: it shared the quote, not the root
            FeedAction(action="repost", post_id=2),  # refused: post 2 reposted the quote it shared
        ],
        (2, 2): [FeedAction(action="like_post", post_id=2)],  # refused: lands on the quote it liked
        (2, 3): [FeedAction(action="like_post", post_id=3)],  # lands on the root
    }
    log, _ = run_script(tmp_path, plan, rounds=3)
    assert rows(
        log, "SELECT round, sender, receiver, value FROM messages WHERE kind = 'liked' ORDER BY ALL"
    ) == [
        (1, 2, 1, 1.0),  # the quote's author, the quote
        (2, 3, 0, 0.0),
    ]
    assert rows(log, "SELECT comment, post, author FROM feed_comments") == [(0, 1, 3)]
    assert rows(log, "SELECT sender, receiver FROM messages WHERE kind = 'commented'") == [(3, 1)]
    assert rows(log, "SELECT round, sender, text FROM messages WHERE kind = 'refused' ORDER BY ALL") == [
        (2, 2, "already liked post 1"),
        (2, 4, "already reposted post 1"),
    ]
    assert rows(log, "SELECT post, parent, root, kind FROM feed_posts ORDER BY post") == [
        (1, 0, 0, "quote"),
        (2, 1, 0, "repost"),  # the quote is its parent; the cascade's root stays post 0
        (3, 0, 0, "repost"),
        (4, 0, 0, "repost"),
    ]
    assert rows(log, "SELECT round, scale, depth FROM cascade_by_round WHERE root = 0 ORDER BY round") == [
        (0, 2, 1),  # the root's author and user 1
        (1, 4, 2),  # and users 4 and 5
        (2, 4, 2),  # user 4 is counted once, whatever it shared
    ]


def _shown(world: FeedWorld, users: np.ndarray, round: int) -> set[int]:
    """Every post any of `users` is shown this round (feeds sample from the recommendation buffer)."""
    feeds = world.feeds(users, round)
    return {int(p) for p in feeds.ravel() if p >= 0}


def test_the_hot_recommender_shows_the_top_posts_by_reddits_formula() -> None:
    likes = [0, 50, 3, 200, 10, 1000, 7, 20, 90, 2]
    dislikes = [5, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    proto = SocialFeed(
        "reddit", graph=None, posts=[(i, f"post {i}") for i in range(10)], max_rec=3, refresh=1
    )
    world = proto.build(400, 0).world
    assert isinstance(world, FeedWorld)
    world.likes[:10], world.dislikes[:10] = likes, dislikes
    world.created[:10] = [0, 0, 0, 0, 9, 0, 0, 0, 0, 0]  # post 4 is 9 rounds (27 min) newer
    # Independently (reference/oasis.md 2.3): sign(s) log10(max(|s|, 1)) + t / 45000, same epoch.
    t = [c * 180.0 for c in world.created[:10]]
    score = [
        (math.copysign(1, s) if s else 0) * math.log10(max(abs(s), 1)) + ti / 45000
        for s, ti in zip((lk - dk for lk, dk in zip(likes, dislikes)), t)
    ]
    top = set(sorted(range(10), key=lambda i: -score[i])[:3])
    assert top == {5, 3, 8}
    assert _shown(world, np.arange(400), 0) == top  # 400 users sampling the buffer see all of it


def _interest_world(users: np.ndarray, vec: np.ndarray, **kw: object) -> FeedWorld:
    """An X-mode world of `users` (interest vectors) and one post per row of `vec`, whose
    feeds are each one post drawn from the top 2 of the interest recommender."""
    proto = SocialFeed(
        "x",
        graph=None,
        posts=[(i, f"post {i}") for i in range(len(vec))],
        max_rec=2,
        refresh=1,
        following=0,
        dim=vec.shape[1],
        user_vectors=users,
        **kw,  # type: ignore[arg-type]
    )
    world = proto.build(len(users), 0).world
    assert isinstance(world, FeedWorld)
    world.vec[: len(vec)] = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    return world


def test_the_interest_recommender_shows_each_user_the_top_posts_by_cosine_times_recency() -> None:
    dim, n_posts = 4, 6
    users = np.zeros((400, dim), np.float32)
    users[:200, 0], users[200:, 1] = 1.0, 1.0  # two interests
    vec = np.array(
        [[1, 0, 0, 0], [0.9, 0.1, 0, 0], [0.6, 0.8, 0, 0], [0, 1, 0, 0], [0.1, 0.9, 0, 0], [0, 0, 1, 0]],
        np.float32,
    )
    world = _interest_world(users, vec)
    world.created[:n_posts] = [0, 30, 0, 0, 0, 0]  # post 1 is newest; round 50: ages 150 and 60 min
    rnd = 50
    age_min = [(rnd - c) * 3.0 for c in world.created[:n_posts]]
    rec = [math.log((271.8 - a) / 100) for a in age_min]  # OASIS's recency, computed here
    for rows, interest in ((np.arange(200), 0), (np.arange(200, 400), 1)):
        u = np.eye(dim)[interest]
        score = [float(np.dot(u, world.vec[p])) * rec[p] for p in range(n_posts)]
        top = set(sorted(range(n_posts), key=lambda p: -score[p])[:2])
        assert _shown(world, rows, rnd) == top
    assert _shown(world, np.arange(200), rnd) == {0, 1}
    assert _shown(world, np.arange(200, 400), rnd) == {3, 4}


@pytest.mark.parametrize("frozen", [False, True])
def test_recency_is_recomputed_each_round_unless_frozen_as_in_oasiss_code(frozen: bool) -> None:
    users = np.tile(np.array([[1.0, 0, 0, 0]], np.float32), (300, 1))
    vec = np.array([[1, 0, 0, 0], [0.8, 0.6, 0, 0], [0.9, 0.436, 0, 0]], np.float32)
    world = _interest_world(users, vec, frozen_recency=frozen)
    world.created[:3] = [0, 45, 0]  # post 1 is 15 minutes old at round 50, posts 0 and 2 150
    cos = [float(world.vec[p][0]) for p in range(3)]
    if frozen:  # every post's R was taken one step (3 minutes) after it was made: cosine decides
        score = [c * math.log((271.8 - 3.0) / 100) for c in cos]
    else:
        score = [c * math.log((271.8 - a) / 100) for c, a in zip(cos, (150.0, 15.0, 150.0))]
    top = set(sorted(range(3), key=lambda p: -score[p])[:2])
    assert top == ({0, 2} if frozen else {0, 1})
    assert _shown(world, np.arange(300), 50) == top


@pytest.mark.parametrize("protocol", ["social_feed", "debate"])
def test_the_feed_and_debate_worlds_are_applied_once_a_round_however_many_hosts(
    protocol: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One host applies each round, the others take its state (`World.apply_once`), and the
    log is the one every host applying it gave: messages (exposures included), world metrics
    and states."""
    from protocols.registry import get_protocol

    proto = get_protocol(protocol)()
    world_cls = type(proto.build(192, 5).world)
    calls: list[int] = []
    real = world_cls.apply

    def counted(self: object, *args: object) -> None:
        calls.append(id(self))
        real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(world_cls, "apply", counted)
    pop = proto.default_population(192)
    rounds = 4

    def run(name: str) -> object:
        return launch(
            pop, proto, rounds=rounds, seed=5, log=tmp_path / f"{name}.duckdb", runtime="local", hosts=3
        )

    once = run("once")
    assert len(calls) == rounds and len(set(calls)) == 1  # one world, once a round
    monkeypatch.setattr(world_cls, "apply_once", False)
    every = run("every")
    assert len(calls) == rounds + 3 * rounds
    assert messages_hash(once.log, once.run_id) == messages_hash(every.log, every.run_id)  # type: ignore[attr-defined]
    for sql in (
        "SELECT round, name, value FROM metrics WHERE name <> 'seconds' ORDER BY ALL",
        "SELECT round, agent, field, value FROM states ORDER BY ALL",
    ):
        assert once.sql(sql).to_pylist() == every.sql(sql).to_pylist()  # type: ignore[attr-defined]
