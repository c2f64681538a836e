"""`BeastyBarVecEnv`: the SB3 `VecEnv` of N Beasty Bar games stepped in one call of the Cython core.

A thin subclass of `envs.batched_vec_env.BatchedVecEnv`: it only turns its arguments into the core's
options. Game i is seeded with `seed + i` and auto-resets by continuing its own generator stream, so it
plays exactly like `make("beastybar", core="reference", seed=seed + i)` given the same actions (with a
`reset()` after each end). Episode ends carry, besides SB3's `terminal_observation` and `episode`, the
game's end info: `winner` (0, 1, -1 = draw), `points` (p0, p1), `bar_count` (c0, c1). `enemy_turn_ns`
(from the base) is the time the opponent's turns took inside the core.
"""

from __future__ import annotations

from envs.batched_vec_env import BatchedVecEnv
from envs.beastybar.core import CORE
from envs.beastybar.env import core_options


class BeastyBarVecEnv(BatchedVecEnv):
    """N games against a scripted opponent (one of `rules.OPPONENTS`), scored by "points" | "count", the
    starter of each game by `first` ("random" | "agent" | "opponent")."""

    def __init__(self, num_envs: int, opponent: str = "random", seed: int | None = 0,
                 scoring: str = "points", first: str = "random") -> None:
        self.scoring = scoring
        self.first = first
        super().__init__(CORE, num_envs, opponent, core_options(scoring, first), seed)
