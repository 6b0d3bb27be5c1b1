"""An OASIS-style social platform as a protocol (reference/oasis.md): a world of users,
posts, likes and follows; feeds from four recommenders; OASIS's actions as replies.

Modes as in OASIS: ``x`` (interest recommender, a feed of 2 recommended + 3 in-network
posts, like counts shown) and ``reddit`` (hot score, 5 posts from a global top list,
scores shown). See `protocols.social_feed.world` for the state and the action rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from agents.errors import ConfigError
from agents.rng import counter_uniform
from protocols.base import DirectRouter, MessageProtocol
from protocols.social_feed.agents import FeedAction, LLMUser, RuleUser
from protocols.social_feed.ranking import hashed_vectors
from protocols.social_feed.world import ACTIONS, FeedView, FeedWorld
from protocols.topology import GraphSpec, Topology, graph_spec

if TYPE_CHECKING:
    import networkx as nx

    from agents.agent import Agent
    from agents.population import Population

__all__ = ["FeedAction", "FeedView", "FeedWorld", "LLMUser", "RuleUser", "SocialFeed"]

RECOMMENDERS = ("interest", "hot", "random", "follow")
NOTICES = (
    "posted",
    "refused",
    "liked",
    "disliked",
    "followed",
    "shown",
    "commented",
    "liked_comment",
    "disliked_comment",
)


class SocialFeed(MessageProtocol):
    """A social platform (X-like or Reddit-like) with a recommender.

    Args:
        mode: ``x`` or ``reddit`` (OASIS's defaults for each, overridable below).
        recommender: ``interest`` (cosine x recency over at most 4,000 candidates), ``hot``
            (Reddit's formula, one list for all), ``random``, or ``follow`` (in-network only).
        activation: Chance that a user acts in a round (OASIS's Reddit runs: 0.1), one per user, or
            one per user and hour of the day (n x 24: OASIS's time engine; the hour of round r is
            ``start_hour + r * step_minutes / 60``).
        start_hour: The simulated hour of round 0 (OASIS: the source post's hour, else 13).
        graph: The starting follow graph: a networkx graph, a generator spec or its name
            (``barabasi_albert``, ``erdos_renyi``, ...), or None for no follows.
        posts: Seeded posts: how many (by random users, with generic texts), or (author, text) pairs.
        dim: Size of the interest vectors (users' are seeded; posts take their author's).
        max_rec, refresh, following: The recommendation buffer per user, posts sampled from it
            per refresh, and in-network posts added (X mode).
        show_score: Show likes minus dislikes (Reddit) instead of both counts.
        step_minutes: Simulated minutes per round (OASIS X: 3).
        votes: Seeded votes for herd experiments: (post id, +1 or -1), one like or dislike from
            a rater before round 0 (posts without one are the control group).
        exposures: Share of active users whose feed is logged as ``shown`` rows (1: all; 0: none),
            sampled per user and round.
        user_vectors: Your users' interest vectors (one row per user); default seeded at random.
        influence: How far a like pulls the liker's stance (in [-1, 1]) toward the post's: 0 keeps
            stances fixed; polarization per round is then in ``metrics`` and ``states``.
        frozen_recency: The interest recommender as OASIS's code has it: each post's recency
            term is computed once, when the post is first a candidate (one step old), and never
            again, so the ranking is cosine similarity alone. Off by default: the recency is
            recomputed every round, as the OASIS paper describes it, so that old posts fade.
    """

    name = "social_feed"
    instructions = (
        "You are on a social platform. Read your feed and choose one action that fits your profile: "
        "create_post, repost, quote_post, create_comment, like_post, unlike_post, dislike_post, "
        "like_comment, dislike_comment, follow, unfollow, mute or do_nothing."
    )
    kinds = NOTICES
    action_kinds = ACTIONS
    replies = (FeedAction,)

    def __init__(
        self,
        mode: Literal["x", "reddit"] = "x",
        *,
        recommender: str | None = None,
        activation: float | Sequence[float] = 0.1,
        graph: nx.Graph | GraphSpec | str | None = "barabasi_albert",
        posts: int | Sequence[tuple[int, str]] = 50,
        dim: int = 16,
        max_rec: int | None = None,
        refresh: int | None = None,
        following: int | None = None,
        show_score: bool | None = None,
        step_minutes: float = 3.0,
        votes: Sequence[tuple[int, int]] = (),
        exposures: float = 1.0,
        user_vectors: np.ndarray | None = None,
        influence: float = 0.0,
        start_hour: float = 13.0,
        frozen_recency: bool = False,
    ) -> None:
        if mode not in ("x", "reddit"):
            raise ConfigError(f"Unknown mode {mode!r}; use 'x' or 'reddit'.")
        rec = recommender or ("interest" if mode == "x" else "hot")
        if rec not in RECOMMENDERS:
            raise ConfigError(f"Unknown recommender {rec!r}; use one of: {', '.join(RECOMMENDERS)}.")
        self.mode, self.recommender = mode, rec
        self.activation = activation
        self.graph = graph_spec(graph) if isinstance(graph, str) else graph
        self.posts = posts
        self.dim = dim
        self.max_rec = max_rec if max_rec is not None else (2 if mode == "x" else 100)
        self.refresh = refresh if refresh is not None else (2 if mode == "x" else 5)
        self.following = following if following is not None else (3 if mode == "x" else 0)
        self.show_score = show_score if show_score is not None else mode == "reddit"
        self.step_minutes = step_minutes
        self.votes = [(int(p), int(v)) for p, v in votes]
        if not 0 <= exposures <= 1:
            raise ConfigError(f"exposures is a share of users, 0..1; got {exposures}.")
        self.exposures = float(exposures)
        if not 0 <= influence <= 1:
            raise ConfigError(f"influence must be in 0..1, got {influence}.")
        self.influence = float(influence)
        self.start_hour = float(start_hour)
        self.frozen_recency = bool(frozen_recency)
        self.user_vectors = None if user_vectors is None else np.asarray(user_vectors, np.float32)
        bad = [(p, v) for p, v in self.votes if v not in (1, -1)]
        if bad:
            raise ConfigError(f"Seeded votes must be +1 or -1, got {bad[0]}; e.g. votes=[(0, 1), (1, -1)].")
        for name in ("max_rec", "refresh", "following", "dim"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}.")

    def build(self, n_agents: int, seed: int) -> DirectRouter:
        ids = np.arange(n_agents)
        rng = np.random.default_rng([seed, 0xFEED])
        if self.user_vectors is not None:
            if self.user_vectors.ndim != 2 or len(self.user_vectors) != n_agents:
                raise ConfigError(
                    f"user_vectors needs one row per user ({n_agents}), got shape {self.user_vectors.shape}."
                )
            user_vec = self.user_vectors.copy()
        else:
            user_vec = rng.normal(size=(n_agents, self.dim)).astype(np.float32)
        norm = np.linalg.norm(user_vec, axis=1, keepdims=True)
        user_vec = np.divide(user_vec, norm, out=np.zeros_like(user_vec), where=norm > 0)
        stance = counter_uniform(seed, -1, ids, 0, stream=30) * 2 - 1
        act = np.asarray(self.activation, np.float64)
        activation = np.broadcast_to(act, (n_agents,)).copy() if act.ndim == 0 else act
        shape_ok = activation.shape in ((n_agents,), (n_agents, 24))
        if not shape_ok or not ((activation >= 0) & (activation <= 1)).all():
            raise ConfigError(
                f"activation must be a probability, one per user ({n_agents}), or one per user and hour "
                f"({n_agents} x 24), each in 0..1; got shape {activation.shape}."
            )
        follows = np.empty(0, np.int64)
        if self.graph is not None:
            topo = (
                self.graph.build(n_agents, seed)
                if isinstance(self.graph, GraphSpec)
                else Topology.from_networkx(self.graph)
            )
            if topo.n != n_agents:
                raise ConfigError(
                    f"The follow graph has {topo.n} nodes for {n_agents} users; give one per user."
                )
            follows = (topo.edge_source.astype(np.int64) << np.int64(32)) | topo.targets.astype(np.int64)
        world = FeedWorld(
            n_agents,
            seed,
            user_vec,
            stance,
            activation,
            follows,
            self.recommender,
            self.max_rec,
            self.refresh,
            self.following,
            self.show_score,
            self.step_minutes * 60.0,
            exposures=self.exposures,
            influence=self.influence,
            start_hour=self.start_hour,
            frozen_recency=self.frozen_recency,
        )
        if isinstance(self.posts, int):
            authors = rng.integers(0, n_agents, self.posts)
            texts = [f"Post {i} by user {a}." for i, a in enumerate(authors.tolist())]
            world.seed_posts(authors.tolist(), texts, user_vec[authors])
        else:
            authors = np.array([a for a, _ in self.posts], np.int64)
            if len(authors) and (authors.min() < 0 or authors.max() >= n_agents):
                raise ConfigError(f"A seeded post's author must be a user 0..{n_agents - 1}.")
            texts = [t for _, t in self.posts]
            world.seed_posts(
                authors.tolist(), texts, hashed_vectors(texts, self.dim) if texts else user_vec[:0]
            )
        for post, vote in self.votes:
            if not 0 <= post < world.count:
                raise ConfigError(
                    f"A seeded vote names post {post}; the seeded posts are 0..{world.count - 1}."
                )
            (world.likes if vote > 0 else world.dislikes)[post] += 1
        return DirectRouter(n_agents, world)

    def default_population(self, n: int, agent: type[Agent] | None = None, **state: Any) -> Population:
        from agents.population import Population

        return Population.of(agent or RuleUser, n, **state)

    def describe(self) -> dict[str, object]:
        graph = (
            self.graph.describe()
            if isinstance(self.graph, GraphSpec)
            else ("networkx" if self.graph is not None else None)
        )
        return {
            "name": self.name,
            "mode": self.mode,
            "recommender": self.recommender,
            "max_rec": self.max_rec,
            "refresh": self.refresh,
            "following": self.following,
            "show_score": self.show_score,
            "step_minutes": self.step_minutes,
            "dim": self.dim,
            "graph": graph,
            "seeded_posts": self.posts if isinstance(self.posts, int) else len(self.posts),
            "vectors": "seeded random interest vectors; seeded texts: hashed bag-of-words",
            "votes": self.votes,
            "exposures": self.exposures,
            "influence": self.influence,
            "start_hour": self.start_hour,
            **({"frozen_recency": True} if self.frozen_recency else {}),
            "activation": "per user and hour"
            if np.ndim(self.activation) == 2
            else (self.activation if np.ndim(self.activation) == 0 else "per user"),
        }

    def views(self) -> Mapping[str, str]:
        from protocols.social_feed.views import VIEWS

        return VIEWS

    def __repr__(self) -> str:
        return f"SocialFeed(mode={self.mode!r}, recommender={self.recommender!r})"
