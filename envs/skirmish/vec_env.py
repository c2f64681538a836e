"""`SkirmishVecEnv`: the SB3 `VecEnv` of N Skirmish games stepped in one call of the Cython core.

A thin subclass of `envs.batched_vec_env.BatchedVecEnv`: it builds the core and names the spaces. Game i
is seeded `seed + i` and auto-resets by continuing its own generator stream, so it plays exactly like
`make("skirmish", core="reference", seed=seed + i)` given the same actions (with a `reset()` after each
end). Per step, infos stay lean (seed 004 item A): only games that ended carry, besides SB3's
`terminal_observation` and `episode`, the rules' info keys (train mode; debug mode adds positions,
wounds and reward parts). Every game's info is also readable at once as arrays (`info_array`), the legal
masks as `action_masks()` (bool[N, 14], for ε-greedy drawn in the trainer, item F), and the time the
scripted player's turns took as `enemy_turn_ns` (the trainer's `enemy_turn_ms`).
"""

from __future__ import annotations

import numpy as np

from envs.batched_vec_env import BatchedCore, BatchedVecEnv, CoreBuffers
from envs.skirmish import rules
from envs.skirmish.env import MODES, observation_space
from envs.spaces import check_choice
from ext.skirmish_core import INFO_COLUMNS, SkirmishCore


class SkirmishVecEnv(BatchedVecEnv):
    """N games; mode "train" | "debug"; max_steps decisions per game before truncation."""

    def __init__(self, num_envs: int, seed: int | None = 0, mode: str = "train",
                 max_steps: int = rules.GameParams.max_steps) -> None:
        check_choice("mode", mode, MODES)
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.mode = mode
        self.max_steps = max_steps
        super().__init__(num_envs, observation_space(), rules.NUM_ACTIONS, seed)

    def _make_core(self, buffers: CoreBuffers) -> BatchedCore:
        self.skirmish_core = SkirmishCore(
            buffers.num_envs, rules.core_tables(), self.max_steps, True, self.mode == "debug",
            buffers.obs, buffers.rewards, buffers.terminated, buffers.truncated, buffers.masks,
            buffers.terminal_obs,
        )
        return self.skirmish_core

    @property
    def enemy_turn_ns(self) -> int:
        """Nanoseconds spent in the scripted player's turns since construction (C monotonic clock)."""
        return int(self.skirmish_core.enemy_turn_ns)

    @property
    def info_array(self) -> np.ndarray:
        """int32[N, 9] of the last step, columns `INFO_COLUMNS` (mission, end_reason, winner as codes)."""
        return self.skirmish_core.info

    info_columns = INFO_COLUMNS
