"""`log.reward_debug`: each part of the reward, logged apart every metric window as `reward/<part>`, the
mean per game step of that part (weighted, as it enters the reward; before any normalisation), for games
whose VecEnv reports its parts (`reward_parts` float[N, P] of the last step, named by
`reward_part_names`). The parts of a step sum to its reward, so the logged means sum to the mean reward
per step. Nothing here knows a game; nothing here writes run files.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback


def reports_parts(venv: Any) -> bool:
    """Whether `venv` (a game's own VecEnv) reports its reward parts."""
    return hasattr(venv, "reward_parts") and hasattr(venv, "reward_part_names")


class RewardParts(BaseCallback):
    """Sums each part over the vec-env steps since the last `take()` (SB3 calls `_on_step` after every
    vec-env step, so the game env's `reward_parts` are that step's)."""

    def __init__(self, game_env: Any) -> None:
        super().__init__()
        self.game_env = game_env
        self.names = tuple(game_env.reward_part_names)
        self._sums = np.zeros(len(self.names), dtype=np.float64)
        self._steps = 0

    def _on_step(self) -> bool:
        self._sums += self.game_env.reward_parts.sum(axis=0)
        self._steps += self.game_env.num_envs
        return True

    def take(self) -> dict[str, float]:
        """{"reward/<part>": mean per game step} since the last call ({} when no step was taken)."""
        if not self._steps:
            return {}
        means = {f"reward/{name}": float(total / self._steps)
                 for name, total in zip(self.names, self._sums, strict=True)}
        self._sums[:] = 0.0
        self._steps = 0
        return means
