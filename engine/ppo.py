"""The PPO trainer: sb3-contrib `MaskablePPO` against a scripted opponent on a game's batched VecEnv.

`train(ctx, resume)` follows the protocol of engine.trainers. Configuration comes from the resolved
config: `ppo.*` (hyperparameters, with linear schedules `learning_rate -> learning_rate_end` and
`ent_coef -> ent_coef_end` over `run.total_steps`), `env.*` (game count, opponent, scoring), `torch.*`
(device, AMP, compile, threads via engine.context.setup_torch), `log.*`, `checkpoint.*`, `run.*`.

SB3 runs unmodified; we attach from the outside (engine.sb3_hooks): a VecEnv wrapper (env_step timing,
episode counts, win/draw/loss of the last 1000 games), wrappers on the policy instance (action,
train_fwd timing; bf16 autocast on CUDA), optimizer hooks (train_bwd timing, gradient norms before
and after clipping), a `KVWriter` capturing SB3's logger values, and `RunCallback` below, which every
`log.every_steps` env steps closes a perf window (`ctx.perf`), emits the metrics (`ctx.metrics`, and
TensorBoard in `tb/` when `log.tensorboard`), sets the entropy coefficient before each update, saves
checkpoints every `checkpoint.every_steps`, and stops the run when `ctx.stop` is set. `log` time is
the capture of SB3's logger dumps plus the emission of perf/metric events, lines and TensorBoard.

Phases (ms per env step in each perf window; exact boundaries in engine.sb3_hooks): `action` =
`policy.forward` during a rollout; `env_step` = the VecEnv's `step_wait` (core step + end-of-game
infos); `train_fwd` = `evaluate_actions` on a minibatch; `train_bwd` = from the end of that call to the
end of `optimizer.step()` (losses, backward, clipping, Adam); `log` = capturing SB3's logger dumps and
emitting events, lines and TensorBoard. In no phase: obs/mask conversion, SB3's per-step bookkeeping,
rollout-buffer writes, GAE and minibatch sampling (the gap between the phases' sum and 1000/sps).

Stopping (SIGINT/SIGTERM): the callback returns False at the next vec-env step, so SB3 ends `learn()`
without training on the unfinished rollout; the policy is the one after the last complete update and
the checkpoint's step counts every env step taken. Checkpoints are plain dicts of tensors and numbers
(loadable with `weights_only=True`, no SB3 zip); games in flight are not saved, so a resumed run deals
fresh games (seeded `run.seed + steps done`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import LinearSchedule

import envs
from engine.context import RunContext, TorchSetup, setup_torch, versions
from engine.errors import UsageError
from engine.perf import PerfTimer
from engine.profiles import ResolvedConfig
from engine.sb3_hooks import GradNormMonitor, InstrumentedVecEnv, MetricCapture, PolicyPhases

STATE_FORMAT = "trainctl.ppo/1"
OUTCOME_WINDOW = 1000
# Checkpoint key -> the type its value must have (check_resume).
STATE_KEYS: Mapping[str, type | tuple[type, ...]] = {
    "format": str, "env": str, "net_arch": list, "obs_size": int, "num_actions": int,
    "policy": dict, "optimizer": dict, "num_timesteps": int, "n_updates": int, "total_steps": int,
    "progress_remaining": float, "ent_coef": float, "rng_torch": torch.Tensor, "rng_numpy": dict,
}


# -- building -----------------------------------------------------------------------------------------
def build_policy(obs_size: int, num_actions: int, net_arch: list[int]) -> MaskableActorCriticPolicy:
    """A bare MaskablePPO MLP policy (separate pi/vf nets of `net_arch`) for loading a checkpoint."""
    return MaskableActorCriticPolicy(
        spaces.Box(-np.inf, np.inf, (obs_size,), np.float32), spaces.Discrete(num_actions),
        lambda _progress: 0.0, net_arch={"pi": list(net_arch), "vf": list(net_arch)})


def policy_from_checkpoint(state: Mapping[str, Any]) -> MaskableActorCriticPolicy:
    """The trained policy of a PPO checkpoint (after `check_resume`), on CPU, in eval mode."""
    policy = build_policy(state["obs_size"], state["num_actions"], state["net_arch"])
    policy.load_state_dict(state["policy"])
    policy.set_training_mode(False)
    return policy


def _linear(start: float, end: float) -> LinearSchedule:
    """start at progress_remaining = 1, end at 0."""
    return LinearSchedule(float(start), float(end), 1.0)


def make_env(cfg: ResolvedConfig, timer: PerfTimer, seed: int) -> InstrumentedVecEnv:
    """The run's game VecEnv (games seeded `seed`, `seed + 1`, ...), wrapped for timing and outcomes."""
    e = cfg.section("env")
    try:
        venv = envs.make_vec(cfg["run.env"], e["num_envs"], opponent=e["opponent"], seed=seed, scoring=e["scoring"])
    except ValueError as exc:  # unknown game, opponent or scoring: the user's config
        raise UsageError(f"env: {exc}") from None
    return InstrumentedVecEnv(venv, timer, OUTCOME_WINDOW)


def make_model(cfg: ResolvedConfig, env: InstrumentedVecEnv, device: torch.device) -> MaskablePPO:
    """MaskablePPO with the run's `ppo.*` settings (separate pi/vf MLPs of `ppo.net_arch`)."""
    p = cfg.section("ppo")
    return MaskablePPO(
        "MlpPolicy", env,
        learning_rate=_linear(p["learning_rate"], p["learning_rate_end"]),
        n_steps=p["n_steps"], batch_size=p["batch_size"], n_epochs=p["n_epochs"],
        gamma=p["gamma"], gae_lambda=p["gae_lambda"], clip_range=p["clip_range"],
        ent_coef=float(p["ent_coef"]), vf_coef=p["vf_coef"], max_grad_norm=p["max_grad_norm"],
        target_kl=p["target_kl"] or None, stats_window_size=OUTCOME_WINDOW,
        policy_kwargs={"net_arch": {"pi": list(p["net_arch"]), "vf": list(p["net_arch"])}},
        seed=cfg["run.seed"], device=device, verbose=0,
    )


def compile_policy(model: MaskablePPO, env: InstrumentedVecEnv, ctx: RunContext) -> bool:
    """`torch.compile` the policy's networks in place (state_dict keys unchanged); on failure of a trial
    forward, undo it, log why and run eagerly. Returns whether compiled networks are in use."""
    policy = model.policy
    networks = [policy.mlp_extractor, policy.action_net, policy.value_net]
    for net in networks:
        net.compile()
    obs = torch.as_tensor(env.reset(), device=model.device)
    masks = env.action_masks()
    try:
        with torch.no_grad():
            policy(obs, action_masks=masks)
    except Exception as exc:  # any backend failure means the same: fall back to eager
        for net in networks:
            net._compiled_call_impl = None  # nn.Module.compile's hook; None restores eager calls
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        ctx.log("warning", f"torch.compile failed ({why}); running the networks eagerly")
        return False
    ctx.log("info", "torch.compile: policy networks compiled")
    return True


# -- checkpoint state ---------------------------------------------------------------------------------
def _numpy_rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _restore_numpy_rng(state: Mapping[str, Any]) -> None:
    np.random.set_state((state["kind"], state["keys"].numpy().astype(np.uint32), state["pos"],
                         state["has_gauss"], state["cached_gaussian"]))


def _network_description(model: MaskablePPO, cfg: ResolvedConfig) -> dict[str, Any]:
    """What the policy's shapes follow from: the game, the hidden layers, observation and action sizes."""
    return {"env": cfg["run.env"], "net_arch": list(cfg["ppo.net_arch"]),
            "obs_size": int(model.observation_space.shape[0]),  # type: ignore[index]
            "num_actions": int(model.action_space.n)}  # type: ignore[attr-defined]


def checkpoint_state(model: MaskablePPO, cfg: ResolvedConfig) -> dict[str, Any]:
    """Everything a resume needs, as tensors, numbers, strings, lists and dicts."""
    return {
        "format": STATE_FORMAT,
        **_network_description(model, cfg),
        "policy": model.policy.state_dict(),
        "optimizer": model.policy.optimizer.state_dict(),
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(model._n_updates),
        "total_steps": int(cfg["run.total_steps"]),
        "progress_remaining": float(max(0.0, 1.0 - model.num_timesteps / cfg["run.total_steps"])),
        "ent_coef": float(model.ent_coef),
        "rng_torch": torch.get_rng_state(),
        "rng_numpy": _numpy_rng_state(),
    }


def check_resume(state: Mapping[str, Any]) -> None:
    """UsageError (one line) unless `state` is a complete PPO checkpoint whose weights fit its network."""
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise UsageError(f"checkpoint is not a PPO checkpoint: missing {', '.join(missing)}")
    wrong = [k for k, t in STATE_KEYS.items() if not isinstance(state[k], t) or isinstance(state[k], bool)]
    if wrong:
        raise UsageError(f"checkpoint has values of the wrong type for: {', '.join(wrong)}")
    if state["format"] != STATE_FORMAT:
        raise UsageError(f"checkpoint format {state['format']!r} is not {STATE_FORMAT!r}")
    try:
        expected = build_policy(state["obs_size"], state["num_actions"], state["net_arch"]).state_dict()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise UsageError(f"checkpoint network description does not build ({exc})") from None
    weights = state["policy"]
    if set(weights) != set(expected):
        raise UsageError(f"checkpoint weights do not match the network: keys differ "
                         f"({sorted(set(weights) ^ set(expected))[:3]})")
    for name, tensor in expected.items():
        if not isinstance(weights[name], torch.Tensor) or weights[name].shape != tensor.shape:
            got = tuple(weights[name].shape) if isinstance(weights[name], torch.Tensor) else type(weights[name])
            raise UsageError(f"checkpoint weight {name} has shape {got}; the network needs {tuple(tensor.shape)}")


def _check_fits_run(state: Mapping[str, Any], cfg: ResolvedConfig, model: MaskablePPO) -> None:
    check_resume(state)
    for key, value in _network_description(model, cfg).items():
        if state[key] != value:
            raise UsageError(f"checkpoint {key} = {state[key]!r} does not fit this run ({key} = {value!r})")


def _restore(model: MaskablePPO, state: Mapping[str, Any]) -> None:
    model.policy.load_state_dict(state["policy"])
    model.policy.optimizer.load_state_dict(state["optimizer"])
    model.num_timesteps = state["num_timesteps"]
    model._n_updates = state["n_updates"]
    model.ent_coef = state["ent_coef"]
    torch.set_rng_state(state["rng_torch"])
    _restore_numpy_rng(state["rng_numpy"])


# -- the run ------------------------------------------------------------------------------------------
class RunCallback(BaseCallback):
    """Perf windows, metrics, entropy schedule, checkpoints and stop requests (see the module docstring)."""

    def __init__(self, ctx: RunContext, env: InstrumentedVecEnv, capture: MetricCapture,
                 grad_norms: GradNormMonitor, ent_coef: LinearSchedule) -> None:
        super().__init__()
        self.ctx = ctx
        self.vec_env = env
        self.capture = capture
        self.grad_norms = grad_norms
        self.ent_coef = ent_coef
        self.log_every = ctx.cfg["log.every_steps"]
        self.ckpt_every = ctx.cfg["checkpoint.every_steps"]
        self.next_log = self.next_ckpt = 0
        self.last_window_step = 0
        self.tb: Any = None
        if ctx.cfg["log.tensorboard"]:
            from torch.utils.tensorboard import SummaryWriter  # only runs that write TensorBoard pay for it

            self.tb = SummaryWriter(log_dir=str(ctx.run.tb))

    @property
    def ppo(self) -> MaskablePPO:
        return cast(MaskablePPO, self.model)

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
        return True

    def _on_rollout_start(self) -> None:
        # Called after the previous update: the policy now reflects every step taken.
        step = self.model.num_timesteps
        if self.next_ckpt and step >= self.next_ckpt:
            self.save(step)
            self.next_ckpt = self._next_multiple(step, self.ckpt_every)

    def _on_rollout_end(self) -> None:
        # SB3 updates its progress only after this returns; compute the same value for the coming update.
        progress_remaining = 1.0 - self.model.num_timesteps / self.model._total_timesteps
        self.ppo.ent_coef = float(self.ent_coef(max(0.0, progress_remaining)))

    def emit(self, step: int, perf: bool = True) -> None:
        """Close the perf window at `step` (if `perf`) and emit the metrics gathered since the last one."""
        start = time.perf_counter_ns()
        if perf:
            self.ctx.perf(step)
            self.last_window_step = step
        values = {**self.capture.take(), **self.vec_env.outcomes.rates(), **self.grad_norms.take(),
                  "train/ent_coef": float(self.ppo.ent_coef)}
        self.ctx.metrics(step, values)
        if self.tb is not None:
            for name, value in values.items():
                self.tb.add_scalar(name, value, step)
            self.tb.flush()
        self.ctx.timer.add("log", time.perf_counter_ns() - start)

    def save(self, step: int) -> None:
        self.ctx.save(step, checkpoint_state(self.ppo, self.ctx.cfg))

    def finish(self) -> None:
        """Flush the last update's logger values, close the last window, save the final checkpoint."""
        step = self.model.num_timesteps
        self.model.logger.dump(step)
        # A window closed at this very step holds no steps; the last update's metrics still go out.
        self.emit(step, perf=step > self.last_window_step)
        self.save(step)
        if self.tb is not None:
            self.tb.close()


def _banner(ctx: RunContext, cfg: ResolvedConfig, torch_setup: TorchSetup, resume_step: int) -> None:
    p, e = cfg.section("ppo"), cfg.section("env")
    ver = versions()
    ctx.banner({
        "algo": f"MaskablePPO (sb3-contrib {ver['sb3_contrib']}) on {cfg['run.env']} vs {e['opponent']} "
                f"({e['scoring']} scoring)",
        "versions": " ".join(f"{k}={v}" for k, v in ver.items()),
        "device": f"{torch_setup.device} (threads {torch.get_num_threads()}, amp {torch_setup.amp}, "
                  f"compile {torch_setup.compile})",
        "profile": cfg.profile,
        "steps": f"{cfg['run.total_steps']:,}" + (f" (resuming at {resume_step:,})" if resume_step else ""),
        "seed": cfg["run.seed"],
        "envs": f"num_envs={e['num_envs']} n_steps={p['n_steps']} (rollout {e['num_envs'] * p['n_steps']:,})",
        "update": f"batch_size={p['batch_size']} n_epochs={p['n_epochs']} net={p['net_arch']} "
                  f"gamma={p['gamma']} clip={p['clip_range']}",
        "schedules": f"lr {p['learning_rate']:g}->{p['learning_rate_end']:g} "
                     f"ent_coef {p['ent_coef']:g}->{p['ent_coef_end']:g}",
        "logging": f"every {cfg['log.every_steps']:,} steps, timing {cfg['log.timing']}, "
                   f"tensorboard {cfg['log.tensorboard']}, checkpoint every {cfg['checkpoint.every_steps']:,}",
    })


def train(ctx: RunContext, resume: dict[str, Any] | None) -> str:
    """Train until `run.total_steps` env steps or a stop request; returns "finished" or "stopped"."""
    cfg = ctx.cfg
    torch_setup = setup_torch(cfg)
    done = int(resume["num_timesteps"]) if resume else 0
    _banner(ctx, cfg, torch_setup, done)
    for note in torch_setup.notes:
        ctx.log("info", note)
    if cfg["env.subproc"]:
        ctx.log("warning", "env.subproc is ignored: the batched core steps every game in one in-process call, "
                        "so there is no IPC to spread over subprocesses")
    if torch_setup.device.type == "cuda" and cfg["torch.pin_memory"]:
        ctx.log("info", "torch.pin_memory has no effect on PPO: SB3's rollout buffer makes its own transfers")

    env = make_env(cfg, ctx.timer, cfg["run.seed"] + done)
    model = make_model(cfg, env, torch_setup.device)
    if resume is not None:
        _check_fits_run(resume, cfg, model)
        _restore(model, resume)
        env.seed(cfg["run.seed"] + done)  # fresh deals: the games in flight were not saved
    if torch_setup.compile:
        compile_policy(model, env, ctx)

    capture = MetricCapture(ctx.timer)
    model.set_logger(Logger(folder=None, output_formats=[capture]))
    PolicyPhases(model.policy, model.policy.optimizer, ctx.timer, "cuda" if torch_setup.amp else None)
    grad_norms = GradNormMonitor(model.policy.parameters(), model.policy.optimizer)
    callback = RunCallback(ctx, env, capture, grad_norms, _linear(cfg["ppo.ent_coef"], cfg["ppo.ent_coef_end"]))

    remaining = cfg["run.total_steps"] - done
    if remaining > 0:
        model.learn(remaining, callback=callback, reset_num_timesteps=resume is None, log_interval=1)
    else:
        ctx.log("info", f"nothing to train: {done:,} of {cfg['run.total_steps']:,} steps already done")
        callback.init_callback(model)
        callback.last_window_step = done
    callback.finish()
    return "stopped" if ctx.stop else "finished"
