"""The soccer Cython core against the pure-Python reference, step for step and bit for bit: the float64
physics state, observations, rewards and their parts, terminated/truncated, end infos, terminal
observations, episode stats and the generator state after every step, over several episodes per game
(so auto-reset's stream continuation is covered) and every end (win, loss, draw), both sides and both
scripted cars. Half the games are driven by the chaser's own logic with noise so that the agent scores
too; the other half by uniform random actions, a quarter of them outside [-1, 1] (clipping)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import envs
from envs.batched_vec_env import CoreBuffers
from envs.soccer import rules
from ext import soccer_core
from ext.soccer_core import SoccerCore

WEIGHTS = {"goal": 1.0, "touch": 0.3, "ball_to_goal": 0.7, "ball_distance": 0.11}


def rng_state(game: rules.SoccerGame) -> tuple[int, int, int, int]:
    return (game.rng.s0, game.rng.s1, game.rng.s2, game.rng.s3)


def agent_actions(refs: list[rules.SoccerGame], picker: np.random.Generator) -> np.ndarray:
    """float32[N, 2]: even games play the chaser's action plus noise, odd games uniform in [-1.25, 1.25]."""
    actions = picker.uniform(-1.25, 1.25, (len(refs), 2))
    for i in range(0, len(refs), 2):
        g = refs[i]
        chosen = rules.scripted_action(0, g.cars[g.agent], g.ball, 1.0 if g.agent == 0 else -1.0)
        actions[i] = np.array(chosen) + picker.normal(0.0, 0.2, 2)
    return actions.astype(np.float32)


def play_both(num_games: int, episodes_per_game: int, first_seed: int, opponent: str, side: str,
              max_steps: int) -> Counter[str]:
    """Plays num_games x episodes_per_game episodes in both; returns a count of outcomes and sides."""
    b = CoreBuffers.allocate(num_games, rules.OBS_SIZE, 0)
    options = {"side": side, "max_steps": max_steps, "reward_weights": WEIGHTS}
    core = SoccerCore(num_games, rules.core_tables(), opponent, options, True, b)
    seeds = np.arange(first_seed, first_seed + num_games, dtype=np.uint64)
    core.reset(seeds)
    refs = [rules.SoccerGame(int(s), opponent, side, max_steps, WEIGHTS) for s in seeds]
    picker = np.random.default_rng(first_seed)
    episodes = np.zeros(num_games, dtype=np.int64)
    seen: Counter[str] = Counter()

    def compare_state(i: int) -> None:
        ref = refs[i]
        assert np.array_equal(np.array(ref.observation(), dtype=np.float32), b.obs[i]), f"obs of game {i}"
        assert tuple(core.states()[i].tolist()) == ref.state(), f"state of game {i}"
        assert rng_state(ref) == tuple(int(v) for v in core.rng_states()[i]), f"generator of game {i}"

    for i in range(num_games):
        compare_state(i)
    while (episodes < episodes_per_game).any():
        actions = agent_actions(refs, picker)
        assert core.step(actions) == -1
        for i in range(num_games):
            ref = refs[i]
            ref.step(float(actions[i, 0]), float(actions[i, 1]))
            assert core.reward_parts[i].tolist() == ref.reward_parts, f"reward parts of game {i}"
            assert np.float32(ref.reward) == b.rewards[i]
            assert (ref.terminated, ref.truncated) == (bool(b.terminated[i]), bool(b.truncated[i]))
            if ref.over:
                assert np.array_equal(np.array(ref.observation(), dtype=np.float32), b.terminal_obs[i])
                info = ref.end_info()
                assert core.end_info(i) == info, f"end info of game {i}"
                assert core.episode_length[i] == max_steps
                assert rules.OUTCOMES[core.episode_outcome[i]] == info["outcome"]  # -1 indexes "loss"
                seen[str(info["outcome"])] += 1
                seen[str(info["side"])] += 1
                episodes[i] += 1
                ref.reset()
            compare_state(i)
    return seen


@pytest.mark.parametrize("opponent", rules.OPPONENTS)
def test_core_matches_reference_bit_for_bit(opponent: str) -> None:
    seen = play_both(num_games=12, episodes_per_game=2, first_seed=100, opponent=opponent, side="random",
                     max_steps=250)
    assert seen["left"] and seen["right"]
    if opponent == "chaser":
        assert seen["win"] and seen["loss"] and seen["draw"], seen


@pytest.mark.heavy
@pytest.mark.parametrize("side", rules.SIDES)
def test_core_matches_reference_over_longer_games(side: str) -> None:
    seen = play_both(num_games=16, episodes_per_game=3, first_seed=7_000, opponent="chaser", side=side,
                     max_steps=600)
    assert seen["win"] and seen["loss"]


def test_the_vocabulary_is_the_reference_one() -> None:
    assert soccer_core.OPPONENTS == rules.OPPONENTS
    assert soccer_core.SIDES == rules.SIDES
    assert soccer_core.REWARD_PARTS == rules.REWARD_PARTS
    assert soccer_core.OUTCOMES == rules.OUTCOMES
    assert tuple(rules.core_tables()) == soccer_core.TABLE_KEYS


def build(num_games: int, auto_reset: bool = True) -> tuple[SoccerCore, CoreBuffers]:
    b = CoreBuffers.allocate(num_games, rules.OBS_SIZE, 0)
    options = {"side": "random", "max_steps": 50, "reward_weights": dict(rules.DEFAULT_WEIGHTS)}
    return SoccerCore(num_games, rules.core_tables(), "chaser", options, auto_reset, b), b


def test_a_nan_is_refused_before_any_game_moves() -> None:
    core, b = build(4)
    actions = np.full((4, 2), 0.5, dtype=np.float32)
    core.step(actions)
    states, generators, obs = core.states(), core.rng_states(), b.obs.copy()
    actions[2, 1] = np.nan
    assert core.step(actions) == 2
    assert np.array_equal(core.states(), states) and np.array_equal(core.rng_states(), generators)
    assert np.array_equal(b.obs, obs)


def test_actions_are_clipped_in_the_core() -> None:
    wild, _ = build(3)
    tame, _ = build(3)
    for _ in range(60):
        wild.step(np.array([[3.0, -np.inf], [np.inf, 2.0], [-7.0, 0.25]], dtype=np.float32))
        tame.step(np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, 0.25]], dtype=np.float32))
        assert np.array_equal(wild.states(), tame.states())


def test_a_wrong_action_shape_is_refused() -> None:
    core, _ = build(3)
    with pytest.raises(ValueError, match=r"expected actions of shape \(3, 2\), got \(2, 2\)"):
        core.step(np.zeros((2, 2), dtype=np.float32))


def test_without_auto_reset_a_finished_game_waits_for_reset() -> None:
    core, b = build(2, auto_reset=False)
    for _ in range(50):
        core.step(np.ones((2, 2), dtype=np.float32))
    assert b.terminated.all()
    states, obs = core.states(), b.obs.copy()
    core.step(np.ones((2, 2), dtype=np.float32))
    assert np.array_equal(core.states(), states) and np.array_equal(b.obs, obs) and b.obs[0, 16] == 0.0
    core.reset(None)
    assert not b.terminated.any() and b.obs[0, 16] == 1.0


@pytest.mark.parametrize("opponent", rules.OPPONENTS)
def test_the_gym_env_agrees_on_both_backends(opponent: str) -> None:
    cython = envs.make("soccer", core="cython", opponent=opponent, seed=21, max_steps=120)
    reference = envs.make("soccer", core="reference", opponent=opponent, seed=21, max_steps=120)
    picker = np.random.default_rng(3)
    for _episode in range(2):
        first_c, info_c = cython.reset()
        first_r, info_r = reference.reset()
        assert np.array_equal(first_c, first_r) and info_c == info_r == {}
        done = False
        while not done:
            action = picker.uniform(-1.1, 1.1, 2)
            step_c, step_r = cython.step(action), reference.step(action)
            assert np.array_equal(step_c[0], step_r[0]) and step_c[1:] == step_r[1:]
            done = step_c[2]
        assert step_c[4]["goals_for"] >= 0 and set(step_c[4]) == {"goals_for", "goals_against", "outcome", "side",
                                                                  "reward_parts"}
