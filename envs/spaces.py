"""Pieces every game's gym env shares: the legal-sampling action space and argument checks.

Game-agnostic; nothing here knows a rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces


def check_choice(what: str, value: object, expected: tuple[str, ...]) -> None:
    """ValueError naming `value` and the `expected` ones unless `value` is one of them."""
    if value not in expected:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(map(repr, expected))}")


class LegalDiscrete(spaces.Discrete):
    """Discrete(n) whose `sample()` without a mask draws among the actions `legal` marks (the env keeps
    that array current), so generic tools (env checkers, random rollouts) play legal moves. With an
    explicit mask or probability, or when nothing is legal (the game is over), it is plain Discrete."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.legal = np.zeros(n, dtype=np.bool_)

    def sample(self, mask: Any = None, probability: Any = None) -> np.int64:
        if mask is None and probability is None and self.legal.any():
            mask = self.legal.astype(np.int8)
        return super().sample(mask=mask, probability=probability)
