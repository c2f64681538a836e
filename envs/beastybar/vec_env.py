"""`BeastyBarVecEnv`: the SB3 `VecEnv` of N Beasty Bar games stepped in one call of the Cython core.

A thin subclass of `envs.batched_vec_env.BatchedVecEnv`: it turns its arguments into the core's options
and, for self-play, lets the caller play player B. Game i is seeded with `seed + i` and auto-resets by
continuing its own generator stream, so it plays exactly like `make("beastybar", core="reference",
seed=seed + i)` given the same actions (with a `reset()` after each end). Episode ends carry, besides
SB3's `terminal_observation` and `episode`, the game's end info: `winner` (0, 1, -1 = draw), `points`
(p0, p1), `bar_count` (c0, c1). `enemy_turn_ns` (from the base) is the time the scripted opponents'
turns took inside the core.

External opponents: with an `opponent_policy`, `set_next_opponents([...])` gives each game's next deal a
scripted opponent by name or `EXTERNAL`; the turns of the external ones are played inside `step` and
`reset` by one call of the policy per round of waiting games (at most two a step: a reply, then the
opening of a game dealt after an end), so the caller runs one forward pass per neural opponent over all
the games that face it, never one per game.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from envs.batched_vec_env import BatchedVecEnv
from envs.beastybar import rules
from envs.beastybar.core import CORE
from envs.beastybar.env import core_options
from envs.spaces import check_choice

EXTERNAL = "external"
"""The name of an opponent whose actions come from the caller's `opponent_policy`."""
EXTERNAL_ID = -1
"""The core's id of an external opponent (the scripted ones are indexes of `rules.OPPONENTS`)."""

OpponentPolicy = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(obs float32[K, 160] from player B's side, legal masks bool[K, 33], game indexes int[K]) -> actions
int[K]: player B's move in K waiting games."""


class ExternalTurns:
    """A Beasty Bar core whose external opponents' turns `policy` plays inside `step` and `reset`: a
    `BatchedCore` again, so `BatchedVecEnv` steps it unchanged. `inner` is the core itself."""

    def __init__(self, inner: Any, policy: OpponentPolicy) -> None:
        self.inner = inner
        self._policy = policy
        self._actions = np.zeros(inner.num_games, dtype=np.int64)

    @property
    def episode_return(self) -> np.ndarray:
        return self.inner.episode_return

    @property
    def episode_length(self) -> np.ndarray:
        return self.inner.episode_length

    @property
    def enemy_turn_ns(self) -> int:
        return int(self.inner.enemy_turn_ns)

    def legal_actions(self, index: int) -> list[int]:
        return self.inner.legal_actions(index)

    def end_info(self, index: int) -> dict[str, Any]:
        return self.inner.end_info(index)

    def reset(self, seeds: np.ndarray | None) -> None:
        self.inner.reset(seeds)
        self._play_external_turns()

    def step(self, actions: np.ndarray) -> int:
        bad = int(self.inner.step(actions))
        if bad < 0:
            self._play_external_turns()
        return bad

    def _play_external_turns(self) -> None:
        """Until no game waits: one policy call over every waiting game, then the core plays them on.
        ValueError naming the game, the action and the legal ones if the policy plays an illegal one."""
        core = self.inner
        while core.waiting.any():
            games = np.flatnonzero(core.waiting)
            self._actions[games] = self._policy(core.opponent_obs[games], core.opponent_masks[games], games)
            bad = core.opponent_step(self._actions)
            if bad >= 0:
                legal = np.flatnonzero(core.opponent_masks[bad]).tolist()
                raise ValueError(f"game {bad}: the external opponent's action {self._actions[bad]} is illegal; "
                                 f"legal: {legal}")


class BeastyBarVecEnv(BatchedVecEnv):
    """N games against a scripted opponent (one of `rules.OPPONENTS`), scored by "points" | "count", the
    starter of each game by `first` ("random" | "agent" | "opponent"), the reward's parts weighed by
    `reward_weights` (as `envs.beastybar.env.BeastyBarEnv`); with `opponent_policy`, games may face
    external opponents instead (`set_next_opponents`)."""

    def __init__(self, num_envs: int, opponent: str = "random", seed: int | None = 0,
                 scoring: str = "points", first: str = "random", opponent_policy: OpponentPolicy | None = None,
                 reward_weights: Mapping[str, object] | None = None) -> None:
        self.scoring = scoring
        self.first = first
        options = core_options(scoring, first, reward_weights)
        self.reward_weights = options["reward_weights"]
        super().__init__(CORE, num_envs, opponent, options, seed)
        self._external = opponent_policy is not None
        self._raw_core: Any = self.core  # the Cython core, also behind the ExternalTurns wrapper
        if opponent_policy is not None:
            self.core = ExternalTurns(self.core, opponent_policy)

    def set_next_opponents(self, opponents: Sequence[str]) -> None:
        """Each game's opponent from its next deal (the next `reset()`, or its auto-reset): a name of
        `rules.OPPONENTS`, or `EXTERNAL` (needs the `opponent_policy`). ValueError naming a bad one."""
        if len(opponents) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} opponents, got {len(opponents)}")
        known = (*rules.OPPONENTS, EXTERNAL) if self._external else rules.OPPONENTS
        for name in opponents:
            check_choice("opponent", name, known)
        self._raw_core.set_next_opponents(
            np.array([EXTERNAL_ID if name == EXTERNAL else rules.OPPONENTS.index(name) for name in opponents]))
