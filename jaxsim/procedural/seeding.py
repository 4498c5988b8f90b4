"""Seeds and a fast scalar RNG for the procedural generator.

Every scenario gets its own 31-bit seed, `scenario_seed(split, seed, index)`, so a
bank is reproducible element by element (`generate_scenario(bank.scenario_id[i])`
rebuilds scenario i). Bit 30 separates the held-out split from the others, so no
train or validation scenario is ever a held-out one. "validation" (for choosing
hyperparameters without touching the held-out split) shares the train half of the seed
space with its own digest; `agents.trainer.build_validation_bank` checks that the two
banks it uses do not overlap.
Per-scenario draws use Python's Mersenne Twister through `random()` only, which is
stable across Python versions and ~10x cheaper than numpy for scalar draws.
"""

from __future__ import annotations

import hashlib
import math
import random

SPLITS = ("train", "heldout", "validation")
_HALF = {"train": 0, "heldout": 1, "validation": 0}  # bit 30 of the seed


def check_split(split: str) -> int:
    """Index of `split` in SPLITS; ValueError naming the allowed values otherwise."""
    if split not in SPLITS:
        raise ValueError(f"split is {split!r}; allowed values: {', '.join(map(repr, SPLITS))}")
    return SPLITS.index(split)


def scenario_seed(split: str, seed: int, index: int) -> int:
    """31-bit seed of scenario `index` of (split, seed); bit 30 is set for the held-out split."""
    check_split(split)
    bit = _HALF[split]
    digest = hashlib.blake2b(f"{split}:{int(seed)}:{int(index)}".encode(), digest_size=8).digest()
    return (bit << 30) | (int.from_bytes(digest, "little") & ((1 << 30) - 1))


class Rand:
    """Scalar random draws built on `random.Random.random` (deterministic per seed)."""

    def __init__(self, seed: int):
        self._r = random.Random(int(seed)).random

    def random(self) -> float:
        return self._r()

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self._r()

    def randint(self, lo: int, hi: int) -> int:
        """Integer in [lo, hi] inclusive."""
        return min(hi, lo + int((hi - lo + 1) * self._r()))

    def chance(self, p: float) -> bool:
        return self._r() < p

    def choice(self, seq):
        return seq[min(len(seq) - 1, int(len(seq) * self._r()))]

    def weighted(self, weights) -> int:
        """Index drawn with probability proportional to `weights`."""
        x = self._r() * sum(weights)
        for i, w in enumerate(weights):
            x -= w
            if x < 0:
                return i
        return len(weights) - 1

    def normal(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        # Box-Muller from two uniforms (random.gauss caches state between calls)
        u1 = max(self._r(), 1e-12)
        return mu + sigma * math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * self._r())

    def exponential(self, mean: float) -> float:
        return -mean * math.log(max(1.0 - self._r(), 1e-12))
