"""The SB3 callbacks of a trainctl run, one concern each, combined by `run_callbacks()` in SB3's way (a
`CallbackList`):

- `StopOnRequest`: ends `learn()` at the next vec-env step once `ctx.stop` is set.
- `EmitEvents`: closes a perf window (`ctx.perf`) and emits the trainer's metrics (`ctx.metrics`, and
  TensorBoard in `tb/` when `log.tensorboard`) every `log.every_steps` env steps or every
  `log.every_seconds` seconds of wall time, whichever comes first; between emissions it records the
  step in status.json (`ctx.progress`).
- `SaveCheckpoints`: a checkpoint every `checkpoint.every_steps` env steps, taken at a vec-env step or,
  for on-policy trainers, when a rollout starts (after an update, so the policy reflects every step
  counted).

SB3 calls `on_step` once per vec-env step (after every game of it moved; an off-policy trainer's
gradient steps come after it), and `on_training_end` whenever `learn()` returns, done or stopped: the
last emission and checkpoint are made there, so a stopped run ends like a finished one. A run whose
gradient steps are slow still emits at the first vec-env step after `log.every_seconds` has passed.

Nothing here knows PPO or DQN: a trainer hands in its metric and checkpoint-state functions. Nothing
here writes run files except through the RunContext.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from engine.context import RunContext, StopRequest


def next_multiple(step: int, every: int) -> int:
    """The first multiple of `every` above `step`."""
    return (step // every + 1) * every


class StopOnRequest(BaseCallback):
    """Returns False (SB3 then ends `learn()`) at the first vec-env step after `stop` became truthy."""

    def __init__(self, stop: StopRequest) -> None:
        super().__init__()
        self.stop = stop

    def _on_step(self) -> bool:
        return not self.stop


class EmitEvents(BaseCallback):
    """Perf windows and metrics when `log.every_steps` env steps or `log.every_seconds` seconds have passed
    since the last emission, and once more when learning ends (see the module docstring).

    `metric_values()` returns the metrics gathered since it was last called. The time spent emitting is
    booked to the timer's `log` phase (of the window that follows)."""

    def __init__(self, ctx: RunContext, metric_values: Callable[[], dict[str, float]]) -> None:
        super().__init__()
        self.ctx = ctx
        self.metric_values = metric_values
        self.every_steps: int = ctx.cfg["log.every_steps"]
        self.every_seconds = float(ctx.cfg["log.every_seconds"])
        self.next_step = 0  # emit at this env step ...
        self.deadline = 0.0  # ... or at the first vec-env step after this time.monotonic() reading
        self.window_start = 0  # the env step the open perf window started at
        self.tb: Any = None
        if ctx.cfg["log.tensorboard"]:
            from torch.utils.tensorboard import SummaryWriter  # only runs that write TensorBoard pay for it

            self.tb = SummaryWriter(log_dir=str(ctx.run.tb))

    def _on_training_start(self) -> None:
        step = self.model.num_timesteps
        self.ctx.timer.restart(step)
        self.window_start = step
        self._schedule(step)

    def _on_step(self) -> bool:
        step = self.model.num_timesteps
        # Once per vec-env step: a comparison, and a clock read only while the step rule is not due.
        if step >= self.next_step or time.monotonic() >= self.deadline:
            self.emit(step)
        else:
            self.ctx.progress(step)
        return True

    def _on_training_end(self) -> None:
        """The last emission: SB3's logger values since its last dump (the last update's) included; no perf
        window when one closed at this very step (it would hold no steps)."""
        step = self.model.num_timesteps
        self.model.logger.dump(step)
        self.emit(step, perf=step > self.window_start)
        if self.tb is not None:
            self.tb.close()

    def emit(self, step: int, perf: bool = True) -> None:
        """Close the perf window at `step` (if `perf`) and emit the metrics gathered since the last emission."""
        start = time.perf_counter_ns()
        if perf:
            self.ctx.perf(step)
            self.window_start = step
        values = self.metric_values()
        self.ctx.metrics(step, values)
        if self.tb is not None:
            for name, value in values.items():
                self.tb.add_scalar(name, value, step)
            self.tb.flush()
        self._schedule(step)
        self.ctx.timer.add("log", time.perf_counter_ns() - start)

    def _schedule(self, step: int) -> None:
        self.next_step = next_multiple(step, self.every_steps)
        self.deadline = time.monotonic() + self.every_seconds


class SaveCheckpoints(BaseCallback):
    """A checkpoint of `state()` every `checkpoint.every_steps` env steps (0: none on the way) and one when
    learning ends. `between_rollouts`: take the periodic ones when a rollout starts, not at a vec-env step."""

    def __init__(self, ctx: RunContext, state: Callable[[], dict[str, Any]], between_rollouts: bool) -> None:
        super().__init__()
        self.ctx = ctx
        self.state = state
        self.every: int = ctx.cfg["checkpoint.every_steps"]
        self.between_rollouts = between_rollouts
        self.next_step = 0

    def _on_training_start(self) -> None:
        self.next_step = next_multiple(self.model.num_timesteps, self.every) if self.every else 0

    def _on_step(self) -> bool:
        if not self.between_rollouts:
            self._save_if_due()
        return True

    def _on_rollout_start(self) -> None:
        if self.between_rollouts:
            self._save_if_due()

    def _on_training_end(self) -> None:
        self.ctx.save(self.model.num_timesteps, self.state())

    def _save_if_due(self) -> None:
        step = self.model.num_timesteps
        if self.next_step and step >= self.next_step:
            self.ctx.save(step, self.state())
            self.next_step = next_multiple(step, self.every)


class RunCallbacks(CallbackList):
    """SB3's CallbackList, except that a callback returning False ends the vec-env step there: the ones
    after it do not run at the step a run stops at (their last emission and checkpoint follow in
    `on_training_end`)."""

    def _on_step(self) -> bool:
        return all(callback.on_step() for callback in self.callbacks)


def run_callbacks(ctx: RunContext, metric_values: Callable[[], dict[str, float]],
                  checkpoint_state: Callable[[], dict[str, Any]], *, between_rollouts: bool = False,
                  trainer_callbacks: Sequence[BaseCallback] = ()) -> RunCallbacks:
    """A run's callbacks in their order: the stop check first, then the trainer's own (e.g. a schedule),
    the emission, and the checkpoints (so the last metrics go out before the last checkpoint is written)."""
    return RunCallbacks([StopOnRequest(ctx.stop), *trainer_callbacks, EmitEvents(ctx, metric_values),
                         SaveCheckpoints(ctx, checkpoint_state, between_rollouts)])
