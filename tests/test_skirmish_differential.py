"""The Cython core against the uncached Python reference, step for step: observations, masks, rewards
and their parts, terminated/truncated, info (debug keys included) and the generator state after every
step (so every die and its order match). The reference computes distances and line of sight fresh on
every query, so agreement is what proves the core's cache invalidation."""

from __future__ import annotations

import numpy as np
import pytest

from envs.batched_vec_env import CoreBuffers
from envs.game_env import CORES
from envs.skirmish import env as skirmish_env
from envs.skirmish import rules
from ext import skirmish_core
from ext.skirmish_core import SkirmishCore


def rng_state(game: rules.SkirmishGame) -> tuple[int, int, int, int]:
    return (game.rng.s0, game.rng.s1, game.rng.s2, game.rng.s3)


# Random legal actions, shots and charges drawn 8x as often as other moves and objective moves 3x, so
# the model wins by destruction often enough that every end path is compared.
ACTION_WEIGHTS = np.array([1.0] * 9 + [3.0] + [8.0] * 4)


def play_both(num_games: int, episodes_per_game: int, first_seed: int, max_steps: int) -> dict[str, int]:
    """Plays num_games x episodes_per_game games in both; returns a count per end_reason."""
    b = CoreBuffers.allocate(num_games, rules.OBS_SIZE, rules.NUM_ACTIONS)
    core = SkirmishCore(num_games, rules.core_tables(), "scripted", {"mode": "debug", "max_steps": max_steps}, True, b)
    seeds = np.arange(first_seed, first_seed + num_games, dtype=np.uint64)
    core.reset(seeds)
    params = rules.GameParams(max_steps=max_steps)
    refs = [rules.SkirmishGame(int(s), params) for s in seeds]
    picker = np.random.default_rng(first_seed)
    episodes = np.zeros(num_games, dtype=np.int64)
    end_reasons: dict[str, int] = {}
    active = np.ones(num_games, dtype=np.bool_)

    def compare_pending(i: int) -> None:
        ref = refs[i]
        assert np.array_equal(np.array(ref.observation(), dtype=np.float32), b.obs[i]), f"obs of game {i}"
        assert np.array_equal(np.array(ref.legal_mask()), b.masks[i]), f"mask of game {i}"
        assert rng_state(ref) == tuple(int(v) for v in core.rng_states()[i]), f"dice of game {i}"

    for i in range(num_games):
        compare_pending(i)
    while active.any():
        # Random legal actions; a game that has played its episodes keeps stepping but is no longer compared.
        actions = np.argmax(b.masks * ACTION_WEIGHTS * picker.random(b.masks.shape), axis=1).astype(np.int64)
        assert core.step(actions) == -1
        for i in np.flatnonzero(active).tolist():
            ref = refs[i]
            ref.step(int(actions[i]))
            assert np.array_equal(np.array(ref.reward_parts, dtype=np.float32), core.reward_parts[i])
            assert ref.reward == b.rewards[i]
            assert (ref.terminated, ref.truncated) == (bool(b.terminated[i]), bool(b.truncated[i]))
            assert ref.info("debug") == core.info_dict(i), f"info of game {i}"
            if ref.over:
                assert np.array_equal(np.array(ref.observation(), dtype=np.float32), b.terminal_obs[i])
                end_reasons[rules.END_REASONS[ref.end_reason]] = end_reasons.get(
                    rules.END_REASONS[ref.end_reason], 0) + 1
                episodes[i] += 1
                if episodes[i] == episodes_per_game:
                    active[i] = False
                    continue
                ref.reset()
            compare_pending(i)
    return end_reasons


# 4 x 256 games; the edit loop (make test-fast) compares the first 256 only
@pytest.mark.parametrize("chunk", [0, *(pytest.param(k, marks=pytest.mark.heavy) for k in (1, 2, 3))])
def test_core_matches_reference_over_1000_games(chunk: int) -> None:
    end_reasons = play_both(num_games=64, episodes_per_game=4, first_seed=1000 + 64 * chunk, max_steps=200)
    assert sum(end_reasons.values()) == 256
    # Random play reaches every natural ending, so each path of the end logic was compared.
    assert {"rounds", "model_destroyed", "player_destroyed"} <= set(end_reasons)


def test_core_matches_reference_with_truncation() -> None:
    end_reasons = play_both(num_games=32, episodes_per_game=3, first_seed=7, max_steps=9)
    assert end_reasons.get("truncated", 0) > 0


def test_gym_env_backends_agree() -> None:
    envs = [skirmish_env.SkirmishEnv(core=core, seed=5, mode="debug") for core in CORES]
    resets = [e.reset() for e in envs]
    picker = np.random.default_rng(5)
    games = 0
    while games < 5:
        assert np.array_equal(resets[0][0], resets[1][0]) and resets[0][1] == resets[1][1]
        assert np.array_equal(envs[0].action_masks(), envs[1].action_masks())
        action = int(picker.choice(np.flatnonzero(envs[0].action_masks())))
        steps = [e.step(action) for e in envs]
        assert np.array_equal(steps[0][0], steps[1][0]) and steps[0][1:] == steps[1][1:]
        resets = [(obs, info) for obs, _, _, _, info in steps]
        if steps[0][2] or steps[0][3]:
            games += 1
            resets = [e.reset() for e in envs]


@pytest.mark.parametrize(("name", "python_value"), [
    ("OPPONENTS", rules.OPPONENTS),
    ("MODES", rules.MODES),
    ("END_REASONS", rules.END_REASONS),
    ("PHASE_NAMES", rules.PHASE_NAMES),
    ("WINNER_NAMES", rules.WINNERS),
])
def test_core_vocabulary_matches_rules(name: str, python_value: object) -> None:
    assert getattr(skirmish_core, name) == python_value
