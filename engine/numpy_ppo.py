"""SB3's PPO for a Box action space whose update (`train()`) and rollout policy forward run in numpy on the
CPU: the same arithmetic, without torch's per-operator cost on tiny minibatches.

Why: on small MLPs and minibatches of 64 (SB3's default update, the regime the soccer probes point at,
docs/games/soccer.md), a torch gradient step on this CPU costs ~1.4 ms however lean the loop and 2-4 ms
in SB3's (some 70 small operators plus autograd's bookkeeping, each a few microseconds); the arithmetic
itself is a few tens of microseconds. Here the forward pass, the hand-derived backward pass, gradient
clipping and Adam are a few dozen numpy calls on one flat float32 parameter vector.

The update is SB3's `PPO.train()` step for step (tests/test_numpy_ppo.py checks the weights, the optimizer
state and the logged values against it): per epoch one `np.random.permutation` of the rollout (the same
draw SB3's rollout buffer makes, so a run's random stream is unchanged), minibatches of `batch_size` in
that order (the last one shorter), per-minibatch advantage normalisation, the clipped surrogate, the
value loss (no value clipping), the Gaussian's entropy, the approximate KL with `target_kl`'s early stop,
`clip_grad_norm_` over every parameter and torch's Adam (the optimizer's own lr, betas and eps). The
weights and Adam's moments are copied out of the torch policy and optimizer before the update and back
after it, so checkpoints, evaluation and resume see an ordinary SB3 model. `NumpyActing` is the
policy's `forward` during rollouts (SB3's costs 0.3-0.6 ms a vec step here): the same means, values and
log-probabilities, the Gaussian noise drawn from torch's generator.

What it covers: SB3's `MlpPolicy` for a Box action (a state-independent log std), separate policy and
value MLPs with tanh activations, no gSDE, no value clipping. `supports()` says whether a model qualifies;
otherwise (and on CUDA, where torch's kernels are the fast path) `train()` is SB3's own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.utils import explained_variance

from engine.perf import PerfTimer

GradNormSink = Callable[[float, float], None]  # (norm before clipping, norm after) of one gradient step
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


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
class _Net:
    """One MLP as numpy arrays (views): hidden (W [out, in], b [out]) pairs, each followed by tanh, then the
    linear head."""

    hidden: list[tuple[np.ndarray, np.ndarray]]
    head: tuple[np.ndarray, np.ndarray]


@dataclass
class _Policy:
    """SB3's Gaussian actor-critic as numpy views: the policy MLP (its head gives the action means), the
    value MLP (its head the value) and the log std [act]."""

    pi: _Net
    vf: _Net
    log_std: np.ndarray


def _policy_views(policy: ActorCriticPolicy, view: Callable[[torch.Tensor], np.ndarray]) -> _Policy:
    """`policy`'s parameters, each through `view` (parameter -> array of its shape)."""

    def net(body: torch.nn.Module, head: torch.nn.Module) -> _Net:
        layers = [m for m in body.children() if isinstance(m, torch.nn.Linear)]
        assert isinstance(head, torch.nn.Linear)
        return _Net([(view(m.weight), view(m.bias)) for m in layers], (view(head.weight), view(head.bias)))

    extractor = policy.mlp_extractor
    assert isinstance(policy.log_std, torch.nn.Parameter)  # supports(): a state-independent std
    return _Policy(net(extractor.policy_net, policy.action_net), net(extractor.value_net, policy.value_net),
                   view(policy.log_std))


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

        def into(vector: np.ndarray) -> Callable[[torch.Tensor], np.ndarray]:
            def view(param: torch.Tensor) -> np.ndarray:
                i = index[id(param)]
                return vector[self.offsets[i]:self.offsets[i + 1]].reshape(tuple(param.shape))
            return view

        self.params, self.grad = _policy_views(policy, into(self.values)), _policy_views(policy, into(self.grads))
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


def _forward(net: _Net, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The net's output [B, out] and every layer's input (x, then each hidden activation)."""
    inputs = [x]
    for w, b in net.hidden:
        h = inputs[-1] @ w.T
        h += b
        np.tanh(h, out=h)
        inputs.append(h)
    w, b = net.head
    return inputs[-1] @ w.T + b, inputs


def _backward(net: _Net, grad: _Net, inputs: list[np.ndarray], grad_out: np.ndarray) -> None:
    """Write d loss / d weights into `grad`'s views, given d loss / d output [B, out]."""
    w, _ = net.head
    np.matmul(grad_out.T, inputs[-1], out=grad.head[0])
    np.add.reduce(grad_out, axis=0, out=grad.head[1])
    upstream = grad_out @ w
    for layer in range(len(net.hidden) - 1, -1, -1):
        h = inputs[layer + 1]
        upstream *= 1.0 - h * h  # through tanh
        gw, gb = grad.hidden[layer]
        np.matmul(upstream.T, inputs[layer], out=gw)
        np.add.reduce(upstream, axis=0, out=gb)
        if layer:
            upstream = upstream @ net.hidden[layer][0]


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
        mean, _ = _forward(self.live.pi, x)
        value, _ = _forward(self.live.vf, x)
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


class NumpyUpdatePPO(PPO):
    """SB3's PPO with `train()` in numpy (module docstring). `timer` gets `train_fwd` / `train_bwd` per
    gradient step, `grad_norms` the norm before and after clipping; both optional."""

    timer: PerfTimer | None = None
    grad_norms: GradNormSink | None = None

    def _setup_model(self) -> None:
        super()._setup_model()
        self.torch_update_reason = supports(self)  # None: the numpy update runs; else why SB3's does
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
        adam = _Adam(self.policy.optimizer, flat)
        data = _rollout(self.rollout_buffer)
        timer = self.timer if self.timer is not None and self.timer.enabled else None
        ent_coef, vf_coef = float(self.ent_coef), float(self.vf_coef)
        target_kl = None if self.target_kl is None else 1.5 * float(self.target_kl)
        max_norm = float(self.max_grad_norm)
        pg_losses, value_losses, entropy_losses, clip_fractions = [], [], [], []
        approx_kls: list[float] = []
        loss = 0.0
        size = data["observations"].shape[0]
        stop = False
        for _epoch in range(self.n_epochs):
            approx_kls = []
            order = np.random.permutation(size)
            shuffled = {name: array[order] for name, array in data.items()}  # minibatches become slices
            for start in range(0, size, self.batch_size):
                rows = slice(start, start + self.batch_size)
                t0 = time.perf_counter_ns()
                obs = shuffled["observations"][rows]
                mean, pi_inputs = _forward(flat.params.pi, obs)
                value_out, vf_inputs = _forward(flat.params.vf, obs)
                t1 = time.perf_counter_ns()
                step = _losses(mean, value_out[:, 0], flat.params.log_std, shuffled["actions"][rows],
                               shuffled["old_log_prob"][rows], shuffled["advantages"][rows], shuffled["returns"][rows],
                               clip_range, self.normalize_advantage)
                pg_losses.append(step.policy_loss)
                clip_fractions.append(step.clip_fraction)
                value_losses.append(step.value_loss)
                entropy_losses.append(step.entropy_loss)
                approx_kls.append(step.approx_kl)
                loss = step.policy_loss + ent_coef * step.entropy_loss + vf_coef * step.value_loss
                if target_kl is not None and step.approx_kl > target_kl:
                    stop = True
                    break
                _backward(flat.params.pi, flat.grad.pi, pi_inputs, step.grad_mean)
                _backward(flat.params.vf, flat.grad.vf, vf_inputs, (vf_coef * step.grad_value)[:, None])
                flat.grad.log_std[:] = step.grad_log_std - ent_coef  # entropy_loss = -entropy: d/d log_std = -1
                norm = float(np.sqrt(np.dot(flat.grads, flat.grads)))
                # torch's clip_grad_norm_: always scaled by min(1, max / (norm + 1e-6))
                scale = min(1.0, max_norm / (norm + 1e-6))
                flat.grads *= np.float32(scale)
                adam.step(flat.values, flat.grads)
                if self.grad_norms is not None:
                    self.grad_norms(norm, norm * scale)
                if timer is not None:
                    timer.add("train_fwd", t1 - t0)
                    timer.add("train_bwd", time.perf_counter_ns() - t1)
            self._n_updates += 1
            if stop:
                break
        flat.write_back()
        adam.store()

        buffer = self.rollout_buffer
        self.logger.record("train/entropy_loss", np.mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(value_losses))
        self.logger.record("train/approx_kl", np.mean(approx_kls))
        self.logger.record("train/clip_fraction", np.mean(clip_fractions))
        self.logger.record("train/loss", loss)
        self.logger.record("train/explained_variance",
                           explained_variance(buffer.values.flatten(), buffer.returns.flatten()))
        self.logger.record("train/std", float(np.exp(flat.params.log_std).mean()))
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
        out[name] = out[name][:, 0]
    return out


@dataclass
class _StepLosses:
    """One minibatch's loss terms (floats, as SB3 logs them) and the gradients of the PPO loss's policy and
    value parts: d/d mean [B, act], d/d value [B] (of the value loss alone) and d/d log_std [act] of the
    policy loss (the mean entropy's d/d log_std is 1 in every dimension)."""

    policy_loss: float
    value_loss: float
    entropy_loss: float
    clip_fraction: float
    approx_kl: float
    grad_mean: np.ndarray
    grad_value: np.ndarray
    grad_log_std: np.ndarray


def _losses(mean: np.ndarray, value: np.ndarray, log_std: np.ndarray, actions: np.ndarray, old_log_prob: np.ndarray,
            advantages: np.ndarray, returns: np.ndarray, clip_range: float, normalize: bool) -> _StepLosses:
    """SB3's PPO loss terms on one minibatch of B rows, and their gradients (derived by hand; the test
    checks them against torch's autograd through SB3)."""
    batch = mean.shape[0]
    inv_var = np.exp(-2.0 * log_std)
    diff = actions - mean
    scaled = diff * diff * inv_var
    log_prob = -0.5 * scaled.sum(axis=1) - (log_std.sum() + LOG_SQRT_2PI * log_std.size)
    if normalize and batch > 1:
        centered = advantages - advantages.sum() / batch
        std = math.sqrt(float(centered @ centered) / (batch - 1))  # torch's std: unbiased
        advantages = centered / np.float32(std + 1e-8)
    log_ratio = log_prob - old_log_prob
    ratio = np.exp(log_ratio)
    surrogate = advantages * ratio
    clipped = advantages * np.clip(ratio, 1 - clip_range, 1 + clip_range)
    # torch.min's gradient goes to the smaller term; the clipped one carries none outside the clip range.
    unclipped = surrogate <= clipped
    grad_log_prob = surrogate * unclipped
    grad_log_prob *= np.float32(-1.0 / batch)
    error = value - returns
    return _StepLosses(
        policy_loss=-float(np.minimum(surrogate, clipped).sum()) / batch,
        value_loss=float(error @ error) / batch,
        entropy_loss=-float(np.sum(0.5 + LOG_SQRT_2PI + log_std)),
        clip_fraction=np.count_nonzero(np.abs(ratio - 1) > clip_range) / batch,
        approx_kl=float(((ratio - 1) - log_ratio).sum()) / batch,
        grad_mean=grad_log_prob[:, None] * diff * inv_var,
        grad_value=np.float32(2.0 / batch) * error,
        grad_log_std=grad_log_prob @ (scaled - 1.0),
    )


class _Adam:
    """torch.optim.Adam's update (no weight decay, no amsgrad) on the flat vectors, its moments and step
    count taken from and returned to the torch optimizer's state."""

    def __init__(self, optimizer: torch.optim.Optimizer, flat: FlatParameters) -> None:
        (group,) = optimizer.param_groups
        if group.get("weight_decay", 0) or group.get("amsgrad", False) or group.get("maximize", False):
            raise ValueError("the numpy update runs plain Adam only (no weight decay, amsgrad or maximize)")
        self.optimizer, self.flat = optimizer, flat
        self.lr, (self.beta1, self.beta2), self.eps = float(group["lr"]), group["betas"], float(group["eps"])
        self.exp_avg = np.zeros_like(flat.values)
        self.exp_avg_sq = np.zeros_like(flat.values)
        self._scratch = (np.empty_like(flat.values), np.empty_like(flat.values))
        self.steps = 0
        if all(p in optimizer.state for p in flat.tensors):
            state = [optimizer.state[p] for p in flat.tensors]
            flat.gather([s["exp_avg"] for s in state], self.exp_avg)
            flat.gather([s["exp_avg_sq"] for s in state], self.exp_avg_sq)
            self.steps = int(state[0]["step"])

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        # In place through two scratch vectors: a dozen passes over ~10k floats, no allocations.
        self.steps += 1
        a, b = self._scratch
        np.subtract(grads, self.exp_avg, out=a)
        np.multiply(a, np.float32(1 - self.beta1), out=a)
        self.exp_avg += a
        np.multiply(grads, grads, out=a)
        np.multiply(a, np.float32(1 - self.beta2), out=a)
        self.exp_avg_sq *= np.float32(self.beta2)
        self.exp_avg_sq += a
        bias1 = 1 - self.beta1 ** self.steps
        bias2_sqrt = math.sqrt(1 - self.beta2 ** self.steps)
        np.sqrt(self.exp_avg_sq, out=b)
        np.divide(b, np.float32(bias2_sqrt), out=b)
        np.add(b, np.float32(self.eps), out=b)
        np.divide(self.exp_avg, b, out=a)
        np.multiply(a, np.float32(self.lr / bias1), out=a)  # torch's addcdiv_: (m / denom) x step size
        params -= a

    def store(self) -> None:
        """Write the moments and step count back into the torch optimizer's state (creating it if empty)."""
        for i, param in enumerate(self.flat.tensors):
            lo, hi = self.flat.offsets[i], self.flat.offsets[i + 1]
            self.optimizer.state[param] = {
                "step": torch.tensor(float(self.steps)),
                "exp_avg": torch.from_numpy(self.exp_avg[lo:hi].copy()).view_as(param),
                "exp_avg_sq": torch.from_numpy(self.exp_avg_sq[lo:hi].copy()).view_as(param),
            }
