"""Async replay prefetch (seed 004, item J): the next batch is sampled on a background thread while the
caller trains on the current one, so the main thread's replay_sample_ms shrinks to a hand-over.

A trainer's gradient step k, with `sampler = BatchPrefetcher(buffer, batch_size)`:

    batch = sampler.next_batch(prefetch_next=k < last_step)   # time this as replay_sample
    ... forward, backward on batch ...
    sampler.update_priorities(batch.indices, td_errors.abs())  # PER only

Ordering and staleness, exactly. Requests become jobs in one FIFO queue, run one at a time in the
order they were made: `next_batch()` queues the draw of batch k+1 right after handing out batch k, and
`update_priorities()` queues update k behind it. So, with prefetch on:

- batch k+1 is drawn from the priorities as they stood after updates 0 .. k-1: it misses exactly one
  update, the one of the step that trained on batch k (with prefetch off it misses none);
- update k is applied right after batch k+1 is drawn and before batch k+2 is, so no update is ever
  later than that, and none is lost or reordered;
- this holds whatever the thread timing, so a fixed seed gives the same batches run after run; with no
  priority updates in between, prefetch on and off give the very same batches.

Who runs a job: the worker thread, normally. But when `next_batch()` finds its batch not yet started
(on a machine with no idle core the worker may not have been scheduled), the main thread runs the
queued jobs itself, in the same order, instead of sleeping until the worker gets a core; it waits only
for a job the worker is in the middle of. The worker runs as SCHED_BATCH where Linux offers it, so
waking it never preempts the trainer: it takes a free core. With a spare core the main thread's wait
is a hand-over; with none, the worker's job competes with everything else (including the GIL), and an
unlucky step can wait longer than sampling inline would have taken.

Transitions added while a batch is in flight (SB3 adds between calls to `train()`) may or may not be in
it, depending on timing (the buffer's lock keeps every batch whole either way). For exact runs, either
ask for no prefetch on the last gradient step before the trainer goes back to the environment
(`prefetch_next=False`, as above), or keep prefetching across env steps and call `settle()` before
adding transitions: the batch asked for ahead is then drawn before them (never contains them), with
prefetch on and off alike.

`update_priorities()` checks its input on the calling thread (a bad priority raises ValueError there,
naming its index) and returns at once. An exception in a queued job is raised by the next call on the
main thread. With `enabled=False` every call runs inline: the same results without the one-update
staleness. This module trains nothing and must not import a trainer.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from typing import Any

import numpy as np

from engine.replay import PrioritizedReplayBuffer, PrioritizedReplayBufferSamples


class _Job:
    """One queued request: draw a batch (payload None) or write priorities (validated payload)."""

    def __init__(self, payload: tuple[np.ndarray, np.ndarray, float] | None = None) -> None:
        self.payload = payload
        self.batch: PrioritizedReplayBufferSamples | None = None
        self.error: BaseException | None = None
        self.done = False


class BatchPrefetcher:
    """Hands out batches of `buffer.sample(batch_size, env=env, beta=beta)`, one batch ahead.

    Args:
        buffer: the prioritized replay buffer to sample from and update.
        batch_size: transitions per batch.
        enabled: False samples and updates inline (prefetch off).
        env: a VecNormalize passed on to `sample()`, as SB3's DQN does.
        beta: the importance-sampling exponent; None uses the buffer's annealed beta at sampling time.

    Use as a context manager, or call `close()`: it applies the queued updates, drops a batch not yet
    drawn and stops the worker thread.
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
        self._queue: deque[_Job] = deque()
        self._queue_changed = threading.Condition()  # guards _queue and _stopping
        self._running = threading.Lock()  # held while a job is popped and run: one at a time, in order
        self._stopping = False
        self._next: _Job | None = None  # the batch asked for ahead of time
        self._update_error: BaseException | None = None
        self._worker: threading.Thread | None = None

    def next_batch(self, prefetch_next: bool = True) -> PrioritizedReplayBufferSamples:
        """The next batch (see the module docstring for which priorities it saw).

        prefetch_next: start drawing the batch after this one now; pass False when transitions will be
        added before the next call (the last gradient step of a train() call), unless `settle()` is
        called before adding them.
        """
        if not self.enabled:
            job, self._next = self._next, None  # a batch drawn by settle()
            if job is None:
                return self._sample()
        else:
            self._raise_update_error()
            job = self._next if self._next is not None else self._submit(_Job())
            self._next = None
            self._wait(job)
            if prefetch_next:
                self._next = self._submit(_Job())
        if job.error is not None:
            raise job.error
        assert job.batch is not None
        return job.batch

    def settle(self) -> None:
        """Draw the next batch now and keep it for the next `next_batch()`: wait for the one asked for
        ahead (prefetch on), or draw it (none asked for, or prefetch off: inline). Call before adding
        transitions that batch must not contain."""
        if self._next is None:
            self._next = self._submit(_Job()) if self.enabled else _Job()
        if self.enabled:
            self._wait(self._next)
        elif not self._next.done:
            self._run(self._next)

    def _wait(self, job: _Job) -> None:
        while not job.done:
            with self._running:  # waits only for a job the worker is running now
                if not job.done:
                    self._run_next_job()

    def update_priorities(self, indices: Any, priorities: Any) -> None:
        """New priorities (>= 0, float [B], e.g. |TD error|) for `indices` (int [B], from a batch).

        Checked here (ValueError naming the bad index, nothing written); applied in order by the worker
        when prefetch is on, at once when it is off.
        """
        index_array, tree_priorities, largest = self.buffer.validate_priorities(indices, priorities)
        if not self.enabled:
            self.buffer.write_priorities(index_array, tree_priorities, largest)
            return
        self._raise_update_error()
        # The indices may be the caller's own array, which it is free to reuse before the job runs.
        self._submit(_Job((index_array.copy(), tree_priorities, largest)))

    def close(self) -> None:
        """Apply the queued updates, drop a batch not yet drawn, stop the worker."""
        with self._running, self._queue_changed:
            pending = [job for job in self._queue if job.payload is not None]
            self._queue.clear()
            self._stopping = True
            self._queue_changed.notify()
        for job in pending:
            self._run(job)
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        self._next = None
        self._stopping = False
        self._raise_update_error()

    def __enter__(self) -> BatchPrefetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _sample(self) -> PrioritizedReplayBufferSamples:
        return self.buffer.sample(self.batch_size, env=self.env, beta=self.beta)

    def _submit(self, job: _Job) -> _Job:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="replay-prefetch", daemon=True)
            self._worker.start()
        with self._queue_changed:
            self._queue.append(job)
            self._queue_changed.notify()
        return job

    def _run_next_job(self) -> None:
        """Pop and run the oldest job, if any. The caller holds `_running`."""
        with self._queue_changed:
            if not self._queue:
                return
            job = self._queue.popleft()
        self._run(job)

    def _run(self, job: _Job) -> None:
        try:
            if job.payload is None:
                job.batch = self._sample()
            else:
                self.buffer.write_priorities(*job.payload)
        except BaseException as error:  # handed to the main thread, which raises it
            if job.payload is None:
                job.error = error
            else:
                self._update_error = error
        job.done = True

    def _raise_update_error(self) -> None:
        if self._update_error is not None:
            error, self._update_error = self._update_error, None
            raise error

    def _work(self) -> None:
        _yield_to_the_trainer()
        while True:
            with self._queue_changed:
                while not self._queue and not self._stopping:
                    self._queue_changed.wait()
                if self._stopping:
                    return
            with self._running:
                self._run_next_job()


def _yield_to_the_trainer() -> None:
    """Mark the calling thread SCHED_BATCH where Linux offers it: its wake-up then never preempts the
    trainer's thread, it takes a free core instead. Without this, on a machine with no idle core the
    woken worker displaces the main thread for the whole draw, and prefetch saves nothing."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_BATCH"):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
