"""The Beasty Bar gymnasium env: one game from player A's side against a scripted opponent.

`BeastyBarEnv(core=...)` is an `envs.game_env.GameEnv` over a backend: `"reference"` is `ReferenceBackend`
below (the rules of `envs.beastybar.rules`, pure Python, slow and obviously right), `"cython"` is
`envs.beastybar.core.CoreBackend` (a one-game view of the batched Cython core, imported only when asked
for). Both give the same trajectories for the same seed and actions. This module adapts; it holds no
rules of its own. For training throughput use the batched `envs.beastybar.vec_env`, not N copies of
this class.

Info: {} before the end; at the end `winner` 0|1|-1 for a draw, `points` (p0, p1), `bar_count` (c0, c1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from envs.beastybar import rules
from envs.game_env import GameEnv
from envs.reward_weights import checked as reward_weights_checked
from envs.rng import Rng
from envs.spaces import check_choice


def core_options(scoring: str, first: str = "random",
                 reward_weights: Mapping[str, object] | None = None) -> dict[str, Any]:
    """The options both backends and the core take (`reward_weights`: some of `rules.REWARD_PARTS`' weights,
    the others at `rules.DEFAULT_WEIGHTS`); ValueError naming the expected values otherwise."""
    check_choice("scoring", scoring, rules.SCORINGS)
    check_choice("first", first, rules.FIRSTS)
    weights = reward_weights_checked({**rules.DEFAULT_WEIGHTS, **(reward_weights or {})}, rules.REWARD_PARTS)
    return {"scoring": scoring, "first": first, "reward_weights": weights}


class ReferenceBackend:
    """The backend over `envs.beastybar.rules`: player 0 is the agent, player 1 plays `opponent`, a
    scripted player's name or a player function `(state, rng) -> action` (`rules.observed_policy` makes
    one of an external opponent's policy: the reference of the VecEnv's external opponents)."""

    def __init__(self, opponent: str | rules.Player, options: Mapping[str, Any]) -> None:
        self._opponent = rules.OPPONENT_POLICIES[opponent] if isinstance(opponent, str) else opponent
        self._scoring = options["scoring"]
        self._first = options["first"]
        self._weights = tuple(options["reward_weights"].values())
        self._rng: Rng | None = None
        self._state: rules.GameState | None = None
        self.obs = np.zeros(rules.OBS_SIZE, dtype=np.float32)
        self.mask = np.zeros(rules.NUM_ACTIONS, dtype=np.bool_)
        self.reward = 0.0
        self.terminated = False
        self.truncated = False
        self._info: dict[str, Any] = {}

    def reset(self, seed: int | None) -> None:
        if seed is not None:
            self._rng = Rng(seed)
        if self._rng is None:
            raise RuntimeError("the first reset of a backend needs a seed")
        self._state = rules.deal(self._rng, first=self._first)
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
            points = rules.bar_points(state)
            # rounded to float32 as the core's reward buffer holds it, so the two backends agree exactly
            self.reward = float(np.float32(rules.end_reward(winner, points, self._weights)))
            self.mask[:] = False
            self._info = {
                "winner": winner,
                "points": tuple(points),
                "bar_count": tuple(rules.bar_counts(state)),
            }
        else:
            self.reward = 0.0
            self._info = {}

    def info(self) -> dict[str, Any]:
        return dict(self._info)


def observation_space() -> spaces.Box:
    """Box float32[160]: every entry in [0, 1] except the bar points (154, 155), up to MAX_BAR_POINTS_OBS."""
    high = np.ones(rules.OBS_SIZE, dtype=np.float32)
    high[154:156] = rules.MAX_BAR_POINTS_OBS
    return spaces.Box(low=np.zeros(rules.OBS_SIZE, dtype=np.float32), high=high, dtype=np.float32)


class BeastyBarEnv(GameEnv):
    """Beasty Bar for one agent (player A) against a scripted opponent (player B, one of `rules.OPPONENTS`).

    Observation: float32[160] (layout in `envs.beastybar.rules`). Action: Discrete(33), the rules'
    table; `action_masks()` gives the legal ones and an illegal action raises ValueError. An episode is
    exactly 12 agent steps; the reward is 0 before the last step and on it +1/0/-1 (win/draw/loss, by
    `scoring` "points" | "count"), plus, with `reward_weights={"margin": w}`, w x the bar points margin / 20
    (`rules.end_reward`). `first` "random" | "agent" | "opponent" says who starts each game (the
    rules page, "Who starts"). `render_mode="ansi"` renders a few lines of text. Other arguments and
    seeding: `envs.game_env.GameEnv`.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"]}  # noqa: RUF012 (gymnasium API)
    opponents = rules.OPPONENTS
    reference_backend = ReferenceBackend
    core_module = "envs.beastybar.core"

    def __init__(self, core: str = "cython", opponent: str = "random", seed: int | None = None,
                 scoring: str = "points", render_mode: str | None = None, first: str = "random",
                 reward_weights: Mapping[str, object] | None = None) -> None:
        self.scoring = scoring
        self.first = first
        options = core_options(scoring, first, reward_weights)
        self.reward_weights = options["reward_weights"]
        super().__init__(core, opponent, options, seed, render_mode, observation_space(),
                         rules.NUM_ACTIONS)

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        return rules.describe_observation(self._backend.obs)
