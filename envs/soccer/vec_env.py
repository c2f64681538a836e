"""`SoccerVecEnv`: the SB3 `VecEnv` of N soccer games stepped in one call of the Cython core.

A thin subclass of `envs.batched_vec_env.BatchedVecEnv` with a Box action space (float32[N, 2] actions,
[throttle, steer]; values outside [-1, 1] clipped, a NaN refused with ValueError naming the game). Game i
is seeded `seed + i` and auto-resets by continuing its own generator stream, so it plays exactly like
`make("soccer", core="reference", seed=seed + i)` given the same actions (with a `reset()` after each
end). Infos stay lean: only games that ended carry, besides SB3's `terminal_observation` and `episode`,
the end info (goals_for, goals_against, outcome, side, reward_parts). Every game's weighted reward parts
of the last step are readable at once as `reward_parts`. `enemy_turn_ns` (from the base) is the time the
scripted cars' decisions took inside the core.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import numpy as np

from envs.batched_vec_env import BatchedVecEnv
from envs.soccer import rules
from envs.soccer.core import CORE
from envs.soccer.env import core_options
from ext.soccer_core import SoccerCore


class SoccerVecEnv(BatchedVecEnv):
    """N games against the scripted car; side, max_steps and reward_weights as `envs.soccer.env.SoccerEnv`."""

    reward_part_names = rules.REWARD_PARTS

    def __init__(self, num_envs: int, opponent: str = "chaser", seed: int | None = 0, side: str = "random",
                 max_steps: int = rules.MAX_STEPS, reward_weights: Mapping[str, object] | None = None) -> None:
        options = core_options(side, max_steps, reward_weights)
        self.side, self.max_steps, self.reward_weights = side, max_steps, options["reward_weights"]
        super().__init__(CORE, num_envs, opponent, options, seed)

    @property
    def reward_parts(self) -> np.ndarray:
        """float64[N, 4]: each game's weighted reward parts of the last step (`reward_part_names` order);
        their sum, rounded to float32, is the step's reward. A view, overwritten by the next step."""
        return cast(SoccerCore, self.core).reward_parts

    @property
    def episode_outcome(self) -> np.ndarray:
        """int8[N]: +1 win, 0 draw, -1 loss of each game's last finished episode (the sign of its goal
        difference; the final reward's sign is not the outcome here, rewards are shaped)."""
        return cast(SoccerCore, self.core).episode_outcome
