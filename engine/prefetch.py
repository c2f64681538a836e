"""Async replay prefetch (seed 004, item J): the next batch is sampled on a background thread while the
caller trains on the current one, so the main thread's replay_sample_ms shrinks to a hand-over.

A trainer's gradient step k, with `sampler = BatchPrefetcher(buffer, batch_size)`:

    batch = sampler.next_batch(prefetch_next=k < last_step)   # time this as replay_sample
    ... forward, backward on batch ...
    sampler.update_priorities(batch.indices, td_errors.abs())  # PER only

Ordering and staleness, exactly. The worker thread does its jobs one at a time in the order the main
thread asked for them: `next_batch()` asks for batch k+1 right after handing out batch k, and
`update_priorities()` queues update k behind it. So, with prefetch on:

- batch k+1 is drawn from the priorities as they stood after updates 0 .. k-1: it misses exactly one
  update, the one of the step that trained on batch k (with prefetch off it misses none);
- update k is applied right after batch k+1 is drawn and before batch k+2 is, so no update is ever
  later than that, and none is lost or reordered;
- this holds whatever the thread timing, so a fixed seed gives the same batches run after run; with no
  priority updates in between, prefetch on and off give the very same batches.

Transitions added while a batch is in flight (SB3 adds between calls to `train()`) may or may not be in
it, depending on timing (the buffer's lock keeps every batch whole either way). For exact runs, ask for
no prefetch on the last gradient step before the trainer goes back to the environment:
`prefetch_next=False`, as above.

`update_priorities()` checks its input on the calling thread (a bad priority raises ValueError there,
naming its index) and returns at once; the worker writes it. An exception on the worker is raised by
the next call on the main thread. With `enabled=False` every call runs inline on the calling thread:
the same results without the one-update staleness. This module trains nothing and must not import a
trainer.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from engine.replay import PrioritizedReplayBuffer, PrioritizedReplayBufferSamples


class BatchPrefetcher:
    """Hands out batches of `buffer.sample(batch_size, env=env, beta=beta)`, one batch ahead.

    Args:
        buffer: the prioritized replay buffer to sample from and update.
        batch_size: transitions per batch.
        enabled: False samples and updates inline (prefetch off).
        env: a VecNormalize passed on to `sample()`, as SB3's DQN does.
        beta: the importance-sampling exponent; None uses the buffer's annealed beta at sampling time.

    Use as a context manager, or call `close()` to stop the worker thread.
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
        # Jobs, in order: ("sample", None) or ("update", (indices, tree_priorities, largest)); None stops.
        self._jobs: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._batches: queue.SimpleQueue[PrioritizedReplayBufferSamples | BaseException] = queue.SimpleQueue()
        self._in_flight = False
        self._worker_error: BaseException | None = None
        self._worker: threading.Thread | None = None

    def next_batch(self, prefetch_next: bool = True) -> PrioritizedReplayBufferSamples:
        """The next batch (see the module docstring for which priorities it saw).

        prefetch_next: start drawing the batch after this one now; pass False when transitions will be
        added before the next call (the last gradient step of a train() call).
        """
        if not self.enabled:
            return self._sample()
        self._raise_worker_error()
        if not self._in_flight:
            self._submit(("sample", None))
        batch = self._batches.get()
        self._in_flight = False
        if isinstance(batch, BaseException):
            raise batch
        if prefetch_next:
            self._submit(("sample", None))
            self._in_flight = True
        return batch

    def update_priorities(self, indices: Any, priorities: Any) -> None:
        """New priorities (>= 0, float [B], e.g. |TD error|) for `indices` (int [B], from a batch).

        Checked here (ValueError naming the bad index, nothing written); applied in order by the worker
        when prefetch is on, at once when it is off.
        """
        index_array, tree_priorities, largest = self.buffer.validate_priorities(indices, priorities)
        if not self.enabled:
            self.buffer.write_priorities(index_array, tree_priorities, largest)
            return
        self._raise_worker_error()
        # The indices may be the caller's own array, which it is free to reuse before the worker runs.
        self._submit(("update", (index_array.copy(), tree_priorities, largest)))

    def close(self) -> None:
        """Stop the worker after its queued jobs (a batch still in flight is dropped)."""
        if self._worker is not None:
            self._jobs.put(None)
            self._worker.join()
            self._worker = None
        self._in_flight = False

    def __enter__(self) -> BatchPrefetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _sample(self) -> PrioritizedReplayBufferSamples:
        return self.buffer.sample(self.batch_size, env=self.env, beta=self.beta)

    def _submit(self, job: tuple[str, Any]) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="replay-prefetch", daemon=True)
            self._worker.start()
        self._jobs.put(job)

    def _raise_worker_error(self) -> None:
        if self._worker_error is not None:
            error, self._worker_error = self._worker_error, None
            raise error

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            kind, payload = job
            if kind == "sample":
                try:
                    self._batches.put(self._sample())
                except BaseException as error:  # handed to the main thread, raised by next_batch()
                    self._batches.put(error)
            else:
                try:
                    self.buffer.write_priorities(*payload)
                except BaseException as error:  # raised by the main thread's next call
                    self._worker_error = error
