"""Duel, a turn-based creature battle (rules: docs/games/duel.md), the agent is side 0.

- `rules`: the pure-Python reference of the rules, the oracle for the Cython core (ext/duel_core),
  the scripted players and the tables the core is built with.
- `env`: the gymnasium env over either implementation (`core="cython"` or `"reference"`).
- `core`: the Cython core as the envs build it, and its one-game backend.
- `vec_env`: the SB3 `VecEnv` stepping N games in one call of the Cython core.
"""

from __future__ import annotations

from typing import Any

from envs.duel.rules import OPPONENTS

__all__ = ["OPPONENTS", "make", "make_vec"]


def make(**kwargs: Any) -> Any:
    """One gymnasium env; see `envs.duel.env.DuelEnv` for the arguments."""
    from envs.duel.env import DuelEnv

    return DuelEnv(**kwargs)


def make_vec(num_envs: int, **kwargs: Any) -> Any:
    """An SB3 VecEnv of `num_envs` games in the Cython core; see `envs.duel.vec_env`."""
    from envs.duel.vec_env import DuelVecEnv

    return DuelVecEnv(num_envs, **kwargs)
