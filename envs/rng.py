"""The per-game random generator, in pure Python: the reference for ext/rng.pxd, bit for bit.

Algorithm: xoshiro256** whose four state words are the first four outputs of splitmix64 started at
the seed. `below(n)` is Lemire's multiply-shift on the top 32 bits of one output (bias <= n / 2**32).
A game's whole randomness (shuffles, dice, scripted opponents' choices) comes from one such generator,
so a game is reproducible from (seed, actions). Slow by design; never on a hot path.
"""

from __future__ import annotations

MASK64 = (1 << 64) - 1


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & MASK64


class Rng:
    """xoshiro256** seeded through splitmix64; the same stream as the C `Rng` for the same seed."""

    __slots__ = ("s0", "s1", "s2", "s3")

    def __init__(self, seed: int) -> None:
        sm = seed & MASK64
        words = []
        for _ in range(4):
            sm = (sm + 0x9E3779B97F4A7C15) & MASK64
            z = sm
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
            words.append(z ^ (z >> 31))
        self.s0, self.s1, self.s2, self.s3 = words

    def next(self) -> int:
        """The next 64-bit output."""
        result = (_rotl((self.s1 * 5) & MASK64, 7) * 9) & MASK64
        t = (self.s1 << 17) & MASK64
        self.s2 ^= self.s0
        self.s3 ^= self.s1
        self.s1 ^= self.s2
        self.s0 ^= self.s3
        self.s2 ^= t
        self.s3 = _rotl(self.s3, 45)
        return result

    def below(self, n: int) -> int:
        """A draw in [0, n), n < 2**32."""
        return ((self.next() >> 32) * n) >> 32

    def d6(self) -> int:
        """One six-sided die, 1-6."""
        return 1 + self.below(6)

    def shuffle(self, items: list) -> None:
        """Fisher-Yates in place, from the last index down: j = below(i + 1), swap i and j."""
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]
