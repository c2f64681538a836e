"""SB3's PPO for a Box action space whose update (`train()`) and rollout policy forward run without torch
on the CPU: the same arithmetic, without torch's per-operator cost on tiny minibatches.

Why: on small MLPs and minibatches of 64 (SB3's default update, the regime the soccer probes point at,
docs/games/soccer.md), a torch gradient step on this CPU costs ~1.4 ms however lean the loop and 2-4 ms
in SB3's (some 70 small operators plus autograd's bookkeeping, each a few microseconds); the arithmetic
itself is a few tens of microseconds. Here each epoch's gradient steps are one call into C
(ext.ppo_step: gather, forward, losses, the hand-derived backward pass, gradient clipping and Adam on one
flat float32 parameter vector, matrix products in BLAS).

The update is SB3's `PPO.train()` step for step (tests/test_cpu_ppo.py checks the weights, the optimizer
state and the logged values against it): per epoch one `np.random.permutation` of the rollout (the same
draw SB3's rollout buffer makes, so a run's random stream is unchanged), minibatches of `batch_size` in
that order (the last one shorter), per-minibatch advantage normalisation, the clipped surrogate, the
value loss (no value clipping), the Gaussian's entropy, the approximate KL with `target_kl`'s early stop,
`clip_grad_norm_` over every parameter and torch's Adam (the optimizer's own lr, betas and eps). The
weights and Adam's moments are copied out of the torch policy and optimizer before the update and back
after it, so checkpoints, evaluation and resume see an ordinary SB3 model. `NumpyActing` is the
policy's `forward` during rollouts (SB3's costs 0.3-0.6 ms a vec step here), in numpy: the same means,
values and log-probabilities, the Gaussian noise drawn from torch's generator.

What it covers: SB3's `MlpPolicy` for a Box action (a state-independent log std), separate policy and
value MLPs with tanh activations, no gSDE, no value clipping. `supports()` says whether a model qualifies;
otherwise (and on CUDA, where torch's kernels are the fast path) `train()` is SB3's own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.utils import explained_variance

from engine.perf import PerfTimer
from ext.ppo_step import PpoEpochs

GradNormSink = Callable[[float, float], None]  # (norm before clipping, norm after) of one gradient step
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
STAT_COLUMNS = ("policy_loss", "value_loss", "entropy_loss", "clip_fraction", "approx_kl", "norm_pre", "norm_post")
T = TypeVar("T")


def supports(model: PPO) -> str | None:
    """None when `model`'s update can run here, else why not (one phrase)."""
    policy = model.policy
    if model.device.type != "cpu":
        return f"the model is on {model.device.type}"
    if model.use_sde:
        return "gSDE is on"
    if model.clip_range_vf is not None:
        return "the value function is clipped"
    if not hasattr(policy, "log_std") or policy.log_std.dim() != 1:
        return "the policy is not a diagonal Gaussian with a state-independent std"
    if not isinstance(policy.features_extractor, FlattenExtractor):
        return "the policy has a features extractor"
    extractor = policy.mlp_extractor
    for net in (extractor.policy_net, extractor.value_net):
        kinds = {type(m) for m in net.children()}
        if not kinds <= {torch.nn.Linear, torch.nn.Tanh}:
            return "the policy's MLPs are not Linear + Tanh"
    return None


@dataclass
class _Net(Generic[T]):
    """One MLP, each parameter seen as a T: hidden (W [out, in], b [out]) pairs, each followed by tanh, then
    the linear head."""

    hidden: list[tuple[T, T]]
    head: tuple[T, T]


@dataclass
class _Policy(Generic[T]):
    """SB3's Gaussian actor-critic, each parameter seen as a T: the policy MLP (its head gives the action
    means), the value MLP (its head the value) and the log std [act]."""

    pi: _Net[T]
    vf: _Net[T]
    log_std: T


def _policy_views(policy: ActorCriticPolicy, view: Callable[[torch.Tensor], T]) -> _Policy[T]:
    """`policy`'s parameters, each through `view`."""

    def net(body: torch.nn.Module, head: torch.nn.Module) -> _Net[T]:
        layers = [m for m in body.children() if isinstance(m, torch.nn.Linear)]
        assert isinstance(head, torch.nn.Linear)
        return _Net([(view(m.weight), view(m.bias)) for m in layers], (view(head.weight), view(head.bias)))

    extractor = policy.mlp_extractor
    assert isinstance(policy.log_std, torch.nn.Parameter)  # supports(): a state-independent std
    return _Policy(net(extractor.policy_net, policy.action_net), net(extractor.value_net, policy.value_net),
                   view(policy.log_std))


class _Slot(NamedTuple):
    """Where one parameter lies in the flat vector: its first index and its shape."""

    offset: int
    shape: tuple[int, ...]


def _linear_layers(net: _Net[_Slot]) -> list[tuple[int, int, int, int]]:
    """ext.ppo_step's description of an MLP: (weight offset, bias offset, outputs, inputs) per linear layer."""
    return [(weight.offset, bias.offset, weight.shape[0], weight.shape[1]) for weight, bias in [*net.hidden, net.head]]


class FlatParameters:
    """The policy's trainable tensors laid end to end in one float32 vector (and a gradient vector of the
    same layout), in `policy.parameters()` order, which is also the optimizer's."""

    def __init__(self, policy: ActorCriticPolicy) -> None:
        self.tensors: list[torch.Tensor] = [p for p in policy.parameters() if p.requires_grad]
        sizes = [p.numel() for p in self.tensors]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.values = np.zeros(int(self.offsets[-1]), dtype=np.float32)
        self.grads = np.zeros_like(self.values)
        index = {id(p): i for i, p in enumerate(self.tensors)}
        self.slots = _policy_views(policy, lambda p: _Slot(int(self.offsets[index[id(p)]]), tuple(p.shape)))
        self.gather(self.tensors, self.values)

    def gather(self, tensors: Sequence[torch.Tensor], into: np.ndarray) -> None:
        """Copy `tensors` (laid out like the parameters) into the flat vector `into`."""
        for i, t in enumerate(tensors):
            into[self.offsets[i]:self.offsets[i + 1]] = t.detach().reshape(-1).numpy()

    def write_back(self) -> None:
        """Copy the flat weights back into the policy's tensors, in place."""
        with torch.no_grad():
            for i, t in enumerate(self.tensors):
                t.copy_(torch.from_numpy(self.values[self.offsets[i]:self.offsets[i + 1]]).view_as(t))


def _forward(net: _Net[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The net's output [B, out] for inputs x [B, in]."""
    for w, b in net.hidden:
        x = x @ w.T
        x += b
        np.tanh(x, out=x)
    w, b = net.head
    return x @ w.T + b


class NumpyActing:
    """The policy's `forward` for collecting rollouts, in numpy: both MLPs on the observations, actions
    sampled from the Gaussian (noise from torch's generator), their log-probabilities, the values; returned
    as tensors shaped as SB3's `forward` returns them (actions [B, *shape], values [B, 1], log-probs [B]).
    It reads the live parameters through numpy views, so it always acts with the current weights."""

    def __init__(self, policy: ActorCriticPolicy) -> None:
        self.live = _policy_views(policy, lambda p: p.detach().numpy())
        self.action_shape = tuple(policy.action_space.shape or ())

    def __call__(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, ...]:
        x = obs.numpy().astype(np.float32, copy=False)  # VecNormalize hands float64; SB3's policy casts too
        mean, value = _forward(self.live.pi, x), _forward(self.live.vf, x)
        log_std = self.live.log_std
        constant = log_std.sum() + LOG_SQRT_2PI * log_std.size
        if deterministic:
            actions, log_prob = mean, np.full(len(x), -constant, dtype=np.float32)
        else:
            noise = torch.randn(mean.shape).numpy()
            actions = mean + np.exp(log_std) * noise
            log_prob = -0.5 * (noise * noise).sum(axis=1) - constant
        return (torch.from_numpy(actions.reshape(-1, *self.action_shape)), torch.from_numpy(value),
                torch.from_numpy(log_prob))


class CpuUpdatePPO(PPO):
    """SB3's PPO with `train()` outside torch (module docstring). `timer` gets `train_fwd` / `train_bwd`,
    `grad_norms` each gradient step's norm before and after clipping; both optional."""

    timer: PerfTimer | None = None
    grad_norms: GradNormSink | None = None

    def _setup_model(self) -> None:
        super()._setup_model()
        self.torch_update_reason = supports(self)  # None: our update runs; else why SB3's does
        if self.torch_update_reason is None:
            # An instance attribute shadows the method: nn.Module.__call__ looks up `self.forward`.
            self.policy.forward = NumpyActing(self.policy)  # type: ignore[method-assign,assignment]

    def train(self) -> None:
        if self.torch_update_reason:
            super().train()
            return
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = float(self.clip_range(self._current_progress_remaining))  # type: ignore[operator]
        flat = FlatParameters(self.policy)
        adam = _AdamState(self.policy.optimizer, flat)
        steps = PpoEpochs(
            _linear_layers(flat.slots.pi), _linear_layers(flat.slots.vf), flat.slots.log_std.offset,
            flat.values, flat.grads, adam.exp_avg, adam.exp_avg_sq, adam.steps,
            batch_size=self.batch_size, lr=adam.lr, betas=adam.betas, eps=adam.eps, ent_coef=float(self.ent_coef),
            vf_coef=float(self.vf_coef), max_grad_norm=float(self.max_grad_norm),
            target_kl=None if self.target_kl is None else 1.5 * float(self.target_kl),
            normalize_advantage=bool(self.normalize_advantage))
        data = _rollout(self.rollout_buffer)
        size = data["observations"].shape[0]
        stats = np.zeros((-(-size // self.batch_size), len(STAT_COLUMNS)))
        epochs: list[np.ndarray] = []  # each epoch's minibatch rows of `stats`
        stopped = False
        for _epoch in range(self.n_epochs):
            order = np.random.permutation(size).astype(np.int64, copy=False)
            done, stopped = steps.epoch(data["observations"], data["actions"], data["old_log_prob"],
                                        data["advantages"], data["returns"], order, clip_range, stats)
            epochs.append(stats[:done].copy())
            self._n_updates += 1
            if stopped:
                break
        adam.steps = steps.adam_steps
        flat.write_back()
        adam.store()
        if self.timer is not None:
            self.timer.add("train_fwd", steps.forward_ns)
            self.timer.add("train_bwd", steps.backward_ns)
        rows = np.concatenate(epochs)
        if self.grad_norms is not None:
            stepped = rows[:-1] if stopped else rows  # no step after a KL stop
            for pre, post in stepped[:, STAT_COLUMNS.index("norm_pre"):]:
                self.grad_norms(float(pre), float(post))
        self._record(rows, epochs[-1], flat, clip_range)

    def _record(self, rows: np.ndarray, last_epoch: np.ndarray, flat: FlatParameters, clip_range: float) -> None:
        """Log what SB3's `train()` logs: means over every minibatch (the approximate KL over the last epoch's),
        the last minibatch's loss."""
        column = {name: rows[:, i] for i, name in enumerate(STAT_COLUMNS)}
        loss = (column["policy_loss"][-1] + self.ent_coef * column["entropy_loss"][-1]
                + self.vf_coef * column["value_loss"][-1])
        buffer = self.rollout_buffer
        offset, (size,) = flat.slots.log_std
        log_std = flat.values[offset:offset + size]
        self.logger.record("train/entropy_loss", np.mean(column["entropy_loss"]))
        self.logger.record("train/policy_gradient_loss", np.mean(column["policy_loss"]))
        self.logger.record("train/value_loss", np.mean(column["value_loss"]))
        self.logger.record("train/approx_kl", np.mean(last_epoch[:, STAT_COLUMNS.index("approx_kl")]))
        self.logger.record("train/clip_fraction", np.mean(column["clip_fraction"]))
        self.logger.record("train/loss", float(loss))
        self.logger.record("train/explained_variance",
                           explained_variance(buffer.values.flatten(), buffer.returns.flatten()))
        self.logger.record("train/std", float(np.exp(log_std).mean()))
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)


def _rollout(buffer: Any) -> dict[str, np.ndarray]:
    """The rollout buffer's arrays flattened to one row per (step, game), step-major as SB3's buffer does,
    as float32 (advantages and returns [N], observations [N, obs], actions [N, act])."""
    n = buffer.buffer_size * buffer.n_envs
    out = {}
    for name in ("observations", "actions", "old_log_prob", "advantages", "returns"):
        array = buffer.log_probs if name == "old_log_prob" else getattr(buffer, name)
        out[name] = np.ascontiguousarray(buffer.swap_and_flatten(array).reshape(n, -1).astype(np.float32, copy=False))
    for name in ("old_log_prob", "advantages", "returns"):
        out[name] = np.ascontiguousarray(out[name][:, 0])
    return out


class _AdamState:
    """torch.optim.Adam's settings (no weight decay, no amsgrad) and state as flat vectors laid out like
    `flat`: the moments and step count taken from the torch optimizer, and `store()`d back into it."""

    def __init__(self, optimizer: torch.optim.Optimizer, flat: FlatParameters) -> None:
        (group,) = optimizer.param_groups
        if group.get("weight_decay", 0) or group.get("amsgrad", False) or group.get("maximize", False):
            raise ValueError("the CPU update runs plain Adam only (no weight decay, amsgrad or maximize)")
        self.optimizer, self.flat = optimizer, flat
        self.lr, self.eps = float(group["lr"]), float(group["eps"])
        self.betas = (float(group["betas"][0]), float(group["betas"][1]))
        self.exp_avg = np.zeros_like(flat.values)
        self.exp_avg_sq = np.zeros_like(flat.values)
        self.steps = 0
        if all(p in optimizer.state for p in flat.tensors):
            state = [optimizer.state[p] for p in flat.tensors]
            flat.gather([s["exp_avg"] for s in state], self.exp_avg)
            flat.gather([s["exp_avg_sq"] for s in state], self.exp_avg_sq)
            self.steps = int(state[0]["step"])

    def store(self) -> None:
        """Write the moments and step count back into the torch optimizer's state (creating it if empty)."""
        for i, param in enumerate(self.flat.tensors):
            lo, hi = self.flat.offsets[i], self.flat.offsets[i + 1]
            self.optimizer.state[param] = {
                "step": torch.tensor(float(self.steps)),
                "exp_avg": torch.from_numpy(self.exp_avg[lo:hi].copy()).view_as(param),
                "exp_avg_sq": torch.from_numpy(self.exp_avg_sq[lo:hi].copy()).view_as(param),
            }
