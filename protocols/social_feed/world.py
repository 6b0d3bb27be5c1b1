"""The feed world: users, posts, likes, follows, and the feeds a recommender builds from them.

State is columns (reference/oasis.md §1.2, §6): posts as arrays (author, root, parent,
kind, round, likes, dislikes, shares, topic vector, stance); likes, dislikes, reposts and
follows as sorted int64 keys ``(user << 32) | target``. A round's actions apply in
phases, each in global (sender, seq) order: creations (post, repost, quote), then
votes, then follows, so the result never depends on the sharding. Post ids are dense,
in that order. A repost or quote points to the post clicked (its parent) and to the
root; a like on a repost goes to the root, as in OASIS. Refused actions (a second like,
a post that does not exist, a second repost of a root) change nothing and are told to
their sender as a ``refused`` message.

Feeds are built once per round from the frozen state (before anyone acts), for the
users active that round only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from agents.batch import MessageBatch
from agents.rng import counter_integers, counter_uniform
from protocols.social_feed.ranking import hot, interest_top_k, recency
from protocols.world import Observation, World

__all__ = ["ACTIONS", "FeedView", "FeedWorld"]

ACTIONS = (
    "post",
    "repost",
    "quote",
    "comment",
    "like",
    "unlike",
    "dislike",
    "like_comment",
    "dislike_comment",
    "follow",
    "unfollow",
    "mute",
)
"""The action kinds (OASIS's names, shortened); a value is a post id, a comment id (comment votes),
or a user id (follow, mute)."""
CREATE, VOTE, SOCIAL = (
    ("post", "repost", "quote"),
    ("like", "unlike", "dislike"),
    ("follow", "unfollow", "mute"),
)
_ACTIVE, _REC, _SAMPLE, _EXPOSE = 20, 21, 22, 23  # counter-random streams
SHOWN_SEQ = 1_000_000
"""``shown`` rows number from here (plus the post's rank in the feed), clear of other rows' seq."""
_SHIFT = np.int64(32)


def _keys(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    return (a.astype(np.int64) << _SHIFT) | b.astype(np.int64)


@dataclass(frozen=True)
class FeedView(Observation):
    """What one user sees: whether it is active this round, and if so its feed (post ids,
    authors, texts, scores) as OASIS renders it."""

    agent: int
    round: int
    posts: tuple[dict[str, Any], ...]
    show_score: bool
    active: bool = True

    def render(self) -> str:
        if not self.posts:
            return "After refreshing, you see no posts."
        return "After refreshing, you see some posts " + json.dumps(list(self.posts))

    def render_inbox(self, messages: Sequence[Any]) -> str:
        return ""

    def acts(self) -> bool:
        return self.active


class _RoundActions:
    """One round's actions as `FeedWorld.apply`'s phases share them: the batch, the kind codes,
    how many posts and comments there were when the round began, the notices and counts so far."""

    def __init__(
        self, actions: MessageBatch, round: int, kinds: tuple[str, ...], posts: int, comments: int
    ) -> None:
        self.actions, self.round, self.kinds = actions, round, kinds
        self.sender, self.value, self.texts = actions.sender, actions.value, actions.text
        self.code = {k: kinds.index(k) for k in ACTIONS if k in kinds}
        self.before, self.comments_before = posts, comments
        self.notes = _Notices()
        self.stats = dict.fromkeys(_ROUND_COUNTS, 0.0)

    def by_kind(self, names: Sequence[str]) -> Iterator[tuple[str, NDArray[np.int64]]]:
        """(kind, its rows) for each of `names` that this round has actions of."""
        for k in names:
            if k in self.code:
                rows = np.flatnonzero(self.actions.kind == self.code[k])
                if len(rows):
                    yield k, rows

    def refuse(self, rows: NDArray[np.int64], why: Any) -> None:
        """A ``refused`` notice for each of `rows` (actions OASIS would not take); `why(row)` says why."""
        if len(rows):
            reasons = [why(i) for i in rows.tolist()]
            self.notes.add(self.sender[rows], self.sender[rows], "refused", self.value[rows], reasons)
            self.stats["refused"] += len(rows)


_ROUND_COUNTS = (
    "posts",
    "reposts",
    "quotes",
    "comments",
    "likes",
    "dislikes",
    "comment_votes",
    "follows",
    "refused",
)


class FeedWorld(World):
    """See the module docstring. Built by `SocialFeed.build`."""

    apply_once = True
    """One host a node applies each round; the others take its state (`snapshot`): the posts,
    votes, follows and notices are the same on every host. What each host's own users were
    shown this round (``_shown``, logged by `deliver`) stays that host's."""

    def snapshot(self) -> dict[str, Any]:
        """The world's state after `apply`, less what this host's users were shown."""
        state = dict(vars(self))
        state.pop("_shown", None)
        return state

    def __init__(
        self,
        n: int,
        seed: int,
        user_vec: NDArray[np.float32],
        stance: NDArray[np.float64],
        activation: NDArray[np.float64],
        follows: NDArray[np.int64],
        recommender: str,
        max_rec: int,
        refresh: int,
        following: int,
        show_score: bool,
        step_seconds: float,
        pool: int = 4000,
        exposures: float = 1.0,
        influence: float = 0.0,
        start_hour: float = 13.0,
        frozen_recency: bool = False,
    ) -> None:
        self.n, self.seed = n, seed
        self.frozen_recency = frozen_recency
        self.user_vec, self.stance, self.activation = user_vec, stance, activation
        self.recommender, self.max_rec, self.refresh, self.following = (
            recommender,
            max_rec,
            refresh,
            following,
        )
        self.show_score, self.step_seconds, self.pool = show_score, step_seconds, pool
        self.exposures = exposures
        self.influence = influence
        self.start_hour = start_hour
        self.stance = np.array(stance, np.float64)  # a copy: likes move it (with `influence`)
        self._shown: list[tuple[int, NDArray[np.int64], NDArray[np.int64]]] = []  # (round, users, feeds)
        d = user_vec.shape[1]
        cap = 1024
        self.count = 0
        self.author = np.zeros(cap, np.int64)
        self.root = np.zeros(cap, np.int64)  # the cascade's original post (for depth and scale)
        # Where an action aimed at the post lands (OASIS): a repost sends likes, dislikes, comments
        # and reposts on to what it reposted; a post or a quote (a post of its own) keeps them.
        self.anchor = np.zeros(cap, np.int64)
        self.parent = np.zeros(cap, np.int64)
        self.kind = np.zeros(cap, np.int8)
        self.created = np.zeros(cap, np.int32)
        self.likes = np.zeros(cap, np.int64)
        self.dislikes = np.zeros(cap, np.int64)
        self.shares = np.zeros(cap, np.int64)
        self.vec = np.zeros((cap, d), np.float32)
        self.post_stance = np.zeros(cap, np.float64)
        self.texts: dict[int, str] = {}
        self.c_count = 0  # comments: flat, on a root post
        self.c_post = np.zeros(256, np.int64)
        self.c_author = np.zeros(256, np.int64)
        self.c_round = np.zeros(256, np.int32)
        self.c_likes = np.zeros(256, np.int64)
        self.c_dislikes = np.zeros(256, np.int64)
        self.c_texts: dict[int, str] = {}
        self.c_liked = np.empty(0, np.int64)
        self.c_disliked = np.empty(0, np.int64)
        self.liked = np.empty(0, np.int64)
        self.disliked = np.empty(0, np.int64)
        self.reposted = np.empty(0, np.int64)
        self.follows = np.unique(follows)
        self.muted = np.empty(0, np.int64)
        self._feeds: tuple[int, NDArray[np.int64], NDArray[np.int64]] | None = None
        self._notices = MessageBatch.empty()
        self._kinds: tuple[str, ...] = ()
        self._round_stats: dict[str, float] = {}

    # -- posts ---------------------------------------------------------------------------------

    def seed_posts(self, authors: Sequence[int], texts: Sequence[str], vectors: NDArray[np.float32]) -> None:
        """Place posts before round 0 (a study's seeded posts), created at round -1."""
        for a, t, v in zip(authors, texts, vectors):
            i = self._new_post(int(a), -1, 0, -1, v, float(self.stance[int(a)]))
            self.texts[i] = t

    def _grow(self, need: int) -> None:
        cap = len(self.author)
        if need <= cap:
            return
        new = max(need, 2 * cap)
        for name in (
            "author",
            "root",
            "anchor",
            "parent",
            "kind",
            "created",
            "likes",
            "dislikes",
            "shares",
            "post_stance",
        ):
            old = getattr(self, name)
            arr = np.zeros(new, old.dtype)
            arr[:cap] = old
            setattr(self, name, arr)
        vec = np.zeros((new, self.vec.shape[1]), np.float32)
        vec[:cap] = self.vec
        self.vec = vec

    def _grow_comments(self, need: int) -> None:
        cap = len(self.c_post)
        if need <= cap:
            return
        for name in ("c_post", "c_author", "c_round", "c_likes", "c_dislikes"):
            old = getattr(self, name)
            arr = np.zeros(max(need, 2 * cap), old.dtype)
            arr[:cap] = old
            setattr(self, name, arr)

    def _new_post(self, author: int, parent: int, kind: int, round: int, vec: Any, stance: float) -> int:
        self._grow(self.count + 1)
        i = self.count
        self.author[i], self.kind[i], self.created[i] = author, kind, round
        self.parent[i] = parent
        self.root[i] = i if parent < 0 else self.root[parent]
        self.anchor[i] = i if parent < 0 or kind != 1 else self.anchor[parent]
        self.vec[i], self.post_stance[i] = vec, stance
        self.count += 1
        return i

    # -- what the round does ----------------------------------------------------------------------

    def apply(self, actions: MessageBatch, round: int, kinds: tuple[str, ...]) -> None:
        """Round `round`'s actions, in phases, each in (sender, seq) order: creations, votes on
        posts, comments and their votes, then follows; what OASIS refuses is a ``refused`` row."""
        self._kinds = kinds
        r = _RoundActions(actions, round, kinds, self.count, self.c_count)
        self._create(r)
        self._vote(r)
        self._comment(r)
        self._social(r)
        self._notices = r.notes.batch(kinds)
        self._round_stats = r.stats

    def _create(self, r: _RoundActions) -> None:
        """Posts, reposts and quotes; what they aim at must exist when the round begins."""
        # Phase 1: creations, in (sender, seq) order; targets must exist when the round begins.
        rows = np.flatnonzero(np.isin(r.actions.kind, [r.code[k] for k in CREATE if k in r.code]))
        if len(rows):
            kname = np.array(r.kinds, object)[r.actions.kind[rows]]
            is_post = kname == "post"
            clicked = np.where(is_post, -1, r.value[rows]).astype(np.int64)
            exists = is_post | ((clicked >= 0) & (clicked < r.before))
            r.refuse(rows[~exists], lambda i: f"post {int(r.value[i])} does not exist")
            rows, kname, is_post, clicked = rows[exists], kname[exists], is_post[exists], clicked[exists]
            users = r.sender[rows]
            root = np.where(is_post, -1, self.root[np.maximum(clicked, 0)])
            target = np.where(is_post, -1, self.anchor[np.maximum(clicked, 0)])  # what is shared
            is_repost = kname == "repost"
            keys = _keys(users, target)
            dup = is_repost & ~(
                _first(np.where(is_repost, keys, -1 - np.arange(len(keys)))) & ~_member(keys, self.reposted)
            )
            r.refuse(rows[dup], lambda i: f"already reposted post {int(self.anchor[int(r.value[i])])}")
            ok = ~dup
            rows, kname, is_post, clicked, users, root, target = (
                rows[ok],
                kname[ok],
                is_post[ok],
                clicked[ok],
                users[ok],
                root[ok],
                target[ok],
            )
            m = len(rows)
            ids = r.before + np.arange(m)
            self._grow(r.before + m)
            sl = slice(r.before, r.before + m)
            self.author[sl], self.parent[sl], self.created[sl] = users, clicked, r.round
            self.root[sl] = np.where(is_post, ids, root)
            self.anchor[sl] = np.where(kname == "repost", target, ids)
            self.kind[sl] = np.select([is_post, kname == "repost"], [0, 1], 2)
            self.vec[sl] = np.where(is_post[:, None], self.user_vec[users], self.vec[np.maximum(root, 0)])
            self.post_stance[sl] = np.where(
                is_post, self.stance[users], self.post_stance[np.maximum(root, 0)]
            )
            np.add.at(self.shares, target[~is_post], 1)  # a share of what was reposted or quoted
            self.reposted = _add(self.reposted, keys[ok][kname == "repost"])
            self.count = r.before + m
            if r.texts is not None:
                for i, t in zip(ids.tolist(), r.texts.take(rows).to_pylist()):
                    if t:
                        self.texts[i] = str(t)
            payload = [
                f'{{"kind": "{k}", "parent": {p}, "root": {r}}}'
                for k, p, r in zip(kname.tolist(), clicked.tolist(), self.root[sl].tolist())
            ]
            r.notes.add(users, users, "posted", ids.astype(np.float64), None, payload)
            r.stats["posts"] += float(is_post.sum())
            r.stats["reposts"] += float((kname == "repost").sum())
            r.stats["quotes"] += float((kname == "quote").sum())

    def _vote(self, r: _RoundActions) -> None:
        """Likes, unlikes and dislikes on posts that existed when the round began."""
        # Phase 2: votes on posts that existed when the round began (a vote on a repost lands on
        # what it reposted; on a quote, on the quote).
        for k, rows in r.by_kind(VOTE):
            target = r.value[rows].astype(np.int64)
            ok = (target >= 0) & (target < r.before)
            r.refuse(rows[~ok], lambda i: f"post {int(r.value[i])} does not exist")
            rows = rows[ok]
            users, target = r.sender[rows], self.anchor[target[ok]]
            keys = _keys(users, target)
            store = "disliked" if k == "dislike" else "liked"
            have = getattr(self, store)
            if k == "unlike":
                present = _member(keys, have) & _first(keys)  # a second unlike in the round finds none
                r.refuse(rows[~present], lambda i: "not liked")
                np.subtract.at(self.likes, target[present], 1)
                setattr(self, store, _remove(have, keys[present]))
                continue
            fresh = _first(keys) & ~_member(keys, have)
            word = "disliked" if k == "dislike" else "liked"
            r.refuse(rows[~fresh], lambda i, w=word: f"already {w} post {int(self.anchor[int(r.value[i])])}")
            counts = self.dislikes if k == "dislike" else self.likes
            np.add.at(counts, target[fresh], 1)
            setattr(self, store, _add(have, keys[fresh]))
            r.stats[word[:-1] + "s"] += float(fresh.sum())
            r.notes.add(users[fresh], self.author[target[fresh]], k + "d", target[fresh].astype(np.float64))
            if self.influence and k == "like":  # a like pulls the liker's stance toward the post's
                u, t = users[fresh], target[fresh]
                pull = np.zeros(self.n)
                np.add.at(pull, u, self.post_stance[t] - self.stance[u])
                self.stance = np.clip(self.stance + self.influence * pull, -1.0, 1.0)

    def _comment(self, r: _RoundActions) -> None:
        """Comments, then votes on comments that existed before the round."""
        # Comments (flat, on what a repost reposted or on the post or quote itself, as in OASIS),
        # then votes on comments that existed before.
        for _, rows in r.by_kind(("comment",)):
            target = r.value[rows].astype(np.int64)
            ok = (target >= 0) & (target < r.before)
            r.refuse(rows[~ok], lambda i: f"post {int(r.value[i])} does not exist")
            rows = rows[ok]
            if len(rows):
                users, root = r.sender[rows], self.anchor[target[ok]]
                m = len(rows)
                self._grow_comments(self.c_count + m)
                ids = self.c_count + np.arange(m)
                sl = slice(self.c_count, self.c_count + m)
                self.c_post[sl], self.c_author[sl], self.c_round[sl] = root, users, r.round
                self.c_count += m
                if r.texts is not None:
                    for i, t in zip(ids.tolist(), r.texts.take(rows).to_pylist()):
                        if t:
                            self.c_texts[i] = str(t)
                payload = [f'{{"post": {p}}}' for p in root.tolist()]
                r.notes.add(users, self.author[root], "commented", ids.astype(np.float64), None, payload)
                r.stats["comments"] += float(m)
        for k, rows in r.by_kind(("like_comment", "dislike_comment")):
            target = r.value[rows].astype(np.int64)
            ok = (target >= 0) & (target < r.comments_before)
            r.refuse(rows[~ok], lambda i: f"comment {int(r.value[i])} does not exist")
            rows, target = rows[ok], target[ok]
            if not len(rows):
                continue
            users = r.sender[rows]
            keys = _keys(users, target)
            store = "c_liked" if k == "like_comment" else "c_disliked"
            fresh = _first(keys) & ~_member(keys, getattr(self, store))
            r.refuse(rows[~fresh], lambda i, k=k: f"already {k.split('_')[0]}d comment {int(r.value[i])}")
            np.add.at(self.c_likes if k == "like_comment" else self.c_dislikes, target[fresh], 1)
            setattr(self, store, _add(getattr(self, store), keys[fresh]))
            r.stats["comment_votes"] += float(fresh.sum())
            r.notes.add(
                users[fresh],
                self.c_author[target[fresh]],
                k.replace("_comment", "d_comment"),
                target[fresh].astype(np.float64),
            )

    def _social(self, r: _RoundActions) -> None:
        """Follows, unfollows and mutes (recorded only, as in OASIS)."""
        # Phase 3: follows, unfollows, mutes (recorded only, as in OASIS).
        for k, rows in r.by_kind(SOCIAL):
            users, other = r.sender[rows], r.value[rows].astype(np.int64)
            ok = (other >= 0) & (other < self.n) & (other != users)
            r.refuse(rows[~ok], lambda i, k=k: f"user {int(r.value[i])} cannot be {k}ed")
            rows, users, other = rows[ok], users[ok], other[ok]
            keys = _keys(users, other)
            if k == "mute":  # OASIS refuses a second mute of the same user, as a second follow
                fresh = _first(keys) & ~_member(keys, self.muted)
                r.refuse(rows[~fresh], lambda i: f"already muted user {int(r.value[i])}")
                self.muted = _add(self.muted, keys[fresh])
                continue
            present = _member(keys, self.follows)
            if k == "unfollow":
                present &= _first(keys)
                r.refuse(rows[~present], lambda i: "not following")
                self.follows = _remove(self.follows, keys[present])
                continue
            fresh = _first(keys) & ~present
            r.refuse(rows[~fresh], lambda i: f"already following user {int(r.value[i])}")
            self.follows = _add(self.follows, keys[fresh])
            r.stats["follows"] += float(fresh.sum())
            r.notes.add(users[fresh], other[fresh], "followed", other[fresh].astype(np.float64))

    def deliver(self, messages: MessageBatch, lo: int, hi: int, round: int) -> MessageBatch:
        """The round's notices (a post created, a like or follow received, an action refused)
        for the users in ``[lo, hi)``."""
        b = MessageBatch.concat([self._notices, self._exposures(round)])
        mine = np.flatnonzero((b.receiver >= lo) & (b.receiver < hi))
        out = b.take(mine)
        return out.take(np.lexsort((out.receiver, out.seq, out.sender))) if len(out) else out

    def _exposures(self, round: int) -> MessageBatch:
        """What the users of this replica were shown in `round`, as ``shown`` rows (sender: the
        post's author, receiver: the user, value: the post, seq: SHOWN_SEQ + its rank in the
        feed), sampled per user at rate `exposures`."""
        shown = [s for s in self._shown if s[0] == round]
        self._shown = []
        if not shown:
            return MessageBatch.empty()
        users = np.concatenate([s[1] for s in shown])
        feeds = np.concatenate([s[2] for s in shown])
        if self.exposures < 1:
            keep = counter_uniform(self.seed, round, users, 0, stream=_EXPOSE) < self.exposures
            users, feeds = users[keep], feeds[keep]
        users, first = np.unique(users, return_index=True)
        feeds = feeds[first]
        row, rank = np.nonzero(feeds >= 0)
        post = feeds[row, rank]
        # seq = SHOWN_SEQ + rank: the same whatever the sharding, and apart from the notices' seqs.
        return MessageBatch(
            self.author[post],
            (SHOWN_SEQ + rank).astype(np.int32),
            np.full(len(post), self._kinds.index("shown"), np.uint8),
            post.astype(np.float64),
            users[row],
        )

    def metrics(self, round: int) -> dict[str, float]:
        n = self.count
        shares = self.shares[:n]
        followers = np.bincount((self.follows & 0xFFFFFFFF).astype(np.int64), minlength=self.n)
        return {
            **self._round_stats,
            "total_posts": float(n),
            "total_comments": float(self.c_count),
            "largest_cascade": float(shares.max()) if n else 0.0,
            "follow_edges": float(len(self.follows)),
            "follower_gini": _gini(followers.astype(np.float64)),
            "stance_mean": float(self.stance.mean()),
            "stance_variance": float(self.stance.var()),
            "stance_extreme": float(np.mean(np.abs(self.stance) > 0.5)),
            "attention_gini": _gini(
                np.bincount(self.author[:n], weights=self.likes[:n], minlength=self.n).astype(np.float64)
            ),
        }

    # -- what users see -------------------------------------------------------------------------

    def active(self, ids: NDArray[np.int64], round: int) -> NDArray[np.bool_]:
        """Who acts this round: a counter-based draw against each user's activation probability
        (for the round's hour of the day, when activation is given per hour)."""
        p = self.activation[ids]
        if p.ndim == 2:
            hour = int(self.start_hour + round * self.step_seconds / 3600.0) % 24
            p = p[:, hour]
        return counter_uniform(self.seed, round, ids, 0, stream=_ACTIVE) < p

    def feeds(self, ids: NDArray[np.int64], round: int) -> NDArray[np.int64]:
        """Each user's feed this round (post ids, -1 padded): `refresh` posts sampled from its
        recommendation buffer, then up to `following` in-network posts (X mode), de-duplicated."""
        k_rec = self.refresh if self.recommender != "follow" else 0
        width = k_rec + self.following
        out = np.full((len(ids), width), -1, np.int64)
        n = self.count
        if n == 0 or len(ids) == 0 or width == 0:
            return out
        if k_rec:
            if self.recommender == "random":
                buffer = counter_integers(self.seed, round, np.repeat(ids, self.max_rec), n, 0, stream=_REC)
                buffer = buffer.reshape(len(ids), self.max_rec)
            elif self.recommender == "hot":
                created = self.created[:n].astype(np.float64) * self.step_seconds + 1.7e9
                score = hot(self.likes[:n], self.dislikes[:n], created)
                top = np.argsort(-score, kind="stable")[: self.max_rec]
                buffer = np.broadcast_to(top, (len(ids), len(top)))
            else:
                cand = np.arange(n)
                if n > self.pool:  # OASIS's coarse filter: one seeded sample for everyone, per round
                    draw = counter_uniform(self.seed, round, cand, 0, stream=_SAMPLE)
                    cand = np.sort(np.argsort(draw, kind="stable")[: self.pool])
                if self.frozen_recency:  # OASIS's code: R taken once, a step after creation
                    weight = np.full(len(cand), recency(np.array([self.step_seconds / 60.0]))[0])
                else:
                    age = (round - self.created[cand]).astype(np.float64) * self.step_seconds / 60.0
                    weight = recency(age)
                best = interest_top_k(self.user_vec[ids], self.vec[cand], weight, self.max_rec)
                buffer = np.where(best >= 0, cand[np.maximum(best, 0)], -1)
            size = buffer.shape[1]
            pick = counter_integers(self.seed, round, np.repeat(ids, k_rec), size, 1, stream=_REC)
            out[:, :k_rec] = np.take_along_axis(buffer, pick.reshape(len(ids), k_rec), axis=1)
        if self.following:
            out[:, k_rec:] = self._in_network(ids)
        # De-duplicate within a row: keep the first of each post.
        dup = np.zeros_like(out, bool)
        for j in range(1, width):
            dup[:, j] = np.any((out[:, :j] == out[:, j : j + 1]) & (out[:, j : j + 1] >= 0), axis=1)
        out = np.where(dup, -1, out)
        if self.exposures > 0:  # remembered here, logged by `deliver` after the round
            self._shown = [s for s in self._shown if s[0] == round] + [(round, ids.copy(), out)]
        return out

    def _in_network(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Per user, the top posts by likes (all time) of the authors it follows."""
        k, n = self.following, self.count
        out = np.full((len(ids), k), -1, np.int64)
        # Each author's best k posts by likes (ties: older first).
        order = np.lexsort((np.arange(n), -self.likes[:n], self.author[:n]))
        auth = self.author[order]
        starts = np.flatnonzero(np.r_[True, auth[1:] != auth[:-1]])
        rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
        best = order[rank < k]
        best_author = self.author[best]
        a_lo = np.searchsorted(best_author, np.arange(self.n))
        a_hi = np.searchsorted(best_author, np.arange(self.n), side="right")
        f_lo = np.searchsorted(self.follows, ids.astype(np.int64) << _SHIFT)
        f_hi = np.searchsorted(self.follows, (ids.astype(np.int64) + 1) << _SHIFT)
        deg = f_hi - f_lo
        if deg.sum() == 0:
            return out
        row = np.repeat(np.arange(len(ids)), deg)
        edge = np.arange(deg.sum()) - np.repeat(np.cumsum(deg) - deg, deg) + np.repeat(f_lo, deg)
        followee = self.follows[edge] & 0xFFFFFFFF
        cnt = a_hi[followee] - a_lo[followee]
        crow = np.repeat(row, cnt)
        cpost = best[
            np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(a_lo[followee], cnt)
        ]
        o = np.lexsort((cpost, -self.likes[cpost], crow))
        crow, cpost = crow[o], cpost[o]
        s = np.flatnonzero(np.r_[True, crow[1:] != crow[:-1]]) if len(crow) else np.empty(0, np.int64)
        r = np.arange(len(crow)) - np.repeat(s, np.diff(np.r_[s, len(crow)]))
        keep = r < k
        out[crow[keep], r[keep]] = cpost[keep]
        return out

    def observe_batch(self, ids: NDArray[np.int64], round: int) -> Mapping[str, NDArray[Any]]:
        active = self.active(ids, round)
        feed = np.full((len(ids), self.refresh + self.following), -1, np.int64)
        if active.any():
            feed[active] = self.feeds(ids[active], round)
        ok = feed >= 0
        post = np.maximum(feed, 0)
        author = np.where(ok, self.author[post], -1)
        root = np.where(ok, self.root[post], -1)
        viewer = np.repeat(ids, feed.shape[1]).reshape(feed.shape)
        cos = (
            np.einsum("ij,ikj->ik", self.user_vec[ids], self.vec[root])
            if self.count
            else np.zeros(feed.shape)
        )
        match = np.where(
            ok,
            np.clip(cos, 0.0, 1.0) * (1.0 - np.abs(self.stance[ids, None] - self.post_stance[root]) / 2),
            0.0,
        )
        return {
            "active": active,
            "feed": feed,
            "score": np.where(ok, self.likes[root] - self.dislikes[root], 0).astype(np.float64),
            "author": author,
            "match": match,
            "liked": ok & _member(_keys(viewer, self.anchor[post]), self.liked),
            "follows_author": ok & _member(_keys(viewer, author), self.follows),
        }

    def observe(self, agent: int, round: int) -> FeedView:
        ids = np.array([agent])
        posts: list[dict[str, Any]] = []
        active = bool(self.active(ids, round)[0])
        if active:
            for p in self.feeds(ids, round)[0].tolist():
                if p < 0:
                    continue
                root = int(self.root[p])
                item: dict[str, Any] = {
                    "post_id": p,
                    "user_id": int(self.author[p]),
                    "content": self.texts.get(root, ""),
                }
                who, whose, text = int(self.author[p]), int(self.author[root]), self.texts.get(root, "")
                if self.kind[p] == 1:
                    item["content"] = f"User {who} reposted a post from User {whose}. Repost content: {text}"
                elif self.kind[p] == 2:
                    quote = self.texts.get(p, "")
                    item["content"] = (
                        f"User {who} quoted a post from User {whose}. Quote content: {quote} "
                        f"Original Content: {text}"
                    )
                at = int(self.anchor[p])  # where its likes, shares and comments live
                if self.show_score:
                    item["score"] = int(self.likes[at] - self.dislikes[at])
                else:
                    item["num_likes"], item["num_dislikes"] = int(self.likes[at]), int(self.dislikes[at])
                item["num_shares"] = int(self.shares[at])
                mine = np.flatnonzero(self.c_post[: self.c_count] == at)[-5:]  # the latest 5
                item["comments"] = [
                    {
                        "comment_id": int(c),
                        "user_id": int(self.c_author[c]),
                        "content": self.c_texts.get(int(c), ""),
                    }
                    | (
                        {"score": int(self.c_likes[c] - self.c_dislikes[c])}
                        if self.show_score
                        else {"num_likes": int(self.c_likes[c]), "num_dislikes": int(self.c_dislikes[c])}
                    )
                    for c in mine.tolist()
                ]
                posts.append(item)
        return FeedView(agent, round, tuple(posts), self.show_score, active)

    def state_columns(self, ids: NDArray[np.int64]) -> Mapping[str, NDArray[np.float64]]:
        return {"stance": self.stance[ids]}

    def describe(self) -> dict[str, object]:
        return {"users": self.n, "seeded_posts": int(self.count), "follow_edges": len(self.follows)}


def _add(store: NDArray[np.int64], keys: NDArray[np.int64]) -> NDArray[np.int64]:
    """`store` (sorted, unique) with `keys` added: a merge, not a re-sort of the whole store."""
    keys = np.unique(keys)
    keys = keys[~_member(keys, store)]
    return np.insert(store, np.searchsorted(store, keys), keys) if len(keys) else store


def _remove(store: NDArray[np.int64], keys: NDArray[np.int64]) -> NDArray[np.int64]:
    """`store` (sorted, unique) without `keys`."""
    keys = keys[_member(keys, store)]
    return np.delete(store, np.searchsorted(store, np.unique(keys))) if len(keys) else store


def _member(keys: NDArray[np.int64], store: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Whether each key is in `store` (sorted, unique): binary search, no hashing of the store."""
    if len(store) == 0:
        return np.zeros(np.shape(keys), bool)
    idx = np.minimum(np.searchsorted(store, keys), len(store) - 1)
    found: NDArray[np.bool_] = store[idx] == keys
    return found


def _first(keys: NDArray[np.int64]) -> NDArray[np.bool_]:
    """True at the first occurrence of each key (the batch is in (sender, seq) order)."""
    out = np.zeros(len(keys), bool)
    out[np.unique(keys, return_index=True)[1]] = True
    return out


def _gini(x: NDArray[np.float64]) -> float:
    if len(x) == 0 or x.sum() == 0:
        return 0.0
    s = np.sort(x)
    n = len(s)
    return float((2 * np.arange(1, n + 1) - n - 1) @ s / (n * s.sum()))


class _Notices:
    """A round's notices, gathered as columns, then one batch in (sender, order) order."""

    def __init__(self) -> None:
        self.parts: list[tuple[Any, ...]] = []

    def add(
        self,
        senders: NDArray[np.int64],
        receivers: NDArray[np.int64],
        kind: str,
        values: NDArray[np.float64],
        texts: list[str] | None = None,
        payloads: list[str] | None = None,
    ) -> None:
        if len(senders):
            self.parts.append((senders, receivers, kind, values, texts, payloads))

    def batch(self, kinds: tuple[str, ...]) -> MessageBatch:
        if not self.parts:
            return MessageBatch.empty()
        sender = np.concatenate([p[0] for p in self.parts]).astype(np.int64)
        n = len(sender)
        order = np.argsort(sender, kind="stable")  # within a sender: the order they were made
        sender = sender[order]
        starts = np.flatnonzero(np.r_[True, sender[1:] != sender[:-1]])
        seq = (np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))).astype(np.int32)

        def column(i: int) -> pa.Array | None:
            if all(p[i] is None for p in self.parts):
                return None
            vals = [v for p in self.parts for v in (p[i] if p[i] is not None else [None] * len(p[0]))]
            return pa.array(vals, pa.string()).take(pa.array(order))

        return MessageBatch(
            sender,
            seq,
            np.concatenate([np.full(len(p[0]), kinds.index(p[2]), np.uint8) for p in self.parts])[order],
            np.concatenate([np.asarray(p[3], np.float64) for p in self.parts])[order],
            np.concatenate([np.asarray(p[1], np.int64) for p in self.parts])[order],
            column(4),
            column(5),
            None,
        )
