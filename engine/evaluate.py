"""Win-rate evaluation of a policy against a scripted opponent over a fixed, seeded set of games.

`play_games(choose, games=G, seed=S, ...)` plays G games on the game's batched VecEnv, game i dealt
from seed S + i, so two policies evaluated with the same (G, S, opponent) face the same deals. Each
game counts once: its first episode's final reward gives the outcome (+1 win, 0 draw, -1 loss);
games that have ended keep stepping (their next episodes are ignored) until every game has ended.
`choose(obs float32[G, D], masks bool[G, A]) -> int64[G]` picks the agent's actions; it must choose
legal ones. `sb3_chooser(policy)` adapts a MaskablePPO policy (deterministic, masks applied).
`wilson_interval` bounds a rate measured over a number of games; `Outcomes.beats` compares two policies'
win rates by those bounds. No training, no run files here.
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
        return wilson_interval(self.wins, self.games, z)

    def beats(self, other: Outcomes, z: float = 1.96) -> bool:
        """Whether this win rate's Wilson interval lies wholly above `other`'s (lower bound > other's
        upper bound): both rates are measured over a finite number of games, so neither is taken as exact."""
        return self.win_rate_interval(z)[0] > other.win_rate_interval(z)[1]


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (low, high), within [0, 1], of the rate of `successes` in `trials`; z = 1.96
    gives 95 %. Unlike the normal approximation p +- z sqrt(p (1 - p) / n), it never leaves [0, 1] and is
    not a single point at 0 or n successes (0 of 10: (0, 0.278)). No trials: (0, 1), nothing is known."""
    if not trials:
        return 0.0, 1.0
    p, n, z2 = successes / trials, trials, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # At 0 or n successes a bound is exactly 0 or 1; centre -+ half would miss it by a rounding error.
    low = max(0.0, centre - half) if successes else 0.0
    high = min(1.0, centre + half) if successes < trials else 1.0
    return low, high


def play_games(choose: Chooser, games: int = 1000, seed: int = 10_000, env: str = "beastybar",
               opponent: str = "random", max_steps: int = 10_000, outcomes: OutcomeReader = reward_sign,
               **env_kwargs: Any) -> Outcomes:
    """Outcomes of `games` games (see the module docstring) against `opponent`, one of the game's
    `envs.opponents(env)`; `max_steps` bounds the vec-env steps."""
    venv = envs.make_vec(env, games, seed=seed, opponent=opponent, **env_kwargs)
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
