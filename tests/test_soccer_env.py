"""The soccer gym env and SB3 VecEnv: checkers, the continuous action's checks (clipped, NaN refused),
bad arguments, seeding and stream continuation, the VecEnv against N reference envs (game i plays like
the reference env seeded seed + i, across auto-resets), reward parts summing to the reward, the mirrored
observation of the right side, and an SB3 PPO smoke run over the Box action space."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs.game_env import CORES
from envs.soccer import rules
from envs.soccer.rules import Ball, Car, SoccerGame


@pytest.mark.parametrize("core", CORES)
def test_env_passes_gymnasium_and_sb3_checkers(core: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gym_check_env(envs.make("soccer", core=core, seed=1))
        sb3_check_env(envs.make("soccer", core=core, seed=1))


@pytest.mark.parametrize("core", CORES)
def test_the_action_is_a_box_clipped_to_its_bounds_and_a_nan_is_refused(core: str) -> None:
    wild = envs.make("soccer", core=core, seed=2)
    tame = envs.make("soccer", core=core, seed=2)
    assert isinstance(wild.action_space, spaces.Box) and wild.action_space.shape == (2,)
    wild.reset()
    tame.reset()
    for _ in range(20):
        assert np.array_equal(wild.step([4.0, -math.inf])[0], tame.step(np.array([1.0, -1.0]))[0])
    for bad in ([math.nan, 0.0], [0.5, 0.5, 0.5], 0.3):
        with pytest.raises(ValueError, match=r"is illegal; expected 2 numbers, no NaN \(values outside \[-1, 1\] are"):
            wild.step(bad)
    assert np.array_equal(wild.step([0.2, 0.1])[0], tame.step([0.2, 0.1])[0])  # nothing moved on a refusal


@pytest.mark.parametrize(("kwargs", "what"), [
    ({"core": "rust"}, "unknown core 'rust'; expected one of 'cython', 'reference'"),
    ({"side": "middle"}, "unknown side 'middle'; expected one of 'left', 'right', 'random'"),
    ({"max_steps": 0}, "max_steps must be >= 1, got 0"),
    ({"opponent": "keeper"}, "unknown opponent 'keeper'; expected one of 'chaser', 'goalie'"),
    ({"reward_weights": {"kick": 1.0}}, "reward_weights must have the keys goal, touch, ball_to_goal, ball_distance; "
                                        "got ball_distance, ball_to_goal, goal, kick, touch"),
    ({"reward_weights": {**rules.DEFAULT_WEIGHTS, "touch": "x"}}, "reward_weights\\['touch'\\] must be a finite"),
])
@pytest.mark.parametrize("make", ["env", "vec"])
def test_bad_arguments_are_refused(kwargs: dict, what: str, make: str) -> None:
    if make == "vec" and "core" in kwargs:
        return  # a gym-env-only argument
    with pytest.raises(ValueError, match=what):
        envs.make("soccer", **kwargs) if make == "env" else envs.make_vec("soccer", 2, **kwargs)


@pytest.mark.parametrize("core", CORES)
def test_a_step_after_the_end_is_refused_until_reset(core: str) -> None:
    with pytest.raises(RuntimeError, match="before reset"):
        envs.make("soccer", core=core, seed=6).step([0.0, 0.0])
    env = envs.make("soccer", core=core, seed=6, max_steps=2)
    env.reset()
    env.step([0.0, 0.0])
    _, _, terminated, truncated, info = env.step([0.0, 0.0])
    assert terminated and not truncated and info["outcome"] == "draw"
    with pytest.raises(ValueError, match="the episode is over; call reset"):
        env.step([0.0, 0.0])
    env.reset()
    env.step([0.0, 0.0])


@pytest.mark.parametrize("core", CORES)
def test_seeding_repeats_a_game_and_unseeded_resets_continue_the_stream(core: str) -> None:
    env = envs.make("soccer", core=core, seed=9)
    firsts = [env.reset()[0] for _ in range(6)]
    assert any(not np.array_equal(firsts[0], other) for other in firsts[1:])  # kick-offs and sides vary
    again = envs.make("soccer", core=core, seed=0)
    assert np.array_equal(again.reset(seed=9)[0], firsts[0])
    assert np.array_equal(again.reset()[0], firsts[1])


def test_the_vec_env_plays_like_reference_envs_seeded_seed_plus_i() -> None:
    num, seed, max_steps = 4, 30, 40
    venv = envs.make_vec("soccer", num, seed=seed, max_steps=max_steps, opponent="goalie")
    refs = [envs.make("soccer", core="reference", seed=seed + i, max_steps=max_steps, opponent="goalie")
            for i in range(num)]
    assert isinstance(venv.action_space, spaces.Box) and venv.action_space.shape == (2,)
    obs = venv.reset()
    assert np.array_equal(obs, np.stack([ref.reset()[0] for ref in refs]))
    picker = np.random.default_rng(4)
    for _ in range(2 * max_steps + 5):
        actions = picker.uniform(-1.0, 1.0, (num, 2)).astype(np.float32)
        obs, rewards, dones, infos = venv.step(actions)
        parts = venv.reward_parts
        for i, ref in enumerate(refs):
            ref_obs, reward, terminated, truncated, info = ref.step(actions[i])
            assert reward == rewards[i] == np.float32(parts[i].sum())
            assert dones[i] == (terminated or truncated)
            if dones[i]:
                assert np.array_equal(infos[i]["terminal_observation"], ref_obs)
                assert {k: infos[i][k] for k in info} == info and infos[i]["episode"]["l"] == max_steps
                ref_obs, _ = ref.reset()
            else:
                assert infos[i] == {}
            assert np.array_equal(obs[i], ref_obs)


def test_the_vec_env_refuses_a_nan_naming_the_game() -> None:
    venv = envs.make_vec("soccer", 3, seed=1)
    actions = np.zeros((3, 2), dtype=np.float32)
    actions[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"game 1: action \[nan, 0.0\] is illegal; expected numbers, no NaN"):
        venv.step(actions)


def rotated(game: SoccerGame) -> SoccerGame:
    """The same position seen from the other end: the pitch turned by pi, the cars' roles swapped, so the
    agent drives the other car."""
    turned = SoccerGame(0, "chaser", "right" if game.agent == 0 else "left", game.max_steps)

    def car(c: Car) -> Car:
        return Car(-c.x, -c.y, rules.wrap(c.heading + math.pi), c.speed)

    turned.cars = [car(game.cars[1]), car(game.cars[0])]
    turned.ball = Ball(-game.ball.x, -game.ball.y, -game.ball.vx, -game.ball.vy)
    turned.goals = [game.goals[1], game.goals[0]]
    turned.steps = game.steps
    return turned


@pytest.mark.parametrize("seed", range(6))
def test_mirrored_observations_agree(seed: int) -> None:
    """A left-side game and its rotation played from the right see the same observations (within float
    rounding) until a goal (after which the kick-off draws are not mirrored)."""
    game = SoccerGame(seed, "chaser", "left", 600)
    picker = np.random.default_rng(seed)
    for _ in range(30 + 10 * seed):  # somewhere into the game
        game.step(*picker.uniform(-1.0, 1.0, 2).tolist())
    turned = rotated(game)
    for _ in range(25):
        assert np.allclose(game.observation(), turned.observation(), rtol=0.0, atol=1e-5)
        goals = sum(game.goals)
        action = picker.uniform(-1.0, 1.0, 2).tolist()
        game.step(*action)
        turned.step(*action)
        if sum(game.goals) != goals:
            break
        assert np.allclose(game.reward_parts, turned.reward_parts, rtol=0.0, atol=1e-5)


@pytest.mark.slow
def test_sb3_ppo_trains_on_the_box_action_space() -> None:
    from stable_baselines3 import PPO

    venv = envs.make_vec("soccer", 4, seed=0, max_steps=50)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, device="cpu", seed=0)
    model.learn(256)
    actions, _ = model.predict(venv.reset(), deterministic=True)
    assert actions.shape == (4, 2) and np.all(np.abs(actions) <= 1.0)
