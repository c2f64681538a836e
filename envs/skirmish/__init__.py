"""Skirmish, a small 40k-style wargame (rules: shared/games/skirmish.md, fixed in `rules`'s docstring).

- `rules`: the pure-Python reference of the rules, the oracle for the Cython core (ext/skirmish_core).
- `env`: the gymnasium env over either implementation (`core="cython"` or `"reference"`).
- `vec_env`: the SB3 `VecEnv` stepping N games in one call of the Cython core.
"""

from __future__ import annotations

from typing import Any

# The scripted player is the only opponent; its whole turn runs inside the core.
OPPONENTS = ("scripted",)


def make(**kwargs: Any) -> Any:
    """One gymnasium env; see `envs.skirmish.env.SkirmishEnv` for the arguments."""
    from envs.skirmish.env import SkirmishEnv

    return SkirmishEnv(**kwargs)


def make_vec(num_envs: int, **kwargs: Any) -> Any:
    """An SB3 VecEnv of `num_envs` games in the Cython core; see `envs.skirmish.vec_env`."""
    from envs.skirmish.vec_env import SkirmishVecEnv

    return SkirmishVecEnv(num_envs, **kwargs)
