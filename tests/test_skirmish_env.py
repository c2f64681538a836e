"""The Skirmish gym env and SB3 VecEnv: checkers, errors, lean/debug info, masks, seeding and auto-reset
(game i of the VecEnv plays exactly like the reference env seeded seed + i), properties of whole
reference games (hypothesis), MaskablePPO smoke run."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs.game_env import CORES
from envs.skirmish import rules

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
    with pytest.raises(ValueError, match=rf"action {illegal} is illegal now; legal: \[{', '.join(map(str, legal))}\]"):
        env.step(illegal)


@pytest.mark.parametrize(("kwargs", "what"), [
    ({"core": "rust"}, "unknown core 'rust'; expected one of 'cython', 'reference'"),
    ({"mode": "eval"}, "unknown mode 'eval'; expected one of 'train', 'debug'"),
    ({"max_steps": 0}, "max_steps must be >= 1"),
    ({"opponent": "random"}, "unknown opponent 'random'; expected one of 'scripted'"),
    ({"render_mode": "ansi"}, "unknown render_mode 'ansi'"),
])
@pytest.mark.parametrize("make", ["env", "vec"])
def test_bad_arguments_are_refused(kwargs: dict, what: str, make: str) -> None:
    if make == "vec" and set(kwargs) & {"core", "render_mode"}:
        return  # gym-env-only arguments
    with pytest.raises(ValueError, match=what):
        envs.make("skirmish", **kwargs) if make == "env" else envs.make_vec("skirmish", 2, **kwargs)


@pytest.mark.parametrize("core", CORES)
def test_the_scripted_opponent_is_accepted_by_name_everywhere(core: str) -> None:
    assert envs.opponents("skirmish") == ("scripted",) == envs.skirmish.OPPONENTS
    env = envs.make("skirmish", core=core, opponent="scripted", seed=3)
    default = envs.make("skirmish", core=core, seed=3)
    assert np.array_equal(env.reset()[0], default.reset()[0]) and env.opponent == "scripted"
    venv = envs.make_vec("skirmish", 2, opponent="scripted", seed=3)
    assert venv.get_attr("opponent") == ["scripted", "scripted"]
    assert np.array_equal(venv.reset()[0], env.reset(seed=3)[0])


@pytest.mark.parametrize("core", CORES)
def test_a_step_after_the_end_is_refused_until_reset(core: str) -> None:
    env = envs.make("skirmish", core=core, seed=6, max_steps=2)
    env.reset()
    with pytest.raises(RuntimeError, match="before reset"):
        envs.make("skirmish", core=core, seed=6).step(0)
    env.step(0)
    _, _, terminated, truncated, _ = env.step(0)
    assert truncated and not terminated and env.action_masks().tolist() == [True] + [False] * 13
    with pytest.raises(ValueError, match="the episode is over; call reset"):
        env.step(0)
    env.reset()
    env.step(0)


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
    before = venv.enemy_turn_ns
    assert before > 0
    while not venv.step(np.argmax(venv.action_masks(), axis=1))[2].any():
        pass  # to a game's end: a whole scripted turn (at least) has been timed since
    assert venv.enemy_turn_ns > before


def test_vec_env_refuses_an_illegal_action_without_moving() -> None:
    venv = envs.make_vec("skirmish", 3, seed=0)
    venv.reset()
    before = venv.action_masks()
    actions = np.argmax(before, axis=1)
    actions[1] = int(np.flatnonzero(~before[1])[0])
    with pytest.raises(ValueError, match=f"game 1: action {actions[1]} is illegal"):
        venv.step(actions)
    assert np.array_equal(venv.action_masks(), before)


GAME_DECISIONS = 5 * 3 * rules.UNITS_PER_SIDE  # rounds x (movement, shooting, charge) x units: the most a game asks


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**64 - 1), picks=st.lists(st.integers(0, 13), min_size=GAME_DECISIONS,
                                                      max_size=GAME_DECISIONS))
def test_reference_games_keep_their_invariants(seed: int, picks: list[int]) -> None:
    env = envs.make("skirmish", core="reference", seed=seed, mode="debug")
    obs, info = env.reset()
    assert obs in env.observation_space and info["end_reason"] == "" and info["turn"] == 1
    before = info
    for pick in picks:
        legal = np.flatnonzero(env.action_masks())
        assert legal[0] == 0  # hold is always legal while the game runs
        obs, reward, terminated, truncated, info = env.step(int(legal[pick % len(legal)]))
        parts = info["reward_parts"]
        assert obs in env.observation_space
        assert obs[-1] == np.float32((info["model_vp"] - info["player_vp"]) / 50)
        assert (info["model_health"], info["player_health"]) == (sum(info["wounds"][:4]), sum(info["wounds"][4:]))
        gained = (info["model_vp"] - before["model_vp"]) - (info["player_vp"] - before["player_vp"])
        dealt = before["player_health"] - info["player_health"]
        taken = before["model_health"] - info["model_health"]
        assert parts["vp"] == pytest.approx(gained / 10) and parts["damage"] == pytest.approx((dealt - taken) / 20)
        assert reward == pytest.approx(parts["vp"] + parts["damage"] + parts["outcome"], abs=1e-6)
        assert info["model_vp"] % 5 == 0 and info["player_vp"] % 5 == 0 and dealt >= 0 and taken >= 0
        before = info
        if terminated or truncated:
            break
    assert terminated and not truncated  # within GAME_DECISIONS, long before max_steps
    assert parts["outcome"] == {"model": 1.0, "player": -1.0, "draw": 0.0}[info["winner"]]
    ended = {"model_destroyed": info["model_health"] == 0, "player_destroyed": info["player_health"] == 0,
             "rounds": info["turn"] == 5}
    assert ended[info["end_reason"]]
    assert info["phase"] == "" and info["acting_unit"] == -1 and not obs[93:102].any()


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**64 - 1), picks=st.lists(st.integers(0, 13), min_size=6, max_size=6))
def test_mask_legal_actions_step_and_masked_out_ones_raise(seed: int, picks: list[int]) -> None:
    env = envs.make("skirmish", core="reference", seed=seed)
    env.reset()
    for pick in picks:
        mask = env.action_masks()
        for action in range(rules.NUM_ACTIONS):
            trial = copy.deepcopy(env)
            if mask[action]:
                trial.step(action)
            else:
                with pytest.raises(ValueError, match=f"action {action} is illegal now"):
                    trial.step(action)
        legal = np.flatnonzero(mask)
        if env.step(int(legal[pick % len(legal)]))[2]:
            break


@pytest.mark.slow
def test_maskable_ppo_trains_on_the_vec_env() -> None:
    """SB3's masked PPO runs on the VecEnv as it is (masks through env_method) and updates its policy."""
    venv = envs.make_vec("skirmish", 8, seed=0)
    model = MaskablePPO("MlpPolicy", venv, n_steps=16, batch_size=64, n_epochs=1, seed=0)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(256)
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.policy.parameters(), strict=True))


def test_vec_env_debug_mode_adds_debug_keys_at_episode_end() -> None:
    venv = envs.make_vec("skirmish", 2, seed=5, mode="debug", max_steps=3)
    venv.reset()
    for _ in range(3):
        _, _, dones, infos = venv.step(np.argmax(venv.action_masks(), axis=1))
    assert dones.all()  # truncated by the 3-decision cap
    for info in infos:
        assert set(info) >= DEBUG_KEYS and info["end_reason"] == "truncated" and info["TimeLimit.truncated"]
