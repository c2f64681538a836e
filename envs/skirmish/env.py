"""The Skirmish gymnasium env: one game from the model's side against the scripted player.

`SkirmishEnv(core=...)` runs over a backend: `"reference"` (`ReferenceBackend`, the pure-Python
`envs.skirmish.rules`) or `"cython"` (`CoreBackend`, a one-game view of the batched core, no
auto-reset). Both give the same trajectories for the same seed and actions. This module validates and
adapts; it holds no rules of its own. For training throughput use `envs.skirmish.vec_env`, not N copies
of this class.

Backend protocol: `reset(seed: int)`, `reset_continue()` (next game on the same generator stream),
`step(action)` (already checked legal), then read `obs` float32[103], `mask` bool[14], `reward` float,
`terminated`, `truncated` and `info()` (train keys, plus the debug keys in debug mode; see rules.py).
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.batched_vec_env import BatchedCore, CoreBuffers, OneGame
from envs.skirmish import rules
from envs.spaces import LegalDiscrete, check_choice

CORES = ("cython", "reference")
MODES = ("train", "debug")
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


class Backend(Protocol):
    @property
    def obs(self) -> np.ndarray: ...
    @property
    def mask(self) -> np.ndarray: ...
    @property
    def reward(self) -> float: ...
    @property
    def terminated(self) -> bool: ...
    @property
    def truncated(self) -> bool: ...

    def reset(self, seed: int) -> None: ...
    def reset_continue(self) -> None: ...
    def step(self, action: int) -> None: ...
    def info(self) -> dict[str, Any]: ...


class ReferenceBackend:
    """The backend over `envs.skirmish.rules.SkirmishGame`."""

    def __init__(self, mode: str, max_steps: int) -> None:
        self._mode = mode
        self._params = rules.GameParams(max_steps=max_steps)
        self._game: rules.SkirmishGame | None = None

    def _publish(self) -> None:
        game = self._require_game()
        self.obs = np.array(game.observation(), dtype=np.float32)
        self.mask = np.array(game.legal_mask(), dtype=np.bool_)
        self.reward = game.reward
        self.terminated, self.truncated = game.terminated, game.truncated

    def _require_game(self) -> rules.SkirmishGame:
        if self._game is None:
            raise RuntimeError("reset the backend with a seed first")
        return self._game

    def reset(self, seed: int) -> None:
        self._game = rules.SkirmishGame(seed, self._params)
        self._publish()

    def reset_continue(self) -> None:
        self._require_game().reset()
        self._publish()

    def step(self, action: int) -> None:
        self._require_game().step(action)
        self._publish()

    def info(self) -> dict[str, Any]:
        return self._require_game().info(self._mode)


class CoreBackend(OneGame):
    """One game of `ext.skirmish_core.SkirmishCore`; a finished game keeps its final observation."""

    def __init__(self, mode: str, max_steps: int) -> None:
        self._mode, self._max_steps = mode, max_steps
        super().__init__(rules.OBS_SIZE, rules.NUM_ACTIONS)
        self.obs, self.mask = self.buffers.obs[0], self.buffers.masks[0]

    def _make_core(self, buffers: CoreBuffers) -> BatchedCore:
        from ext.skirmish_core import SkirmishCore

        b = buffers
        return SkirmishCore(1, rules.core_tables(), self._max_steps, False,
                            self._mode == "debug", b.obs, b.rewards, b.terminated, b.truncated, b.masks,
                            b.terminal_obs)

    def reset_continue(self) -> None:
        self.reset(None)

    def info(self) -> dict[str, Any]:
        return self.core.info_dict(0)  # type: ignore[attr-defined]


class SkirmishEnv(gym.Env[np.ndarray, np.int64]):
    """One Skirmish game; a step is one decision of the model (the player's turn runs inside).

    core: "cython" | "reference"; seed: the first reset's seed (None: drawn from gymnasium's seeding);
    mode: "train" (lean info) | "debug" (adds positions, wounds, phase, acting unit, reward parts);
    max_steps: decisions before truncation. `reset(seed=None)` after the first continues the game's
    generator stream, so a run of games is reproducible from the first seed and the actions.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's own class attribute)

    def __init__(self, core: str = "cython", seed: int | None = None, mode: str = "train",
                 max_steps: int = rules.GameParams.max_steps) -> None:
        check_choice("core", core, CORES)
        check_choice("mode", mode, MODES)
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.core, self.mode = core, mode
        self.observation_space = observation_space()
        # Samples legal actions by itself, so generic tools (env checkers, random rollouts) play legal moves.
        self._legal_space = LegalDiscrete(rules.NUM_ACTIONS)
        self.action_space = self._legal_space
        self._backend: Backend = (CoreBackend if core == "cython" else ReferenceBackend)(mode, max_steps)
        self._first_seed = seed
        self._started = False
        self._over = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None and not self._started:
            seed = self._first_seed
            if seed is None:
                seed = int(self.np_random.integers(2**63))
        if seed is not None:
            self._backend.reset(seed)
        else:
            self._backend.reset_continue()
        self._started = True
        self._over = False
        self._legal_space.legal[:] = self._backend.mask
        return self._backend.obs.copy(), self._backend.info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._started or self._over:
            raise RuntimeError("call reset() before step() (the game is over or not started)")
        a = int(action)
        if not (0 <= a < rules.NUM_ACTIONS and self._backend.mask[a]):
            legal = np.flatnonzero(self._backend.mask).tolist()
            raise ValueError(f"illegal action {a}; legal actions: {legal}")
        backend = self._backend
        backend.step(a)
        self._over = backend.terminated or backend.truncated
        self._legal_space.legal[:] = backend.mask
        return backend.obs.copy(), backend.reward, backend.terminated, backend.truncated, backend.info()

    def action_masks(self) -> np.ndarray:
        """bool[14]: the legal actions of the pending decision (hold only once the game is over)."""
        return self._backend.mask.copy()
