"""The Skirmish gymnasium env: one game from the model's side against the scripted player.

`SkirmishEnv(core=...)` is an `envs.game_env.GameEnv` over a backend: `"reference"` (`ReferenceBackend`
below, the pure-Python `envs.skirmish.rules`) or `"cython"` (`envs.skirmish.core.CoreBackend`, a one-game
view of the batched core, imported only when asked for). Both give the same trajectories for the same
seed and actions. This module adapts; it holds no rules of its own. For training throughput use
`envs.skirmish.vec_env`, not N copies of this class.

Info, after every reset and step: the train keys, plus the debug keys in debug mode (see rules.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from envs.game_env import GameEnv
from envs.skirmish import rules
from envs.spaces import check_choice

_VP_DIFF_INDEX = rules.OBS_SIZE - 1
_OBJECTIVES_START = rules.NUM_UNITS * 9


def observation_space() -> spaces.Box:
    """Box float32[103]: entries in [0, 1] except objective controllers in [-1, 1] and the VP
    difference / 50 in [-2, 2] (each side can score at most 4 rounds x 5 objectives x 5 VP)."""
    low = np.zeros(rules.OBS_SIZE, dtype=np.float32)
    high = np.ones(rules.OBS_SIZE, dtype=np.float32)
    low[_OBJECTIVES_START + 3 : _OBJECTIVES_START + 4 * rules.MAX_OBJECTIVES : 4] = -1.0
    low[_VP_DIFF_INDEX], high[_VP_DIFF_INDEX] = -2.0, 2.0
    return spaces.Box(low=low, high=high, dtype=np.float32)


def core_options(mode: str, max_steps: int) -> dict[str, Any]:
    """The options both backends and the core take; ValueError naming the expected values otherwise."""
    check_choice("mode", mode, rules.MODES)
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    return {"mode": mode, "max_steps": max_steps}


class ReferenceBackend:
    """The backend over `envs.skirmish.rules.SkirmishGame` (the scripted player is its only opponent)."""

    def __init__(self, opponent: str, options: Mapping[str, Any]) -> None:
        self._mode = options["mode"]
        self._params = rules.GameParams(max_steps=options["max_steps"])
        self._game: rules.SkirmishGame | None = None

    def _publish(self) -> None:
        game = self._require_game()
        self.obs = np.array(game.observation(), dtype=np.float32)
        self.mask = np.array(game.legal_mask(), dtype=np.bool_)
        self.reward = game.reward
        self.terminated, self.truncated = game.terminated, game.truncated

    def _require_game(self) -> rules.SkirmishGame:
        if self._game is None:
            raise RuntimeError("the first reset of a backend needs a seed")
        return self._game

    def reset(self, seed: int | None) -> None:
        if seed is not None:
            self._game = rules.SkirmishGame(seed, self._params)
        else:
            self._require_game().reset()
        self._publish()

    def step(self, action: int) -> None:
        self._require_game().step(action)
        self._publish()

    def info(self) -> dict[str, Any]:
        return self._require_game().info(self._mode)


class SkirmishEnv(GameEnv):
    """One Skirmish game; a step is one decision of the model (the player's turn runs inside).

    opponent: "scripted" (the only one); mode: "train" (lean info) | "debug" (adds positions, wounds,
    phase, acting unit, reward parts); max_steps: decisions before truncation. Once the game is over the
    mask holds only "hold" and any step raises ValueError until `reset()`. Other arguments and seeding:
    `envs.game_env.GameEnv`.
    """

    opponents = rules.OPPONENTS
    reference_backend = ReferenceBackend
    core_module = "envs.skirmish.core"

    def __init__(self, core: str = "cython", opponent: str = "scripted", seed: int | None = None,
                 mode: str = "train", max_steps: int = rules.GameParams.max_steps,
                 render_mode: str | None = None) -> None:
        self.mode, self.max_steps = mode, max_steps
        super().__init__(core, opponent, core_options(mode, max_steps), seed, render_mode, observation_space(),
                         rules.NUM_ACTIONS)
