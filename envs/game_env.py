"""The gymnasium env every game shares: one game from the agent's side against a scripted opponent, run
over a `Backend` (the game's pure-Python rules, or one game of its Cython core). Game-agnostic.

`GameEnv` owns what is the same in every game: the argument checks (core, opponent, seed, render mode),
seeding (the first `reset()` uses the constructor's seed or fresh OS entropy, later unseeded resets
continue the game's generator stream), the action checks (an illegal action, or any action once the
episode is over, raises ValueError naming what is legal), and the action space: `LegalDiscrete` (legal
sampling) for a discrete game, `ControlBox` (float32[K] in [-1, 1], no mask) for a continuous one
(`continuous=True`). A game's env is a subclass that checks its own options and builds its backends; no
rule lives here.

Backend protocol (both backends of a game give the same trajectories for the same seed and actions):
`reset(seed: int | None)` (None continues the generator stream; the first reset always has a seed),
`step(action)` (an action the env has already checked legal: an int, or float32[K] without NaN for a
continuous game), then read `obs` float32[D], `mask` bool[A] (the legal actions of the agent's pending
decision; bool[0] for a continuous game), `reward` float, `terminated` bool,
`truncated` bool and `info()` (the game's info dict of the last reset or step). `envs.batched_vec_env.
OneGame` is the Cython one; each game writes its reference one in its env module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.spaces import ControlBox, LegalDiscrete, check_choice

CORES = ("cython", "reference")
_MASK64 = (1 << 64) - 1


class Backend(Protocol):
    """One game seen from the agent's side; see the module docstring."""

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

    def reset(self, seed: int | None) -> None: ...
    def step(self, action: Any) -> None: ...  # an int, or float32[K] for a continuous game
    def info(self) -> dict[str, Any]: ...


# (opponent, options) -> a backend: a game's ReferenceBackend or CoreBackend class.
BackendFactory = Callable[[str, Mapping[str, Any]], Backend]


class GameEnv(gym.Env[np.ndarray, Any]):
    """One game for one agent against a scripted opponent; a game subclasses it (see the module docstring).

    core: "cython" | "reference"; opponent: one of the subclass's `opponents`; options: the game's options,
    already checked by the subclass, handed to the backend; seed: the first reset's seed (None: fresh OS
    entropy); render_mode: one of the subclass's `metadata["render_modes"]` or None. ValueError naming the
    expected values for any bad argument. `action_masks()` gives the legal actions (sb3-contrib's
    MaskablePPO reads it). `continuous`: the action is float32[num_actions] in [-1, 1] (see ControlBox).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's own class attribute)
    opponents: tuple[str, ...] = ()
    reference_backend: BackendFactory  # the game's backend over its rules reference
    core_module = ""  # the module holding the game's Cython `CoreBackend` (envs.<game>.core)

    def __init__(self, core: str, opponent: str, options: Mapping[str, Any], seed: int | None,
                 render_mode: str | None, observation_space: spaces.Box, num_actions: int,
                 continuous: bool = False) -> None:
        check_choice("core", core, CORES)
        check_choice("opponent", opponent, self.opponents)
        if render_mode is not None:
            check_choice("render_mode", render_mode, tuple(self.metadata["render_modes"]))
        if seed is not None and not 0 <= seed <= _MASK64:
            raise ValueError(f"seed {seed} is out of range; expected 0 <= seed < 2**64")
        self.core = core
        self.opponent = opponent
        self.render_mode = render_mode
        self.observation_space = observation_space
        self.action_space: LegalDiscrete | ControlBox = ControlBox(num_actions) if continuous else LegalDiscrete(
            num_actions)
        if seed is None:
            entropy = np.random.SeedSequence().entropy
            assert isinstance(entropy, int)
            seed = entropy & _MASK64
        self._first_seed = int(seed)
        self._started = False
        self._backend = self._make_backend(core, opponent, options)

    def _make_backend(self, core: str, opponent: str, options: Mapping[str, Any]) -> Backend:
        """The game's backend for `core`: its `reference_backend`, or the `CoreBackend` of `core_module`,
        imported only here so that "reference" needs no build."""
        if core == "reference":
            return self.reference_backend(opponent, options)
        core_backend: BackendFactory = importlib.import_module(self.core_module).CoreBackend
        return core_backend(opponent, options)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """A new game: reseeded by `seed`, else continuing the generator stream (the constructor's seed
        the first time). `options` is gymnasium's and unused."""
        super().reset(seed=seed)
        if seed is None and not self._started:
            seed = self._first_seed
        self._backend.reset(seed)
        self._started = True
        self._follow_mask()
        return self._backend.obs.copy(), self._backend.info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("step() before reset()")
        backend = self._backend
        if backend.terminated or backend.truncated:
            raise ValueError(f"action {action!r} is illegal now; the episode is over; call reset()")
        backend.step(self.action_space.checked(action))
        self._follow_mask()
        obs = backend.obs.copy()
        return obs, float(backend.reward), bool(backend.terminated), bool(backend.truncated), backend.info()

    def _follow_mask(self) -> None:
        """Keeps a discrete action space's legal actions equal to the backend's mask."""
        if isinstance(self.action_space, LegalDiscrete):
            self.action_space.legal[:] = self._backend.mask

    def action_masks(self) -> np.ndarray:
        """bool[A]: the legal actions of the pending decision (a copy)."""
        return np.array(self._backend.mask, dtype=np.bool_)
