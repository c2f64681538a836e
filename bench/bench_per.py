"""Benchmark: prioritized replay sample + priority update, ours vs cpprb vs a naive numpy sampler.

Setting (issue 4): 1,000,000 transitions, batch 256, observations 64 float32, priorities spread over
the whole buffer. One iteration = sample a batch (indices, importance weights, obs, next_obs, actions,
rewards, dones) + write 256 new priorities for the sampled indices.

- ours:  engine.replay.PrioritizedReplayBuffer's sample() and update_priorities() (SB3 layout, new
         torch tensors out for every batch, over memory sample() reuses once no earlier batch refers
         to it; the C sum-tree and gather). This is the figure the targets are about.
- ours (reused memory): the same buffer through engine.prefetch.BatchPrefetcher with prefetch off, as
         the dqn-per trainer samples inline: batches drawn into two fixed memories whose tensors are
         made once. Printed for information: a batch there is valid only until the next one, which
         cpprb's and sample()'s are not.
- cpprb: cpprb.PrioritizedReplayBuffer (numpy arrays out; a benchmark-only dependency).
- naive: np.random.choice(p=priorities / sum) over a numpy priority array, then the same gathers.

All three run in this process, interleaved round by round, each timed in CPU time of this thread
(time.thread_time: all three are single-threaded, and on a shared machine wall time mostly measures
the neighbours); each figure is the best round. The last line is the ratio the issue targets.
This script measures; it asserts nothing.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
from cpprb import PrioritizedReplayBuffer as CpprbBuffer

from engine.prefetch import BatchPrefetcher
from engine.replay import PrioritizedReplayBuffer

CAPACITY = 1_000_000
BATCH = 256
OBS_DIM = 64
N_ACTIONS = 16
N_ENVS = 64  # ours is filled one vector step at a time; 64 envs keep the fill under a few seconds
ALPHA, BETA, EPSILON = 0.6, 0.4, 1e-6
ROUNDS = 7


def fill_ours(rng: np.random.Generator, priorities: np.ndarray) -> PrioritizedReplayBuffer:
    buffer = PrioritizedReplayBuffer(
        CAPACITY,
        gym.spaces.Box(-1.0, 1.0, (OBS_DIM,), np.float32),
        gym.spaces.Discrete(N_ACTIONS),
        device="cpu",
        n_envs=N_ENVS,
        alpha=ALPHA,
        beta=BETA,
        epsilon=EPSILON,
        seed=1,
    )
    infos: list[dict] = [{} for _ in range(N_ENVS)]
    for _ in range(CAPACITY // N_ENVS):
        obs = rng.random((N_ENVS, OBS_DIM), dtype=np.float32)
        buffer.add(
            obs,
            obs,
            rng.integers(0, N_ACTIONS, N_ENVS),
            rng.random(N_ENVS, dtype=np.float32),
            rng.random(N_ENVS) < 0.01,
            infos,
        )
    buffer.update_priorities(np.arange(CAPACITY), priorities)
    return buffer


def fill_cpprb(rng: np.random.Generator, priorities: np.ndarray) -> CpprbBuffer:
    buffer = CpprbBuffer(
        CAPACITY,
        {
            "obs": {"shape": OBS_DIM, "dtype": np.float32},
            "next_obs": {"shape": OBS_DIM, "dtype": np.float32},
            "act": {"dtype": np.int64},
            "rew": {"dtype": np.float32},
            "done": {"dtype": np.float32},
        },
        alpha=ALPHA,
        eps=EPSILON,
    )
    chunk = 50_000
    for _ in range(CAPACITY // chunk):
        obs = rng.random((chunk, OBS_DIM), dtype=np.float32)
        buffer.add(
            obs=obs,
            next_obs=obs,
            act=rng.integers(0, N_ACTIONS, chunk),
            rew=rng.random(chunk, dtype=np.float32),
            done=(rng.random(chunk) < 0.01).astype(np.float32),
        )
    buffer.update_priorities(np.arange(CAPACITY), priorities)
    return buffer


class NaiveSampler:
    """Proportional sampling the O(N) way: normalise all priorities, np.random.choice, gather."""

    def __init__(self, source: PrioritizedReplayBuffer, priorities: np.ndarray) -> None:
        self.tree_priorities = (priorities + EPSILON) ** ALPHA
        self.obs = source.observations.reshape(CAPACITY, OBS_DIM)
        self.next_obs = source.next_observations.reshape(CAPACITY, OBS_DIM)
        self.actions = source.actions.reshape(CAPACITY, -1)
        self.rewards = source.rewards.reshape(CAPACITY)
        self.dones = source.dones.reshape(CAPACITY)

    def sample(self) -> tuple[np.ndarray, ...]:
        probabilities = self.tree_priorities / self.tree_priorities.sum()
        indices = np.random.choice(CAPACITY, BATCH, p=probabilities)
        weights = (CAPACITY * probabilities[indices]) ** -BETA
        weights /= (CAPACITY * probabilities.min()) ** -BETA
        return (
            indices,
            weights,
            self.obs[indices],
            self.next_obs[indices],
            self.actions[indices],
            self.rewards[indices],
            self.dones[indices],
        )

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        self.tree_priorities[indices] = (priorities + EPSILON) ** ALPHA


def main() -> None:
    rng = np.random.default_rng(0)
    priorities = rng.exponential(1.0, CAPACITY)
    new_priorities = rng.exponential(1.0, (64, BATCH))
    ours = fill_ours(rng, priorities)
    cpprb = fill_cpprb(rng, priorities)
    naive = NaiveSampler(ours, priorities)

    last: dict[str, np.ndarray] = {}

    def ours_sample(_: int) -> None:
        last["ours"] = ours.sample(BATCH).indices

    def ours_update(i: int) -> None:
        ours.update_priorities(last["ours"], new_priorities[i % 64])

    inline = BatchPrefetcher(ours, BATCH, enabled=False)

    def reused_sample(_: int) -> None:
        last["reused"] = inline.next_batch(prefetch_next=False).indices

    def reused_update(i: int) -> None:
        inline.update_priorities(last["reused"], new_priorities[i % 64])

    def cpprb_sample(_: int) -> None:
        last["cpprb"] = cpprb.sample(BATCH, beta=BETA)["indexes"]

    def cpprb_update(i: int) -> None:
        cpprb.update_priorities(last["cpprb"], new_priorities[i % 64])

    def naive_sample(_: int) -> None:
        last["naive"] = naive.sample()[0]

    def naive_update(i: int) -> None:
        naive.update(last["naive"], new_priorities[i % 64])

    contenders = {
        "ours": (ours_sample, ours_update, 400),
        "reused": (reused_sample, reused_update, 400),
        "cpprb": (cpprb_sample, cpprb_update, 100),
        "naive": (naive_sample, naive_update, 5),
    }
    best = {name: [np.inf, np.inf] for name in contenders}
    for _ in range(ROUNDS):
        for name, (sample, update, iterations) in contenders.items():
            sample_us = update_us = 0.0
            # Sample and update alternate, as in training; each half is timed on its own.
            for i in range(iterations):
                start = time.thread_time()
                sample(i)
                middle = time.thread_time()
                update(i)
                sample_us += middle - start
                update_us += time.thread_time() - middle
            round_us = [sample_us / iterations * 1e6, update_us / iterations * 1e6]
            if sum(round_us) < sum(best[name]):
                best[name] = round_us

    print(f"PER, capacity {CAPACITY:,}, batch {BATCH}, obs {OBS_DIM} float32 (best of {ROUNDS} rounds)")
    for name, (sample_us, update_us) in best.items():
        print(f"{name:7s} sample {sample_us:9.1f} us  update {update_us:8.1f} us  "
              f"sample+update {sample_us + update_us:9.1f} us")
    print(f"for information: cpprb/ours with reused memory (the trainer's inline path) = "
          f"{sum(best['cpprb']) / sum(best['reused']):.1f}x")
    ours_total = sum(best["ours"])
    vs_cpprb = sum(best["cpprb"]) / ours_total
    vs_naive = sum(best["naive"]) / ours_total
    print(f"ratio cpprb/ours = {vs_cpprb:.1f}x (target >= 5x), naive/ours = {vs_naive:.0f}x (target >= 100x)")


if __name__ == "__main__":
    main()
