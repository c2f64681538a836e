"""Duel's Cython core as the envs build it: `CORE` (ext.duel_core.DuelCore with the tables of
`envs.duel.rules`) and `CoreBackend`, one game of it behind the gym env's backend protocol.

`DuelVecEnv` steps N games of `CORE`; `DuelEnv(core="cython")` runs on `CoreBackend` (imported only
then). Core options: {"shaping": "hp" | "none"}. A finished game shows its final observation and an all-False mask
until the next `reset`. Nothing here holds a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envs.batched_vec_env import CoreSpec, OneGame
from envs.duel import rules
from envs.duel.env import observation_space
from ext.duel_core import DuelCore

CORE = CoreSpec(DuelCore, rules.core_tables(), rules.OPPONENTS, observation_space, rules.NUM_ACTIONS)


class CoreBackend(OneGame):
    """One game of `CORE`; `info()` is {} during a game and {"winner", "turns", "alive"} at its end."""

    def __init__(self, opponent: str, options: Mapping[str, Any]) -> None:
        super().__init__(CORE, opponent, options)
