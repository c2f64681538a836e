"""`DuelVecEnv`: the SB3 `VecEnv` of N Duel games stepped in one call of the Cython core.

A thin subclass of `envs.batched_vec_env.BatchedVecEnv` that turns its arguments into the core's options.
Game i is seeded with `seed + i` and auto-resets by continuing its own generator stream, so it plays exactly like
`make("duel", core="reference", seed=seed + i)` given the same actions (with a `reset()` after each
end). Episode ends carry, besides SB3's `terminal_observation` and `episode`, the game's end info:
`winner` (0 agent, 1 scripted side, -1 draw), `turns`, `alive`. `enemy_turn_ns` (from the base) is
the time the scripted side's choices took inside the core.
"""

from __future__ import annotations

from typing import cast

from envs.batched_vec_env import BatchedVecEnv
from envs.duel.core import CORE
from envs.duel.env import core_options
from ext.duel_core import DuelCore


class DuelVecEnv(BatchedVecEnv):
    """N games against a scripted player ("random" | "greedy" | "sensible"), per-turn reward `shaping`
    "hp" | "none"."""

    def __init__(self, num_envs: int, opponent: str = "random", seed: int | None = 0, shaping: str = "hp") -> None:
        self.shaping = shaping
        super().__init__(CORE, num_envs, opponent, core_options(shaping), seed)

    @property
    def duel_core(self) -> DuelCore:
        """The core, typed as Duel's: `choose(player, out)` for a scripted agent side, `winner`, `alive`."""
        return cast(DuelCore, self.core)
