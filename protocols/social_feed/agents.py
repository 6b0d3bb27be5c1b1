"""The feed's reply model and built-in users.

`FeedAction` is one action with OASIS's names. `RuleUser` plays a million users at once
over the feed arrays: when active, it likes, reposts and follows the authors of what
its feed shows, with probabilities scaled by how well each post matches its interests
and stance, and now and then posts. `LLMUser` asks a model (``moot/simulated``, an
offline stand-in, by default).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from agents.agent import ActResult, Agent
from agents.batch import Inbox, MessageBatch
from agents.context import BatchContext, Context
from agents.llm import LLMAgent
from agents.message import Message
from agents.reply import Reply

__all__ = ["FeedAction", "LLMUser", "RuleUser"]

Action = Literal[
    "create_post",
    "repost",
    "quote_post",
    "create_comment",
    "like_post",
    "unlike_post",
    "dislike_post",
    "like_comment",
    "dislike_comment",
    "follow",
    "unfollow",
    "mute",
    "do_nothing",
]
_KIND = {
    "create_post": "post",
    "repost": "repost",
    "quote_post": "quote",
    "create_comment": "comment",
    "like_comment": "like_comment",
    "dislike_comment": "dislike_comment",
    "like_post": "like",
    "unlike_post": "unlike",
    "dislike_post": "dislike",
    "follow": "follow",
    "unfollow": "unfollow",
    "mute": "mute",
}


class FeedAction(Reply):
    """One action on the feed (OASIS's tool names).

    Attributes:
        action: What to do.
        post_id: The post acted on (repost, quote, comment, like, unlike, dislike).
        comment_id: The comment acted on (like_comment, dislike_comment).
        user_id: The user acted on (follow, unfollow, mute).
        content: The text of a new post, a quote or a comment.
    """

    action: Action
    post_id: int | None = Field(None, ge=0)
    comment_id: int | None = Field(None, ge=0)
    user_id: int | None = Field(None, ge=0)
    content: str | None = Field(None, max_length=1000)

    def to_messages(self) -> list[Message]:
        if self.action == "do_nothing":
            return []
        kind = _KIND[self.action]
        field = (
            "user_id"
            if kind in ("follow", "unfollow", "mute")
            else "comment_id"
            if kind.endswith("_comment")
            else "post_id"
        )
        target = -1 if kind == "post" else getattr(self, field)
        if target is None:
            raise ValueError(f"{self.action} needs {field}")
        return [Message(kind=kind, value=float(target), text=self.content or None)]

    @classmethod
    def simulate(cls, prompt: str, rng: np.random.Generator) -> dict[str, Any]:
        """Stand-in play: like the first post shown now and then, repost rarely, else do nothing."""
        posts = re.findall(r'"post_id": (\d+), "user_id": (\d+)', prompt)
        if not posts:
            return (
                {"action": "create_post", "content": "Hello from a simulated user."}
                if rng.random() < 0.2
                else {"action": "do_nothing"}
            )
        post, author = posts[int(rng.integers(len(posts)))]
        u = rng.random()
        if u < 0.4:
            return {"action": "like_post", "post_id": int(post)}
        if u < 0.5:
            return {"action": "repost", "post_id": int(post)}
        if u < 0.6:
            return {"action": "follow", "user_id": int(author)}
        return {"action": "do_nothing"}


class RuleUser(Agent):
    """A rule-based user, vectorised (see the module docstring).

    Attributes:
        like_p, repost_p, follow_p: Per post shown, the chance of acting on it at a perfect match.
        dislike_p: Per post shown, the chance of disliking it at a perfect mismatch.
        post_p: Per active round, the chance of writing a post.
        comment_p: Per post shown, the chance of commenting on it at a perfect match.
        herd: How much the score shown sways votes: likes scale by ``1 + herd*tanh(score)``,
            dislikes by ``1 - herd*tanh(score)`` (0: not at all).
    """

    like_p: float = Field(0.3, ge=0.0, le=1.0)
    dislike_p: float = Field(0.05, ge=0.0, le=1.0)
    repost_p: float = Field(0.08, ge=0.0, le=1.0)
    follow_p: float = Field(0.05, ge=0.0, le=1.0)
    post_p: float = Field(0.05, ge=0.0, le=1.0)
    comment_p: float = Field(0.0, ge=0.0, le=1.0)
    herd: float = Field(0.0, ge=0.0, le=1.0)

    @classmethod
    def act_batch(
        cls, state: dict[str, NDArray[np.float64]], inbox: Inbox, ctx: BatchContext
    ) -> MessageBatch:
        seen = ctx.observation
        active, feed, match = seen["active"], seen["feed"], seen["match"]
        ok = active[:, None] & (feed >= 0)
        parts: list[tuple[NDArray[np.int64], NDArray[np.int64], str, NDArray[np.float64]]] = []
        posts = active & (ctx.uniform(0) < state["post_p"])
        parts.append(
            (ctx.ids[posts], np.zeros(int(posts.sum()), np.int64), "post", np.full(int(posts.sum()), -1.0))
        )
        sway = state["herd"][:, None] * np.tanh(seen["score"])
        for j in range(feed.shape[1]):
            m = match[:, j]
            like = (
                ok[:, j]
                & ~seen["liked"][:, j]
                & (ctx.uniform(1 + 4 * j) < state["like_p"] * m * (1 + sway[:, j]))
            )
            dislike = (
                ok[:, j] & ~like & (ctx.uniform(4 + 4 * j) < state["dislike_p"] * (1 - m) * (1 - sway[:, j]))
            )
            share = ok[:, j] & (ctx.uniform(2 + 4 * j) < state["repost_p"] * m)
            follow = (
                ok[:, j]
                & ~seen["follows_author"][:, j]
                & (seen["author"][:, j] != ctx.ids)
                & (ctx.uniform(3 + 4 * j) < state["follow_p"] * m)
            )
            comment = ok[:, j] & (ctx.uniform(5 + 6 * j + 1000) < state["comment_p"] * m)
            for name, mask, value, slot in (
                ("like", like, feed[:, j], 1),
                ("dislike", dislike, feed[:, j], 4),
                ("comment", comment, feed[:, j], 5),
                ("repost", share, feed[:, j], 2),
                ("follow", follow, seen["author"][:, j], 3),
            ):
                parts.append(
                    (
                        ctx.ids[mask],
                        np.full(int(mask.sum()), 6 * j + slot),
                        name,
                        value[mask].astype(np.float64),
                    )
                )
        sender = np.concatenate([p[0] for p in parts])
        order = np.concatenate([p[1] for p in parts])
        kind = np.concatenate([np.full(len(p[0]), ctx.kind_code(p[2]), np.uint8) for p in parts])
        value = np.concatenate([p[3] for p in parts])
        o = np.lexsort((order, sender))
        n = len(sender)
        return MessageBatch(sender[o], np.zeros(n, np.int32), kind[o], value[o], np.full(n, -1, np.int64))


class LLMUser(LLMAgent):
    """A user played by a language model: it sees its feed as OASIS shows it and answers one
    `FeedAction` (``moot/simulated``, an offline stand-in, by default)."""

    persona: str = "You are a user of a social media platform. Act as your profile suggests."
    memory: int = Field(2, ge=0)

    async def act(self, inbox: list[Message], ctx: Context) -> ActResult:
        if ctx.observation is not None and not ctx.observation.acts():
            return None  # not active this round: no call
        return await super().act(inbox, ctx)
