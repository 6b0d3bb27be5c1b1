"""Python's `random.Random(seed)` draws, reproduced on numpy's MT19937 (for SwarmBench's layouts).

SwarmBench lays out each task with ``random.Random(seed)``: the same seed must
give the same layout here, so this module replays that generator exactly:
CPython's ``init_by_array`` seeding, ``getrandbits``, ``randint`` and ``choice``.
It is a seeded object handed to the layout code, never the module-level
``random``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

__all__ = ["LayoutRng"]

T = TypeVar("T")
_N = 624


def _init_by_array(seed: int) -> np.ndarray:
    """MT19937 state after CPython's ``random.seed(int)`` (init_genrand(19650218) then init_by_array)."""
    key = []
    a = abs(seed)
    while True:
        key.append(a & 0xFFFFFFFF)
        a >>= 32
        if a == 0:
            break
    mt = [0] * _N
    mt[0] = 19650218
    for i in range(1, _N):
        mt[i] = (1812433253 * (mt[i - 1] ^ (mt[i - 1] >> 30)) + i) & 0xFFFFFFFF
    i, j = 1, 0
    for _ in range(max(_N, len(key))):
        mt[i] = ((mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525)) + key[j] + j) & 0xFFFFFFFF
        i, j = i + 1, j + 1
        if i >= _N:
            mt[0], i = mt[_N - 1], 1
        if j >= len(key):
            j = 0
    for _ in range(_N - 1):
        mt[i] = ((mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941)) - i) & 0xFFFFFFFF
        i += 1
        if i >= _N:
            mt[0], i = mt[_N - 1], 1
    mt[0] = 0x80000000
    return np.array(mt, dtype=np.uint32)


class LayoutRng:
    """The draws of ``random.Random(seed)`` that SwarmBench's layouts use, bit for bit."""

    def __init__(self, seed: int) -> None:
        self._bits = np.random.MT19937(0)
        self._bits.state = {"bit_generator": "MT19937", "state": {"key": _init_by_array(seed), "pos": _N}}

    def getrandbits(self, k: int) -> int:
        """`k` random bits (k <= 32), as CPython takes them from one 32-bit output."""
        return int(self._bits.random_raw()) >> (32 - k)

    def randbelow(self, n: int) -> int:
        """A uniform int in [0, n), by rejection as CPython does."""
        k = n.bit_length()
        r = self.getrandbits(k)
        while r >= n:
            r = self.getrandbits(k)
        return r

    def randint(self, a: int, b: int) -> int:
        """A uniform int in [a, b], both included."""
        return a + self.randbelow(b - a + 1)

    def choice(self, seq: Sequence[T]) -> T:
        """One element of `seq`."""
        return seq[self.randbelow(len(seq))]
