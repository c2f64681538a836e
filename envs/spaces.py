"""Pieces every game's gym env shares: the action spaces (discrete with a legal mask, or a continuous
control box) with their checks of an action, and argument checks.

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

    def checked(self, action: Any) -> int:
        """`action` as an int; ValueError naming the legal actions unless `legal` allows it."""
        chosen = int(action)
        if not (0 <= chosen < self.n and self.legal[chosen]):
            raise ValueError(f"action {action!r} is illegal now; legal: {np.flatnonzero(self.legal).tolist()}")
        return chosen


# What a continuous-control game accepts, for the messages that refuse an action.
CONTROL_RULE = "no NaN (values outside [-1, 1] are clipped)"


class ControlBox(spaces.Box):
    """Box float32[size] in [-1, 1], the action of a continuous-control game (no legal mask). The game
    clips every value outside [-1, 1]; a NaN is refused here (and by the core), so none reaches a game."""

    def __init__(self, size: int) -> None:
        super().__init__(low=-1.0, high=1.0, shape=(size,), dtype=np.float32)

    def checked(self, action: Any) -> np.ndarray:
        """`action` as float32[size] (the game's own precision); ValueError for another shape or a NaN."""
        vector = np.asarray(action, dtype=np.float32)
        if vector.shape != self.shape or np.isnan(vector).any():
            raise ValueError(f"action {action!r} is illegal; expected {self.shape[0]} numbers, {CONTROL_RULE}")
        return vector
