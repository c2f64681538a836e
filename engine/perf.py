"""Phase timing for the `[PERF]` breakdown: where each env step's wall time goes.

A trainer adds nanoseconds to named phases (`action`, `env_step`, `train_fwd`, ...) and calls
`window()` every log interval; the window reports steps/s and episodes/s over the wall time since the
previous window (not a cumulative average) and each phase's milliseconds per env step. The timer is
meant to sit on the hot path: `add()` is one dict lookup and an integer add, and a disabled timer makes
`phase()` a no-op context (the instrumentation bench measures the difference). On CUDA a phase is not
synchronised here; a trainer that wants exact GPU phases syncs itself when profiling is asked for.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from engine.events import PERF_PHASES


@dataclass
class PerfWindow:
    """One window's figures: `ms` is milliseconds per env step for each phase seen."""

    step: int
    sps: float
    eps: float
    ms: dict[str, float]
    seconds: float


@dataclass
class PerfTimer:
    """Accumulates phase time (ns) and counts steps and episodes between windows."""

    enabled: bool = True
    _ns: dict[str, int] = field(default_factory=dict)
    _window_start_ns: int = field(default_factory=time.perf_counter_ns)
    _window_start_step: int = 0
    _window_episodes: int = 0

    def add(self, phase: str, ns: int) -> None:
        """Add `ns` nanoseconds to `phase`."""
        if self.enabled:
            self._ns[phase] = self._ns.get(phase, 0) + ns

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the body as phase `name` (a no-op when the timer is disabled)."""
        if not self.enabled:
            yield
            return
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            self._ns[name] = self._ns.get(name, 0) + time.perf_counter_ns() - start

    def count_episodes(self, n: int) -> None:
        self._window_episodes += n

    def phase_ns(self) -> dict[str, int]:
        """The nanoseconds of each phase in the current window."""
        return dict(self._ns)

    def set_phase_ns(self, spent: dict[str, int]) -> None:
        """Replace the current window's phase times (engine.distributed: the mean over a job's ranks)."""
        self._ns = dict(spent)

    def restart(self, step: int) -> None:
        """Start a fresh window at `step` (e.g. after a resume or a pause) and drop what was counted."""
        self._ns.clear()
        self._window_start_ns = time.perf_counter_ns()
        self._window_start_step = step
        self._window_episodes = 0

    def window(self, step: int) -> PerfWindow:
        """Close the window at env step `step` and start the next one."""
        now = time.perf_counter_ns()
        seconds = max((now - self._window_start_ns) / 1e9, 1e-9)
        steps = max(step - self._window_start_step, 0)
        per_step = 1e-6 / steps if steps else 0.0
        ordered = [p for p in PERF_PHASES if p in self._ns] + [p for p in self._ns if p not in PERF_PHASES]
        result = PerfWindow(
            step=step,
            sps=steps / seconds,
            eps=self._window_episodes / seconds,
            ms={p: self._ns[p] * per_step for p in ordered},
            seconds=seconds,
        )
        self._ns = {}
        self._window_start_ns = now
        self._window_start_step = step
        self._window_episodes = 0
        return result
