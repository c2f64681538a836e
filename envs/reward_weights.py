"""Weights of a reward that is a weighted sum of named parts (soccer's goal, touch, ...; Beasty Bar's
outcome and margin): the one check every such game makes of the weights it is given.

Game-agnostic and pure Python (the rules references import it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def checked(weights: Mapping[str, object], parts: tuple[str, ...]) -> dict[str, float]:
    """`weights` as {part: float} in `parts` order; ValueError unless it has exactly those keys, each a
    finite number (bools are not numbers here)."""
    if not isinstance(weights, Mapping) or sorted(weights) != sorted(parts):
        given = ", ".join(sorted(map(str, weights))) if isinstance(weights, Mapping) else type(weights).__name__
        raise ValueError(f"reward_weights must have the keys {', '.join(parts)}; got {given or 'none'}")
    out = {}
    for part in parts:
        value = weights[part]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"reward_weights[{part!r}] must be a finite number, got {value!r}")
        out[part] = float(value)
    return out
