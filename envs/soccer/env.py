"""The soccer gymnasium env: one game from the agent's car against the scripted car.

`SoccerEnv(core=...)` is an `envs.game_env.GameEnv` with a continuous action (float32[2] = [throttle,
steer], `envs.spaces.ControlBox`: values outside [-1, 1] clipped, a NaN refused) over a backend:
`"reference"` (`ReferenceBackend` below, the pure-Python `envs.soccer.rules`) or `"cython"`
(`envs.soccer.core.CoreBackend`, a one-game view of the batched core, imported only when asked for). Both
give the same trajectories, bit for bit, for the same seed and actions. This module adapts; it holds no
rules of its own. For training throughput use `envs.soccer.vec_env`, not N copies of this class.

Info: {} during an episode; at its end the end info of docs/games/soccer.md (goals_for, goals_against,
outcome, side, reward_parts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from envs.game_env import GameEnv
from envs.soccer import rules
from envs.spaces import check_choice

_TIME_LEFT_INDEX = 16


def observation_space() -> spaces.Box:
    """Box float32[18]: every entry in [-1, 1], the time left in [0, 1] (layout: docs/games/soccer.md)."""
    low = np.full(rules.OBS_SIZE, -1.0, dtype=np.float32)
    low[_TIME_LEFT_INDEX] = 0.0
    return spaces.Box(low=low, high=np.ones(rules.OBS_SIZE, dtype=np.float32), dtype=np.float32)


def core_options(side: str, max_steps: int, reward_weights: Mapping[str, object] | None) -> dict[str, Any]:
    """The options both backends and the core take (`reward_weights`: some parts' weights, the others at
    `rules.DEFAULT_WEIGHTS`); ValueError naming the expected values otherwise."""
    check_choice("side", side, rules.SIDES)
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    weights = rules.checked_weights({**rules.DEFAULT_WEIGHTS, **(reward_weights or {})})
    return {"side": side, "max_steps": max_steps, "reward_weights": weights}


class ReferenceBackend:
    """The backend over `envs.soccer.rules.SoccerGame`."""

    mask = np.zeros(0, dtype=np.bool_)

    def __init__(self, opponent: str, options: Mapping[str, Any]) -> None:
        self._opponent = opponent
        self._options = dict(options)
        self._game: rules.SoccerGame | None = None

    def _require_game(self) -> rules.SoccerGame:
        if self._game is None:
            raise RuntimeError("the first reset of a backend needs a seed")
        return self._game

    def _publish(self) -> None:
        game = self._require_game()
        self.obs = np.array(game.observation(), dtype=np.float32)
        self.reward = float(np.float32(game.reward))
        self.terminated, self.truncated = game.terminated, game.truncated

    def reset(self, seed: int | None) -> None:
        if seed is not None:
            self._game = rules.SoccerGame(seed, self._opponent, **self._options)
        else:
            self._require_game().reset()
        self._publish()

    def step(self, action: np.ndarray) -> None:
        vector = np.asarray(action, dtype=np.float32)
        self._require_game().step(float(vector[0]), float(vector[1]))
        self._publish()

    def info(self) -> dict[str, Any]:
        game = self._require_game()
        return game.end_info() if game.over else {}


class SoccerEnv(GameEnv):
    """One soccer game; a step is 0.1 s of play.

    opponent: "chaser" | "goalie"; side: "left" | "right" | "random" (drawn per episode); max_steps: steps
    per episode (the time limit; its end is `terminated`); reward_weights: {part: number} for some of
    `rules.REWARD_PARTS`, the others at `rules.DEFAULT_WEIGHTS` (None: all at their defaults). Once the
    game is over any step raises ValueError until `reset()`. Other arguments and seeding:
    `envs.game_env.GameEnv`.
    """

    opponents = rules.OPPONENTS
    reference_backend = ReferenceBackend
    core_module = "envs.soccer.core"

    def __init__(self, core: str = "cython", opponent: str = "chaser", seed: int | None = None,
                 side: str = "random", max_steps: int = rules.MAX_STEPS,
                 reward_weights: Mapping[str, object] | None = None, render_mode: str | None = None) -> None:
        options = core_options(side, max_steps, reward_weights)
        self.side, self.max_steps, self.reward_weights = side, max_steps, options["reward_weights"]
        super().__init__(core, opponent, options, seed, render_mode, observation_space(), rules.NUM_ACTIONS,
                         continuous=True)
