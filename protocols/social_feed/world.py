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
from collections.abc import Mapping, Sequence
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

ACTIONS = ("post", "repost", "quote", "like", "unlike", "dislike", "follow", "unfollow", "mute")
"""The action kinds (OASIS's names, shortened); a value is a post id, or a user id (follow, mute)."""
CREATE, VOTE, SOCIAL = (
    ("post", "repost", "quote"),
    ("like", "unlike", "dislike"),
    ("follow", "unfollow", "mute"),
)
KIND_CODE = {"post": 0, "repost": 1, "quote": 2}
_ACTIVE, _REC, _SAMPLE = 20, 21, 22  # counter-random streams
_SHIFT = np.int64(32)


def _keys(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    return (a.astype(np.int64) << _SHIFT) | b.astype(np.int64)


@dataclass(frozen=True)
class FeedView(Observation):
    """What one user sees when active: its feed (post ids, authors, texts, scores)."""

    agent: int
    round: int
    posts: tuple[dict[str, Any], ...]
    show_score: bool

    def render(self) -> str:
        if not self.posts:
            return "After refreshing, you see no posts."
        return "After refreshing, you see some posts " + json.dumps(list(self.posts))

    def render_inbox(self, messages: Sequence[Any]) -> str:
        return ""


class FeedWorld(World):
    """See the module docstring. Built by `SocialFeed.build`."""

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
    ) -> None:
        self.n, self.seed = n, seed
        self.user_vec, self.stance, self.activation = user_vec, stance, activation
        self.recommender, self.max_rec, self.refresh, self.following = (
            recommender,
            max_rec,
            refresh,
            following,
        )
        self.show_score, self.step_seconds, self.pool = show_score, step_seconds, pool
        d = user_vec.shape[1]
        cap = 1024
        self.count = 0
        self.author = np.zeros(cap, np.int64)
        self.root = np.zeros(cap, np.int64)
        self.parent = np.zeros(cap, np.int64)
        self.kind = np.zeros(cap, np.int8)
        self.created = np.zeros(cap, np.int32)
        self.likes = np.zeros(cap, np.int64)
        self.dislikes = np.zeros(cap, np.int64)
        self.shares = np.zeros(cap, np.int64)
        self.vec = np.zeros((cap, d), np.float32)
        self.post_stance = np.zeros(cap, np.float64)
        self.texts: dict[int, str] = {}
        self.liked = np.empty(0, np.int64)
        self.disliked = np.empty(0, np.int64)
        self.reposted = np.empty(0, np.int64)
        self.follows = np.unique(follows)
        self.muted = np.empty(0, np.int64)
        self._feeds: tuple[int, NDArray[np.int64], NDArray[np.int64]] | None = None
        self._notices = MessageBatch.empty()
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

    def _new_post(self, author: int, parent: int, kind: int, round: int, vec: Any, stance: float) -> int:
        self._grow(self.count + 1)
        i = self.count
        self.author[i], self.kind[i], self.created[i] = author, kind, round
        self.parent[i] = parent
        self.root[i] = i if parent < 0 else self.root[parent]
        self.vec[i], self.post_stance[i] = vec, stance
        self.count += 1
        return i

    # -- what the round does ----------------------------------------------------------------------

    def apply(self, actions: MessageBatch, round: int, kinds: tuple[str, ...]) -> None:
        code = {k: kinds.index(k) for k in ACTIONS if k in kinds}
        before = self.count
        notices: list[
            tuple[int, int, str, float, str | None, str | None]
        ] = []  # sender, receiver, kind, value, text, payload
        stats = dict.fromkeys(("posts", "reposts", "quotes", "likes", "dislikes", "follows", "refused"), 0.0)
        texts = actions.text.to_pylist() if actions.text is not None else [None] * len(actions)

        def refuse(i: int, why: str) -> None:
            s = int(actions.sender[i])
            notices.append((s, s, "refused", float(actions.value[i]), why, None))
            stats["refused"] += 1

        # Phase 1: creations, in (sender, seq) order.
        for i in np.flatnonzero(np.isin(actions.kind, [code[k] for k in CREATE if k in code])).tolist():
            k = kinds[int(actions.kind[i])]
            s = int(actions.sender[i])
            if k == "post":
                vec = self.user_vec[s]
                new = self._new_post(s, -1, 0, round, vec, float(self.stance[s]))
            else:
                clicked = int(actions.value[i])
                if not 0 <= clicked < before:
                    refuse(i, f"post {clicked} does not exist")
                    continue
                root = int(self.root[clicked])
                if k == "repost":
                    key = _keys(np.array([s]), np.array([root]))
                    if np.isin(key, self.reposted)[0]:
                        refuse(i, f"already reposted post {root}")
                        continue
                    self.reposted = np.union1d(self.reposted, key)
                new = self._new_post(
                    s, clicked, KIND_CODE[k], round, self.vec[root], float(self.post_stance[root])
                )
                self.shares[root] += 1
            if texts[i]:
                self.texts[new] = str(texts[i])
            payload = json.dumps({"kind": k, "parent": int(self.parent[new]), "root": int(self.root[new])})
            notices.append((s, s, "posted", float(new), None, payload))
            stats[k + "s" if k != "repost" else "reposts"] += 1
        # Phase 2: votes on posts that existed when the round began, redirected to the root.
        for k in VOTE:
            if k not in code:
                continue
            rows = np.flatnonzero(actions.kind == code[k])
            if not len(rows):
                continue
            users, target = actions.sender[rows], actions.value[rows].astype(np.int64)
            ok = (target >= 0) & (target < before)
            for i in rows[~ok].tolist():
                refuse(i, f"post {int(actions.value[i])} does not exist")
            rows, users, target = rows[ok], users[ok], self.root[target[ok]]
            keys = _keys(users, target)
            store = "disliked" if k == "dislike" else "liked"
            have = getattr(self, store)
            if k == "unlike":
                present = np.isin(keys, have) & _first(keys)  # a second unlike in the round finds none
                for i in rows[~present].tolist():
                    refuse(i, "not liked")
                np.subtract.at(self.likes, target[present], 1)
                setattr(self, store, np.setdiff1d(have, keys[present]))
                continue
            fresh = _first(keys) & ~np.isin(keys, have)
            for i in rows[~fresh].tolist():
                root_of = int(self.root[int(actions.value[i])])
                refuse(i, f"already {'dis' if k == 'dislike' else ''}liked post {root_of}")
            counts = self.dislikes if k == "dislike" else self.likes
            np.add.at(counts, target[fresh], 1)
            setattr(self, store, np.union1d(have, keys[fresh]))
            stats["dislikes" if k == "dislike" else "likes"] += float(fresh.sum())
            for u, t in zip(users[fresh].tolist(), target[fresh].tolist()):
                notices.append((u, int(self.author[t]), k + "d", float(t), None, None))
        # Phase 3: follows, unfollows, mutes (recorded only, as in OASIS).
        for k in SOCIAL:
            if k not in code:
                continue
            rows = np.flatnonzero(actions.kind == code[k])
            if not len(rows):
                continue
            users, other = actions.sender[rows], actions.value[rows].astype(np.int64)
            ok = (other >= 0) & (other < self.n) & (other != users)
            for i in rows[~ok].tolist():
                refuse(i, f"user {int(actions.value[i])} cannot be {k}ed")
            rows, users, other = rows[ok], users[ok], other[ok]
            keys = _keys(users, other)
            if k == "mute":
                self.muted = np.union1d(self.muted, keys)
                continue
            present = np.isin(keys, self.follows)
            if k == "unfollow":
                present &= _first(keys)
                for i in rows[~present].tolist():
                    refuse(i, "not following")
                self.follows = np.setdiff1d(self.follows, keys[present])
                continue
            fresh = _first(keys) & ~present
            for i in rows[~fresh].tolist():
                refuse(i, f"already following user {int(actions.value[i])}")
            self.follows = np.union1d(self.follows, keys[fresh])
            stats["follows"] += float(fresh.sum())
            for u, o in zip(users[fresh].tolist(), other[fresh].tolist()):
                notices.append((u, o, "followed", float(o), None, None))
        self._notices = _batch(notices, kinds)
        self._round_stats = stats

    def deliver(self, messages: MessageBatch, lo: int, hi: int, round: int) -> MessageBatch:
        """The round's notices (a post created, a like or follow received, an action refused)
        for the users in ``[lo, hi)``."""
        b = self._notices
        mine = np.flatnonzero((b.receiver >= lo) & (b.receiver < hi))
        out = b.take(mine)
        return out.take(np.lexsort((out.receiver, out.seq, out.sender))) if len(out) else out

    def metrics(self, round: int) -> dict[str, float]:
        n = self.count
        shares = self.shares[:n]
        followers = np.bincount((self.follows & 0xFFFFFFFF).astype(np.int64), minlength=self.n)
        return {
            **self._round_stats,
            "total_posts": float(n),
            "largest_cascade": float(shares.max()) if n else 0.0,
            "follow_edges": float(len(self.follows)),
            "follower_gini": _gini(followers.astype(np.float64)),
        }

    # -- what users see -------------------------------------------------------------------------

    def active(self, ids: NDArray[np.int64], round: int) -> NDArray[np.bool_]:
        """Who acts this round: a counter-based draw against each user's activation probability."""
        return counter_uniform(self.seed, round, ids, 0, stream=_ACTIVE) < self.activation[ids]

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
        return np.where(dup, -1, out)

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
            "author": author,
            "match": match,
            "liked": ok & np.isin(_keys(np.repeat(ids, feed.shape[1]).reshape(feed.shape), root), self.liked),
            "follows_author": ok
            & np.isin(_keys(np.repeat(ids, feed.shape[1]).reshape(feed.shape), author), self.follows),
        }

    def observe(self, agent: int, round: int) -> FeedView:
        ids = np.array([agent])
        posts: list[dict[str, Any]] = []
        if self.active(ids, round)[0]:
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
                if self.show_score:
                    item["score"] = int(self.likes[root] - self.dislikes[root])
                else:
                    item["num_likes"], item["num_dislikes"] = int(self.likes[root]), int(self.dislikes[root])
                item["num_shares"] = int(self.shares[root])
                posts.append(item)
        return FeedView(agent, round, tuple(posts), self.show_score)

    def describe(self) -> dict[str, object]:
        return {"users": self.n, "seeded_posts": int(self.count), "follow_edges": len(self.follows)}


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


def _batch(
    rows: list[tuple[int, int, str, float, str | None, str | None]], kinds: tuple[str, ...]
) -> MessageBatch:
    """Notices as a batch, in (sender, order) order, coded with the run's kind table."""
    if not rows:
        return MessageBatch.empty()
    rows.sort(key=lambda r: r[0])  # stable: within a sender, the order they were made
    sender = np.array([r[0] for r in rows], np.int64)
    starts = np.flatnonzero(np.r_[True, sender[1:] != sender[:-1]])
    seq = (np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))).astype(np.int32)
    texts = [r[4] for r in rows]
    payloads = [r[5] for r in rows]
    return MessageBatch(
        sender,
        seq,
        np.array([kinds.index(r[2]) for r in rows], np.uint8),
        np.array([r[3] for r in rows], np.float64),
        np.array([r[1] for r in rows], np.int64),
        pa.array(texts, pa.string()) if any(texts) else None,
        pa.array(payloads, pa.string()) if any(payloads) else None,
        None,
    )
