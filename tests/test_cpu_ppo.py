"""engine.cpu_ppo: its update is SB3's PPO.train() to float32 rounding, and it leaves an ordinary SB3
model behind (weights, Adam state, logged values)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.logger import Logger

import envs
from engine.cpu_ppo import CpuUpdatePPO, supports
from engine.perf import PerfTimer

LOGGED = ("train/entropy_loss", "train/policy_gradient_loss", "train/value_loss", "train/approx_kl",
          "train/clip_fraction", "train/loss", "train/explained_variance", "train/std", "train/n_updates",
          "train/clip_range")


def _model(cls: type[PPO], **settings: Any) -> PPO:
    env = envs.make_vec("soccer", 4, opponent="chaser", seed=3)
    model = cls("MlpPolicy", env, n_steps=40, seed=11, verbose=0, device="cpu",
                policy_kwargs={"net_arch": {"pi": [32, 16], "vf": [24]}}, **settings)
    model.set_logger(Logger(folder=None, output_formats=[]))
    model._setup_learn(10_000, None)
    return model


def _collect_and_train(model: PPO) -> None:
    callback = model._init_callback(None)  # SB3's own empty callback list, bound to the model
    torch.manual_seed(99)  # the noise: SB3 and NumpyActing draw the same normals, so both rollouts match
    assert model.env is not None
    model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    model._update_current_progress_remaining(model.num_timesteps, 10_000)
    np.random.seed(1234)  # the minibatch order: both updates draw the same permutations
    model.train()


def _assert_same_models(ours: PPO, sb3: PPO) -> None:
    for (name, mine), theirs in zip(ours.policy.named_parameters(), sb3.policy.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6, msg=f"parameter {name}")  # a step moves ~3e-4
    for mine, theirs in zip(ours.policy.parameters(), sb3.policy.parameters(), strict=True):
        a, b = ours.policy.optimizer.state[mine], sb3.policy.optimizer.state[theirs]
        assert float(a["step"]) == float(b["step"])
        torch.testing.assert_close(a["exp_avg"], b["exp_avg"], rtol=1e-3, atol=1e-6)
        torch.testing.assert_close(a["exp_avg_sq"], b["exp_avg_sq"], rtol=1e-3, atol=1e-9)
    for key in LOGGED:
        assert ours.logger.name_to_value[key] == pytest.approx(sb3.logger.name_to_value[key], rel=1e-3, abs=1e-6), key


@pytest.mark.slow
@pytest.mark.parametrize("settings", [
    {"batch_size": 32, "n_epochs": 3},  # 160 rows: five minibatches an epoch
    {"batch_size": 48, "n_epochs": 2, "ent_coef": 0.05, "max_grad_norm": 0.05},  # a short last batch; clipping
    {"batch_size": 16, "n_epochs": 4, "target_kl": 0.002, "learning_rate": 3e-3},  # stops early on KL
])
def test_two_updates_match_sb3s_train(settings: dict[str, Any]) -> None:
    sb3, ours = _model(PPO, **settings), _model(CpuUpdatePPO, **settings)
    assert supports(ours) is None
    for _update in range(2):  # the second starts from the Adam state the first left in the torch optimizer
        _collect_and_train(sb3)
        _collect_and_train(ours)
        _assert_same_models(ours, sb3)
    assert ours._n_updates == sb3._n_updates
    if "target_kl" in settings:
        assert ours._n_updates < 2 * settings["n_epochs"]  # the early stop was taken


@pytest.mark.slow
def test_the_update_reports_phase_times_and_gradient_norms() -> None:
    model = _model(CpuUpdatePPO, batch_size=32, n_epochs=1, max_grad_norm=0.01)
    assert isinstance(model, CpuUpdatePPO)
    timer = PerfTimer()
    norms: list[tuple[float, float]] = []
    model.timer = timer
    model.grad_norms = lambda pre, post: norms.append((pre, post))
    _collect_and_train(model)
    assert len(norms) == 5  # 160 rows / 32
    assert all(pre > post == pytest.approx(0.01, rel=1e-3) for pre, post in norms)
    assert set(timer.phase_ns()) == {"train_fwd", "train_bwd"}


def test_models_the_cpu_update_cannot_run_are_named() -> None:
    env = envs.make_vec("soccer", 2, opponent="chaser", seed=0)
    relu = CpuUpdatePPO("MlpPolicy", env, n_steps=8, device="cpu", policy_kwargs={"activation_fn": torch.nn.ReLU})
    assert supports(relu) == "the policy's MLPs are not Linear + Tanh"
    clipped = CpuUpdatePPO("MlpPolicy", env, n_steps=8, device="cpu", clip_range_vf=0.2)
    assert supports(clipped) == "the value function is clipped"


def test_acting_in_numpy_gives_sb3s_values_and_log_probabilities() -> None:
    model = CpuUpdatePPO("MlpPolicy", envs.make_vec("soccer", 2, opponent="chaser", seed=0), n_steps=8, device="cpu")
    obs = torch.as_tensor(np.random.default_rng(0).normal(size=(6, *(model.observation_space.shape or ()))))  # float64
    with torch.no_grad():
        model.policy.log_std.fill_(-0.7)
        actions, values, log_prob = model.policy(obs)
        sb3_values, sb3_log_prob, _entropy = model.policy.evaluate_actions(obs, actions)
        deterministic, _, _ = model.policy(obs, deterministic=True)
        means = model.policy.get_distribution(obs).get_actions(deterministic=True)
    assert actions.shape == (6, 2) and values.shape == (6, 1) and log_prob.shape == (6,)
    torch.testing.assert_close(values, sb3_values, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(log_prob, sb3_log_prob, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(deterministic, means, rtol=1e-5, atol=1e-6)
    spread = actions - deterministic
    assert float(spread.std()) == pytest.approx(float(np.exp(-0.7)), rel=0.5)  # sampled around the means
