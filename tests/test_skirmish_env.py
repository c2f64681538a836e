"""The Skirmish gym env and SB3 VecEnv: checkers, errors, lean/debug info, masks, seeding and auto-reset
(game i of the VecEnv plays exactly like the reference env seeded seed + i), MaskablePPO smoke run."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs.skirmish import rules
from envs.skirmish.env import CORES

TRAIN_KEYS = {"model_health", "player_health", "in_attack", "model_vp", "player_vp", "mission", "end_reason",
              "winner", "turn"}
DEBUG_KEYS = TRAIN_KEYS | {"positions", "wounds", "phase", "acting_unit", "reward_parts"}


@pytest.mark.parametrize("core", CORES)
def test_env_passes_gymnasium_and_sb3_checkers(core: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gym_check_env(envs.make("skirmish", core=core, seed=1))
        sb3_check_env(envs.make("skirmish", core=core, seed=1))


@pytest.mark.parametrize("core", CORES)
def test_illegal_action_names_it_and_the_legal_ones(core: str) -> None:
    env = envs.make("skirmish", core=core, seed=2)
    env.reset()
    illegal = int(np.flatnonzero(~env.action_masks())[0])
    legal = np.flatnonzero(env.action_masks()).tolist()
    with pytest.raises(ValueError, match=rf"illegal action {illegal}; legal actions: \[{', '.join(map(str, legal))}\]"):
        env.step(illegal)


@pytest.mark.parametrize(("kwargs", "what"), [({"core": "rust"}, "core"), ({"mode": "eval"}, "mode"),
                                              ({"max_steps": 0}, "max_steps")])
def test_bad_arguments_are_refused(kwargs: dict, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        envs.make("skirmish", **kwargs)


@pytest.mark.parametrize("core", CORES)
def test_info_is_lean_in_train_mode_and_full_in_debug(core: str) -> None:
    for mode, keys in (("train", TRAIN_KEYS), ("debug", DEBUG_KEYS)):
        env = envs.make("skirmish", core=core, seed=4, mode=mode)
        _, info = env.reset()
        assert set(info) == keys
        _, _, _, _, info = env.step(0)
        assert set(info) == keys
        if mode == "debug":
            assert info["reward_parts"].keys() == {"vp", "damage", "outcome"}


@pytest.mark.parametrize("core", CORES)
def test_reset_seed_reproduces_and_plain_reset_continues_the_stream(core: str) -> None:
    env = envs.make("skirmish", core=core, seed=9)

    def first_game() -> list[np.ndarray]:
        obs, out = None, []
        done = False
        while not done:
            obs, _, term, trunc, _ = env.step(int(np.flatnonzero(env.action_masks())[-1]))
            out.append(obs)
            done = term or trunc
        return out

    env.reset()
    a = first_game()
    env.reset(seed=9)
    b = first_game()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    second_obs, _ = env.reset()
    game = rules.SkirmishGame(9)
    while not game.over:
        game.step(int(np.flatnonzero(game.legal_mask())[-1]))
    game.reset()
    assert np.array_equal(second_obs, np.array(game.observation(), dtype=np.float32))


def test_vec_env_plays_like_reference_envs_and_auto_resets() -> None:
    num_envs, seed = 4, 30
    venv = envs.make_vec("skirmish", num_envs, seed=seed)
    refs = [envs.make("skirmish", core="reference", seed=seed + i) for i in range(num_envs)]
    obs = venv.reset()
    assert obs.shape == (num_envs, rules.OBS_SIZE) and obs.dtype == np.float32
    ref_obs = [r.reset()[0] for r in refs]
    picker = np.random.default_rng(0)
    ended_before = np.zeros(num_envs, dtype=np.bool_)
    episodes = 0
    while episodes < 3 * num_envs:
        masks = venv.action_masks()
        assert masks.shape == (num_envs, rules.NUM_ACTIONS) and masks.dtype == np.bool_
        assert np.array_equal(get_action_masks(venv), masks)
        assert np.array_equal(np.stack(venv.env_method("action_masks")), masks)
        assert np.array_equal(np.stack(ref_obs), obs)
        assert np.array_equal(np.stack([r.action_masks() for r in refs]), masks)
        actions = np.argmax(masks * picker.random(masks.shape), axis=1)
        obs, rewards, dones, infos = venv.step(actions)
        for i, ref in enumerate(refs):
            ref_obs[i], reward, term, trunc, info = ref.step(int(actions[i]))
            assert reward == rewards[i] and (term or trunc) == dones[i]
            if dones[i]:
                episodes += 1
                assert np.array_equal(infos[i]["terminal_observation"], ref_obs[i])
                assert {k: infos[i][k] for k in TRAIN_KEYS} == info
                assert infos[i]["episode"]["l"] > 0
                ref_obs[i], _ = ref.reset()
            elif ended_before[i]:
                assert infos[i] == {}  # end keys are cleared the step after
        ended_before = dones.copy()
    assert venv.info_array.shape == (num_envs, len(venv.info_columns))
    assert venv.enemy_turn_ns > 0


def test_vec_env_refuses_an_illegal_action_without_moving() -> None:
    venv = envs.make_vec("skirmish", 3, seed=0)
    venv.reset()
    before = venv.action_masks()
    actions = np.argmax(before, axis=1)
    actions[1] = int(np.flatnonzero(~before[1])[0])
    with pytest.raises(ValueError, match=f"game 1: action {actions[1]} is illegal"):
        venv.step(actions)
    assert np.array_equal(venv.action_masks(), before)


@pytest.mark.slow
def test_maskable_ppo_trains_on_the_vec_env() -> None:
    venv = envs.make_vec("skirmish", 8, seed=0)
    MaskablePPO("MlpPolicy", venv, n_steps=16, batch_size=64, n_epochs=1).learn(256)


def test_vec_env_debug_mode_adds_debug_keys_at_episode_end() -> None:
    venv = envs.make_vec("skirmish", 2, seed=5, mode="debug", max_steps=3)
    venv.reset()
    for _ in range(3):
        _, _, dones, infos = venv.step(np.argmax(venv.action_masks(), axis=1))
    assert dones.all()  # truncated by the 3-decision cap
    for info in infos:
        assert set(info) >= DEBUG_KEYS and info["end_reason"] == "truncated" and info["TimeLimit.truncated"]
