"""The PER-DQN trainer: SB3 `DQN` with prioritized replay on Skirmish's batched VecEnv, vs the scripted player.

`train(ctx, resume)` follows the protocol of engine.trainers. Configuration: `dqn.*` (hyperparameters;
`updates_per_step` gradient steps after every vec-env step of `env.num_envs` games, `batch_size`,
`warmup_steps` = SB3's learning_starts in env steps), `per.*` (alpha, beta -> beta_end, eps, prefetch),
`env.num_envs`, `torch.*` (via engine.context.setup_torch), `log.*`, `checkpoint.*`, `run.*`.

SB3 runs its own `learn()`/`collect_rollouts()`; `PerDQN` overrides only the hooks:
- `train()`: each gradient step takes a batch from an engine.prefetch.BatchPrefetcher over the
  engine.replay.PrioritizedReplayBuffer (on a background thread when `per.prefetch`; its staleness, one
  priority update, is documented there). The batch after the last one of a `train()` call is asked for
  at once too, so it is drawn while the env steps, and settled (`settle()`) before that step's
  transitions are added: the first batch of each call never holds the transitions of the vec-env step
  just taken, prefetch on or off alike, so a seeded run stays exact. Each step computes the TD target
  r + gamma (1 - done) Q_target(s', a*) where a* maximises over the legal actions of s' only (masks
  stored with each transition), with a* = argmax Q_online(s') when `dqn.double_dqn` else
  argmax Q_target(s'); the loss is mean_i(w_i * Huber(Q(s_i, a_i) - target_i)) with the batch's
  importance weights w; the gradient is clipped to `dqn.max_grad_norm`; then the batch's priorities
  become |TD error| (+ per.eps inside the buffer). beta rises linearly from per.beta to per.beta_end
  over run.total_steps, set at the start of each `train()` call (a batch drawn ahead across an env
  step carries the beta of the call that asked for it).
- `_sample_action()`: epsilon-greedy with one coin per game; random actions are uniform over each game's
  legal actions, drawn here with numpy from the VecEnv's masks (no round trip through the env per game);
  greedy actions are the argmax of Q over the legal actions. Warmup steps act at random.
- `_store_transition()`: adds the step to the buffer with the next-state masks, the terminal
  observations taken from the VecEnv's arrays (no loop over games). A game that ended has no decision
  left; its mask row is stored all-legal (ignored by a termination, an unmasked max for a truncation).
- `_update_info_buffer()`: nothing; `SkirmishStats` keeps the per-game statistics from whole arrays.

[PERF] phases are those of every trainer (engine.sb3_hooks says what each spans). Here: `action` = the
coins, random legal draws, Q forward and masked argmax of `_sample_action()`; `enemy_turn` from the core's
own nanosecond counter; `replay_sample` = the whole sampling when prefetch is off (when on, the hand-overs
and the settle before a step's transitions are added), plus handing each batch's priorities back;
`train_fwd` = the online and target forwards and the TD target; `train_bwd` = the IS-weighted loss,
backward, clipping, the Adam step and the TD statistics.

Checkpoints are dicts of tensors, numbers and strings (loadable with `weights_only=True`): both networks,
the optimizer, the step and update counters, the target-sync counter, epsilon, the generators. The replay
buffer is not saved (it is hundreds of MB): a resumed run starts with an empty buffer, refills it for
`dqn.warmup_steps` env steps acting with the restored policy and epsilon, and only then trains; the
schedules (epsilon, beta) continue from the step reached. Games in flight are not saved either: a resumed
run deals fresh games (seeded run.seed + steps done). This module writes no run files itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn
from stable_baselines3.dqn.policies import QNetwork

import envs
from engine.checkpoint import NETWORK_KEYS, check_checkpoint, check_fits, network_description
from engine.context import RunContext, compile_modules, versions
from engine.evaluate import Chooser
from engine.perf import PerfTimer
from engine.prefetch import BatchPrefetcher
from engine.profiles import ResolvedConfig
from engine.replay import PrioritizedReplayBuffer, PrioritizedReplayBufferSamples
from engine.sb3_callbacks import run_callbacks
from engine.sb3_hooks import InstrumentedVecEnv, bf16_autocast
from engine.sb3_run import learn, start_run
from envs.skirmish.vec_env import SkirmishVecEnv
from ext.skirmish_core import END_REASONS, INFO_COLUMNS

STATE_FORMAT = "trainctl.dqn-per/1"
OUTCOME_WINDOW = 1000
# Checkpoint key -> the type its value must have (check_resume).
STATE_KEYS: Mapping[str, type | tuple[type, ...]] = {
    **NETWORK_KEYS, "q_net": dict, "q_net_target": dict, "optimizer": dict, "num_timesteps": int, "n_updates": int,
    "target_sync_calls": int, "total_steps": int, "exploration_rate": float, "beta": float,
    "rng_torch": torch.Tensor, "rng_actions": dict,
}
_COL = {name: i for i, name in enumerate(INFO_COLUMNS)}
_TRUNCATED = END_REASONS.index("truncated")


# -- game statistics ----------------------------------------------------------------------------------
def skirmish_outcomes(venv: Any, _rewards: np.ndarray, _dones: np.ndarray) -> np.ndarray:
    """int[N] +1 win, 0 draw, -1 loss of every game's last step (meaningful where it ended): the core's
    winner code, with a truncated game counted a draw. An `engine.evaluate.OutcomeReader`."""
    info = cast(SkirmishVecEnv, venv).info_array
    return np.where(info[:, _COL["end_reason"]] == _TRUNCATED, 0, info[:, _COL["winner"]])


class SkirmishStats(InstrumentedVecEnv):
    """The timed VecEnv of every trainer (engine.sb3_hooks.InstrumentedVecEnv) keeping more of each ended
    Skirmish game in `outcomes` (the core's winner code; VP difference, end reason code, return, length);
    with `reward_debug`, it also sums the reward parts (vp, damage, outcome) of every game and step."""

    REWARD_PARTS = ("vp", "damage", "outcome")
    GAME_COLUMNS = ("vp_diff", "end_reason", "episode_return", "episode_length")
    # metric -> the games' column it is the mean of
    GAME_MEANS: Mapping[str, str] = {"rollout/vp_diff_mean": "vp_diff", "rollout/ep_rew_mean": "episode_return",
                                     "rollout/ep_len_mean": "episode_length"}
    END_REASON_SHARES: Mapping[int, str] = {code: f"rollout/end_reason/{reason}"
                                            for code, reason in enumerate(END_REASONS) if code}
    game_env: SkirmishVecEnv

    def __init__(self, venv: SkirmishVecEnv, timer: PerfTimer, reward_debug: bool) -> None:
        super().__init__(venv, timer, OUTCOME_WINDOW, self.GAME_COLUMNS)
        self.reward_debug = reward_debug
        self.reward_parts_sum = np.zeros(3, dtype=np.float64)
        self.reward_parts_count = 0

    def step_wait(self) -> VecEnvStepReturn:
        result = super().step_wait()
        if self.reward_debug:
            self.reward_parts_sum += self.game_env.skirmish_core.reward_parts.sum(axis=0, dtype=np.float64)
            self.reward_parts_count += self.game_env.num_envs
        return result

    def record(self, ended: np.ndarray, rewards: np.ndarray, dones: np.ndarray) -> None:
        game = self.game_env
        info = game.info_array[ended]
        self.outcomes.add(skirmish_outcomes(game, rewards, dones)[ended],
                          vp_diff=info[:, _COL["model_vp"]] - info[:, _COL["player_vp"]],
                          end_reason=info[:, _COL["end_reason"]],
                          episode_return=game.skirmish_core.episode_return[ended],
                          episode_length=game.skirmish_core.episode_length[ended])

    def game_metrics(self) -> dict[str, float]:
        """Over the last games kept: win/draw/loss rates, the means of VP difference, return and length, the
        share of each end reason, and how many games that is (or {} before any game ended)."""
        games = self.outcomes
        if not games.count:
            return {}
        return {**games.rates(), **games.means(self.GAME_MEANS), "rollout/games": float(games.count),
                **games.shares("end_reason", self.END_REASON_SHARES)}

    def take_reward_parts(self) -> dict[str, float]:
        """{"reward/<part>_mean": mean per game step} since the last take (or {})."""
        if not self.reward_parts_count:
            return {}
        means = self.reward_parts_sum / self.reward_parts_count
        self.reward_parts_sum[:] = 0.0
        self.reward_parts_count = 0
        return {f"reward/{name}_mean": float(v) for name, v in zip(self.REWARD_PARTS, means, strict=True)}


# -- action choice ------------------------------------------------------------------------------------
def masked_argmax(q_values: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """int64[B]: the best legal action of each row of q_values [B, A] under masks bool[B, A] (each row
    has at least one legal action)."""
    return q_values.masked_fill(~masks, -torch.inf).argmax(dim=1)


def random_legal_actions(rng: np.random.Generator, masks: np.ndarray) -> np.ndarray:
    """int64[N]: a uniform legal action per row of masks bool[N, A] (argmax of random keys over the
    legal ones), vectorised."""
    keys = rng.random(masks.shape)
    keys[~masks] = -1.0
    return keys.argmax(axis=1)


def q_chooser(q_net: torch.nn.Module, device: torch.device | str = "cpu") -> Chooser:
    """A greedy, masked `engine.evaluate.Chooser` from a Q-network."""

    def choose(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            q_values = q_net(torch.as_tensor(obs, device=device))
        return masked_argmax(q_values.float(), torch.as_tensor(masks, device=device)).cpu().numpy()

    return choose


# -- the algorithm ------------------------------------------------------------------------------------
class PinnedPrioritizedReplayBuffer(PrioritizedReplayBuffer):
    """The prioritized buffer with its batches drawn into page-locked memory and copied to CUDA without
    blocking (PIN_MEMORY)."""

    recycles_memory = False  # a copy may still be reading a batch's memory when sample() returns

    @staticmethod
    def allocate(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        torch_dtype = torch.from_numpy(np.empty(0, dtype=dtype)).dtype
        return torch.empty(shape, dtype=torch_dtype, pin_memory=True).numpy()

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(self.device, non_blocking=True)


class PerDQN(DQN):
    """SB3 DQN with prioritized replay, masks and per-game epsilon-greedy (see the module docstring).

    After construction call `attach(...)` with the run's timer, stop request and switches before
    `learn()`. Train statistics accumulate until `take_train_metrics()`.
    """

    replay_buffer: PrioritizedReplayBuffer

    def attach(self, *, timer: PerfTimer, stop: Any, double_dqn: bool, beta: Callable[[float], float],
               prefetch: bool, random_until: int, seed: int, amp: bool) -> None:
        """timer: the run's PerfTimer; stop: truthy when the run should end after the current gradient
        step; beta(progress_done in [0, 1]) -> IS exponent; random_until: env steps acting at random;
        seed: of the action generator; amp: bf16 autocast on CUDA."""
        self.timer = timer
        self.stop = stop
        self.double_dqn = double_dqn
        self.beta_schedule = beta
        self.random_until = random_until
        self.action_rng = np.random.default_rng(seed)
        self.exploration_rate = self.exploration_schedule(self._current_progress_remaining)  # SB3 starts at 0
        self.autocast_device = "cuda" if amp else None
        self.sampler = BatchPrefetcher(self.replay_buffer, self.batch_size, enabled=prefetch,
                                       env=self._vec_normalize_env, beta=beta(0.0))
        self._stats: dict[str, Any] = {"steps": 0, "loss": 0.0, "td": 0.0, "grad_norm": 0.0}

    @property
    def game_env(self) -> SkirmishVecEnv:
        return cast(SkirmishStats, self.env).game_env

    @property
    def beta(self) -> float:
        return float(self.beta_schedule(1.0 - self._current_progress_remaining))

    def _sample_action(self, learning_starts: int, action_noise: Any = None,
                       n_envs: int = 1) -> tuple[np.ndarray, np.ndarray]:
        masks = self.game_env.action_masks()  # fetching the masks is in no phase, as in every trainer
        with self.timer.phase("action"):
            eps = 1.0 if self.num_timesteps < self.random_until else self.exploration_rate
            explore = self.action_rng.random(n_envs) < eps
            actions = random_legal_actions(self.action_rng, masks)
            if not explore.all():
                with torch.no_grad(), bf16_autocast(self.autocast_device):
                    q_values = self.q_net(torch.as_tensor(self._last_obs, device=self.device))
                greedy = masked_argmax(q_values.float(), torch.as_tensor(masks, device=self.device))
                actions = np.where(explore, actions, greedy.cpu().numpy())
        return actions, actions

    def _store_transition(self, replay_buffer: ReplayBuffer, buffer_action: np.ndarray, new_obs: Any,
                          reward: np.ndarray, dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
        if self.num_timesteps > self.learning_starts:  # SB3 trains after this step: its first batch first
            start = time.perf_counter_ns()
            self.sampler.settle()
            self.timer.add("replay_sample", time.perf_counter_ns() - start)
        game = self.game_env
        next_obs = np.array(new_obs, dtype=np.float32)
        next_masks = game.action_masks()
        ended = np.flatnonzero(dones)
        if ended.size:
            next_obs[ended] = game.buffers.terminal_obs[ended]
            next_masks[ended] = True
        cast(PrioritizedReplayBuffer, replay_buffer).add(
            self._last_obs, next_obs, buffer_action, reward, dones, infos,  # type: ignore[arg-type]
            next_action_masks=next_masks)
        self._last_obs = new_obs

    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: np.ndarray | None = None) -> None:
        """Nothing: SkirmishStats keeps every finished game's figures from whole arrays."""

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        """`gradient_steps` prioritized, IS-weighted updates (stops early when `stop` is set)."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        self.sampler.beta = self.beta
        timer, sampler, optimizer = self.timer, self.sampler, self.policy.optimizer
        params = list(self.q_net.parameters())
        stats = self._stats
        done = 0
        for _ in range(gradient_steps):
            start = time.perf_counter_ns()
            batch = sampler.next_batch(prefetch_next=not self.stop)
            sampled = time.perf_counter_ns()
            current, target = self.q_and_target(batch)
            forward = time.perf_counter_ns()
            loss, td_error = self.weighted_loss(current, target, batch.weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
            optimizer.step()
            td_abs = td_error.abs().cpu().numpy()
            stats["loss"] += loss.detach()
            stats["grad_norm"] += grad_norm.detach()
            stats["td"] += float(td_abs.mean())
            trained = time.perf_counter_ns()
            sampler.update_priorities(batch.indices, td_abs)
            end = time.perf_counter_ns()
            timer.add("replay_sample", sampled - start + end - trained)
            timer.add("train_fwd", forward - sampled)
            timer.add("train_bwd", trained - forward)
            done += 1
            if self.stop:
                break
        stats["steps"] += done
        self._n_updates += done

    def loss(self, batch: PrioritizedReplayBufferSamples) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss: scalar mean_i(w_i * Huber(Q(s_i, a_i) - target_i)), TD errors float32 [B, 1] detached)."""
        return self.weighted_loss(*self.q_and_target(batch), batch.weights)

    def q_and_target(self, batch: PrioritizedReplayBufferSamples) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q(s_i, a_i) float32 [B, 1] with its graph, TD target float32 [B, 1] without): the forward passes."""
        with bf16_autocast(self.autocast_device):
            current = self.q_net(batch.observations).gather(1, batch.actions.long()).float()
            with torch.no_grad():
                target = self._td_target(batch)
        return current, target

    @staticmethod
    def weighted_loss(current: torch.Tensor, target: torch.Tensor,
                      weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean_i(w_i * Huber(current_i - target_i)), TD errors detached), all [B, 1] float32 in."""
        loss = (weights * F.smooth_l1_loss(current, target, reduction="none")).mean()
        return loss, (current - target).detach()

    def _td_target(self, batch: PrioritizedReplayBufferSamples) -> torch.Tensor:
        """float32 [B, 1]: r + gamma (1 - done) Q_target(s', a*), a* the best legal action of s'."""
        next_target = self.q_net_target(batch.next_observations).float()
        chooser = self.q_net(batch.next_observations).float() if self.double_dqn else next_target
        assert batch.next_action_masks is not None, "the buffer is built with n_actions"
        best = masked_argmax(chooser, batch.next_action_masks).unsqueeze(1)
        next_q = next_target.gather(1, best)
        return batch.rewards + (1.0 - batch.dones) * self.gamma * next_q

    def take_train_metrics(self) -> dict[str, float]:
        """Means over the gradient steps since the last take, plus the schedules now."""
        stats = self._stats
        values = {"train/epsilon": float(self.exploration_rate), "train/beta": self.beta,
                  "train/lr": float(self.lr_schedule(self._current_progress_remaining)),
                  "train/n_updates": float(self._n_updates)}
        if stats["steps"]:
            n = stats["steps"]
            values.update({"train/loss": float(stats["loss"]) / n, "train/td_abs_mean": stats["td"] / n,
                           "train/grad_norm": float(stats["grad_norm"]) / n})
        self._stats = {"steps": 0, "loss": 0.0, "td": 0.0, "grad_norm": 0.0}
        return values


# -- building -----------------------------------------------------------------------------------------
def make_env(cfg: ResolvedConfig, timer: PerfTimer, seed: int) -> SkirmishStats:
    """The run's Skirmish VecEnv (train mode: lean infos) inside the statistics wrapper."""
    # engine.profiles has checked that run.env is skirmish (TRAINER_GAMES) and env.opponent one of its opponents.
    venv = envs.make_vec("skirmish", cfg["env.num_envs"], opponent=cfg["env.opponent"], seed=seed, mode="train")
    return SkirmishStats(venv, timer, cfg["log.reward_debug"])


def make_model(cfg: ResolvedConfig, env: SkirmishStats, device: torch.device, pin_memory: bool) -> PerDQN:
    """PerDQN on `env` with the run's hyperparameters (call `attach` before learning). Raises UsageError
    from the buffer when its capacity (dqn.buffer_size rounded down to a multiple of env.num_envs) is
    below the batch size."""
    d, p = cfg.section("dqn"), cfg.section("per")
    return PerDQN(
        "MlpPolicy", env,
        learning_rate=d["learning_rate"], buffer_size=d["buffer_size"], learning_starts=d["warmup_steps"],
        batch_size=d["batch_size"], gamma=d["gamma"], train_freq=(1, "step"),
        gradient_steps=d["updates_per_step"], target_update_interval=d["target_update_interval"],
        exploration_fraction=d["exploration_fraction"], exploration_initial_eps=d["exploration_initial_eps"],
        exploration_final_eps=d["exploration_final_eps"], max_grad_norm=d["max_grad_norm"],
        replay_buffer_class=PinnedPrioritizedReplayBuffer if pin_memory else PrioritizedReplayBuffer,
        replay_buffer_kwargs={"alpha": p["alpha"], "epsilon": p["eps"],  # beta: given with each sample
                              "n_actions": int(env.action_space.n),  # type: ignore[attr-defined]
                              "batch_size": d["batch_size"], "seed": cfg["run.seed"]},
        policy_kwargs={"net_arch": list(d["net_arch"])}, seed=cfg["run.seed"], device=device, verbose=0,
    )


def linear_beta(start: float, end: float) -> Callable[[float], float]:
    """beta(progress done in [0, 1]): start at 0, end at 1, linear."""
    return lambda done: start + (end - start) * min(max(done, 0.0), 1.0)


def compile_networks(model: PerDQN, ctx: RunContext) -> bool:
    """`torch.compile` both Q-networks, checked by a trial forward (engine.context.compile_modules)."""
    networks = [model.q_net, model.q_net_target]
    trial = torch.zeros((2, *model.observation_space.shape), device=model.device)  # type: ignore[misc]

    def forward_both() -> None:
        with bf16_autocast(model.autocast_device):
            for net in networks:
                net(trial)

    return compile_modules(networks, forward_both, ctx, "Q-networks")


def build_q_net(obs_size: int, num_actions: int, net_arch: list[int]) -> QNetwork:
    """A bare SB3 Q-network (MLP of `net_arch` on a flat observation) for loading a checkpoint."""
    from gymnasium import spaces
    from stable_baselines3.common.torch_layers import FlattenExtractor

    obs_space = spaces.Box(-np.inf, np.inf, (obs_size,), np.float32)
    return QNetwork(obs_space, spaces.Discrete(num_actions), FlattenExtractor(obs_space), obs_size,
                    net_arch=list(net_arch))


def q_net_from_checkpoint(state: Mapping[str, Any]) -> QNetwork:
    """The trained online Q-network of a checkpoint (after `check_resume`), on CPU, in eval mode."""
    q_net = build_q_net(state["obs_size"], state["num_actions"], state["net_arch"])
    q_net.load_state_dict(state["q_net"])
    q_net.set_training_mode(False)
    return q_net


# -- checkpoint state ---------------------------------------------------------------------------------
def checkpoint_state(model: PerDQN, cfg: ResolvedConfig) -> dict[str, Any]:
    """Everything a resume needs except the replay buffer (see the module docstring)."""
    return {
        "format": STATE_FORMAT,
        **network_description(model, cfg, "dqn.net_arch"),
        "q_net": model.q_net.state_dict(),
        "q_net_target": model.q_net_target.state_dict(),
        "optimizer": model.policy.optimizer.state_dict(),
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(model._n_updates),
        "target_sync_calls": int(model._n_calls),
        "total_steps": int(cfg["run.total_steps"]),
        "exploration_rate": float(model.exploration_rate),
        "beta": model.beta,
        "rng_torch": torch.get_rng_state(),
        "rng_actions": model.action_rng.bit_generator.state,
    }


def check_resume(state: Mapping[str, Any], cfg: ResolvedConfig | None = None) -> None:
    """UsageError (one line) unless `state` is a complete PER-DQN checkpoint whose weights fit its network
    (and, given the run's `cfg`, the run's game and hidden layers)."""
    check_checkpoint(state, STATE_KEYS, STATE_FORMAT, build_q_net, ["q_net", "q_net_target"], cfg, "dqn.net_arch")


def _restore(model: PerDQN, state: Mapping[str, Any]) -> None:
    model.q_net.load_state_dict(state["q_net"])
    model.q_net_target.load_state_dict(state["q_net_target"])
    model.policy.optimizer.load_state_dict(state["optimizer"])
    model.num_timesteps = state["num_timesteps"]
    model._n_updates = state["n_updates"]
    model._n_calls = state["target_sync_calls"]
    model.exploration_rate = state["exploration_rate"]
    torch.set_rng_state(state["rng_torch"])
    model.action_rng.bit_generator.state = state["rng_actions"]


# -- the run ------------------------------------------------------------------------------------------
def train(ctx: RunContext, resume: dict[str, Any] | None) -> str:
    """Train until `run.total_steps` env steps or a stop request; returns "finished" or "stopped"."""
    cfg = ctx.cfg
    d, p, e = cfg.section("dqn"), cfg.section("per"), cfg.section("env")
    done = int(resume["num_timesteps"]) if resume else 0
    torch_setup = start_run(ctx, f"PER-DQN (SB3 {versions()['stable_baselines3']} DQN subclass, "
                                 f"{'double' if d['double_dqn'] else 'single'} target) on {cfg['run.env']} "
                                 f"vs {e['opponent']}", done, {
        "envs": f"num_envs={e['num_envs']} warmup_steps={d['warmup_steps']:,}",
        "update": f"batch_size={d['batch_size']} updates_per_step={d['updates_per_step']} net={d['net_arch']} "
                  f"gamma={d['gamma']} lr={d['learning_rate']:g} target_sync={d['target_update_interval']:,}",
        "replay": f"capacity={d['buffer_size']:,} alpha={p['alpha']} beta {p['beta']}->{p['beta_end']} "
                  f"eps={p['eps']:g} prefetch={p['prefetch']}",
        "explore": f"epsilon {d['exploration_initial_eps']}->{d['exploration_final_eps']} over "
                   f"{d['exploration_fraction']:.0%} of the run",
    })
    pin_memory = torch_setup.device.type == "cuda" and cfg["torch.pin_memory"]
    env = make_env(cfg, ctx.timer, cfg["run.seed"] + done)
    model = make_model(cfg, env, torch_setup.device, pin_memory)
    model.set_logger(Logger(folder=None, output_formats=[]))
    warmup = d["warmup_steps"]
    model.attach(timer=ctx.timer, stop=ctx.stop, double_dqn=d["double_dqn"],
                 beta=linear_beta(p["beta"], p["beta_end"]), prefetch=p["prefetch"],
                 random_until=warmup, seed=cfg["run.seed"], amp=torch_setup.amp)
    if resume is not None:
        check_resume(resume, cfg)
        check_fits(resume, network_description(model, cfg, "dqn.net_arch"))
        _restore(model, resume)
        model.learning_starts = done + warmup
        ctx.log("info", f"resumed at step {done:,}: checkpoints hold no replay buffer, so it refills for "
                        f"{warmup:,} env steps (restored policy and epsilon) before training resumes")
    if torch_setup.compile:
        compile_networks(model, ctx)
    callbacks = run_callbacks(
        ctx, lambda: {**env.game_metrics(), **model.take_train_metrics(), **env.take_reward_parts()},
        lambda: checkpoint_state(model, cfg))
    with model.sampler:  # stops its worker thread however the run ends
        state = learn(model, callbacks, ctx, done, log_interval=None)
        ctx.log("info", model.sampler.describe())
        return state
