"""Async replay prefetch: the next batch is drawn on a native background thread while
the caller trains on the current one, so the main thread's replay_sample_ms shrinks to a hand-over.

A trainer's gradient step k, with `sampler = BatchPrefetcher(buffer, batch_size)`:

    batch = sampler.next_batch(prefetch_next=k < last_step)   # time this as replay_sample
    ... forward, backward on batch ...
    sampler.update_priorities(batch.indices, td_errors.abs())  # PER only

Ordering and staleness, exactly. Requests become jobs in one FIFO queue (ext.replay_core.JobQueue),
run one at a time in the order they were made: `next_batch()` queues the draw of batch k+1 right after
handing out batch k, and `update_priorities()` queues update k behind it. So, with prefetch on:

- batch k+1 is drawn from the priorities as they stood after updates 0 .. k-1: it misses exactly one
  update, the one of the step that trained on batch k (with prefetch off it misses none);
- update k is applied right after batch k+1 is drawn and before batch k+2 is, so no update is ever
  later than that, and none is lost or reordered;
- this holds whatever the thread timing, so a fixed seed gives the same batches run after run; with no
  priority updates in between, prefetch on and off give the very same batches.

Who runs a job: the worker, a C thread that never takes the GIL (a Python thread did, and the trainer
then waited for the GIL at every hand-over: ~25-30 us per gradient step, a third of an inline draw at
8 games). When `next_batch()` finds its batch not yet started (on a machine with no idle core the
worker may not have been scheduled), the calling thread runs the queued jobs itself, in the same order,
instead of sleeping until the worker gets a core; it waits only for a job the worker is in the middle
of. The worker runs as SCHED_BATCH on Linux, so waking it never preempts the trainer.

Batch memory: batches are drawn into two fixed sets of arrays, used in turn, and on the CPU a batch's
tensors are views of them: a batch stays valid until the next `next_batch()` call (whose prefetch
draws into the memory of the batch before it). Clone what must live longer. On CUDA the tensors are
copies, and a memory is drawn into again only after its last copy has completed.

Transitions and the batch asked for ahead: call `settle()` before adding transitions: it waits until
every queued job has run (the batch asked for ahead is drawn before the transitions, never contains
them, with prefetch on and off alike, and the buffer's lock is free for the add). Or ask for no
prefetch on the last gradient step before the trainer goes back to the environment
(`prefetch_next=False`).

`update_priorities()` checks its input on the calling thread (a bad priority raises ValueError there,
naming its index) and returns at once; the worker copies nothing back, so a queued write cannot fail.
A draw from a buffer with nothing stored raises ValueError on the calling thread. With `enabled=False`
every call runs inline: the same results without the one-update staleness. This module trains nothing
and must not import a trainer.
"""

from __future__ import annotations

from typing import Any

import torch as th

from engine.replay import PrioritizedReplayBuffer, PrioritizedReplayBufferSamples
from ext.replay_core import NOTHING_STORED, JobQueue

MEMORIES = 2  # the batch handed out and the one drawn ahead


class BatchPrefetcher:
    """Hands out batches of `buffer`'s prioritized sampling, one batch ahead.

    Args:
        buffer: the prioritized replay buffer to sample from and update.
        batch_size: transitions per batch.
        enabled: False samples and updates inline (prefetch off).
        env: a VecNormalize applied when a batch is handed out, as SB3's DQN does.
        beta: the importance-sampling exponent; None uses the buffer's `beta` (settable between calls).

    Use as a context manager, or call `close()`: it applies the queued updates, drops a batch not yet
    drawn and stops the worker thread (a later call starts it again).
    """

    def __init__(
        self,
        buffer: PrioritizedReplayBuffer,
        batch_size: int,
        *,
        enabled: bool = True,
        env: Any = None,
        beta: float | None = None,
    ) -> None:
        self.buffer = buffer
        self.batch_size = batch_size
        self.enabled = enabled
        self.env = env
        self.beta = beta
        self._memories = [buffer.batch_memory(batch_size) for _ in range(MEMORIES)]
        self._queue = JobQueue(buffer.store, self._memories)
        self._handed = MEMORIES - 1  # the memory of the batch handed out last; the next draw goes elsewhere
        self._ahead: tuple[int, int] | None = None  # (memory, ticket) of the batch asked for
        # On the CPU without normalisation a memory's tensors are made once and handed out each time.
        self._reusable = env is None and buffer.device.type == "cpu"
        self._views: list[PrioritizedReplayBufferSamples | None] = [None] * MEMORIES
        self._copied: list[Any] = [None] * MEMORIES  # CUDA events of each memory's last copy
        self.batches_handed = 0

    def describe(self) -> str:
        """One line for the run's log: how the batches were had."""
        if not self.enabled:
            return f"replay prefetch off: {self.batches_handed:,} batches drawn inline"
        queue = self._queue
        return (f"replay prefetch: {self.batches_handed:,} batches; {queue.blocked_waits:,} hand-overs waited for "
                f"their batch; {queue.caller_runs:,} jobs run on the trainer thread (the worker had no core)")

    @property
    def pending_jobs(self) -> int:
        """Queued jobs no thread has started yet."""
        return int(self._queue.pending)

    @property
    def worker_alive(self) -> bool:
        return bool(self._queue.worker_alive)

    def next_batch(self, prefetch_next: bool = True) -> PrioritizedReplayBufferSamples:
        """The next batch (see the module docstring for which priorities it saw and how long it lives).

        prefetch_next: start drawing the batch after this one now; pass False when transitions will be
        added before the next call, unless `settle()` is called before adding them. Ignored when off.
        """
        if self._ahead is None:
            self._ask()
        assert self._ahead is not None
        memory, ticket = self._ahead
        self._ahead = None
        self._queue.wait(ticket)
        if not self._memories[memory].drawn:
            raise ValueError(NOTHING_STORED)
        self._handed = memory
        self.batches_handed += 1
        if prefetch_next and self.enabled:
            self._ask()
        return self._hand_out(memory)

    def settle(self) -> None:
        """Draw the next batch now, if none is asked for, and wait until every queued job has run. Call
        before adding transitions that batch must not contain."""
        if self._ahead is None:
            self._ask()
        self._queue.wait_all()

    def update_priorities(self, indices: Any, priorities: Any) -> None:
        """New priorities (>= 0, float [B], e.g. |TD error|) for `indices` (int [B], from a batch).

        Checked here (ValueError naming the bad index, nothing written); queued behind the batch asked
        for when prefetch is on, written at once when it is off.
        """
        if not self.enabled:
            self.buffer.update_priorities(indices, priorities)
            return
        index_array, tree_priorities, largest = self.buffer.validate_priorities(indices, priorities)
        self._ensure_worker()
        self._queue.submit_write(index_array, tree_priorities, largest)  # copied: the caller may reuse them

    def close(self) -> None:
        """Apply the queued updates, drop a batch not yet drawn, stop the worker."""
        self._queue.close()
        self._ahead = None

    def __enter__(self) -> BatchPrefetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _ask(self) -> None:
        """Queue the draw of the next batch into the memory not handed out last."""
        memory = (self._handed + 1) % MEMORIES
        copied = self._copied[memory]
        if copied is not None:
            copied.synchronize()  # a copy to CUDA may still be reading this memory
            self._copied[memory] = None
        beta = self.buffer.checked_beta(self.beta)
        if self.enabled:
            self._ensure_worker()
        self._ahead = (memory, self._queue.submit_draw(memory, beta))

    def _ensure_worker(self) -> None:
        if not self._queue.worker_alive:
            self._start_worker()

    def _start_worker(self) -> None:
        self._queue.start()

    def _hand_out(self, memory: int) -> PrioritizedReplayBufferSamples:
        if self._reusable:
            view = self._views[memory]
            if view is None:
                view = self._views[memory] = self.buffer.samples(self._memories[memory])
            return view
        batch = self.buffer.samples(self._memories[memory], self.env)
        if self.buffer.device.type == "cuda":
            self._copied[memory] = th.cuda.Event()
            self._copied[memory].record()
        return batch


def clone(batch: PrioritizedReplayBufferSamples) -> PrioritizedReplayBufferSamples:
    """A copy of `batch` that no later draw changes."""
    tensors = {name: value.clone() for name, value in batch._asdict().items() if isinstance(value, th.Tensor)}
    return batch._replace(indices=batch.indices.copy(), **tensors)
