"""ext.replay_core: whole-batch draws in C match the buffer's arrays, the job queue runs jobs in order
with and without its worker, the idle worker wakes for a submit, memory laid out for one store is
refused by another, and sample() draws again only into memory no batch still refers to."""

import math
import time

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from engine.replay import PrioritizedReplayBuffer
from ext.replay_core import BatchMemory, JobQueue, proportional_priorities

N_ENVS, OBS, ACTIONS = 4, (3, 2), 5


def stored_buffer(steps: int = 50, seed: int = 3) -> PrioritizedReplayBuffer:
    """Every field of step t, env e is a function of (t, e): a row gathered from the wrong place shows."""
    buffer = PrioritizedReplayBuffer(
        64, gym.spaces.Box(-1e6, 1e6, OBS, np.float32), gym.spaces.Discrete(ACTIONS), device="cpu",
        n_envs=N_ENVS, n_actions=ACTIONS, seed=seed,
    )
    envs = np.arange(N_ENVS)
    for t in range(steps):
        obs = np.broadcast_to((100 * t + envs)[:, None, None], (N_ENVS, *OBS)).astype(np.float32)
        masks = (np.arange(ACTIONS)[None, :] + t + envs[:, None]) % 3 == 0
        buffer.add(obs, obs + 0.5, (t + envs) % ACTIONS, (t * 10 + envs).astype(np.float32),
                   (envs == t % N_ENVS).astype(np.float32), [{} for _ in envs], next_action_masks=masks)
    return buffer


def test_a_draw_gathers_every_field_of_the_sampled_rows() -> None:
    buffer = stored_buffer()
    memory = buffer.batch_memory(40)
    buffer.store.draw(memory, 0.5)
    rows = memory.indices
    assert memory.drawn and ((rows >= 0) & (rows < buffer.capacity)).all()
    flat = buffer.observations.reshape(buffer.capacity, *OBS)
    assert np.array_equal(memory.observations, flat[rows])
    assert np.array_equal(memory.next_observations, buffer.next_observations.reshape(buffer.capacity, *OBS)[rows])
    assert np.array_equal(memory.actions, buffer.actions.reshape(buffer.capacity, -1)[rows])
    assert np.array_equal(memory.rewards[:, 0], buffer.rewards.reshape(-1)[rows])
    assert np.array_equal(memory.dones[:, 0], buffer.dones.reshape(-1)[rows])
    assert np.array_equal(memory.next_action_masks, buffer.next_action_masks.reshape(buffer.capacity, -1)[rows])
    # Same generator state, same draw: the buffer's own sample() is this draw, as tensors.
    again = stored_buffer().sample(40, beta=0.5)
    assert np.array_equal(again.indices, rows)
    assert np.array_equal(again.weights.numpy(), memory.weights)


def test_memory_of_one_store_is_refused_by_another() -> None:
    first, second = stored_buffer(), stored_buffer()
    memory = first.batch_memory(8)
    with pytest.raises(ValueError, match="another ReplayStore"):
        second.store.draw(memory, 0.4)
    with pytest.raises(TypeError, match="its own store"):
        JobQueue(second.store, [memory])


def test_a_draw_from_an_empty_store_says_so() -> None:
    buffer = stored_buffer(steps=0)
    with pytest.raises(ValueError, match="nothing stored"):
        buffer.store.draw(buffer.batch_memory(4), 0.4)


def test_without_a_worker_jobs_run_in_order_in_wait() -> None:
    queue_buffer, inline_buffer = stored_buffer(), stored_buffer()
    memory = queue_buffer.batch_memory(16)
    queue = JobQueue(queue_buffer.store, [memory])
    tickets = []
    for step in range(5):
        indices = np.arange(step * 6, step * 6 + 30, dtype=np.int64)
        priorities = np.full(30, 1.0 + step)
        tickets.append(queue.submit_write(indices, priorities, 1.0 + step))
        inline_buffer.tree.update(indices, priorities)
    draw = queue.submit_draw(0, 0.4)
    assert queue.pending == 6 and not queue.worker_alive
    queue.wait(tickets[2])
    assert queue.pending == 3 and queue.caller_runs == 3
    queue.wait(draw)
    expected = inline_buffer.batch_memory(16)
    inline_buffer.store.draw(expected, 0.4)
    assert np.array_equal(memory.indices, expected.indices)
    assert np.array_equal(queue_buffer.tree.leaves(), inline_buffer.tree.leaves())
    assert queue_buffer.max_priority == 5.0
    with pytest.raises(ValueError, match="never issued"):
        queue.wait(draw + 1)


def test_an_idle_worker_that_fell_asleep_wakes_for_the_next_job() -> None:
    buffer = stored_buffer()
    queue = JobQueue(buffer.store, [buffer.batch_memory(8)])
    queue.start()
    try:
        for idle_s in (0.0, 0.002, 0.2):  # busy, polling, and asleep (it sleeps after 50 ms without work)
            time.sleep(idle_s)
            ticket = queue.submit_draw(0, 0.4)
            deadline = time.monotonic() + 5.0
            while queue.pending and time.monotonic() < deadline:
                time.sleep(0.001)
            queue.wait(ticket)
        assert queue.caller_runs == 0  # the worker ran every draw: none was left to the caller
    finally:
        queue.close()
    assert not queue.worker_alive


def test_close_applies_queued_writes_and_drops_draws() -> None:
    buffer = stored_buffer()
    queue = JobQueue(buffer.store, [buffer.batch_memory(8)])
    queue.submit_draw(0, 0.4)
    queue.submit_write(np.array([3], dtype=np.int64), np.array([7.0]), 7.0)
    queue.close()
    assert queue.pending == 0 and queue.caller_runs == 0
    assert buffer.tree.leaves()[3] == 7.0 and buffer.max_priority == 7.0


def test_batch_memory_needs_a_positive_size() -> None:
    buffer = stored_buffer()
    with pytest.raises(ValueError, match="at least 1"):
        BatchMemory(buffer.store, 0)


def test_proportional_priorities_transform_and_refuse_by_index() -> None:
    indices = np.array([4, 9, 2])
    values, largest = proportional_priorities(indices, np.array([0.0, 1.0, 3.0]), 10, 0.01, 0.5)
    np.testing.assert_allclose(values, np.array([0.01, 1.01, 3.01]) ** 0.5)
    assert largest == values.max()
    with pytest.raises(ValueError, match="replay index 9"):
        proportional_priorities(indices, np.array([0.0, math.nan, 3.0]), 10, 0.01, 0.5)
    with pytest.raises(ValueError, match="replay index 9 holds no transition"):
        proportional_priorities(indices, np.array([0.0, 1.0, 3.0]), 9, 0.01, 0.5)
    with pytest.raises(ValueError, match="replay index 2 overflows"):
        proportional_priorities(indices, np.array([0.0, 1.0, 1e300]), 10, 0.01, 2.0)


def test_a_fused_update_writes_what_validate_then_write_would() -> None:
    fused, split = stored_buffer(), stored_buffer()
    indices = np.array([5, 17, 5, 40], dtype=np.int64)
    priorities = np.array([0.5, 2.0, 3.0, 0.0])
    fused.store.update(indices, priorities, fused.epsilon, fused.alpha)
    tree_priorities, largest = proportional_priorities(indices, priorities, 200, split.epsilon, split.alpha)
    split.tree.update(indices, tree_priorities)
    assert np.array_equal(fused.tree.leaves(), split.tree.leaves())
    assert fused.max_priority == largest == (3.0 + fused.epsilon) ** fused.alpha
    before = fused.tree.leaves()
    with pytest.raises(ValueError, match="replay index 17 overflows"):
        fused.store.update(indices, np.array([0.0, 1e300, 1.0, 1.0]), 0.01, 2.0)
    assert np.array_equal(fused.tree.leaves(), before)
    short = stored_buffer(steps=10)
    before = short.tree.leaves()
    with pytest.raises(ValueError, match="replay index 40 holds no transition"):
        short.store.update(indices, priorities, 0.01, 0.5)
    assert np.array_equal(short.tree.leaves(), before)


def test_a_queued_write_outside_the_tree_is_refused_before_it_is_queued() -> None:
    buffer = stored_buffer()
    queue = JobQueue(buffer.store, [buffer.batch_memory(8)])
    with pytest.raises(IndexError, match="replay index 64 is outside"):
        queue.submit_write(np.array([3, 64], dtype=np.int64), np.array([1.0, 1.0]), 1.0)
    assert queue.pending == 0


def test_a_memory_is_idle_only_when_nothing_made_from_it_is_alive() -> None:
    buffer = stored_buffer()
    memory = buffer.batch_memory(8)
    assert memory.idle
    tensor = th.from_numpy(memory.observations)
    view = tensor[:, 1:]
    del tensor
    assert not memory.idle  # a view keeps the tensor's storage, which keeps the array
    del view
    assert memory.idle
    indices = memory.indices
    assert not memory.idle
    del indices
    masks = memory.next_action_masks[2:]
    assert not memory.idle
    del masks
    assert memory.idle


def test_sample_reuses_only_memory_no_batch_holds() -> None:
    buffer = stored_buffer()
    first = buffer.sample(16)
    kept = first.observations.clone()
    second = buffer.sample(16)  # the first batch is alive: drawn elsewhere
    assert first.observations.data_ptr() != second.observations.data_ptr()
    assert th.equal(first.observations, kept)
    address = second.observations.data_ptr()
    del second
    third = buffer.sample(16)
    assert third.observations.data_ptr() == address  # the dropped batch's memory, drawn into again
    assert th.equal(first.observations, kept)
    assert buffer.sample(8).observations.shape[0] == 8  # another size gets memory of its own


def test_a_buffer_whose_copies_may_lag_never_reuses_memory() -> None:
    buffer = stored_buffer()
    buffer.recycles_memory = False  # as engine.dqn's page-locked buffer, whose CUDA copies are non-blocking
    for _ in range(3):
        buffer.sample(16)
    assert not buffer._recycled  # nothing kept to draw into again
