"""An SB3 `VecEnv` over any batched game core that steps N games in one call; game-agnostic.

A game's VecEnv is a thin subclass that builds its core in `_make_core(buffers)` and passes its
observation space and action count. This module owns the numpy buffers the core writes into, the
persistent info list (end-of-episode keys set for the games that ended this step, cleared the step
after), seeding, and the SB3 plumbing. It must not loop over games on the step path except over the
games that just ended, and it must not know any game's rules.

The core protocol (`BatchedCore`), for N games, observation size D and A discrete actions:

- constructed by the subclass with a `CoreBuffers` (obs float32[N, D], rewards float32[N],
  terminated bool[N], truncated bool[N], masks bool[N, A], terminal_obs float32[N, D]) and writes
  every result into those arrays, in place;
- `reset(seeds)`: deals a new episode in every game; `seeds` uint64[N] reseeds each game's
  generator first, None continues each game's own stream. Writes obs and masks, zeroes rewards,
  terminated and truncated;
- `step(actions)`: actions int64[N], one agent decision per game, the scripted side played inside.
  Returns -1, or the index of the first game whose action is illegal (and then nothing moved). A
  game that ends writes its final observation to terminal_obs, its reward and terminated/truncated,
  starts its next episode from its own stream and writes that episode's first obs and mask;
- `legal_actions(index) -> list[int]`: ascending legal action ids of one game (for error messages);
- `episode_return` float[N], `episode_length` int[N]: the stats of each game's last finished episode;
- `end_info(index) -> dict`: the game-specific end info of that episode (merged into the info dict).
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

UINT64_RANGE = 2**64


class BatchedCore(Protocol):
    """What `BatchedVecEnv` needs from a core; see the module docstring for the semantics."""

    @property
    def episode_return(self) -> np.ndarray: ...

    @property
    def episode_length(self) -> np.ndarray: ...

    def reset(self, seeds: np.ndarray | None) -> None: ...

    def step(self, actions: np.ndarray) -> int: ...

    def legal_actions(self, index: int) -> list[int]: ...

    def end_info(self, index: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CoreBuffers:
    """The arrays a core writes into (row i = game i), allocated once per VecEnv (or backend)."""

    obs: np.ndarray  # float32[N, D]
    rewards: np.ndarray  # float32[N]
    terminated: np.ndarray  # bool[N]
    truncated: np.ndarray  # bool[N]
    masks: np.ndarray  # bool[N, A]
    terminal_obs: np.ndarray  # float32[N, D], rows written only for games that just ended

    @property
    def num_envs(self) -> int:
        return int(self.obs.shape[0])

    @classmethod
    def allocate(cls, num_envs: int, obs_size: int, num_actions: int) -> CoreBuffers:
        return cls(
            obs=np.zeros((num_envs, obs_size), np.float32),
            rewards=np.zeros(num_envs, np.float32),
            terminated=np.zeros(num_envs, np.bool_),
            truncated=np.zeros(num_envs, np.bool_),
            masks=np.zeros((num_envs, num_actions), np.bool_),
            terminal_obs=np.zeros((num_envs, obs_size), np.float32),
        )


def seeds_as_uint64(seeds: Sequence[int | None]) -> np.ndarray | None:
    """uint64[N] from per-game seeds (taken modulo 2**64), or None when no game is to be reseeded."""
    if all(seed is None for seed in seeds):
        return None
    if any(seed is None for seed in seeds):
        raise ValueError("seed either every game or none: a batched core reseeds all games at once")
    return np.array([int(seed) % UINT64_RANGE for seed in seeds], dtype=np.uint64)  # type: ignore[arg-type]


class OneGame:
    """One game of a batched core built without auto-reset: what a game's gym env backend shares.

    A finished game keeps its final observation and reward until the next `reset`. Subclasses build the
    core in `_make_core(buffers)` and add the game's own views (observation copies, end info). Not a
    hot path: the batched VecEnv is."""

    def __init__(self, obs_size: int, num_actions: int) -> None:
        self.buffers = CoreBuffers.allocate(1, obs_size, num_actions)
        self.core = self._make_core(self.buffers)
        self._action = np.zeros(1, dtype=np.int64)

    @abstractmethod
    def _make_core(self, buffers: CoreBuffers) -> BatchedCore:
        """The game's core over `buffers` (one game, auto-reset off)."""

    def reset(self, seed: int | None) -> None:
        """A new game; `seed` reseeds its generator, None continues its stream."""
        self.core.reset(seeds_as_uint64([seed]))

    def step(self, action: int) -> None:
        """One agent decision; ValueError naming the legal actions if `action` is not one."""
        self._action[0] = action
        if self.core.step(self._action) >= 0:
            raise ValueError(f"illegal action {action}; legal actions: {self.core.legal_actions(0)}")

    @property
    def reward(self) -> float:
        return float(self.buffers.rewards[0])

    @property
    def terminated(self) -> bool:
        return bool(self.buffers.terminated[0])

    @property
    def truncated(self) -> bool:
        return bool(self.buffers.truncated[0])


class BatchedVecEnv(VecEnv):
    """SB3 `VecEnv` over a `BatchedCore`; subclasses implement `_make_core`.

    Game i is seeded with `seed + i` at construction and at the first `reset()`; later resets and
    auto-resets continue each game's own stream unless `seed(...)` is called again. Attributes
    (`get_attr`/`set_attr`) are the VecEnv's own and shared by every game. `env_method` supports
    "action_masks" only (a list of bool[A] rows, as sb3-contrib's `get_action_masks` expects).
    """

    render_mode: str | None = None

    def __init__(self, num_envs: int, observation_space: spaces.Box, num_actions: int, seed: int | None) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.buffers = CoreBuffers.allocate(num_envs, observation_space.shape[0], num_actions)
        self._core = self._make_core(self.buffers)
        super().__init__(num_envs, observation_space, spaces.Discrete(num_actions))
        self._infos: list[dict[str, Any]] = [{} for _ in range(num_envs)]
        self._ended_last_step = np.empty(0, dtype=np.intp)
        self._actions = np.zeros(num_envs, dtype=np.int64)
        self._t_start = time.time()
        self.seed(seed)
        self._core.reset(seeds_as_uint64(self._seeds))

    @abstractmethod
    def _make_core(self, buffers: CoreBuffers) -> BatchedCore:
        """The game's core, writing into `buffers`."""

    def reset(self) -> np.ndarray:
        """New episodes everywhere (reseeded if `seed()` was called since); float32[N, D] observations."""
        self._core.reset(seeds_as_uint64(self._seeds))
        self._reset_seeds()
        self._reset_options()
        self._clear_end_infos()
        return self.buffers.obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.ascontiguousarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        """(obs float32[N, D], rewards float32[N], dones bool[N], infos); raises ValueError naming the
        first game whose action is illegal (then no game has moved).

        `infos` is the same list object every step, updated in place (copy it to keep one step's)."""
        bad_game = self._core.step(self._actions)
        if bad_game >= 0:
            raise ValueError(
                f"game {bad_game}: action {int(self._actions[bad_game])} is illegal; "
                f"legal: {self._core.legal_actions(bad_game)}"
            )
        self._clear_end_infos()
        buffers = self.buffers
        dones = buffers.terminated | buffers.truncated
        ended = np.flatnonzero(dones)
        if ended.size:
            elapsed_s = round(time.time() - self._t_start, 6)
            returns, lengths = self._core.episode_return, self._core.episode_length
            for i in ended.tolist():
                info = self._infos[i]
                info["terminal_observation"] = buffers.terminal_obs[i].copy()
                info["episode"] = {"r": round(float(returns[i]), 6), "l": int(lengths[i]), "t": elapsed_s}
                info["TimeLimit.truncated"] = bool(buffers.truncated[i] and not buffers.terminated[i])
                info.update(self._core.end_info(i))
        self._ended_last_step = ended
        return buffers.obs.copy(), buffers.rewards.copy(), dones, self._infos

    def _clear_end_infos(self) -> None:
        for i in self._ended_last_step.tolist():
            self._infos[i].clear()
        self._ended_last_step = self._ended_last_step[:0]

    def action_masks(self) -> np.ndarray:
        """bool[N, A]: the legal actions of every game at its current decision (a copy)."""
        return self.buffers.masks.copy()

    def close(self) -> None:
        """Nothing to release: the core's memory goes with this object."""

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if len(list(self._get_indices(indices))) != self.num_envs:
            raise ValueError(f"{attr_name!r} is shared by every game of a batched core; set it for all")
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        if method_name != "action_masks":
            raise AttributeError(f"env_method supports 'action_masks' only, not {method_name!r}")
        return list(self.buffers.masks[list(self._get_indices(indices))])

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
