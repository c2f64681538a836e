"""Game environments: one sub-package per game, each with a pure-Python rules reference, a gymnasium
env, a batched SB3 `VecEnv` over its Cython core, and scripted opponents.

`make(name, ...)` and `make_vec(name, num_envs, ...)` look a game up by name; every game takes
`opponent=` (one of `opponents(name)`). A new game is a folder here plus a core in ext/, in the shape
docs/adding-a-game.md describes, registered in `GAMES`. The shared pieces are `game_env` (the gym env),
`batched_vec_env` (the VecEnv, the core protocol and the one-game backend) and `spaces`. Nothing here
imports the engine or the TUI.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> sub-package; each sub-package exposes `make(**kwargs)` and `make_vec(num_envs, **kwargs)`.
GAMES: dict[str, str] = {
    "beastybar": "envs.beastybar",
    "duel": "envs.duel",
    "skirmish": "envs.skirmish",
    "soccer": "envs.soccer",
}


class UnknownGameError(ValueError):
    """Raised for a game name that is not registered."""


def _game_module(name: str) -> Any:
    if name not in GAMES:
        raise UnknownGameError(f"unknown env {name!r}; expected one of: {', '.join(sorted(GAMES))}")
    return importlib.import_module(GAMES[name])


def opponents(name: str) -> tuple[str, ...]:
    """The scripted opponents game `name` offers (`env.opponent` values)."""
    return tuple(_game_module(name).OPPONENTS)


def reward_parts(name: str) -> tuple[str, ...]:
    """The parts game `name`'s reward is the sum of, which its `reward_weights` weigh (() for a game whose
    reward has no weighted parts)."""
    return tuple(getattr(_game_module(name), "REWARD_PARTS", ()))


def make(name: str, **kwargs: Any) -> Any:
    """One gymnasium env of game `name` (kwargs: core, opponent, seed, ... as the game documents)."""
    return _game_module(name).make(**kwargs)


def make_vec(name: str, num_envs: int, **kwargs: Any) -> Any:
    """An SB3 `VecEnv` stepping `num_envs` games of `name` in one call of its Cython core."""
    return _game_module(name).make_vec(num_envs, **kwargs)
