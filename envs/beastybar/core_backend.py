"""`CoreBackend`: one Beasty Bar game in the Cython core, behind the gym env's backend protocol.

`envs.beastybar.env.BeastyBarEnv(core="cython")` drives it: `reset(seed)` (None continues the game's
generator stream), `step(action)` for an action the env has already checked legal, then reads `obs`,
`mask`, `reward`, `terminated` and `info`. It is a 1-game view of the batched core without auto-reset:
a finished game shows its final position and an all-False mask until the next `reset`. Not a hot path
(the batched `BeastyBarVecEnv` is); it must not hold any rules of its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.batched_vec_env import BatchedCore, CoreBuffers, OneGame
from envs.beastybar.rules import NUM_ACTIONS, OBS_SIZE
from ext.beastybar_core import BeastyBarCore


class CoreBackend(OneGame):
    """One game; `opponent` "random" | "heuristic", `scoring` "points" | "count" (else ValueError)."""

    def __init__(self, opponent: str, scoring: str) -> None:
        self._opponent, self._scoring = opponent, scoring
        super().__init__(OBS_SIZE, NUM_ACTIONS)
        self._info: dict[str, Any] = {}

    def _make_core(self, buffers: CoreBuffers) -> BatchedCore:
        b = buffers
        return BeastyBarCore(
            1, self._opponent, self._scoring, False, b.obs, b.rewards, b.terminated, b.truncated, b.masks,
            b.terminal_obs)

    def reset(self, seed: int | None) -> None:
        """A new game; `seed` reseeds the generator, None continues its stream."""
        super().reset(seed)
        self._info = {}

    def step(self, action: int) -> None:
        """The agent's turn, then the opponent's unless the game is over."""
        super().step(action)
        self._info = self.core.end_info(0) if self.terminated else {}

    @property
    def obs(self) -> np.ndarray:
        """float32[160], the agent's view (the final position once the game is over)."""
        return self.buffers.obs[0].copy()

    @property
    def mask(self) -> np.ndarray:
        """bool[33], the agent's legal actions (all False once the game is over)."""
        return self.buffers.masks[0].copy()

    @property
    def info(self) -> dict[str, Any]:
        """{} during a game; {"winner", "points", "bar_count"} once it is over."""
        return dict(self._info)
