"""BatchPrefetcher: same batches as inline sampling, exactly one update of staleness, errors, locking."""

import time

import gymnasium as gym
import numpy as np
import pytest

from engine.prefetch import BatchPrefetcher, clone
from engine.replay import PrioritizedReplayBuffer

BATCH = 16


def filled_buffer(steps: int = 200, seed: int = 5) -> PrioritizedReplayBuffer:
    buffer = PrioritizedReplayBuffer(
        256, gym.spaces.Box(-1e6, 1e6, (2,), np.float32), gym.spaces.Discrete(3), device="cpu", n_envs=2,
        alpha=0.7, seed=seed,
    )
    for t in range(steps):
        add_step(buffer, t)
    return buffer


def add_step(buffer: PrioritizedReplayBuffer, t: int) -> None:
    """Step t stores obs [t, env], next obs [t + 1, env], reward t: a torn row would show."""
    obs = np.array([[t, 0], [t, 1]], dtype=np.float32)
    next_obs = obs + np.array([1, 0], dtype=np.float32)
    reward = np.array([t, t], dtype=np.float32)
    buffer.add(obs, next_obs, np.array([0, 1]), reward, np.zeros(2, dtype=np.float32), [{}, {}])


def priorities_for(step: int, indices: np.ndarray) -> np.ndarray:
    """Deterministic stand-in for |TD error| of step `step`."""
    return ((indices * 7 + step * 13) % 23) / 4.0


def assert_same(first, second) -> None:
    assert np.array_equal(first.indices, second.indices)
    for name in ("observations", "actions", "next_observations", "dones", "rewards", "weights"):
        assert np.array_equal(getattr(first, name).numpy(), getattr(second, name).numpy()), name


@pytest.mark.parametrize("pattern", [[True] * 30, [True, True, False] * 10])
def test_prefetch_on_and_off_give_the_same_batches_without_updates(pattern: list[bool]) -> None:
    off = BatchPrefetcher(filled_buffer(), BATCH, enabled=False)
    on = BatchPrefetcher(filled_buffer(), BATCH, enabled=True)
    with off, on:
        for prefetch_next in pattern:
            assert_same(off.next_batch(prefetch_next), on.next_batch(prefetch_next))


def run_with_updates(prefetcher: BatchPrefetcher, steps: int, pause_s: float = 0.0) -> list:
    batches = []
    for step in range(steps):
        batch = prefetcher.next_batch()
        batches.append(clone(batch))  # the prefetcher draws into its memory again two calls later
        if pause_s:
            time.sleep(pause_s)  # the worker has long finished the next batch: timing must not matter
        prefetcher.update_priorities(batch.indices, priorities_for(step, batch.indices))
    return batches


def test_staleness_is_exactly_one_update_whatever_the_timing() -> None:
    steps = 25
    # The reference, inline: batch k+1 is drawn before update k is written (and after update k-1).
    reference = filled_buffer()
    expected = [reference.sample(BATCH)]
    for step in range(steps - 1):
        expected.append(reference.sample(BATCH))
        reference.update_priorities(expected[step].indices, priorities_for(step, expected[step].indices))
    for pause_s in (0.0, 0.002):
        with BatchPrefetcher(filled_buffer(), BATCH) as prefetcher:
            got = run_with_updates(prefetcher, steps, pause_s)
        for want, have in zip(expected, got, strict=True):
            assert_same(want, have)
    # Inline sampling sees every update at once, so its batches do differ: the staleness is real.
    with BatchPrefetcher(filled_buffer(), BATCH, enabled=False) as off:
        fresh = run_with_updates(off, steps)
    assert any(not np.array_equal(a.indices, b.indices) for a, b in zip(expected, fresh, strict=True))


def test_every_update_lands_in_order() -> None:
    on = BatchPrefetcher(filled_buffer(), BATCH)
    off = BatchPrefetcher(filled_buffer(), BATCH, enabled=False)
    with on, off:
        for prefetcher in (on, off):
            for step in range(10):
                indices = np.arange(step, step + 40)
                prefetcher.update_priorities(indices, priorities_for(step, indices))
            prefetcher.next_batch(prefetch_next=False)  # the worker did everything queued before it
        assert np.array_equal(on.buffer.tree.leaves(), off.buffer.tree.leaves())
        assert on.buffer.max_priority == off.buffer.max_priority


def test_a_bad_priority_raises_on_the_calling_thread_and_writes_nothing() -> None:
    with BatchPrefetcher(filled_buffer(), BATCH) as prefetcher:
        batch = prefetcher.next_batch()
        before = prefetcher.buffer.tree.leaves()
        bad = np.ones(BATCH)
        bad[5] = np.nan
        with pytest.raises(ValueError, match=f"replay index {batch.indices[5]}"):
            prefetcher.update_priorities(batch.indices, bad)
        prefetcher.next_batch(prefetch_next=False)
        assert np.array_equal(prefetcher.buffer.tree.leaves(), before)


def test_a_worker_error_reaches_the_main_thread() -> None:
    empty = filled_buffer(steps=0)
    with BatchPrefetcher(empty, BATCH) as prefetcher:
        with pytest.raises(ValueError, match="nothing stored"):
            prefetcher.next_batch()
        add_step(empty, 0)
        assert prefetcher.next_batch().indices.max() <= 1  # recovers once there is data


def test_close_stops_the_worker_and_a_later_call_starts_it_again() -> None:
    prefetcher = BatchPrefetcher(filled_buffer(), BATCH)
    first = clone(prefetcher.next_batch())
    assert prefetcher.worker_alive
    prefetcher.close()
    assert not prefetcher.worker_alive
    prefetcher.next_batch()
    assert prefetcher.worker_alive
    prefetcher.close()
    assert first.indices.shape == (BATCH,)


def test_a_batch_lives_until_the_next_call_and_clone_keeps_it() -> None:
    with BatchPrefetcher(filled_buffer(), BATCH) as prefetcher:
        batch = prefetcher.next_batch()
        kept = clone(batch)
        prefetcher.update_priorities(batch.indices, priorities_for(0, batch.indices))
        assert_same(batch, kept)  # the draw of the next batch went into the other memory
        prefetcher.next_batch()
        prefetcher.next_batch()  # drawn into the first batch's memory
        assert not np.array_equal(batch.indices, kept.indices)


def test_adds_racing_a_prefetch_never_tear_a_batch() -> None:
    buffer = filled_buffer(steps=128)  # full: every add overwrites the oldest row
    with BatchPrefetcher(buffer, BATCH) as prefetcher:
        for t in range(128, 128 + 400):
            batch = prefetcher.next_batch()  # the next one is drawn while this thread adds
            add_step(buffer, t)
            obs = batch.observations.numpy()
            assert np.array_equal(batch.next_observations.numpy()[:, 0], obs[:, 0] + 1)
            assert np.array_equal(batch.rewards.numpy()[:, 0], obs[:, 0])
            assert np.array_equal(obs[:, 1], batch.indices % 2)
            assert np.array_equal(obs[:, 0] % 128, batch.indices // 2)


class StarvedPrefetcher(BatchPrefetcher):
    """A worker that never gets a core: every job is left to the main thread."""

    def _start_worker(self) -> None:
        return


def test_a_starved_worker_leaves_the_jobs_to_the_main_thread_in_the_same_order() -> None:
    with BatchPrefetcher(filled_buffer(), BATCH) as normal:
        expected = run_with_updates(normal, 12)
    with StarvedPrefetcher(filled_buffer(), BATCH) as starved:
        got = run_with_updates(starved, 12)
        assert starved.pending_jobs == 3  # update 10, batch 12, update 11: waiting for a next_batch()
    for want, have in zip(expected, got, strict=True):
        assert_same(want, have)
    assert np.array_equal(starved.buffer.tree.leaves(), normal.buffer.tree.leaves())  # close() applied it
