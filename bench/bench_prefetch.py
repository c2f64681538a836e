"""Benchmark: what the main thread waits for a replay batch (replay_sample_ms), prefetch on vs off.

Setting: the PER bench's buffer (1,000,000 transitions, obs 64 float32, batch 256) and a synthetic DQN
gradient step on each batch: an MLP 64-256-256-16 (online and target nets), Huber loss weighted by the
importance weights, backward, Adam step, then the |TD errors| go back as priorities, all through
engine.prefetch.BatchPrefetcher as a trainer would use it. Only `next_batch()` is the replay wait;
the update call is reported beside it (with prefetch on it only queues the write).

Wall time (what a trainer loses), modes alternating round by round. The ratio on the last line is of
the median step's wait: on a shared machine a neighbour stalling this process for milliseconds lands
in either mode at random and swamps a mean of microsecond waits, so the mean is printed beside it.
This script measures; it asserts nothing.
"""

from __future__ import annotations

import time

import numpy as np
import torch as th
import torch.nn.functional as F
from bench_per import BATCH, CAPACITY, N_ACTIONS, OBS_DIM, fill_ours  # the PER bench's buffer, same folder

from engine.prefetch import BatchPrefetcher
from engine.replay import PrioritizedReplayBuffer

STEPS_PER_ROUND = 150
ROUNDS = 5


def filled_buffer() -> PrioritizedReplayBuffer:
    """The PER bench's buffer: 1,000,000 random transitions with exponential priorities."""
    rng = np.random.default_rng(0)
    return fill_ours(rng, rng.exponential(1.0, CAPACITY))


def q_network() -> th.nn.Module:
    return th.nn.Sequential(
        th.nn.Linear(OBS_DIM, 256), th.nn.ReLU(), th.nn.Linear(256, 256), th.nn.ReLU(), th.nn.Linear(256, N_ACTIONS)
    )


def run_round(prefetcher: BatchPrefetcher, online: th.nn.Module, target: th.nn.Module,
              optimizer: th.optim.Optimizer) -> tuple[list[float], float, float]:
    """Per gradient step: ms waited for each batch; mean ms of the priority update call and the step."""
    waits_ms = []
    update_s = 0.0
    start = time.perf_counter()
    for step in range(STEPS_PER_ROUND):
        before = time.perf_counter()
        batch = prefetcher.next_batch(prefetch_next=step < STEPS_PER_ROUND - 1)
        waits_ms.append((time.perf_counter() - before) * 1e3)
        with th.no_grad():
            next_q = target(batch.next_observations).max(dim=1).values.reshape(-1, 1)
            td_target = batch.rewards + (1 - batch.dones) * 0.99 * next_q
        current = th.gather(online(batch.observations), dim=1, index=batch.actions.long())
        loss = (batch.weights * F.smooth_l1_loss(current, td_target, reduction="none")).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        before = time.perf_counter()
        prefetcher.update_priorities(batch.indices, (current - td_target).abs().detach().numpy())
        update_s += time.perf_counter() - before
    total_s = time.perf_counter() - start
    return waits_ms, update_s * 1e3 / STEPS_PER_ROUND, total_s * 1e3 / STEPS_PER_ROUND


def main() -> None:
    # One core for the learner, the other for the prefetch worker: the 2-core machine's natural split.
    th.set_num_threads(1)
    buffer = filled_buffer()
    online, target = q_network(), q_network()
    target.load_state_dict(online.state_dict())
    optimizer = th.optim.Adam(online.parameters(), lr=1e-4)
    waits: dict[str, list[float]] = {"off": [], "on": []}
    update_ms: dict[str, list[float]] = {"off": [], "on": []}
    step_ms: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(ROUNDS):
        for mode, enabled in (("off", False), ("on", True)):
            with BatchPrefetcher(buffer, BATCH, enabled=enabled) as prefetcher:
                round_waits, round_update_ms, round_step_ms = run_round(prefetcher, online, target, optimizer)
            waits[mode] += round_waits[1:]  # the first batch of a round is never prefetched
            update_ms[mode].append(round_update_ms)
            step_ms[mode].append(round_step_ms)
    print(f"prefetch, capacity {CAPACITY:,}, batch {BATCH}, MLP {OBS_DIM}-256-256-{N_ACTIONS}, "
          f"torch threads {th.get_num_threads()}, {ROUNDS} rounds x {STEPS_PER_ROUND} steps per mode")
    for mode in ("off", "on"):
        print(f"prefetch {mode:3s}: replay_sample_ms median {np.median(waits[mode]):.4f} "
              f"mean {np.mean(waits[mode]):.4f}  update call ms {np.median(update_ms[mode]):.4f}  "
              f"gradient step ms {np.median(step_ms[mode]):.3f} (medians over rounds)")
    median_ratio = np.median(waits["on"]) / np.median(waits["off"])
    mean_ratio = np.mean(waits["on"]) / np.mean(waits["off"])
    print(f"ratio replay_sample_ms on/off = {median_ratio:.1%} of median step wait "
          f"(mean {mean_ratio:.1%}) (target <= 20%)")


if __name__ == "__main__":
    main()
