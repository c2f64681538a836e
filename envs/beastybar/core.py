"""Beasty Bar's Cython core as the envs build it: `CORE` (ext.beastybar_core.BeastyBarCore with the tables
of `envs.beastybar.rules`) and `CoreBackend`, one game of it behind the gym env's backend protocol.

`BeastyBarVecEnv` steps N games of `CORE`; `BeastyBarEnv(core="cython")` runs on `CoreBackend` (imported
only then). Core options: {"scoring": "points" | "count", "first": "random" | "agent" | "opponent",
"reward_weights": {part: finite float} over `rules.REWARD_PARTS`}. A finished game shows its final position
and an all-False mask until the next `reset`. Nothing here holds a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envs.batched_vec_env import CoreSpec, OneGame
from envs.beastybar import rules
from envs.beastybar.env import observation_space
from ext.beastybar_core import BeastyBarCore

CORE = CoreSpec(BeastyBarCore, rules.core_tables(), rules.OPPONENTS, observation_space, rules.NUM_ACTIONS)


class CoreBackend(OneGame):
    """One game of `CORE`; `info()` is {} during a game and {"winner", "points", "bar_count"} at its end."""

    def __init__(self, opponent: str, options: Mapping[str, Any]) -> None:
        super().__init__(CORE, opponent, options)
