"""The PPO trainer: sb3-contrib `MaskablePPO` against a scripted opponent on a game's batched VecEnv, or
SB3's `PPO` on a continuous-control game (a Box action space, no masks).

`train(ctx, resume)` follows the protocol of engine.trainers. Configuration comes from the resolved
config: `ppo.*` (hyperparameters, with linear schedules `learning_rate -> learning_rate_end` and
`ent_coef -> ent_coef_end` over `run.total_steps`), `env.*` (game count, opponent, the game's own
options, `normalize`: engine.vec_normalize), `torch.*`
(device, AMP, compile, threads via engine.context.setup_torch), `log.*`, `checkpoint.*`, `run.*`.

SB3 runs unmodified but for one swap: on a continuous game on the CPU the update (`train()`) and the rollout's
policy forward are engine.cpu_ppo's, SB3's arithmetic without torch (the gradient steps in C, the rollout's
forward in numpy; several times faster on small minibatches; checked against SB3's own). We attach from the
outside (engine.sb3_hooks): a VecEnv wrapper (env_step timing, episode counts, win/draw/loss of the last 1000
games), wrappers on the policy instance (action, train_fwd timing; bf16 autocast on CUDA), optimizer hooks
(train_bwd timing, gradient norms before and after clipping; engine.cpu_ppo's update reports the same itself),
a `KVWriter` capturing SB3's logger values, and the run's callbacks (engine.sb3_callbacks: stop requests,
perf/metric emission every `log.every_steps` env steps or `log.every_seconds`, checkpoints every
`checkpoint.every_steps` taken between rollouts) plus `EntropySchedule` below, which sets the entropy
coefficient before each update, and with `eval.every_steps` engine.train_eval's evaluation against the suite
(best policy kept in best/); `log.reward_debug` engine.reward_parts (each reward part every window, for games
that report them). With `selfplay.enabled` (Beasty Bar), the games face engine.selfplay's opponent pool
instead of `env.opponent`: its snapshot callback, its metrics in each window, the entropy bonus shaped by
`selfplay.entropy_schedule`, and each evaluation's table fed to the pool's weights (docs/selfplay.md).

[PERF] phases are those of every trainer (engine.sb3_hooks says what each spans and where PPO's
boundaries fall); PPO has no `replay_sample`.

Stopping (SIGINT/SIGTERM): the callback returns False at the next vec-env step, so SB3 ends `learn()`
without training on the unfinished rollout; the policy is the one after the last complete update and
the checkpoint's step counts every env step taken. Checkpoints are plain dicts of tensors and numbers
(loadable with `weights_only=True`, no SB3 zip), with the VecNormalize statistics under
`vecnormalize` when `env.normalize` is on; games in flight are not saved, so a resumed run deals fresh
games (seeded `run.seed + steps done`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

import envs
from engine import selfplay, vec_normalize
from engine.checkpoint import NETWORK_KEYS, check_checkpoint, check_fits, network_description
from engine.context import RunContext, compile_modules, versions
from engine.cpu_ppo import CpuUpdatePPO
from engine.errors import UsageError
from engine.perf import PerfTimer
from engine.profiles import ResolvedConfig
from engine.reward_parts import RewardParts, reports_parts
from engine.sb3_callbacks import run_callbacks
from engine.sb3_hooks import GradNormMonitor, InstrumentedVecEnv, MetricCapture, PolicyPhases
from engine.sb3_run import learn, start_run
from engine.train_eval import EvalDuringTraining

STATE_FORMAT = "trainctl.ppo/1"
OUTCOME_WINDOW = 1000
# Checkpoint key -> the type its value must have (check_resume).
STATE_KEYS: Mapping[str, type | tuple[type, ...]] = {
    **NETWORK_KEYS, "policy": dict, "optimizer": dict, "num_timesteps": int, "n_updates": int, "total_steps": int,
    "progress_remaining": float, "ent_coef": float, "rng_torch": torch.Tensor, "rng_numpy": dict,
}
# The `env.*` keys a game's VecEnv takes besides num_envs, opponent and seed.
GAME_OPTIONS: Mapping[str, tuple[str, ...]] = {"beastybar": ("scoring", "reward_weights"),
                                               "soccer": ("reward_weights",)}


# -- building -----------------------------------------------------------------------------------------
def build_policy(obs_size: int, num_actions: int, net_arch: list[int],
                 continuous: bool = False) -> MaskableActorCriticPolicy | ActorCriticPolicy:
    """A bare MLP policy (separate pi/vf nets of `net_arch`) for loading a checkpoint: MaskablePPO's over
    `num_actions` discrete actions, or PPO's Gaussian one over a Box of `num_actions` for a continuous game."""
    observations = spaces.Box(-np.inf, np.inf, (obs_size,), np.float32)
    arch = {"pi": list(net_arch), "vf": list(net_arch)}
    if continuous:
        return ActorCriticPolicy(observations, spaces.Box(-1.0, 1.0, (num_actions,), np.float32),
                                 lambda _progress: 0.0, net_arch=arch)
    return MaskableActorCriticPolicy(observations, spaces.Discrete(num_actions), lambda _progress: 0.0, net_arch=arch)


def _is_continuous(state: Mapping[str, Any]) -> bool:
    """Whether a checkpoint is of a continuous game's policy (older checkpoints, without the key, are not)."""
    return state.get("action_space") == "box"


def policy_from_checkpoint(state: Mapping[str, Any]) -> MaskableActorCriticPolicy | ActorCriticPolicy:
    """The trained policy of a PPO checkpoint (after `check_resume`), on CPU, in eval mode."""
    policy = build_policy(state["obs_size"], state["num_actions"], state["net_arch"], _is_continuous(state))
    policy.load_state_dict(state["policy"])
    policy.set_training_mode(False)
    return policy


def _linear(start: float, end: float) -> LinearSchedule:
    """start at progress_remaining = 1, end at 0."""
    return LinearSchedule(float(start), float(end), 1.0)


def make_env(cfg: ResolvedConfig, timer: PerfTimer, seed: int) -> InstrumentedVecEnv:
    """The run's game VecEnv (games seeded `seed`, `seed + 1`, ...), wrapped for timing and outcomes."""
    e = cfg.section("env")
    options = {key: e[key] for key in GAME_OPTIONS.get(cfg["run.env"], ())}

    def game_vec(opponent_policy: selfplay.OpponentPolicy | None = None) -> Any:
        external = {"opponent_policy": opponent_policy} if opponent_policy else {}
        return envs.make_vec(cfg["run.env"], e["num_envs"], opponent=e["opponent"], seed=seed, **options, **external)

    try:
        venv: Any = selfplay.pool_env(cfg, seed, game_vec) if cfg["selfplay.enabled"] else game_vec()
    except ValueError as exc:  # unknown game, opponent or option: the user's config
        raise UsageError(f"env: {exc}") from None
    if hasattr(venv, "episode_outcome"):
        return CoreOutcomes(venv, timer, OUTCOME_WINDOW)
    return InstrumentedVecEnv(venv, timer, OUTCOME_WINDOW)


class CoreOutcomes(InstrumentedVecEnv):
    """For a game with shaped rewards, where the final reward's sign is not the outcome: the outcomes of
    the games that ended, as the game's VecEnv reports them (`episode_outcome` int8[N], +1/0/-1)."""

    def record(self, ended: np.ndarray, rewards: np.ndarray, dones: np.ndarray) -> None:
        self.outcomes.add(self.game_env.episode_outcome[ended])  # type: ignore[attr-defined]


def make_model(cfg: ResolvedConfig, env: VecEnv, device: torch.device) -> MaskablePPO | PPO:
    """MaskablePPO with the run's `ppo.*` settings (separate pi/vf MLPs of `ppo.net_arch`); when the
    game's actions are a Box, SB3's PPO with engine.cpu_ppo's update (itself SB3's on CUDA)."""
    p = cfg.section("ppo")
    algorithm = CpuUpdatePPO if isinstance(env.action_space, spaces.Box) else MaskablePPO
    return algorithm(
        "MlpPolicy", env,
        learning_rate=_linear(p["learning_rate"], p["learning_rate_end"]),
        n_steps=p["n_steps"], batch_size=p["batch_size"], n_epochs=p["n_epochs"],
        gamma=p["gamma"], gae_lambda=p["gae_lambda"], clip_range=p["clip_range"],
        ent_coef=float(p["ent_coef"]), vf_coef=p["vf_coef"], max_grad_norm=p["max_grad_norm"],
        target_kl=p["target_kl"] or None, stats_window_size=OUTCOME_WINDOW,
        policy_kwargs={"net_arch": {"pi": list(p["net_arch"]), "vf": list(p["net_arch"])}},
        seed=cfg["run.seed"], device=device, verbose=0,
    )


def compile_policy(model: MaskablePPO | PPO, env: VecEnv, ctx: RunContext) -> bool:
    """`torch.compile` the policy's networks, checked by a trial forward (engine.context.compile_modules)."""
    policy = model.policy
    obs = torch.as_tensor(env.reset(), device=model.device)
    if not isinstance(model, MaskablePPO):
        return compile_modules([policy.mlp_extractor, policy.action_net, policy.value_net],
                               lambda: policy(obs), ctx, "policy networks")
    masks = np.stack(env.env_method("action_masks"))
    return compile_modules([policy.mlp_extractor, policy.action_net, policy.value_net],
                           lambda: policy(obs, action_masks=masks), ctx, "policy networks")


# -- checkpoint state ---------------------------------------------------------------------------------
def _numpy_rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _restore_numpy_rng(state: Mapping[str, Any]) -> None:
    np.random.set_state((state["kind"], state["keys"].numpy().astype(np.uint32), state["pos"],
                         state["has_gauss"], state["cached_gaussian"]))


def checkpoint_state(model: MaskablePPO | PPO, cfg: ResolvedConfig) -> dict[str, Any]:
    """Everything a resume needs, as tensors, numbers, strings, lists and dicts."""
    env = model.get_env()
    normalization = {vec_normalize.STATE_KEY: vec_normalize.statistics(env)} if isinstance(env, VecNormalize) else {}
    return {
        "format": STATE_FORMAT,
        **network_description(model, cfg, "ppo.net_arch"),
        "action_space": "discrete" if isinstance(model, MaskablePPO) else "box",
        **normalization,
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


def check_resume(state: Mapping[str, Any], cfg: ResolvedConfig | None = None) -> None:
    """UsageError (one line) unless `state` is a complete PPO checkpoint whose weights fit its network
    (and, given the run's `cfg`, the run's game and hidden layers; with `env.normalize`, normalisation
    statistics that fit its observations)."""
    continuous = _is_continuous(state)
    check_checkpoint(state, STATE_KEYS, STATE_FORMAT,
                     lambda obs_size, num_actions, net_arch: build_policy(obs_size, num_actions, net_arch, continuous),
                     ["policy"], cfg, "ppo.net_arch")
    if cfg is not None and cfg["env.normalize"]:
        vec_normalize.check_statistics(state.get(vec_normalize.STATE_KEY), state["obs_size"])


def _restore(model: MaskablePPO | PPO, state: Mapping[str, Any]) -> None:
    model.policy.load_state_dict(state["policy"])
    model.policy.optimizer.load_state_dict(state["optimizer"])
    model.num_timesteps = state["num_timesteps"]
    model._n_updates = state["n_updates"]
    model.ent_coef = state["ent_coef"]
    torch.set_rng_state(state["rng_torch"])
    _restore_numpy_rng(state["rng_numpy"])


# -- the run ------------------------------------------------------------------------------------------
class EntropySchedule(BaseCallback):
    """Sets PPO's entropy coefficient before each update: `schedule(progress_remaining)` (linear over the run,
or `selfplay.entropy_schedule`'s shape in a self-play run)."""

    def __init__(self, schedule: Callable[[float], float]) -> None:
        super().__init__()
        self.schedule = schedule

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        # SB3 updates its progress only after this returns; compute the same value for the coming update.
        progress_remaining = 1.0 - self.model.num_timesteps / self.model._total_timesteps
        cast(PPO, self.model).ent_coef = float(self.schedule(max(0.0, progress_remaining)))


def train(ctx: RunContext, resume: dict[str, Any] | None) -> str:
    """Train until `run.total_steps` env steps or a stop request; returns "finished" or "stopped"."""
    cfg = ctx.cfg
    p, e = cfg.section("ppo"), cfg.section("env")
    done = int(resume["num_timesteps"]) if resume else 0
    game_env = make_env(cfg, ctx.timer, cfg["run.seed"] + done)
    continuous = isinstance(game_env.action_space, spaces.Box)
    algo = (f"PPO (stable-baselines3 {versions()['stable_baselines3']})" if continuous
            else f"MaskablePPO (sb3-contrib {versions()['sb3_contrib']})")
    options = "".join(f" ({key} = {e[key]})" for key in GAME_OPTIONS.get(cfg["run.env"], ()))
    against = "a self-play pool" if cfg["selfplay.enabled"] else e["opponent"]
    torch_setup = start_run(ctx, f"{algo} on {cfg['run.env']} vs {against}{options}", done, {
        "envs": f"num_envs={e['num_envs']} n_steps={p['n_steps']} (rollout {e['num_envs'] * p['n_steps']:,})",
        "update": f"batch_size={p['batch_size']} n_epochs={p['n_epochs']} net={p['net_arch']} "
                  f"gamma={p['gamma']} clip={p['clip_range']}",
        "schedules": f"lr {p['learning_rate']:g}->{p['learning_rate_end']:g} "
                     f"ent_coef {p['ent_coef']:g}->{p['ent_coef_end']:g}",
        "normalize": "VecNormalize (observations and rewards; statistics in every checkpoint)" if e["normalize"]
                     else "off",
    })
    if torch_setup.device.type == "cuda" and cfg["torch.pin_memory"]:
        ctx.log("info", "torch.pin_memory has no effect on PPO: SB3's rollout buffer makes its own transfers")

    env: VecEnv = vec_normalize.wrap(game_env, p["gamma"]) if e["normalize"] else game_env
    model = make_model(cfg, env, torch_setup.device)
    if resume is not None:
        check_resume(resume, cfg)
        check_fits(resume, network_description(model, cfg, "ppo.net_arch"))
        _restore(model, resume)
        if isinstance(env, VecNormalize):
            vec_normalize.restore(env, resume[vec_normalize.STATE_KEY], training=True)
        env.seed(cfg["run.seed"] + done)  # fresh deals: the games in flight were not saved
    if torch_setup.compile:
        compile_policy(model, env, ctx)

    capture = MetricCapture(ctx.timer)
    model.set_logger(Logger(folder=None, output_formats=[capture]))
    PolicyPhases(model.policy, model.policy.optimizer, ctx.timer, "cuda" if torch_setup.amp else None)
    grad_norms = GradNormMonitor(model.policy.parameters(), model.policy.optimizer)
    if isinstance(model, CpuUpdatePPO):
        model.timer, model.grad_norms = ctx.timer, grad_norms.add
        ctx.log("info", "update: SB3's torch train(), since " + model.torch_update_reason if model.torch_update_reason
                else "update: SB3's PPO update in C on the CPU (engine.cpu_ppo, ext.ppo_step): the same "
                     "arithmetic, without torch's per-operator cost on small minibatches")

    parts = RewardParts(game_env.game_env) if cfg["log.reward_debug"] and reports_parts(game_env.game_env) else None

    entropy: Callable[[float], float] = _linear(p["ent_coef"], p["ent_coef_end"])
    pool: selfplay.SelfPlayMetrics | None = None
    own: list[BaseCallback] = []
    if cfg["selfplay.enabled"]:
        entropy = selfplay.schedule(cfg["selfplay.entropy_schedule"], p["ent_coef"], p["ent_coef_end"])
        obs_size = int(np.prod(cast(spaces.Box, model.observation_space).shape))
        num_actions = int(cast(spaces.Discrete, model.action_space).n)
        snapshots, pool = selfplay.attach(ctx, cast(selfplay.PoolOpponents, game_env.game_env), model.policy,
                                          lambda: build_policy(obs_size, num_actions, p["net_arch"]))
        own.append(snapshots)
    own.append(EntropySchedule(entropy))
    if parts:
        own.append(parts)
    if cfg["eval.every_steps"] and pool is not None:
        own.append(selfplay.EvalFeedsPool(ctx, model.policy, lambda: checkpoint_state(model, cfg),
                                          weights=pool.env.pool.weights))
    elif cfg["eval.every_steps"]:
        own.append(EvalDuringTraining(ctx, model.policy, lambda: checkpoint_state(model, cfg),
                                      env if isinstance(env, VecNormalize) else None))

    def metric_values() -> dict[str, float]:
        return {**capture.take(), **game_env.outcomes.rates(), **grad_norms.take(),
                "train/ent_coef": float(model.ent_coef), **(parts.take() if parts else {}),
                **(pool.take() if pool else {})}

    callbacks = run_callbacks(ctx, metric_values, lambda: checkpoint_state(model, cfg), between_rollouts=True,
                              trainer_callbacks=own)
    return learn(model, callbacks, ctx, done, log_interval=1)
