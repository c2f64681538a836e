"""Instrumentation of SB3 trainers from the outside: phase timing, AMP, gradient norms, outcomes and
logger capture, without forking SB3's `learn()`, `collect_rollouts()` or `train()`; and what the
`[PERF]` phases mean, in every trainer.

- `PolicyPhases` (on-policy trainers) replaces `policy.forward` and `policy.evaluate_actions` on the
  policy *instance* with thin wrappers (optional timing into a `PerfTimer`, optional bf16 autocast) and
  adds an optimizer step post-hook. `action` is one `policy.forward` call during a rollout (features,
  both heads, masked sampling, log-prob, the cast of outputs back to float32 under AMP); `train_fwd` one
  `policy.evaluate_actions` call in `train()` (masked log-probs, entropy and values of a minibatch);
  `train_bwd` runs from the end of that call to the end of `optimizer.step()` (the loss terms, SB3's
  per-minibatch approx KL and `.item()` logging, `zero_grad`, `backward`, the gradient-norm monitor,
  `clip_grad_norm_`, the Adam step).
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
- `OutcomeWindow`: the last N finished games of any trainer (outcome, plus the trainer's own columns).
- `bf16_autocast`: the one autocast every trainer's AMP goes through.

[PERF] phases: milliseconds per env step over a perf window; each is the same span in every trainer.
  `action`         choosing one vec-env step's actions from the observations and masks in hand: the
                   forward pass, the masked choice (sampling or argmax), exploration draws, and the cast
                   back to float32 under AMP. Fetching the masks from the VecEnv is not in it.
  `enemy_turn`     the scripted opponent's turns inside the env step (the core's own counter).
  `env_step`       the VecEnv's `step_wait` minus `enemy_turn`: our moves, rewards, masks, auto-reset,
                   the infos of ended games.
  `replay_sample`  the main thread's replay traffic: drawing a batch (or waiting for the one drawn
                   ahead) and handing its new priorities back. A trainer without replay has none.
  `train_fwd`      a gradient step's forward passes on its minibatch, up to the loss's inputs.
  `train_bwd`      the rest of that gradient step to the end of the optimizer step: the loss, backward,
                   gradient clipping, the optimizer step, the trainer's per-step statistics.
  `log`            reporting: capturing SB3's logger values, building and writing the perf and metric
                   events, their lines and TensorBoard.
In no phase (the gap between the phases' sum and 1000/sps): fetching the masks, SB3's per-step
bookkeeping (rollout- and replay-buffer writes, the callbacks' checks), GAE, minibatch slicing. One
difference is left: SB3's PPO turns the observations into a tensor before calling the policy, outside
`action`, while a DQN step does it inside (a view on the CPU, a copy to the device on CUDA). On CUDA no
phase is synchronised, so GPU work may be booked to a later phase.

Nothing here writes run files or prints; the trainer decides what to emit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.logger import KVWriter
from stable_baselines3.common.vec_env import VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from engine.perf import PerfTimer
from envs.batched_vec_env import BatchedVecEnv


def bf16_autocast(device_type: str | None) -> AbstractContextManager[Any]:
    """bf16 autocast on `device_type` ("cuda" under AMP; "cpu" exercises the same path in tests), or a
    context that changes nothing for None. Outputs may come back bf16: cast them before numpy sees them."""
    if device_type is None:
        return nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16)


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

    def _wrap(self, fn: Callable[..., Any], phase: str, timed: bool) -> Callable[..., Any]:
        cast = self.autocast_device is not None
        timer = self.timer
        marks_bwd_start = phase == "train_fwd"

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter_ns() if timed else 0
            with bf16_autocast(self.autocast_device):
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

    def add(self, pre_clip: float, post_clip: float) -> None:
        """One optimizer step's norms, from an update that runs outside torch (engine.cpu_ppo)."""
        self._pre_sum, self._post_sum = self._pre_sum + pre_clip, self._post_sum + post_clip
        self._pre_steps += 1
        self._post_steps += 1

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
    """The last `capacity` finished games, one row each in a float64 ring buffer filled from whole arrays:
    column `outcome` (+1 win, 0 draw, -1 loss) and the trainer's own `columns` (e.g. a game's return,
    length or end-reason code). `count` games are kept (at most `capacity`); `total` were ever added."""

    OUTCOME_RATES: Mapping[int, str] = {1: "rollout/win_rate", 0: "rollout/draw_rate", -1: "rollout/loss_rate"}

    def __init__(self, capacity: int = 1000, columns: Sequence[str] = ()) -> None:
        self.columns = ("outcome", *columns)
        self._column = {name: i for i, name in enumerate(self.columns)}
        self._ring = np.zeros((capacity, len(self.columns)), dtype=np.float64)
        self._next = 0
        self.count = 0
        self.total = 0

    def add(self, outcomes: np.ndarray, **columns: np.ndarray) -> None:
        """Append k games, oldest first: `outcomes` [k] and a [k] array for each of the window's own
        columns, by name (only the last `capacity` games can be kept). ValueError for a missing or
        unknown column."""
        if set(columns) != set(self.columns[1:]):
            raise ValueError(f"outcome window columns are {', '.join(self.columns[1:]) or 'none'}; "
                             f"got {', '.join(columns) or 'none'}")
        games = len(outcomes)
        capacity = self._ring.shape[0]
        kept = min(games, capacity)
        slots = (self._next + np.arange(kept)) % capacity
        self._ring[slots, 0] = outcomes[games - kept:]
        for name, values in columns.items():
            self._ring[slots, self._column[name]] = values[games - kept:]
        self._next = int((self._next + kept) % capacity)
        self.count = min(self.count + kept, capacity)
        self.total += games

    def kept(self, column: str) -> np.ndarray:
        """float64 [count]: `column` of the kept games (in ring order, not by age)."""
        return self._ring[: self.count, self._column[column]]

    def shares(self, column: str, names: Mapping[int, str]) -> dict[str, float]:
        """{names[code]: the share of kept games whose `column` is code} (or {} before any game)."""
        if not self.count:
            return {}
        values = self.kept(column)
        return {name: float(np.count_nonzero(values == code)) / self.count for code, name in names.items()}

    def means(self, names: Mapping[str, str]) -> dict[str, float]:
        """{metric: the mean of its column over the kept games} for `names` = {metric: column} (or {})."""
        if not self.count:
            return {}
        return {metric: float(self.kept(column).mean()) for metric, column in names.items()}

    def rates(self) -> dict[str, float]:
        """{"rollout/win_rate", "rollout/draw_rate", "rollout/loss_rate"} over the kept games (or {})."""
        return self.shares("outcome", self.OUTCOME_RATES)


class InstrumentedVecEnv(VecEnvWrapper):
    """A VecEnv wrapper over a game's `BatchedVecEnv` that times `step_wait` (`enemy_turn` from the core's
    counter, `env_step` the rest), counts ended episodes into the timer's window and keeps each ended
    game in `outcomes`. By default a game's outcome is the sign of its final reward (rewards are only
    given at the end); a trainer that keeps more of each game, or reads outcomes elsewhere, overrides
    `record(ended, rewards, dones)`. Masks and attributes pass through to the wrapped env."""

    def __init__(self, venv: BatchedVecEnv, timer: PerfTimer, outcome_window: int = 1000,
                 columns: Sequence[str] = ()) -> None:
        super().__init__(venv)
        self.game_env = venv
        self.timer = timer
        self.outcomes = OutcomeWindow(outcome_window, columns)

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
        ended = np.flatnonzero(dones)
        if ended.size:
            self.timer.count_episodes(int(ended.size))
            self.record(ended, rewards, dones)
        return result

    def record(self, ended: np.ndarray, rewards: np.ndarray, dones: np.ndarray) -> None:
        """Keep the games `ended` (indices into this step's `rewards` and `dones`) in `outcomes`."""
        self.outcomes.add(np.sign(rewards[ended]).astype(np.int8))

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
