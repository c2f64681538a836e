"""What the SB3-based trainers (engine.ppo, engine.dqn) share around SB3's own `learn()`: the run
callback skeleton (perf windows, metrics, TensorBoard, checkpoints, stop requests), the start banner
and set-up notes, checkpoint validation, and `torch.compile` with an eager fallback.

Each trainer keeps what is its own: how it builds its model, which metrics it gathers, what its
checkpoint holds. Nothing here knows PPO or DQN; nothing here writes run files except through the
RunContext.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from engine.context import RunContext, TorchSetup, setup_torch, versions
from engine.errors import UsageError
from engine.profiles import ResolvedConfig

# Checkpoint keys every trainer writes: what the network's shapes follow from.
NETWORK_KEYS: Mapping[str, type] = {"format": str, "env": str, "net_arch": list, "obs_size": int,
                                    "num_actions": int}


class RunCallback(BaseCallback):
    """Every `log.every_steps` env steps: a perf window (`ctx.perf`) and the trainer's metrics
    (`ctx.metrics`, TensorBoard in `tb/` when `log.tensorboard`); every `checkpoint.every_steps`: a
    checkpoint; a stop request (`ctx.stop`) ends `learn()` at the next env step.

    Subclasses give `metric_values()` and `checkpoint_state()`. Checkpoints are taken in `_on_step`
    unless `SAVE_BETWEEN_ROLLOUTS` (on-policy trainers save when a rollout starts, after an update)."""

    SAVE_BETWEEN_ROLLOUTS = False

    def __init__(self, ctx: RunContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.log_every = ctx.cfg["log.every_steps"]
        self.ckpt_every = ctx.cfg["checkpoint.every_steps"]
        self.next_log = self.next_ckpt = 0
        self.last_window_step = 0
        self.tb: Any = None
        if ctx.cfg["log.tensorboard"]:
            from torch.utils.tensorboard import SummaryWriter  # only runs that write TensorBoard pay for it

            self.tb = SummaryWriter(log_dir=str(ctx.run.tb))

    @abstractmethod
    def metric_values(self) -> dict[str, float]:
        """The metrics gathered since the last emission."""

    @abstractmethod
    def checkpoint_state(self) -> dict[str, Any]:
        """Everything a resume needs (tensors, numbers, strings, lists, dicts)."""

    @staticmethod
    def _next_multiple(step: int, every: int) -> int:
        return (step // every + 1) * every

    def _on_training_start(self) -> None:
        step = self.model.num_timesteps
        self.ctx.timer.restart(step)
        self.last_window_step = step
        self.next_log = self._next_multiple(step, self.log_every)
        self.next_ckpt = self._next_multiple(step, self.ckpt_every) if self.ckpt_every else 0

    def _on_step(self) -> bool:
        if self.ctx.stop:
            return False
        step = self.model.num_timesteps
        if step >= self.next_log:
            self.emit(step)
            self.next_log = self._next_multiple(step, self.log_every)
        else:
            self.ctx.progress(step)
        if not self.SAVE_BETWEEN_ROLLOUTS:
            self._save_if_due(step)
        return True

    def _on_rollout_start(self) -> None:
        if self.SAVE_BETWEEN_ROLLOUTS:
            self._save_if_due(self.model.num_timesteps)

    def _save_if_due(self, step: int) -> None:
        if self.next_ckpt and step >= self.next_ckpt:
            self.save(step)
            self.next_ckpt = self._next_multiple(step, self.ckpt_every)

    def emit(self, step: int, perf: bool = True) -> None:
        """Close the perf window at `step` (if `perf`) and emit the metrics gathered since the last one."""
        start = time.perf_counter_ns()
        if perf:
            self.ctx.perf(step)
            self.last_window_step = step
        values = self.metric_values()
        self.ctx.metrics(step, values)
        if self.tb is not None:
            for name, value in values.items():
                self.tb.add_scalar(name, value, step)
            self.tb.flush()
        self.ctx.timer.add("log", time.perf_counter_ns() - start)

    def save(self, step: int) -> None:
        self.ctx.save(step, self.checkpoint_state())

    def finish(self) -> None:
        """Emit the last metrics (a window closed at this very step holds no steps, so no perf then) and
        save the final checkpoint."""
        step = self.model.num_timesteps
        self.emit(step, perf=step > self.last_window_step)
        self.save(step)
        if self.tb is not None:
            self.tb.close()


def start_run(ctx: RunContext, algo_line: str, resume_step: int, details: Mapping[str, str]) -> TorchSetup:
    """Set torch up, print the start banner (common lines, then the trainer's `details`) and log each
    CUDA switch's fate."""
    cfg = ctx.cfg
    torch_setup = setup_torch(cfg)
    ver = versions()
    ctx.banner({
        "algo": algo_line,
        "versions": " ".join(f"{k}={v}" for k, v in ver.items()),
        "device": f"{torch_setup.device} (threads {torch.get_num_threads()}, amp {torch_setup.amp}, "
                  f"compile {torch_setup.compile})",
        "profile": cfg.profile,
        "steps": f"{cfg['run.total_steps']:,}" + (f" (resuming at {resume_step:,})" if resume_step else ""),
        "seed": cfg["run.seed"],
        **details,
        "logging": f"every {cfg['log.every_steps']:,} steps, timing {cfg['log.timing']}, "
                   f"tensorboard {cfg['log.tensorboard']}, checkpoint every {cfg['checkpoint.every_steps']:,}",
    })
    for note in torch_setup.notes:
        ctx.log("info", note)
    return torch_setup


def learn(model: BaseAlgorithm, callback: RunCallback, ctx: RunContext, done: int, **learn_kwargs: Any) -> str:
    """Run SB3's `learn()` for the steps left (none left: only the final emission and checkpoint), then
    `callback.finish()`. Returns "stopped" or "finished"."""
    remaining = ctx.cfg["run.total_steps"] - done
    if remaining > 0:
        model.learn(remaining, callback=callback, reset_num_timesteps=done == 0, **learn_kwargs)
    else:
        ctx.log("info", f"nothing to train: {done:,} of {ctx.cfg['run.total_steps']:,} steps already done")
        callback.init_callback(model)
        callback.last_window_step = done
    callback.finish()
    return "stopped" if ctx.stop else "finished"


def network_description(model: BaseAlgorithm, cfg: ResolvedConfig, net_arch_key: str) -> dict[str, Any]:
    """What the networks' shapes follow from: the game, the hidden layers, observation and action sizes."""
    return {"env": cfg["run.env"], "net_arch": list(cfg[net_arch_key]),
            "obs_size": int(model.observation_space.shape[0]),  # type: ignore[index]
            "num_actions": int(model.action_space.n)}  # type: ignore[attr-defined]


def check_checkpoint(state: Mapping[str, Any], keys: Mapping[str, type | tuple[type, ...]], fmt: str,
                     build: Callable[[int, int, list[int]], torch.nn.Module], weights: Sequence[str],
                     cfg: ResolvedConfig | None, net_arch_key: str) -> None:
    """UsageError (one line) unless `state` has every key of `keys` with its type, format `fmt`, and state
    dicts under `weights` that fit the network `build(obs_size, num_actions, net_arch)`; with `cfg`, also
    unless it was trained on the same game with the same hidden layers."""
    missing = [k for k in keys if k not in state]
    if missing:
        raise UsageError(f"checkpoint is not a {fmt} checkpoint: missing {', '.join(missing)}")
    wrong = [k for k, t in keys.items() if not isinstance(state[k], t) or isinstance(state[k], bool)]
    if wrong:
        raise UsageError(f"checkpoint has values of the wrong type for: {', '.join(wrong)}")
    if state["format"] != fmt:
        raise UsageError(f"checkpoint format {state['format']!r} is not {fmt!r}")
    try:
        expected = build(state["obs_size"], state["num_actions"], state["net_arch"]).state_dict()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise UsageError(f"checkpoint network description does not build ({exc})") from None
    for which in weights:
        got = state[which]
        if set(got) != set(expected):
            raise UsageError(f"checkpoint {which} does not match the network: keys differ "
                             f"({sorted(set(got) ^ set(expected))[:3]})")
        for name, tensor in expected.items():
            if not isinstance(got[name], torch.Tensor) or got[name].shape != tensor.shape:
                shape = tuple(got[name].shape) if isinstance(got[name], torch.Tensor) else type(got[name])
                raise UsageError(f"checkpoint {which}.{name} has shape {shape}; the network needs "
                                 f"{tuple(tensor.shape)}")
    if cfg is not None:
        check_fits(state, {"env": cfg["run.env"], "net_arch": list(cfg[net_arch_key])})


def check_fits(state: Mapping[str, Any], description: Mapping[str, Any]) -> None:
    """UsageError unless the checkpoint's network description equals this run's."""
    for key, value in description.items():
        if state[key] != value:
            raise UsageError(f"checkpoint {key} = {state[key]!r} does not fit this run ({key} = {value!r})")


def compile_modules(modules: Iterable[torch.nn.Module], trial: Callable[[], object], ctx: RunContext,
                    what: str) -> bool:
    """`torch.compile` `modules` in place (state_dict keys unchanged) and run `trial()`; if it fails,
    undo the compilation, log why and run eagerly. Returns whether compiled modules are in use."""
    networks = list(modules)
    for net in networks:
        net.compile()
    try:
        with torch.no_grad():
            trial()
    except Exception as exc:  # any backend failure means the same: fall back to eager
        for net in networks:
            net._compiled_call_impl = None  # nn.Module.compile's hook; None restores eager calls
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        ctx.log("warning", f"torch.compile failed ({why}); running the {what} eagerly")
        return False
    ctx.log("info", f"torch.compile: {what} compiled")
    return True
