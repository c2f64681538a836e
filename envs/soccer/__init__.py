"""Soccer, a 2D top-down car-soccer game with continuous [throttle, steer] actions (rules:
docs/games/soccer.md, fixed operation for operation in `rules`).

- `rules`: the pure-Python reference of the rules, the oracle for the Cython core (ext/soccer_core), and
  the tables the core is built with.
- `env`: the gymnasium env over either implementation (`core="cython"` or `"reference"`).
- `core`: the Cython core as the envs build it, and its one-game backend.
- `vec_env`: the SB3 `VecEnv` stepping N games in one call of the Cython core.
"""

from __future__ import annotations

from typing import Any

from envs.soccer.rules import OPPONENTS, REWARD_PARTS

__all__ = ["OPPONENTS", "REWARD_PARTS", "make", "make_vec"]


def make(**kwargs: Any) -> Any:
    """One gymnasium env; see `envs.soccer.env.SoccerEnv` for the arguments."""
    from envs.soccer.env import SoccerEnv

    return SoccerEnv(**kwargs)


def make_vec(num_envs: int, **kwargs: Any) -> Any:
    """An SB3 VecEnv of `num_envs` games in the Cython core; see `envs.soccer.vec_env`."""
    from envs.soccer.vec_env import SoccerVecEnv

    return SoccerVecEnv(num_envs, **kwargs)
