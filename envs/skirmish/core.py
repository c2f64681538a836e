"""Skirmish's Cython core as the envs build it: `CORE` (ext.skirmish_core.SkirmishCore with the tables of
`envs.skirmish.rules`) and `CoreBackend`, one game of it behind the gym env's backend protocol.

`SkirmishVecEnv` steps N games of `CORE`; `SkirmishEnv(core="cython")` runs on `CoreBackend` (imported
only then). Core options: {"mode": "train" | "debug", "max_steps": int}. A finished game keeps its final
observation and a hold-only mask until the next `reset`. Nothing here holds a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from envs.batched_vec_env import CoreSpec, OneGame
from envs.skirmish import rules
from envs.skirmish.env import observation_space
from ext.skirmish_core import SkirmishCore

CORE = CoreSpec(SkirmishCore, rules.core_tables(), rules.OPPONENTS, observation_space, rules.NUM_ACTIONS)


class CoreBackend(OneGame):
    """One game of `CORE`; `info()` is the core's info of the last reset or step, at every step."""

    def __init__(self, opponent: str, options: Mapping[str, Any]) -> None:
        super().__init__(CORE, opponent, options)

    def info(self) -> dict[str, Any]:
        return cast(SkirmishCore, self.core).info_dict(0)
