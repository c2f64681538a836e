"""Skirmish, a small 40k-style wargame (rules: docs/games/skirmish.md, fixed in full in `rules`'s docstring).

- `rules`: the pure-Python reference of the rules, the oracle for the Cython core (ext/skirmish_core),
  and the tables the core is built with.
- `env`: the gymnasium env over either implementation (`core="cython"` or `"reference"`).
- `core`: the Cython core as the envs build it, and its one-game backend.
- `vec_env`: the SB3 `VecEnv` stepping N games in one call of the Cython core.
"""

from __future__ import annotations

from typing import Any

from envs.skirmish.rules import OPPONENTS

__all__ = ["OPPONENTS", "make", "make_vec"]


def make(**kwargs: Any) -> Any:
    """One gymnasium env; see `envs.skirmish.env.SkirmishEnv` for the arguments."""
    from envs.skirmish.env import SkirmishEnv

    return SkirmishEnv(**kwargs)


def make_vec(num_envs: int, **kwargs: Any) -> Any:
    """An SB3 VecEnv of `num_envs` games in the Cython core; see `envs.skirmish.vec_env`."""
    from envs.skirmish.vec_env import SkirmishVecEnv

    return SkirmishVecEnv(num_envs, **kwargs)
