"""Proportional prioritized experience replay (Schaul et al. 2016) as an SB3 `ReplayBuffer` subclass.

`PrioritizedReplayBuffer` drops into SB3's DQN (`replay_buffer_class=PrioritizedReplayBuffer`) and
keeps the parent's layout, `env` normalisation and timeout handling. On top it keeps one priority per
stored transition in the C sum-tree of `ext.sumtree` and samples in proportion to it:

    P(i) = p_i / sum_j p_j,        p_i = (priority_i + epsilon) ** alpha,
    w_i  = (N * P(i)) ** -beta / max_j (N * P(j)) ** -beta  =  (p_min / p_i) ** beta   in (0, 1].

A new transition gets the largest p ever written (1.0 before any update). beta rises linearly from
`beta` to 1.0 over `beta_annealing_steps` stored transitions (the env steps of all envs together).

Indices: SB3 stores transitions as [buffer_size, n_envs, ...]; transition (pos, env) is tree index
`pos * n_envs + env`, so the arrays flattened to [capacity, ...] are indexed by tree index directly.
`sample()` returns these indices; hand them back to `update_priorities()` with the new priorities
(typically |TD error|, shape [batch]).

Thread safety: add, sample and update_priorities hold one lock, so a prefetch thread
(engine.prefetch) can sample while the main thread trains. This module trains nothing and must not
reach into a trainer.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

from engine.errors import UsageError
from ext.sumtree import SumTree, proportional_priorities


class PrioritizedReplayBufferSamples(NamedTuple):
    """One prioritized batch of B transitions. The first six fields are SB3's `ReplayBufferSamples`,
    in the same order, so SB3's DQN.train reads it unchanged.

    observations:      [B, *obs_shape] (observation dtype)
    actions:           [B, action_dim]
    next_observations: [B, *obs_shape]
    dones:             float32 [B, 1], 1.0 for a true termination (a time-limit truncation counts 0
                       when handle_timeout_termination is on, as in SB3)
    rewards:           float32 [B, 1]
    discounts:         always None (1-step returns; SB3's DQN then uses gamma)
    weights:           float32 [B, 1] importance-sampling weights in (0, 1]; multiply the per-sample loss
    indices:           int64 numpy [B] tree indices, for update_priorities()
    next_action_masks: bool [B, n_actions] legal actions in the next state, or None when the buffer was
                       built without n_actions. A terminal next state may have no legal action at all:
                       a masked max over such a row is -inf, so apply (1 - dones) with torch.where,
                       not by multiplying (0 * -inf is NaN).
    """

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None
    weights: th.Tensor
    indices: np.ndarray
    next_action_masks: th.Tensor | None


class PrioritizedReplayBuffer(ReplayBuffer):
    """SB3 replay buffer with proportional prioritized sampling.

    Args (besides SB3's ReplayBuffer ones):
        alpha: priority exponent, >= 0 (0 = uniform sampling).
        beta: initial importance-sampling exponent, in [0, 1].
        beta_annealing_steps: transitions stored (all envs together) over which beta rises linearly to
            1.0; 0 keeps beta fixed.
        epsilon: added to every priority (|TD error|) so no transition falls to probability 0; > 0.
        n_actions: when given, `add()` takes `next_action_masks` (bool [n_envs, n_actions]) and samples
            carry them, for masking illegal actions in the target's max.
        batch_size: when given, checked against the capacity here, before any training starts.
        seed: seeds the sum-tree's generator; None draws one from numpy's global generator (which SB3
            seeds), so a seeded SB3 run samples the same batches.

    Raises UsageError for a parameter out of range, and for optimize_memory_usage (its shared
    observation array invalidates the slot after the newest transition, which a priority cannot see).
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        *,
        alpha: float = 0.6,
        beta: float = 0.4,
        beta_annealing_steps: int = 0,
        epsilon: float = 1e-6,
        n_actions: int | None = None,
        batch_size: int | None = None,
        seed: int | None = None,
    ) -> None:
        if optimize_memory_usage:
            raise UsageError("prioritized replay does not support optimize_memory_usage=True; set it False")
        if not alpha >= 0:
            raise UsageError(f"PER alpha must be >= 0, got {alpha}")
        _check_beta(beta)
        if beta_annealing_steps < 0:
            raise UsageError(f"PER beta_annealing_steps must be >= 0, got {beta_annealing_steps}")
        if not epsilon > 0:
            raise UsageError(f"PER epsilon must be > 0, got {epsilon}")
        if n_actions is not None and n_actions < 1:
            raise UsageError(f"PER n_actions must be >= 1, got {n_actions}")
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=False,
            handle_timeout_termination=handle_timeout_termination,
        )
        self.capacity = self.buffer_size * self.n_envs
        if batch_size is not None:
            self._check_batch_size(batch_size)
        self.alpha = float(alpha)
        self.beta_start = float(beta)
        self.beta_annealing_steps = int(beta_annealing_steps)
        self.epsilon = float(epsilon)
        self.n_actions = n_actions
        self.next_action_masks: np.ndarray | None = (
            None if n_actions is None else np.zeros((self.buffer_size, self.n_envs, n_actions), dtype=bool)
        )
        if seed is None:
            seed = int(np.random.randint(0, 2**62))
        self.tree = SumTree(self.capacity, seed=seed)
        self.max_priority = 1.0
        self.transitions_added = 0
        self._lock = threading.Lock()
        # Per transition: reward, done, timeout (SB3's three arrays become views of these columns) and
        # the done the TD target uses, done * (1 - timeout), worked out once at add(). Side by side, one
        # 16-byte gather (numpy's fast path) reads a transition's scalars instead of three gathers.
        self._scalars = np.zeros((self.buffer_size, self.n_envs, 4), dtype=np.float32)
        self._make_views()

    def _make_views(self) -> None:
        """Point SB3's reward/done/timeout arrays into `_scalars` and flatten [buffer_size, n_envs, ...]
        to [capacity, ...] (views, not copies) so that a tree index is a row."""
        self.rewards = self._scalars[..., 0]
        self.dones = self._scalars[..., 1]
        self.timeouts = self._scalars[..., 2]
        self._flat_scalars = self._scalars.reshape(self.capacity, 4)
        self._flat_obs = self.observations.reshape(self.capacity, *self.obs_shape)
        self._flat_next_obs = self.next_observations.reshape(self.capacity, *self.obs_shape)
        self._flat_actions = self.actions.reshape(self.capacity, self.action_dim)
        self._flat_masks = (
            None if self.next_action_masks is None else self.next_action_masks.reshape(self.capacity, -1)
        )

    def _check_batch_size(self, batch_size: int) -> None:
        if not 1 <= batch_size <= self.capacity:
            raise UsageError(f"PER batch size must be in [1, capacity={self.capacity}], got {batch_size}")

    @property
    def beta(self) -> float:
        """The importance-sampling exponent now: beta_start, annealed linearly to 1.0 by transitions."""
        if self.beta_annealing_steps == 0:
            return self.beta_start
        progress = min(1.0, self.transitions_added / self.beta_annealing_steps)
        return self.beta_start + (1.0 - self.beta_start) * progress

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
        next_action_masks: np.ndarray | None = None,
    ) -> None:
        """Store one step of every env (arrays [n_envs, ...] as in SB3), each at the max priority.

        next_action_masks: bool [n_envs, n_actions], the legal actions after this step; required when
        the buffer was built with n_actions, refused otherwise.
        """
        if (next_action_masks is None) != (self.next_action_masks is None):
            raise ValueError(
                "next_action_masks must be given exactly when the buffer was built with n_actions"
            )
        with self._lock:
            pos = self.pos
            if self.next_action_masks is not None:
                self.next_action_masks[pos] = next_action_masks
            super().add(obs, next_obs, action, reward, done, infos)
            self._scalars[pos, :, 3] = self.dones[pos] * (1.0 - self.timeouts[pos])
            self.tree.fill(pos * self.n_envs, self.n_envs, self.max_priority)
            self.transitions_added += self.n_envs

    def reset(self) -> None:
        """Forget every transition and priority (the arrays stay allocated)."""
        with self._lock:
            super().reset()
            self.tree.fill(0, self.capacity, 0.0)
            self.max_priority = 1.0
            self.transitions_added = 0

    def sample(  # type: ignore[override]
        self, batch_size: int, env: VecNormalize | None = None, beta: float | None = None
    ) -> PrioritizedReplayBufferSamples:
        """B = batch_size transitions drawn with probability P(i), one per equal stratum of the total.

        beta: the importance-sampling exponent in [0, 1]; None uses the annealed `self.beta`.
        env: a VecNormalize to normalise observations and rewards with, as in SB3.
        Raises UsageError for a batch size or beta out of range, ValueError when the buffer is empty.
        """
        self._check_batch_size(batch_size)
        if beta is not None:
            _check_beta(beta)
        indices = np.empty(batch_size, dtype=np.int64)
        weights = np.empty(batch_size, dtype=np.float32)
        with self._lock:
            self.tree.sample(batch_size, self.beta if beta is None else beta, indices, weights)
            obs = self._flat_obs.take(indices, axis=0)
            next_obs = self._flat_next_obs.take(indices, axis=0)
            actions = self._flat_actions.take(indices, axis=0)
            scalars = self._flat_scalars.take(indices, axis=0)
            masks = None if self._flat_masks is None else self._flat_masks.take(indices, axis=0)
        rewards = scalars[:, 0:1]
        if env is not None:
            obs = env.normalize_obs(obs)  # type: ignore[assignment]
            next_obs = env.normalize_obs(next_obs)  # type: ignore[assignment]
            rewards = self._normalize_reward(rewards, env)
        # Every array here is this call's own fresh gather, so on the CPU a tensor may share its memory:
        # from_numpy costs a third of SB3's to_torch, which copies.
        tensor = th.from_numpy if self.device.type == "cpu" else self._to_device
        return PrioritizedReplayBufferSamples(
            observations=tensor(obs),
            actions=tensor(actions),
            next_observations=tensor(next_obs),
            dones=tensor(scalars[:, 3:4]),
            rewards=tensor(rewards),
            discounts=None,
            weights=tensor(weights.reshape(-1, 1)),
            indices=indices,
            next_action_masks=None if masks is None else tensor(masks),
        )

    def _to_device(self, array: np.ndarray) -> th.Tensor:
        return th.from_numpy(array).to(self.device)

    def validate_priorities(self, indices: Any, priorities: Any) -> tuple[np.ndarray, np.ndarray, float]:
        """Check a priority update without applying it; return what `write_priorities` takes.

        indices: tree indices from `sample()`, int [B] (any array-like; [B, 1] is flattened).
        priorities: new priorities >= 0, typically |TD error|, float [B] (a CPU tensor is fine).
        Returns (int64 [B] indices, float64 [B] tree priorities (priority + epsilon) ** alpha, their max).
        Raises ValueError naming the first index whose priority is NaN, infinite or negative, or that
        holds no transition; nothing is written.
        """
        index_array = np.ascontiguousarray(np.asarray(indices).reshape(-1), dtype=np.int64)
        raw = np.ascontiguousarray(np.asarray(priorities).reshape(-1), dtype=np.float64)
        with self._lock:
            stored = self.capacity if self.full else self.pos * self.n_envs
        tree_priorities, largest = proportional_priorities(index_array, raw, stored, self.epsilon, self.alpha)
        return index_array, tree_priorities, largest

    def write_priorities(self, indices: np.ndarray, tree_priorities: np.ndarray, largest: float) -> None:
        """Apply a `validate_priorities` result: int64 [B] indices, float64 [B] tree priorities, their max."""
        with self._lock:
            self.tree.update(indices, tree_priorities)
            self.max_priority = max(self.max_priority, largest)

    def update_priorities(self, indices: Any, priorities: Any) -> None:
        """Set the priorities (|TD error| >= 0, float [B]) of the transitions at `indices` (int [B],
        from `sample()`). The whole batch is checked first: a bad value raises ValueError naming its
        index and nothing is written. A repeated index keeps its last priority.
        """
        self.write_priorities(*self.validate_priorities(indices, priorities))

    def __getstate__(self) -> dict[str, Any]:
        # The lock cannot be pickled and views would pickle as copies; both are rebuilt on loading.
        state = self.__dict__.copy()
        for name in ("_lock", "rewards", "dones", "timeouts", "_flat_scalars", "_flat_obs",
                     "_flat_next_obs", "_flat_actions", "_flat_masks"):
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._make_views()


def _check_beta(beta: float) -> None:
    if not 0.0 <= beta <= 1.0:
        raise UsageError(f"PER beta must be in [0, 1], got {beta}")
