"""The Duel gymnasium env: one game from the agent's side (side 0) against a scripted player.

`DuelEnv(core=...)` is an `envs.game_env.GameEnv` over a backend: `"reference"` is `ReferenceBackend`
below (the rules of `envs.duel.rules`, pure Python, slow and obviously right), `"cython"` is
`envs.duel.core.CoreBackend` (a one-game view of the batched core, imported only when asked for). Both
give the same trajectories for the same seed and actions. This module adapts; it holds no rules of its
own. For training throughput use the batched `envs.duel.vec_env`, not N copies of this class.

Info: {} before the end; at the end `winner` (0 agent, 1 scripted side, -1 draw), `turns`, `alive`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from envs.duel import rules
from envs.game_env import GameEnv
from envs.rng import Rng
from envs.spaces import check_choice


def observation_space() -> spaces.Box:
    """Box float32[62]: every entry in [0, 1] (HP / 100 with every max HP <= 100, flags, turn share)."""
    return spaces.Box(low=np.zeros(rules.OBS_SIZE, np.float32), high=np.ones(rules.OBS_SIZE, np.float32),
                      dtype=np.float32)


def core_options(shaping: str) -> dict[str, Any]:
    """The options both backends and the core take; ValueError naming the expected values otherwise."""
    check_choice("shaping", shaping, rules.SHAPINGS)
    return {"shaping": shaping}


class ReferenceBackend:
    """The backend over `envs.duel.rules.DuelGame`: side 0 is the agent, side 1 plays `opponent`."""

    def __init__(self, opponent: str, options: Mapping[str, Any]) -> None:
        self._opponent = opponent
        self._shaping = options["shaping"]
        self.game: rules.DuelGame | None = None
        self.reward = 0.0

    def _require_game(self) -> rules.DuelGame:
        if self.game is None:
            raise RuntimeError("the first reset of a backend needs a seed")
        return self.game

    def reset(self, seed: int | None) -> None:
        if seed is not None:
            self.game = rules.DuelGame(Rng(seed))
        else:
            self._require_game().reset()
        self.reward = 0.0

    def step(self, action: int) -> None:
        game = self._require_game()
        self.reward = game.reward(game.play_turn((action, game.choose(1, self._opponent))), self._shaping)

    @property
    def obs(self) -> np.ndarray:
        return self._require_game().observation()

    @property
    def mask(self) -> np.ndarray:
        return np.array(self._require_game().legal_mask(0), dtype=np.bool_)

    @property
    def terminated(self) -> bool:
        return self._require_game().over

    @property
    def truncated(self) -> bool:
        return False

    def info(self) -> dict[str, Any]:
        game = self._require_game()
        return game.end_info() if game.over else {}


class DuelEnv(GameEnv):
    """Duel for one agent (side 0) against a scripted player ("random" | "greedy" | "sensible").

    Observation: float32[62] (layout in `envs.duel.rules`). Action: Discrete(7), the rules' table;
    `action_masks()` gives the legal ones and an illegal action raises ValueError. A step is one turn;
    the reward is the shaped part per turn (`shaping` "hp", or "none" for 0) and +1/0/-1 on the last.
    `render_mode="ansi"` renders the teams in two lines. Other arguments and seeding:
    `envs.game_env.GameEnv`.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"]}  # noqa: RUF012 (gymnasium API)
    opponents = rules.OPPONENTS
    reference_backend = ReferenceBackend
    core_module = "envs.duel.core"

    def __init__(self, core: str = "cython", opponent: str = "random", seed: int | None = None,
                 shaping: str = "hp", render_mode: str | None = None) -> None:
        self.shaping = shaping
        super().__init__(core, opponent, core_options(shaping), seed, render_mode, observation_space(),
                         rules.NUM_ACTIONS)

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        return rules.describe_observation(self._backend.obs)
