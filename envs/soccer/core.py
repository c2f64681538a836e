"""Soccer's Cython core as the envs build it: `CORE` (ext.soccer_core.SoccerCore with the tables of
`envs.soccer.rules`, continuous actions) and `CoreBackend`, one game of it behind the gym env's backend
protocol.

`SoccerVecEnv` steps N games of `CORE`; `SoccerEnv(core="cython")` runs on `CoreBackend` (imported only
then). Core options: {"side", "max_steps", "reward_weights"} (`envs.soccer.env.core_options`). A finished
game keeps its final observation until the next `reset`. Nothing here holds a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envs.batched_vec_env import CoreSpec, OneGame
from envs.soccer import rules
from envs.soccer.env import observation_space
from ext.soccer_core import SoccerCore

CORE = CoreSpec(SoccerCore, rules.core_tables(), rules.OPPONENTS, observation_space, rules.NUM_ACTIONS,
                continuous=True)


class CoreBackend(OneGame):
    """One game of `CORE`; `info()` is {} during an episode and its end info once over."""

    def __init__(self, opponent: str, options: Mapping[str, Any]) -> None:
        super().__init__(CORE, opponent, options)
