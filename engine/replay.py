"""Proportional prioritized experience replay (Schaul et al. 2016) as an SB3 `ReplayBuffer` subclass.

`PrioritizedReplayBuffer` drops into SB3's DQN (`replay_buffer_class=PrioritizedReplayBuffer`) and
keeps the parent's layout, `env` normalisation and timeout handling. On top it keeps one priority per
stored transition in the C sum-tree of `ext.sumtree` and samples in proportion to it:

    P(i) = p_i / sum_j p_j,        p_i = (priority_i + epsilon) ** alpha,
    w_i  = (N * P(i)) ** -beta / max_j (N * P(j)) ** -beta  =  (p_min / p_i) ** beta   in (0, 1].

A new transition gets the largest p ever written (1.0 before any update). beta is the caller's: a
trainer passes the value of its own schedule with each `sample()`; the buffer's fixed `beta` serves a
caller that passes none (SB3's own `DQN.train`).

Indices: SB3 stores transitions as [buffer_size, n_envs, ...]; transition (pos, env) is tree index
`pos * n_envs + env`, so the arrays flattened to [capacity, ...] are indexed by tree index directly.
`sample()` returns these indices; hand them back to `update_priorities()` with the new priorities
(typically |TD error|, shape [batch]).

The tree, the lock and the batch gather live in C (`ext.replay_core.ReplayStore`, over this buffer's
arrays): add, sample and the priority writes hold its lock, so engine.prefetch's native worker thread
can draw batches and write priorities while the main thread trains or adds. This module trains nothing
and must not reach into a trainer.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

from engine.errors import UsageError
from ext.replay_core import BatchMemory, ReplayStore, flat_array, proportional_priorities
from ext.sumtree import SumTree

CACHE_LINE_BYTES = 64
# Batch memories sample() keeps for reuse: the batch a trainer holds, the one it just dropped, and room
# for a caller that keeps a few batches alive at once.
RECYCLED_MEMORIES = 4


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
        beta: the importance-sampling exponent of a `sample()` given none, in [0, 1].
        epsilon: added to every priority (|TD error|) so no transition falls to probability 0; > 0.
        n_actions: when given, `add()` takes `next_action_masks` (bool [n_envs, n_actions]) and samples
            carry them, for masking illegal actions in the target's max.
        batch_size: when given, checked against the capacity here, before any training starts.
        seed: seeds the sum-tree's generator; None draws one from numpy's global generator (which SB3
            seeds), so a seeded SB3 run samples the same batches.

    Raises UsageError for a parameter out of range, and for optimize_memory_usage (its shared
    observation array invalidates the slot after the newest transition, which a priority cannot see).
    """

    # sample() draws again into a batch memory once nothing made from it is alive (BatchMemory.idle). A
    # subclass whose device copies may still read the memory after samples() returns (non-blocking
    # copies from page-locked memory) sets this False, and its sample() takes new memory every batch.
    recycles_memory = True

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
        self.beta = float(beta)
        self.epsilon = float(epsilon)
        self.n_actions = n_actions
        self.next_action_masks: np.ndarray | None = (
            None if n_actions is None else np.zeros((self.buffer_size, self.n_envs, n_actions), dtype=bool)
        )
        if seed is None:
            seed = int(np.random.randint(0, 2**62))
        self.tree = SumTree(self.capacity, seed=seed)
        # Per transition: reward, done, timeout (SB3's three arrays become views of these columns) and
        # the done the TD target uses, done * (1 - timeout), worked out once at add(). Side by side, one
        # 16-byte read (one cache line) gathers a transition's scalars instead of three.
        self._scalars = np.zeros((self.buffer_size, self.n_envs, 4), dtype=np.float32)
        # A batch gathers random rows, so it pays per cache line touched: numpy starts a large array 16
        # bytes into a line, which makes a 256-byte observation row span 5 lines instead of 4.
        self.observations = _cache_aligned_zeros(self.observations)
        self.next_observations = _cache_aligned_zeros(self.next_observations)
        if self.next_action_masks is not None:
            self.next_action_masks = _cache_aligned_zeros(self.next_action_masks)
        self._make_views(max_priority=1.0)

    def _make_views(self, max_priority: float) -> None:
        """Point SB3's reward/done/timeout arrays into `_scalars`, flatten [buffer_size, n_envs, ...]
        to [capacity, ...] (views, not copies) so that a tree index is a row, and bind the C store to
        those rows."""
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
        self.store = ReplayStore(self.tree, self._flat_obs, self._flat_next_obs, self._flat_actions,
                                 self._flat_scalars, self._flat_masks)
        self.store.max_priority = max_priority
        self._count_stored()
        self._recycled: deque[BatchMemory] = deque(maxlen=RECYCLED_MEMORIES)
        self._on_cpu = self.device.type == "cpu"

    @property
    def max_priority(self) -> float:
        """The largest tree priority ever written (1.0 before any update): what a new transition gets."""
        return float(self.store.max_priority)

    def _check_batch_size(self, batch_size: int) -> None:
        if not 1 <= batch_size <= self.capacity:
            raise UsageError(f"PER batch size must be in [1, capacity={self.capacity}], got {batch_size}")

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
        with self.store:
            pos = self.pos
            if self.next_action_masks is not None:
                self.next_action_masks[pos] = next_action_masks
            super().add(obs, next_obs, action, reward, done, infos)
            self._scalars[pos, :, 3] = self.dones[pos] * (1.0 - self.timeouts[pos])
            self.tree.fill(pos * self.n_envs, self.n_envs, self.store.max_priority)
            self._count_stored()

    def reset(self) -> None:
        """Forget every transition and priority (the arrays stay allocated)."""
        with self.store:
            super().reset()
            self.tree.fill(0, self.capacity, 0.0)
            self.store.max_priority = 1.0
            self._count_stored()

    def _count_stored(self) -> None:
        """Tell the store how many transitions are held (valid indices are [0, stored)); called holding
        its lock, or before the store is shared."""
        self.store.stored = self.capacity if self.full else self.pos * self.n_envs

    def sample(  # type: ignore[override]
        self, batch_size: int, env: VecNormalize | None = None, beta: float | None = None
    ) -> PrioritizedReplayBufferSamples:
        """B = batch_size transitions drawn with probability P(i), one per equal stratum of the total.

        beta: the importance-sampling exponent in [0, 1]; None uses `self.beta`.
        env: a VecNormalize to normalise observations and rewards with, as in SB3.
        The batch's tensors are views of memory that a later sample() draws into again only once nothing
        made from this batch is alive (up to RECYCLED_MEMORIES memories are kept for that), so a batch
        never changes while it is held.
        Raises UsageError for a batch size or beta out of range, ValueError when the buffer is empty.
        """
        beta = self.checked_beta(beta)
        memory = self._idle_memory(batch_size)
        try:
            self.store.draw(memory, beta)
            return self.samples(memory, env)
        finally:
            if self.recycles_memory:
                self._recycled.append(memory)

    def _idle_memory(self, batch_size: int) -> BatchMemory:
        """A batch memory of `batch_size` that no earlier batch still refers to, reused when one is
        (see BatchMemory.idle; a batch's tensors share its arrays), else a new one. Each memory is
        popped before it is used, so two threads sampling at once never draw into the same one."""
        recycled = self._recycled
        for _ in range(len(recycled)):
            try:
                memory = recycled.popleft()
            except IndexError:  # another thread took the last one
                break
            if memory.idle and memory.size == batch_size:
                return memory
            recycled.append(memory)
        return self.batch_memory(batch_size)

    def checked_beta(self, beta: float | None) -> float:
        """`beta` checked to lie in [0, 1], or `self.beta` for None."""
        if beta is None:
            return self.beta
        _check_beta(beta)
        return beta

    def batch_memory(self, batch_size: int) -> BatchMemory:
        """Arrays a batch of `batch_size` is drawn into (`store.draw`, or a prefetch queue's draws)."""
        self._check_batch_size(batch_size)
        return BatchMemory(self.store, batch_size, self.allocate)

    @staticmethod
    def allocate(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Memory for one field of a batch: plain numpy here; page-locked in a subclass that copies to CUDA."""
        return np.empty(shape, dtype=dtype)

    def samples(self, memory: BatchMemory, env: VecNormalize | None = None) -> PrioritizedReplayBufferSamples:
        """The fields of a drawn batch as tensors on the buffer's device, normalised by `env` as in SB3.
        On the CPU (no env) the tensors share the memory's arrays: they change with its next draw."""
        obs, next_obs, rewards = memory.observations, memory.next_observations, memory.rewards
        if env is not None:
            obs = env.normalize_obs(obs)
            next_obs = env.normalize_obs(next_obs)
            rewards = self._normalize_reward(rewards, env)
        tensor = th.from_numpy if self._on_cpu else self._to_device
        masks = memory.next_action_masks
        return PrioritizedReplayBufferSamples(  # positional, in field order: keywords cost a third more
            tensor(obs),
            tensor(memory.actions),
            tensor(next_obs),
            tensor(memory.dones),
            tensor(rewards),
            None,
            tensor(memory.weights),
            memory.indices,
            None if masks is None else tensor(masks),
        )

    def _to_device(self, array: np.ndarray) -> th.Tensor:
        return th.from_numpy(array).to(self.device)

    def validate_priorities(self, indices: Any, priorities: Any) -> tuple[np.ndarray, np.ndarray, float]:
        """Check a priority update without applying it; return what a JobQueue's `submit_write` takes.

        indices: tree indices from `sample()`, int [B] (any array-like; [B, 1] is flattened).
        priorities: new priorities >= 0, typically |TD error|, float [B] (a CPU tensor is fine).
        Returns (int64 [B] indices, float64 [B] tree priorities (priority + epsilon) ** alpha, their max).
        Raises ValueError naming the first index whose priority is NaN, infinite or negative, or that
        holds no transition; nothing is written.
        """
        index_array = flat_array(indices, np.int64)
        tree_priorities, largest = proportional_priorities(index_array, flat_array(priorities, np.float64),
                                                           self.store.stored, self.epsilon, self.alpha)
        return index_array, tree_priorities, largest

    def update_priorities(self, indices: Any, priorities: Any) -> None:
        """Set the priorities (|TD error| >= 0, float [B]) of the transitions at `indices` (int [B],
        from `sample()`). The whole batch is checked first: a bad value raises ValueError naming its
        index and nothing is written. A repeated index keeps its last priority.
        """
        self.store.update(indices, priorities, self.epsilon, self.alpha)

    def __getstate__(self) -> dict[str, Any]:
        # The C store cannot be pickled and views would pickle as copies; both are rebuilt on loading.
        state = self.__dict__.copy()
        for name in ("store", "_recycled", "rewards", "dones", "timeouts", "_flat_scalars", "_flat_obs",
                     "_flat_next_obs", "_flat_actions", "_flat_masks"):
            del state[name]
        state["max_priority"] = self.max_priority
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        max_priority = state.pop("max_priority")
        self.__dict__.update(state)
        self._make_views(max_priority)


def _cache_aligned_zeros(like: np.ndarray) -> np.ndarray:
    """Zeros shaped and typed like `like`, starting on a 64-byte cache line."""
    raw = np.zeros(like.nbytes + CACHE_LINE_BYTES, dtype=np.uint8)
    start = -raw.ctypes.data % CACHE_LINE_BYTES
    return raw[start:start + like.nbytes].view(like.dtype).reshape(like.shape)


def _check_beta(beta: float) -> None:
    if not 0.0 <= beta <= 1.0:
        raise UsageError(f"PER beta must be in [0, 1], got {beta}")
