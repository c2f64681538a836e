"""`BeastyBarVecEnv`: the SB3 `VecEnv` of N Beasty Bar games stepped in one call of the Cython core.

A thin subclass of `envs.batched_vec_env.BatchedVecEnv`: it only builds the core and names the spaces.
Game i is seeded with `seed + i` and auto-resets by continuing its own generator stream, so it plays
exactly like `make("beastybar", core="reference", seed=seed + i)` given the same actions (with a
`reset()` after each end). Episode ends carry, besides SB3's `terminal_observation` and `episode`, the
spec's end info: `winner` (0, 1, -1 = draw), `points` (p0, p1), `bar_count` (c0, c1).
"""

from __future__ import annotations

from envs.batched_vec_env import BatchedCore, BatchedVecEnv, CoreBuffers
from envs.beastybar.env import observation_space
from envs.beastybar.rules import NUM_ACTIONS, OPPONENTS, SCORINGS
from ext.beastybar_core import BeastyBarCore


class BeastyBarVecEnv(BatchedVecEnv):
    """N games against a scripted opponent ("random" | "heuristic"), scored by "points" | "count"."""

    def __init__(self, num_envs: int, opponent: str = "random", seed: int | None = 0, scoring: str = "points"):
        if opponent not in OPPONENTS:
            raise ValueError(f"unknown opponent {opponent!r}; expected one of: {', '.join(OPPONENTS)}")
        if scoring not in SCORINGS:
            raise ValueError(f"unknown scoring {scoring!r}; expected one of: {', '.join(SCORINGS)}")
        self.opponent = opponent
        self.scoring = scoring
        super().__init__(num_envs, observation_space(), NUM_ACTIONS, seed)

    def _make_core(self, buffers: CoreBuffers) -> BatchedCore:
        return BeastyBarCore(
            buffers.num_envs,
            self.opponent,
            self.scoring,
            True,
            buffers.obs,
            buffers.rewards,
            buffers.terminated,
            buffers.truncated,
            buffers.masks,
            buffers.terminal_obs,
        )
