"""OASIS's recommenders as vectorised scores (reference/oasis.md §2).

- `hot`: Reddit's hot score, the code's version (the sign on the vote term).
- `recency`: OASIS's X recency term ``ln((271.8 - age) / 100)``.
- `interest_top_k`: per user, the top-k candidate posts by cosine(user, post) x recency,
  one matrix product per block of users.
- `random_top_k`: k posts per user, uniformly, from counter-based draws.
- `hashed_vectors`: the documented bag-of-words fallback when no embedding model is
  installed: each lower-cased word hashed into `dim` buckets with a sign, L2-normalised.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["REDDIT_EPOCH", "hashed_vectors", "hot", "interest_top_k", "recency"]

REDDIT_EPOCH = 1134028003
"""Seconds since 1970 that Reddit's formula subtracts (8 Dec 2005)."""


def hot(
    likes: NDArray[np.int64], dislikes: NDArray[np.int64], created_s: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Reddit's hot score per post: ``round(sign(s) * log10(max(|s|, 1)) + (t - 1134028003) / 45000, 7)``
    with s = likes - dislikes and t the creation time in seconds since 1970."""
    s = np.asarray(likes, np.int64) - np.asarray(dislikes, np.int64)
    order = np.log10(np.maximum(np.abs(s), 1))
    return np.round(np.sign(s) * order + (np.asarray(created_s, np.float64) - REDDIT_EPOCH) / 45000.0, 7)


def recency(age: NDArray[np.float64]) -> NDArray[np.float64]:
    """OASIS's X recency ``ln((271.8 - age) / 100)``: about 1 at age 0, 0 at 171.8, -inf at 271.8
    (ages past that are clipped just below it, as the score must stay a number)."""
    a = np.minimum(np.asarray(age, np.float64), 271.7)
    return np.log((271.8 - a) / 100.0)


def interest_top_k(
    users: NDArray[np.float32], posts: NDArray[np.float32], weight: NDArray[np.float64], k: int
) -> NDArray[np.int64]:
    """Per user (rows of `users`), the indices of the k posts with the highest
    ``cosine(user, post) * weight[post]``, best first; -1 pads when there are fewer posts.

    Rows of `users` and `posts` must be L2-normalised (cosine is then a dot product).
    Ties go to the lower post index.
    """
    n, m = len(users), len(posts)
    out = np.full((n, k), -1, np.int64)
    if m == 0 or n == 0 or k == 0:
        return out
    take = min(k, m)
    for lo in range(0, n, 4096):  # a block of users at a time keeps the score matrix small
        score = (users[lo : lo + 4096] @ posts.T).astype(np.float64) * weight[None, :]
        if take <= 4:  # OASIS keeps 2: a few passes of argmax beat a partition
            rows = np.arange(len(score))
            for j in range(take):
                best_j = np.argmax(score, axis=1)  # the first of equals: ties go to the lower index
                out[lo + rows, j] = best_j
                score[rows, best_j] = -np.inf
            continue
        if take < m:
            part = np.argpartition(-score, take - 1, axis=1)[:, :take]
        else:
            part = np.broadcast_to(np.arange(m), (len(score), m)).copy()
        best = np.take_along_axis(score, part, axis=1)
        order = np.lexsort((part, -best), axis=1)  # by score, then by post index
        out[lo : lo + len(score), :take] = np.take_along_axis(part, order, axis=1)
    return out


def hashed_vectors(texts: Sequence[str], dim: int = 256) -> NDArray[np.float32]:
    """Bag-of-words vectors for `texts`: each lower-cased word hashed (sha1) into one of `dim`
    buckets with a hashed sign, then L2-normalised. A stand-in for a sentence-embedding model:
    texts that share words are close, nothing more."""
    out = np.zeros((len(texts), dim), np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"[a-z0-9#@']+", text.lower()):
            h = int.from_bytes(hashlib.sha1(word.encode()).digest()[:8], "little")
            out[i, h % dim] += 1.0 if (h >> 63) & 1 else -1.0
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    unit: NDArray[np.float32] = np.divide(out, norm, out=np.zeros_like(out), where=norm > 0)
    return unit
