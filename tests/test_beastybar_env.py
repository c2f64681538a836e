"""The Beasty Bar gym env on the reference backend: API checkers, errors, episode shape, masks,
seeding and determinism. (The Cython backend's own cases live with the core's tests.)"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from envs.beastybar import make
from envs.beastybar.env import BeastyBarEnv


def reference_env(**kwargs: Any) -> BeastyBarEnv:
    env = make(core="reference", **kwargs)
    assert isinstance(env, BeastyBarEnv)
    return env


@pytest.mark.parametrize("opponent", ["random", "heuristic"])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_gymnasium_check_env(opponent: str) -> None:
    env = reference_env(opponent=opponent, seed=11)
    env.action_space.seed(0)  # the checkers sample actions: seeded, the run is reproducible
    gym_check_env(env)


@pytest.mark.parametrize("scoring", ["points", "count"])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sb3_check_env(scoring: str) -> None:
    env = reference_env(scoring=scoring, seed=12)
    env.action_space.seed(0)
    sb3_check_env(env)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"core": "numba"}, "'numba'.*'cython', 'reference'"),
        ({"opponent": "genius"}, "'genius'.*'random', 'heuristic'"),
        ({"scoring": "best"}, "'best'.*'points', 'count'"),
        ({"render_mode": "human"}, "'human'.*'ansi'"),
        ({"seed": -1}, "seed -1"),
    ],
)
def test_bad_constructor_args_raise(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        BeastyBarEnv(**{"core": "reference", **kwargs})


def test_illegal_action_raises_naming_the_legal_ones() -> None:
    env = reference_env(seed=3)
    env.reset()
    mask = env.action_masks()
    illegal = int(np.flatnonzero(~mask)[0])
    legal = np.flatnonzero(mask).tolist()
    with pytest.raises(ValueError, match=rf"action {illegal} is illegal now; legal: \[{', '.join(map(str, legal))}\]"):
        env.step(illegal)
    with pytest.raises(ValueError, match="action 33 is illegal"):
        env.step(33)


def test_step_after_the_end_raises() -> None:
    env = reference_env(seed=4)
    env.reset()
    terminated = False
    while not terminated:
        _, _, terminated, _, _ = env.step(int(np.flatnonzero(env.action_masks())[0]))
    with pytest.raises(ValueError, match="episode is over"):
        env.step(0)


def play_episode(env: BeastyBarEnv, picks: list[int]) -> list[tuple[Any, ...]]:
    """Steps until the end, choosing legal action `picks[i] % len(legal)` at step i; returns the trajectory."""
    trajectory = []
    for step in range(100):
        legal = np.flatnonzero(env.action_masks())
        action = int(legal[picks[step % len(picks)] % len(legal)])
        obs, reward, terminated, truncated, info = env.step(action)
        trajectory.append((action, obs, reward, terminated, truncated, info, env.action_masks()))
        if terminated:
            return trajectory
    raise AssertionError("no end after 100 steps")


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**64 - 1),
    opponent=st.sampled_from(["random", "heuristic"]),
    scoring=st.sampled_from(["points", "count"]),
    picks=st.lists(st.integers(0, 14), min_size=12, max_size=12),
)
def test_episodes_have_twelve_steps_and_one_final_reward(
    seed: int, opponent: str, scoring: str, picks: list[int]
) -> None:
    env = reference_env(seed=seed, opponent=opponent, scoring=scoring)
    obs, info = env.reset()
    assert info == {} and obs in env.observation_space
    assert obs[156] in (0.0, 1 / 24) and obs[159] == (1.0 if obs[156] == 0.0 else 0.0)
    trajectory = play_episode(env, picks)
    assert len(trajectory) == 12
    for _, obs, reward, terminated, truncated, info, mask in trajectory[:-1]:
        assert obs in env.observation_space
        assert reward == 0.0 and not terminated and not truncated and info == {}
        assert mask.dtype == np.bool_ and mask.shape == (33,) and 1 <= mask.sum() <= 15
    _, obs, reward, terminated, truncated, info, mask = trajectory[-1]
    assert terminated and not truncated and not mask.any()
    assert obs[156] == 1.0 and not obs[70:94].any()  # all 24 turns played; hand and pile empty
    assert reward == {0: 1.0, 1: -1.0, -1: 0.0}[info["winner"]]
    p0, p1 = info["points"]
    assert (obs[154], obs[155]) == (np.float32(p0 / 20), np.float32(p1 / 20))
    assert sum(info["bar_count"]) == int(obs[106:130].sum())
    if scoring == "points":
        assert info["winner"] == (0 if p0 > p1 else 1 if p1 > p0 else -1)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**64 - 1), picks=st.lists(st.integers(0, 14), min_size=12, max_size=12))
def test_mask_legal_actions_step_and_masked_out_ones_raise(seed: int, picks: list[int]) -> None:
    env = reference_env(seed=seed, opponent="heuristic")
    env.reset()
    for step in range(12):
        mask = env.action_masks()
        for action in range(33):
            trial = copy.deepcopy(env)
            if mask[action]:
                trial.step(action)
            else:
                with pytest.raises(ValueError):
                    trial.step(action)
        legal = np.flatnonzero(mask)
        env.step(int(legal[picks[step] % len(legal)]))


def test_same_seed_and_actions_give_the_same_trajectory() -> None:
    picks = [5, 1, 4, 1, 3, 9, 2, 6, 5, 3, 5, 8]
    runs = []
    for _ in range(2):
        env = reference_env(seed=2024, opponent="heuristic")
        first_obs, _ = env.reset()
        runs.append([first_obs, *play_episode(env, picks)])
    for a, b in zip(*runs, strict=True):
        np.testing.assert_equal(a, b)


def test_reset_without_seed_continues_the_stream() -> None:
    seeded = reference_env(seed=99)
    reseeded = reference_env(seed=1)
    first, _ = seeded.reset()
    assert np.array_equal(reseeded.reset(seed=99)[0], first)
    play_episode(seeded, [0])
    play_episode(reseeded, [0])
    second, _ = seeded.reset()
    assert np.array_equal(reseeded.reset()[0], second)
    assert np.array_equal(seeded.reset(seed=99)[0], first)


def test_unseeded_env_draws_fresh_entropy() -> None:
    firsts = {reference_env().reset()[0].tobytes() for _ in range(8)}
    assert len(firsts) > 1


def test_action_space_samples_legal_moves() -> None:
    env = reference_env(seed=5)
    env.reset()
    env.action_space.seed(1)
    for _ in range(50):
        assert env.action_masks()[env.action_space.sample()]


def test_render_ansi() -> None:
    env = reference_env(seed=8, render_mode="ansi")
    env.reset()
    text = env.render()
    assert text is not None and text.startswith("turn ") and "queue:" in text and "hand:" in text
    assert reference_env(seed=8).render() is None


@pytest.mark.slow
def test_maskable_ppo_trains_on_the_reference_env() -> None:
    from sb3_contrib import MaskablePPO

    model = MaskablePPO("MlpPolicy", reference_env(seed=0), n_steps=32, batch_size=16, n_epochs=1, seed=0)
    model.learn(64)
    # SB3's Monitor saw 64 // 12 whole games of 12 decisions, each ending in a result.
    assert [(info["l"], info["r"] in (-1, 0, 1)) for info in model.ep_info_buffer] == [(12, True)] * 5
