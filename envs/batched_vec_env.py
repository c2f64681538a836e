"""An SB3 `VecEnv` over any batched game core that steps N games in one call, and the one-game view of
such a core that a gym env runs on; game-agnostic. The whole shape of a game is docs/adding-a-game.md.

A game describes its core once, as a `CoreSpec` (the Cython class, the rules tables from its rules
module, its opponents, observation space and action count); `BatchedVecEnv` and `OneGame` build every
core from it the same way, so the constructor below is called in one place. This module owns the numpy
buffers the core writes into, the persistent info list (end-of-episode keys set for the games that
ended this step, cleared the step after), seeding, and the SB3 plumbing. It must not loop over games on
the step path except over the games that just ended, and it must not know any game's rules.

The core protocol, for N games, observation size D and A discrete actions:

- `Core(num_games, tables, opponent, options, auto_reset, buffers)`: `tables` the game's rules tables
  (its rules module's `core_tables()`), `opponent` one of the game's scripted opponents, `options` a
  dict of exactly the game's option keys, `buffers` a `CoreBuffers` of N rows: obs float32[N, D],
  rewards float32[N], terminated bool[N], truncated bool[N], masks bool[N, A], terminal_obs
  float32[N, D]. It writes every result into those arrays, in place, and starts game i seeded i.
  ValueError naming the bad argument and the expected values. The cores call the game count
  `num_games`; the VecEnv keeps SB3's name `num_envs` for the same number, as SB3's API requires;
- `reset(seeds)`: deals a new episode in every game; `seeds` uint64[N] reseeds each game's
  generator first, None continues each game's own stream. Writes obs and masks, zeroes rewards,
  terminated and truncated;
- `step(actions)`: actions int64[N], one agent decision per game, the scripted side played inside.
  Returns -1, or the index of the first game whose action is illegal (and then nothing moved). A
  game that ends writes its final observation to terminal_obs, its reward and terminated/truncated;
  with `auto_reset` it starts its next episode from its own stream and writes that episode's first
  obs and mask, without it it keeps its final obs until `reset`;
- `legal_actions(index) -> list[int]`: ascending legal action ids of one game (for error messages);
- `episode_return` float[N], `episode_length` int[N]: the stats of each game's last finished episode;
- `end_info(index) -> dict`: the game-specific end info of that episode (merged into the info dict);
- `enemy_turn_ns -> int`: nanoseconds spent in the scripted opponent's turns since construction
  (C monotonic clock), which trainers book as the `enemy_turn` phase apart from `env_step`.

A continuous-control game (`CoreSpec.continuous`, K = `num_actions` action components) differs in the
actions only: `step(actions)` takes float32[N, K], clips every value to [-1, 1] and returns the index of
the first game whose action has a NaN (nothing moved then); `masks` is bool[N, 0] and there is no
`legal_actions`. Its VecEnv's action space is `envs.spaces.ControlBox(K)`, a Box.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from envs.spaces import CONTROL_RULE, ControlBox, check_choice

UINT64_RANGE = 2**64


class BatchedCore(Protocol):
    """What `BatchedVecEnv` and `OneGame` need from a core; see the module docstring for the semantics."""

    @property
    def episode_return(self) -> np.ndarray: ...

    @property
    def episode_length(self) -> np.ndarray: ...

    @property
    def enemy_turn_ns(self) -> int: ...

    def reset(self, seeds: np.ndarray | None) -> None: ...

    def step(self, actions: np.ndarray) -> int: ...

    def legal_actions(self, index: int) -> list[int]: ...

    def end_info(self, index: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CoreBuffers:
    """The arrays a core writes into (row i = game i), allocated once per VecEnv (or one-game backend)."""

    obs: np.ndarray  # float32[N, D]
    rewards: np.ndarray  # float32[N]
    terminated: np.ndarray  # bool[N]
    truncated: np.ndarray  # bool[N]
    masks: np.ndarray  # bool[N, A]
    terminal_obs: np.ndarray  # float32[N, D], rows written only for games that just ended

    @property
    def num_games(self) -> int:
        return int(self.obs.shape[0])

    @classmethod
    def allocate(cls, num_games: int, obs_size: int, num_actions: int) -> CoreBuffers:
        return cls(
            obs=np.zeros((num_games, obs_size), np.float32),
            rewards=np.zeros(num_games, np.float32),
            terminated=np.zeros(num_games, np.bool_),
            truncated=np.zeros(num_games, np.bool_),
            masks=np.zeros((num_games, num_actions), np.bool_),
            terminal_obs=np.zeros((num_games, obs_size), np.float32),
        )


class CoreType(Protocol):
    """A game's core class, called as the protocol's constructor."""

    def __call__(self, num_games: int, tables: dict[str, Any], opponent: str, options: dict[str, Any],
                 auto_reset: bool, buffers: CoreBuffers) -> BatchedCore: ...


@dataclass(frozen=True)
class CoreSpec:
    """One game's core as the envs build it: the class, the rules tables it takes (the game's
    `rules.core_tables()`), the scripted opponents it offers, the observation space (a function: each env
    gets its own space object, with its own sampler) and the action count; for a `continuous` game
    `num_actions` is the size K of its action vector and the cores have no masks."""

    core_type: CoreType
    tables: Mapping[str, Any]
    opponents: tuple[str, ...]
    observation_space: Callable[[], spaces.Box]
    num_actions: int
    continuous: bool = False

    def action_space(self) -> spaces.Discrete | ControlBox:
        return ControlBox(self.num_actions) if self.continuous else spaces.Discrete(self.num_actions)

    def action_buffer(self, num_games: int) -> np.ndarray:
        """The actions a core's `step` takes: float32[N, K] for a continuous game, else int64[N]."""
        if self.continuous:
            return np.zeros((num_games, self.num_actions), dtype=np.float32)
        return np.zeros(num_games, dtype=np.int64)

    def refusal(self, core: BatchedCore, index: int) -> str:
        """What game `index` of `core` would have accepted, for the message of a refused action."""
        return f"expected numbers, {CONTROL_RULE}" if self.continuous else f"legal: {core.legal_actions(index)}"

    def allocate(self, num_games: int) -> CoreBuffers:
        """Fresh buffers for `num_games` games of this core (masks of 0 columns for a continuous game)."""
        return CoreBuffers.allocate(num_games, self.observation_space().shape[0],
                                    0 if self.continuous else self.num_actions)

    def build(self, num_games: int, opponent: str, options: Mapping[str, Any],
              auto_reset: bool) -> tuple[BatchedCore, CoreBuffers]:
        """A core of `num_games` games over fresh buffers; ValueError for an unknown opponent or bad options."""
        check_choice("opponent", opponent, self.opponents)
        buffers = self.allocate(num_games)
        core = self.core_type(num_games, dict(self.tables), opponent, dict(options), auto_reset, buffers)
        return core, buffers


def seeds_as_uint64(seeds: Sequence[int | None]) -> np.ndarray | None:
    """uint64[N] from per-game seeds (taken modulo 2**64), or None when no game is to be reseeded."""
    if all(seed is None for seed in seeds):
        return None
    if any(seed is None for seed in seeds):
        raise ValueError("seed either every game or none: a batched core reseeds all games at once")
    return np.array([int(seed) % UINT64_RANGE for seed in seeds], dtype=np.uint64)  # type: ignore[arg-type]


class OneGame:
    """One game of a batched core built without auto-reset: the `core="cython"` backend of a game's gym
    env (the `Backend` protocol of envs.game_env).

    A finished game keeps its final observation and reward until the next `reset`. `obs` and `mask` are
    views of the core's buffers, valid until the next call (copy them to keep). `info()` is the core's
    end info once the game is over and {} before; a game whose core reports more overrides it. Not a hot
    path: the batched VecEnv is."""

    def __init__(self, spec: CoreSpec, opponent: str, options: Mapping[str, Any]) -> None:
        self.spec = spec
        self.core, self.buffers = spec.build(1, opponent, options, auto_reset=False)
        self._action = spec.action_buffer(1)

    def reset(self, seed: int | None) -> None:
        """A new game; `seed` reseeds its generator, None continues its stream."""
        self.core.reset(seeds_as_uint64([seed]))

    def step(self, action: int | np.ndarray) -> None:
        """One agent decision (an int, or float32[K] for a continuous game); ValueError naming what is
        legal if `action` is refused."""
        self._action[0] = action
        if self.core.step(self._action) >= 0:
            raise ValueError(f"illegal action {action}; {self.spec.refusal(self.core, 0)}")

    @property
    def obs(self) -> np.ndarray:
        return self.buffers.obs[0]

    @property
    def mask(self) -> np.ndarray:
        return self.buffers.masks[0]

    @property
    def reward(self) -> float:
        return float(self.buffers.rewards[0])

    @property
    def terminated(self) -> bool:
        return bool(self.buffers.terminated[0])

    @property
    def truncated(self) -> bool:
        return bool(self.buffers.truncated[0])

    def info(self) -> dict[str, Any]:
        return self.core.end_info(0) if self.terminated or self.truncated else {}


class BatchedVecEnv(VecEnv):
    """SB3 `VecEnv` over the core of `spec`; a game's subclass only maps its keyword arguments to the
    core's options and adds its own views of the core.

    `opponent` is the scripted opponent's name (ValueError naming the game's ones otherwise). Game i is
    seeded with `seed + i` at construction and at the first `reset()`; later resets and auto-resets
    continue each game's own stream unless `seed(...)` is called again. Attributes (`get_attr`/`set_attr`)
    are the VecEnv's own and shared by every game. `env_method` supports "action_masks" only (a list of
    bool[A] rows, as sb3-contrib's `get_action_masks` expects). `core` is the game's core, for its own
    arrays; `enemy_turn_ns` its opponent-time counter.
    """

    render_mode: str | None = None

    def __init__(self, spec: CoreSpec, num_envs: int, opponent: str, options: Mapping[str, Any],
                 seed: int | None) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.opponent = opponent
        self.spec = spec
        self.core, self.buffers = spec.build(num_envs, opponent, options, auto_reset=True)
        super().__init__(num_envs, spec.observation_space(), spec.action_space())
        self._infos: list[dict[str, Any]] = [{} for _ in range(num_envs)]
        self._ended_last_step = np.empty(0, dtype=np.intp)
        self._actions = spec.action_buffer(num_envs)
        self._t_start = time.time()
        self.seed(seed)
        self.core.reset(seeds_as_uint64(self._seeds))

    def reset(self) -> np.ndarray:
        """New episodes everywhere (reseeded if `seed()` was called since); float32[N, D] observations."""
        self.core.reset(seeds_as_uint64(self._seeds))
        self._reset_seeds()
        self._reset_options()
        self._clear_end_infos()
        return self.buffers.obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.ascontiguousarray(actions, dtype=self._actions.dtype).reshape(self._actions.shape)

    def step_wait(self) -> VecEnvStepReturn:
        """(obs float32[N, D], rewards float32[N], dones bool[N], infos); raises ValueError naming the
        first game whose action is illegal (then no game has moved; a continuous game refuses a NaN).

        `infos` is the same list object every step, updated in place (copy it to keep one step's)."""
        bad_game = self.core.step(self._actions)
        if bad_game >= 0:
            raise ValueError(
                f"game {bad_game}: action {self._actions[bad_game].tolist()} is illegal; "
                f"{self.spec.refusal(self.core, bad_game)}"
            )
        self._clear_end_infos()
        buffers = self.buffers
        dones = buffers.terminated | buffers.truncated
        ended = np.flatnonzero(dones)
        if ended.size:
            elapsed_s = round(time.time() - self._t_start, 6)
            returns, lengths = self.core.episode_return, self.core.episode_length
            for i in ended.tolist():
                info = self._infos[i]
                info["terminal_observation"] = buffers.terminal_obs[i].copy()
                info["episode"] = {"r": round(float(returns[i]), 6), "l": int(lengths[i]), "t": elapsed_s}
                info["TimeLimit.truncated"] = bool(buffers.truncated[i] and not buffers.terminated[i])
                info.update(self.core.end_info(i))
        self._ended_last_step = ended
        return buffers.obs.copy(), buffers.rewards.copy(), dones, self._infos

    @property
    def enemy_turn_ns(self) -> int:
        """Nanoseconds the core has spent in the scripted opponent's turns since construction (C monotonic
        clock); a trainer books the difference across `step_wait` as `enemy_turn`, the rest as `env_step`."""
        return int(self.core.enemy_turn_ns)

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
