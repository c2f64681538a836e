"""Beasty Bar (rules: docs/games/beastybar.md), two players, the agent is always player A (0).

- `rules`: the pure-Python reference of the rules, the oracle for the Cython core (ext/beastybar_core),
  and the tables the core is built with.
- `env`: the gymnasium env over either implementation (`core="cython"` or `"reference"`).
- `core`: the Cython core as the envs build it, and its one-game backend.
- `vec_env`: the SB3 `VecEnv` stepping N games in one call of the Cython core.
- `scenario`: apply one play to a queue written in the rules page's notation.
"""

from __future__ import annotations

from typing import Any

from envs.beastybar.rules import OPPONENTS, REWARD_PARTS

__all__ = ["OPPONENTS", "REWARD_PARTS", "make", "make_vec"]


def make(**kwargs: Any) -> Any:
    """One gymnasium env; see `envs.beastybar.env.BeastyBarEnv` for the arguments."""
    from envs.beastybar.env import BeastyBarEnv

    return BeastyBarEnv(**kwargs)


def make_vec(num_envs: int, **kwargs: Any) -> Any:
    """An SB3 VecEnv of `num_envs` games in the Cython core; see `envs.beastybar.vec_env`."""
    from envs.beastybar.vec_env import BeastyBarVecEnv

    return BeastyBarVecEnv(num_envs, **kwargs)
