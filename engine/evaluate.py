"""Win-rate evaluation of a policy against a scripted opponent over a fixed, seeded set of games.

`play_games(choose, games=G, seed=S, ...)` plays G games on the game's batched VecEnv, game i dealt
from seed S + i, so two policies evaluated with the same (G, S, opponent) face the same deals. Each
game counts once: its first episode's final reward gives the outcome (+1 win, 0 draw, -1 loss);
games that have ended keep stepping (their next episodes are ignored) until every game has ended.
`choose(obs float32[G, D], masks bool[G, A]) -> int64[G]` picks the agent's actions; it must choose
legal ones. `sb3_chooser(policy)` adapts a MaskablePPO policy (deterministic, masks applied). No
training, no run files here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import envs

Chooser = Callable[[np.ndarray, np.ndarray], np.ndarray]
# (venv, rewards float32[G], dones bool[G]) -> outcomes int[G] (+1/0/-1), read for the games where dones.
OutcomeReader = Callable[[Any, np.ndarray, np.ndarray], np.ndarray]


def reward_sign(_venv: Any, rewards: np.ndarray, _dones: np.ndarray) -> np.ndarray:
    """The outcome as the sign of the final reward (games whose only reward is the result)."""
    return np.sign(rewards)


@dataclass(frozen=True)
class Outcomes:
    """Counts of won, drawn and lost games."""

    wins: int
    draws: int
    losses: int

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    @property
    def win_rate(self) -> float:
        return self.wins / self.games if self.games else 0.0

    def win_rate_interval(self, z: float = 1.96) -> tuple[float, float]:
        """Wilson score interval of the win rate (95 % for z = 1.96)."""
        n, p = self.games, self.win_rate
        if not n:
            return 0.0, 1.0
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)


def play_games(choose: Chooser, games: int = 1000, seed: int = 10_000, env: str = "beastybar",
               opponent: str | None = "random", max_steps: int = 10_000, outcomes: OutcomeReader = reward_sign,
               **env_kwargs: Any) -> Outcomes:
    """Outcomes of `games` games (see the module docstring); `max_steps` bounds the vec-env steps;
    `opponent=None` for a game with a single scripted opponent (no such argument)."""
    if opponent is not None:
        env_kwargs["opponent"] = opponent
    venv = envs.make_vec(env, games, seed=seed, **env_kwargs)
    obs = venv.reset()
    outcome = np.zeros(games, dtype=np.int8)
    ended = np.zeros(games, dtype=bool)
    for _ in range(max_steps):
        actions = np.asarray(choose(obs, venv.action_masks()), dtype=np.int64)
        obs, rewards, dones, _infos = venv.step(actions)
        first_end = dones & ~ended
        outcome[first_end] = outcomes(venv, rewards, dones)[first_end]
        ended |= dones
        if ended.all():
            break
    else:
        raise RuntimeError(f"{games - int(ended.sum())} of {games} games did not end in {max_steps} steps")
    venv.close()
    return Outcomes(wins=int(np.count_nonzero(outcome == 1)), draws=int(np.count_nonzero(outcome == 0)),
                    losses=int(np.count_nonzero(outcome == -1)))


def sb3_chooser(policy: Any, deterministic: bool = True) -> Chooser:
    """A chooser from an sb3-contrib maskable policy (or a MaskablePPO model): `predict` with masks."""

    def choose(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        actions, _state = policy.predict(obs, action_masks=masks, deterministic=deterministic)
        return np.asarray(actions, dtype=np.int64)

    return choose


def random_chooser(seed: int = 0) -> Chooser:
    """Uniform over each game's legal actions (a baseline to compare a policy against)."""
    rng = np.random.default_rng(seed)

    def choose(_obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        # Per game: argmax of random keys over the legal actions = a uniform legal action.
        keys = rng.random(masks.shape)
        keys[~masks] = -1.0
        return np.asarray(keys.argmax(axis=1), dtype=np.int64)

    return choose
