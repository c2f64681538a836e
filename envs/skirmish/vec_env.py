"""`SkirmishVecEnv`: the SB3 `VecEnv` of N Skirmish games stepped in one call of the Cython core.

A thin subclass of `envs.batched_vec_env.BatchedVecEnv`: it turns its arguments into the core's options
and adds views of the core's own arrays. Game i is seeded `seed + i` and auto-resets by continuing its
own generator stream, so it plays exactly like `make("skirmish", core="reference", seed=seed + i)` given
the same actions (with a `reset()` after each end). Per step, infos stay lean: only games that ended
carry, besides SB3's `terminal_observation` and `episode`, the rules' info keys (train mode; debug mode
adds positions, wounds and reward parts). Every game's info is also readable at once as arrays
(`info_array`), and the legal masks as `action_masks()` (bool[N, 14], so a trainer can draw its random
actions without a round trip through the envs). `enemy_turn_ns` (from the base) is the time the scripted
player's turns took inside the core.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from envs.batched_vec_env import BatchedVecEnv
from envs.skirmish import rules
from envs.skirmish.core import CORE
from envs.skirmish.env import core_options
from ext.skirmish_core import INFO_COLUMNS, SkirmishCore


class SkirmishVecEnv(BatchedVecEnv):
    """N games against the scripted player; mode "train" | "debug"; max_steps decisions per game before
    truncation."""

    info_columns = INFO_COLUMNS

    def __init__(self, num_envs: int, opponent: str = "scripted", seed: int | None = 0, mode: str = "train",
                 max_steps: int = rules.GameParams.max_steps) -> None:
        self.mode, self.max_steps = mode, max_steps
        super().__init__(CORE, num_envs, opponent, core_options(mode, max_steps), seed)

    @property
    def skirmish_core(self) -> SkirmishCore:
        """The core, typed as Skirmish's: its `reward_parts`, `info`, `units`, `decision` arrays."""
        return cast(SkirmishCore, self.core)

    @property
    def info_array(self) -> np.ndarray:
        """int32[N, 9] of the last step, columns `INFO_COLUMNS` (mission, end_reason, winner as codes)."""
        return self.skirmish_core.info
