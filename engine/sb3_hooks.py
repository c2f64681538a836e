"""Instrumentation of an SB3 on-policy run from the outside: phase timing, AMP, gradient norms, outcomes
and logger capture, without forking SB3's `learn()`, `collect_rollouts()` or `train()`.

- `PolicyPhases` replaces `policy.forward` and `policy.evaluate_actions` on the policy *instance* with
  thin wrappers (optional timing into a `PerfTimer`, optional `torch.autocast`) and adds an optimizer
  step post-hook. Phases, in ns added to the timer:
    `action`    one `policy.forward` call during a rollout (features, both heads, masked sampling of the
                action, log-prob; the bf16 autocast and the cast of outputs back to float32 when AMP is on).
                Not included: the obs -> tensor copy and fetching the masks before it.
    `train_fwd` one `policy.evaluate_actions` call during `train()` (forward of a minibatch, masked
                log-probs, entropy, values).
    `train_bwd` from the end of that `evaluate_actions` call to the end of `optimizer.step()`: the loss
                terms and SB3's per-minibatch `.item()` logging, approx KL, `zero_grad`, `backward`, the
                gradient-norm monitor, `clip_grad_norm_`, and the Adam step.
- `InstrumentedVecEnv` times `step_wait`: `enemy_turn` is the scripted opponent's turns (the core's own
  nanosecond counter, `enemy_turn_ns`, read before and after), `env_step` the rest of the call (the
  batched core step without those turns, plus the VecEnv's info building). It counts ended episodes
  and keeps the last N outcomes (+1 win / 0 draw / -1 loss, read from the sign of the final reward),
  all with numpy on whole arrays, never a loop over games.
- `GradNormMonitor`: the global L2 gradient norm before clipping (computed when the last parameter's
  `post_accumulate_grad` hook fires, i.e. when backward is complete and nothing has clipped yet) and
  after clipping (an optimizer step pre-hook, i.e. after `clip_grad_norm_`). Norms are summed on the
  device and read (one sync) only when logged.
- `MetricCapture`: an SB3 `KVWriter` that keeps the `rollout/` and `train/` values of each logger dump,
  renamed to trainctl's metric names.

Nothing here writes run files or prints; the trainer decides what to emit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.logger import KVWriter
from stable_baselines3.common.vec_env import VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from engine.perf import PerfTimer
from envs.batched_vec_env import BatchedVecEnv


def _as_float32(outputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """Floating tensors back to float32 (autocast may hand back bf16, which numpy cannot hold)."""
    return tuple(o.float() if isinstance(o, torch.Tensor) and o.is_floating_point() else o for o in outputs)


class PolicyPhases:
    """Time (and optionally autocast) a policy's rollout forward and its train-time evaluation.

    `autocast_device` ("cuda", or "cpu" in tests) turns on bf16 autocast around both calls; None
    leaves the numerics alone. With the timer disabled and no autocast, nothing is wrapped at all.
    """

    def __init__(self, policy: torch.nn.Module, optimizer: torch.optim.Optimizer, timer: PerfTimer,
                 autocast_device: str | None = None) -> None:
        self.timer = timer
        self.autocast_device = autocast_device
        self._bwd_start_ns = 0
        timed = timer.enabled
        if not timed and autocast_device is None:
            return
        target: Any = policy  # an SB3 actor-critic policy: has forward() and evaluate_actions()
        # Instance attributes shadow the class methods: nn.Module.__call__ looks up `self.forward`.
        target.forward = self._wrap(target.forward, "action", timed)
        target.evaluate_actions = self._wrap(target.evaluate_actions, "train_fwd", timed)
        if timed:
            optimizer.register_step_post_hook(self._after_optimizer_step)

    def _autocast(self) -> AbstractContextManager[Any]:
        if self.autocast_device is None:
            return nullcontext()
        return torch.autocast(self.autocast_device, dtype=torch.bfloat16)

    def _wrap(self, fn: Callable[..., Any], phase: str, timed: bool) -> Callable[..., Any]:
        cast = self.autocast_device is not None
        timer = self.timer
        marks_bwd_start = phase == "train_fwd"

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter_ns() if timed else 0
            with self._autocast():
                out = fn(*args, **kwargs)
            if cast:
                out = _as_float32(out)
            if timed:
                end = time.perf_counter_ns()
                timer.add(phase, end - start)
                if marks_bwd_start:
                    self._bwd_start_ns = end
            return out

        return wrapped

    def _after_optimizer_step(self, _optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        if self._bwd_start_ns:
            self.timer.add("train_bwd", time.perf_counter_ns() - self._bwd_start_ns)
            self._bwd_start_ns = 0


class GradNormMonitor:
    """Mean global L2 gradient norm per optimizer step, before and after clipping.

    Assumes one backward per optimizer step and that every trainable parameter receives a gradient
    in each backward (true of SB3's actor-critic MLP policies); a step where some parameter got no
    gradient contributes no pre-clip figure.
    """

    def __init__(self, parameters: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer) -> None:
        self._params = [p for p in parameters if p.requires_grad]
        self._grads_ready = 0
        self._pre_sum: torch.Tensor | float = 0.0
        self._pre_steps = 0
        self._post_sum: torch.Tensor | float = 0.0
        self._post_steps = 0
        for p in self._params:
            p.register_post_accumulate_grad_hook(self._on_grad_ready)
        optimizer.register_step_pre_hook(self._before_optimizer_step)

    def _norm(self) -> torch.Tensor:
        return torch.nn.utils.get_total_norm([p.grad for p in self._params if p.grad is not None]).detach()

    def _on_grad_ready(self, _param: torch.Tensor) -> None:
        self._grads_ready += 1
        if self._grads_ready == len(self._params):
            self._pre_sum = self._pre_sum + self._norm()
            self._pre_steps += 1

    def _before_optimizer_step(self, _optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        self._post_sum = self._post_sum + self._norm()
        self._post_steps += 1
        self._grads_ready = 0

    def take(self) -> dict[str, float]:
        """{"train/grad_norm_pre_clip", "train/grad_norm_post_clip"}: means since the last take (or {})."""
        values = {}
        if self._pre_steps:
            values["train/grad_norm_pre_clip"] = float(self._pre_sum) / self._pre_steps
        if self._post_steps:
            values["train/grad_norm_post_clip"] = float(self._post_sum) / self._post_steps
        self._pre_sum, self._pre_steps, self._post_sum, self._post_steps = 0.0, 0, 0.0, 0
        return values


class OutcomeWindow:
    """The outcomes of the last `capacity` games as int8 (+1 win, 0 draw, -1 loss), in a ring buffer."""

    def __init__(self, capacity: int = 1000) -> None:
        self._ring = np.zeros(capacity, dtype=np.int8)
        self._next = 0
        self.count = 0
        self.total = 0

    def add(self, outcomes: np.ndarray) -> None:
        """Append int8-convertible outcomes, oldest first (only the last `capacity` can be kept)."""
        capacity = self._ring.size
        latest = outcomes[-capacity:]
        slots = (self._next + np.arange(latest.size)) % capacity
        self._ring[slots] = latest
        self._next = int((self._next + latest.size) % capacity)
        self.count = min(self.count + latest.size, capacity)
        self.total += int(outcomes.size)

    def rates(self) -> dict[str, float]:
        """{"rollout/win_rate", "rollout/draw_rate", "rollout/loss_rate"} over the kept games (or {})."""
        if not self.count:
            return {}
        kept = self._ring[: self.count]
        return {"rollout/win_rate": float(np.count_nonzero(kept == 1)) / self.count,
                "rollout/draw_rate": float(np.count_nonzero(kept == 0)) / self.count,
                "rollout/loss_rate": float(np.count_nonzero(kept == -1)) / self.count}


class InstrumentedVecEnv(VecEnvWrapper):
    """A VecEnv wrapper over a game's `BatchedVecEnv` that times `step_wait` (`enemy_turn` from the core's
    counter, `env_step` the rest), counts ended episodes into the timer's window and records each ended
    game's outcome (the sign of its final reward; rewards are only given at the end) in `outcomes`.
    Masks and attributes pass through to the wrapped env."""

    def __init__(self, venv: BatchedVecEnv, timer: PerfTimer, outcome_window: int = 1000) -> None:
        super().__init__(venv)
        self.game_env = venv
        self.timer = timer
        self.outcomes = OutcomeWindow(outcome_window)

    def reset(self) -> np.ndarray:
        return self.venv.reset()  # type: ignore[return-value]

    def step_wait(self) -> VecEnvStepReturn:
        if self.timer.enabled:
            enemy_before = self.game_env.enemy_turn_ns
            start = time.perf_counter_ns()
            result = self.venv.step_wait()
            elapsed = time.perf_counter_ns() - start
            enemy = self.game_env.enemy_turn_ns - enemy_before
            self.timer.add("enemy_turn", enemy)
            self.timer.add("env_step", max(elapsed - enemy, 0))
        else:
            result = self.venv.step_wait()
        _obs, rewards, dones, _infos = result
        ended = int(np.count_nonzero(dones))
        if ended:
            self.timer.count_episodes(ended)
            self.outcomes.add(np.sign(rewards[dones]).astype(np.int8))
        return result

    def action_masks(self) -> np.ndarray:
        return self.venv.action_masks()  # type: ignore[attr-defined]


class MetricCapture(KVWriter):
    """Keeps the `rollout/` and `train/` values of each SB3 logger dump under trainctl's names until
    `take()`; the time spent here is added to the timer's `log` phase."""

    # SB3 name -> (trainctl name, sign): SB3 logs the entropy *loss*, i.e. minus the mean entropy.
    RENAMES: Mapping[str, tuple[str, float]] = {
        "train/policy_gradient_loss": ("train/policy_loss", 1.0),
        "train/entropy_loss": ("train/entropy", -1.0),
        "train/learning_rate": ("train/lr", 1.0),
    }
    PREFIXES = ("rollout/", "train/")

    def __init__(self, timer: PerfTimer) -> None:
        self.timer = timer
        self._pending: dict[str, float] = {}

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        start = time.perf_counter_ns()
        for key, value in key_values.items():
            if not key.startswith(self.PREFIXES) or isinstance(value, str):
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            name, sign = self.RENAMES.get(key, (key, 1.0))
            self._pending[name] = sign * number
        self.timer.add("log", time.perf_counter_ns() - start)

    def take(self) -> dict[str, float]:
        """The values captured since the last take (latest value of each name)."""
        values, self._pending = self._pending, {}
        return values

    def close(self) -> None:
        """Nothing to release: values live in memory until taken."""
