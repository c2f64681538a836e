"""The Beasty Bar gymnasium env: one game from player A's side against a scripted opponent.

`BeastyBarEnv(core=...)` runs over a backend: `"reference"` is `ReferenceBackend` below (the rules of
`envs.beastybar.rules`, pure Python, slow and obviously right), `"cython"` is `CoreBackend` from
`envs.beastybar.core_backend` (a one-game view of the batched Cython core, imported only when asked
for). Both follow the same protocol and give the same trajectories for the same seed and actions. This
module validates and adapts; it holds no rules of its own. For training throughput use the batched
`envs.beastybar.vec_env`, not N copies of this class.

Backend protocol: `reset(seed: int | None)` (None continues the generator stream), `step(action: int)`
(already validated legal), and read-only `obs` float32[160], `mask` bool[33], `reward` float,
`terminated` bool, `info` dict ({} before the end; at the end `winner` 0|1|-1 for a draw, `points`
(p0, p1), `bar_count` (c0, c1)).
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.beastybar import rules
from envs.rng import Rng
from envs.spaces import LegalDiscrete, check_choice

CORES = ("cython", "reference")
RENDER_MODES = ("ansi",)
_MASK64 = (1 << 64) - 1


class Backend(Protocol):
    """One game seen from player 0; see the module docstring."""

    @property
    def obs(self) -> np.ndarray: ...
    @property
    def mask(self) -> np.ndarray: ...
    @property
    def reward(self) -> float: ...
    @property
    def terminated(self) -> bool: ...
    @property
    def info(self) -> dict[str, Any]: ...

    def reset(self, seed: int | None) -> None: ...

    def step(self, action: int) -> None: ...


class ReferenceBackend:
    """The backend over `envs.beastybar.rules`: player 0 is the agent, player 1 plays `opponent`."""

    def __init__(self, opponent: str, scoring: str) -> None:
        check_choice("opponent", opponent, rules.OPPONENTS)
        check_choice("scoring", scoring, rules.SCORINGS)
        self._opponent = rules.OPPONENT_POLICIES[opponent]
        self._scoring = scoring
        self._rng: Rng | None = None
        self._state: rules.GameState | None = None
        self.obs = np.zeros(rules.OBS_SIZE, dtype=np.float32)
        self.mask = np.zeros(rules.NUM_ACTIONS, dtype=np.bool_)
        self.reward = 0.0
        self.terminated = False
        self.info: dict[str, Any] = {}

    def reset(self, seed: int | None) -> None:
        if seed is not None:
            self._rng = Rng(seed)
        if self._rng is None:
            raise RuntimeError("the first reset of a backend needs a seed")
        self._state = rules.deal(self._rng)
        self._play_opponent()
        self._publish()

    def step(self, action: int) -> None:
        assert self._state is not None, "step() before reset()"
        rules.play_turn(self._state, action)
        self._play_opponent()
        self._publish()

    def _play_opponent(self) -> None:
        state, rng = self._state, self._rng
        assert state is not None and rng is not None
        while not state.over and state.current_player != 0:
            rules.play_turn(state, self._opponent(state, rng))

    def _publish(self) -> None:
        state = self._state
        assert state is not None
        self.obs = rules.encode_observation(state, viewer=0)
        self.mask = np.array(rules.legal_mask(state.queue, state.hands[0]), dtype=np.bool_)
        self.terminated = state.over
        if state.over:
            winner = rules.winner(state, self._scoring)
            self.reward = {0: 1.0, 1: -1.0, -1: 0.0}[winner]
            self.mask[:] = False
            self.info = {
                "winner": winner,
                "points": tuple(rules.bar_points(state)),
                "bar_count": tuple(rules.bar_counts(state)),
            }
        else:
            self.reward = 0.0
            self.info = {}


def observation_space() -> spaces.Box:
    """Box float32[160]: every entry in [0, 1] except the bar points (154, 155), up to MAX_BAR_POINTS_OBS."""
    high = np.ones(rules.OBS_SIZE, dtype=np.float32)
    high[154:156] = rules.MAX_BAR_POINTS_OBS
    return spaces.Box(low=np.zeros(rules.OBS_SIZE, dtype=np.float32), high=high, dtype=np.float32)


class BeastyBarEnv(gym.Env[np.ndarray, np.int64]):
    """Beasty Bar for one agent (player A) against a scripted opponent (player B).

    Observation: float32[160] (layout in `envs.beastybar.rules`). Action: Discrete(33), the rules'
    table; `action_masks()` gives the legal ones (sb3-contrib's MaskablePPO reads it) and an illegal
    action raises ValueError. An episode is exactly 12 agent steps; the reward is +1/0/-1 (win/draw/
    loss) on the last step, 0 before. `reset()` without a seed continues the game's random stream;
    the first one uses `seed` (or fresh OS entropy when `seed` is None).
    """

    metadata: dict[str, Any] = {"render_modes": list(RENDER_MODES)}  # noqa: RUF012 (gymnasium API)

    def __init__(
        self,
        core: str = "cython",
        opponent: str = "random",
        seed: int | None = None,
        scoring: str = "points",
        render_mode: str | None = None,
    ) -> None:
        check_choice("core", core, CORES)
        check_choice("opponent", opponent, rules.OPPONENTS)
        check_choice("scoring", scoring, rules.SCORINGS)
        if render_mode is not None:
            check_choice("render_mode", render_mode, RENDER_MODES)
        if seed is not None and not 0 <= seed <= _MASK64:
            raise ValueError(f"seed {seed} is out of range; expected 0 <= seed < 2**64")
        self.core = core
        self.opponent = opponent
        self.scoring = scoring
        self.render_mode = render_mode
        self.observation_space = observation_space()
        self.action_space: LegalDiscrete = LegalDiscrete(rules.NUM_ACTIONS)
        if seed is None:
            entropy = np.random.SeedSequence().entropy
            assert isinstance(entropy, int)
            seed = entropy & _MASK64
        self._first_seed = int(seed)
        self._seeded = False
        self._backend: Backend
        if core == "reference":
            self._backend = ReferenceBackend(opponent, scoring)
        else:
            from envs.beastybar.core_backend import CoreBackend

            self._backend = CoreBackend(opponent, scoring)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None and not self._seeded:
            seed = self._first_seed
        self._backend.reset(seed)
        self._seeded = True
        self.action_space.legal[:] = self._backend.mask
        return self._backend.obs.copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._seeded:
            raise RuntimeError("step() before reset()")
        mask = self._backend.mask
        chosen = int(action)
        if not (0 <= chosen < rules.NUM_ACTIONS and mask[chosen]):
            legal = np.flatnonzero(mask).tolist()
            state = "the episode is over; call reset()" if self._backend.terminated else f"legal: {legal}"
            raise ValueError(f"action {action!r} is illegal now; {state}")
        self._backend.step(chosen)
        self.action_space.legal[:] = self._backend.mask
        backend = self._backend
        return backend.obs.copy(), float(backend.reward), bool(backend.terminated), False, dict(backend.info)

    def action_masks(self) -> np.ndarray:
        """bool[33]: the legal actions now (all False once the episode is over)."""
        return np.array(self._backend.mask, dtype=np.bool_)

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        return rules.describe_observation(self._backend.obs)
