"""`env.normalize`: SB3's `VecNormalize` over a run's VecEnv, with its running statistics kept in every
checkpoint as tensors and numbers (loadable with `weights_only=True`; SB3's own `VecNormalize.save`
pickles the whole wrapper, which we never write).

Observations are normalised by a running mean and variance and clipped to +-10, rewards divided by the
running standard deviation of the discounted return (SB3's defaults, with the run's `gamma`). A resumed
run restores the statistics and keeps updating them; an evaluation restores them frozen (`training`
False, reward normalisation off), so the policy sees observations scaled as in training. The discounted
returns of the games in flight are not saved: a resumed run deals fresh games.

The checkpoint value (`statistics()`), float64 throughout so a round trip is exact:
    obs_mean, obs_var: float64 tensors [D]; obs_count, ret_mean, ret_var, ret_count: floats.
Nothing here knows a game or a trainer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from engine.errors import UsageError
from ext.running_moments import scale, update_columns

STATE_KEY = "vecnormalize"  # where a trainer keeps `statistics()` in its checkpoint
_OBS_KEYS = ("obs_mean", "obs_var")
_NUMBER_KEYS = ("obs_count", "ret_mean", "ret_var", "ret_count")


def wrap(venv: VecEnv, gamma: float) -> VecNormalize:
    """A fresh VecNormalize of observations and rewards over `venv` (statistics learned as it steps):
    `CompiledVecNormalize` for float32 vector observations, else SB3's own."""
    cls = CompiledVecNormalize if CompiledVecNormalize.fits(venv.observation_space) else VecNormalize
    return cls(venv, norm_obs=True, norm_reward=True, gamma=float(gamma))


class CompiledVecNormalize(VecNormalize):
    """SB3's VecNormalize, bit for bit (statistics, scaled observations and rewards, their dtypes), whose step
    updates and applies the observation statistics in ext.running_moments and the return statistics with
    numpy's raw reductions: a third of SB3's time a step (16 soccer games: ~50 us against ~140-180 us,
    which was ~20 % of a run once the PPO update was compiled). For float32 vector observations (`fits`);
    everything else (reset, unnormalising, SB3's own save) is SB3's."""

    @staticmethod
    def fits(space: spaces.Space) -> bool:
        return isinstance(space, spaces.Box) and len(space.shape) == 1 and space.dtype == np.float32

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        assert isinstance(obs, np.ndarray)  # fits(): a float32 vector per game
        self.old_obs, self.old_reward = obs, rewards
        obs_rms = self.obs_rms
        assert not isinstance(obs_rms, dict)
        if self.training and self.norm_obs:
            obs_rms.mean, obs_rms.var, obs_rms.count = update_columns(
                obs_rms.mean, obs_rms.var, float(obs_rms.count), np.ascontiguousarray(obs, dtype=np.float32))
        scaled = self.normalize_obs(obs)
        if self.training:
            self._update_reward(rewards)
        for idx in np.flatnonzero(dones):
            if "terminal_observation" in infos[idx]:
                infos[idx]["terminal_observation"] = self.normalize_obs(infos[idx]["terminal_observation"])
        self.returns[dones] = 0
        return scaled, self.normalize_reward(rewards), dones, infos

    def _update_reward(self, reward: np.ndarray) -> None:
        # SB3's RunningMeanStd.update on the N discounted returns, the batch moments taken with numpy's raw
        # reductions (the sums np.mean and np.var take, without their Python-level wrappers).
        self.returns = self.returns * self.gamma + reward
        n = self.returns.shape[0]
        batch_mean = np.add.reduce(self.returns) / n
        centred = self.returns - batch_mean
        self.ret_rms.update_from_moments(batch_mean, np.add.reduce(centred * centred) / n, n)

    def normalize_obs(self, obs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        obs_rms = self.obs_rms
        if not self.norm_obs or isinstance(obs, dict) or isinstance(obs_rms, dict):
            return super().normalize_obs(obs)
        rows = np.ascontiguousarray(obs, dtype=np.float32).reshape(-1, obs_rms.mean.shape[0])
        scaled = scale(rows, obs_rms.mean, obs_rms.var, self.epsilon, self.clip_obs)
        return scaled.reshape(np.shape(obs))


def statistics(norm: VecNormalize) -> dict[str, Any]:
    """The running statistics of `norm` as checkpoint values."""
    obs, ret = norm.obs_rms, norm.ret_rms
    assert not isinstance(obs, dict)  # our observations are flat boxes
    return {
        "obs_mean": torch.from_numpy(np.array(obs.mean, dtype=np.float64)),
        "obs_var": torch.from_numpy(np.array(obs.var, dtype=np.float64)),
        "obs_count": float(obs.count),
        "ret_mean": float(ret.mean),
        "ret_var": float(ret.var),
        "ret_count": float(ret.count),
    }


def check_statistics(stats: object, obs_size: int) -> None:
    """UsageError (one line) unless `stats` is a `statistics()` value for observations of `obs_size`."""
    if not isinstance(stats, Mapping):
        raise UsageError(f"checkpoint has no normalisation statistics ({STATE_KEY}); env.normalize = true "
                         "needs a checkpoint of a run that normalised")
    missing = [k for k in (*_OBS_KEYS, *_NUMBER_KEYS) if k not in stats]
    if missing:
        raise UsageError(f"checkpoint normalisation statistics lack {', '.join(missing)}")
    for key in _OBS_KEYS:
        value = stats[key]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != (obs_size,):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise UsageError(f"checkpoint normalisation statistics {key} has shape {shape}; the observation "
                             f"size is {obs_size}")
    wrong = [k for k in _NUMBER_KEYS if not isinstance(stats[k], float)]
    if wrong:
        raise UsageError(f"checkpoint normalisation statistics {', '.join(wrong)} must be numbers")


def restore(norm: VecNormalize, stats: Mapping[str, Any], *, training: bool) -> None:
    """Load `stats` (checked) into `norm`; `training` False freezes them and turns reward scaling off."""
    obs = norm.obs_rms
    assert not isinstance(obs, dict)
    check_statistics(stats, int(obs.mean.shape[0]))
    obs.mean = stats["obs_mean"].numpy().astype(np.float64)
    obs.var = stats["obs_var"].numpy().astype(np.float64)
    obs.count = stats["obs_count"]
    norm.ret_rms.mean = np.array(stats["ret_mean"], dtype=np.float64)
    norm.ret_rms.var = np.array(stats["ret_var"], dtype=np.float64)
    norm.ret_rms.count = stats["ret_count"]
    norm.training = training
    if not training:
        norm.norm_reward = False


# SB3 VecNormalize's defaults, which `wrap` keeps: observations are clipped to +-CLIP_OBS after scaling by
# 1 / sqrt(var + EPSILON).
CLIP_OBS = 10.0
EPSILON = 1e-8


def normalize_observations(stats: Mapping[str, Any], obs: np.ndarray) -> np.ndarray:
    """float64[..., D]: observations scaled as a VecNormalize holding `stats` (frozen) hands them to the
    policy, without a VecEnv (for an exported network's parity check)."""
    mean, var = stats["obs_mean"].numpy(), stats["obs_var"].numpy()
    return np.clip((obs - mean) / np.sqrt(var + EPSILON), -CLIP_OBS, CLIP_OBS)
