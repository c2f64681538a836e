"""The Cython core (ext/duel_core) against the pure-Python reference (envs/duel/rules.py), step for step:
observations, masks, rewards, terminated/truncated, end info, each turn's recorded draws (accuracy, roll,
speed tie) and the generator state after every step (so every draw and its order match), over many
games and several episodes per game (auto-reset's stream continuation), for every scripted player; the
scripted agent side (`choose`, dataset generation) too; and the one-game backend through the gym env."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from envs.batched_vec_env import CoreBuffers
from envs.duel import rules
from envs.duel.env import DuelEnv
from envs.rng import Rng
from ext import duel_core
from ext.duel_core import DuelCore

# Random legal actions with attacks drawn 4x as often as pass and switches, so games end by KO often
# enough (both ways) besides the turn limit's draws.
ACTION_WEIGHTS = np.array([4.0, 4.0, 4.0, 1.0, 1.0, 1.0, 1.0])


def rng_state(game: rules.DuelGame) -> tuple[int, int, int, int]:
    return (game.rng.s0, game.rng.s1, game.rng.s2, game.rng.s3)


def play_both(num_games: int, episodes_per_game: int, first_seed: int, opponent: str, shaping: str = "hp",
              agent: str | None = None) -> dict[int, int]:
    """Plays num_games x episodes_per_game games in both (the agent's side random, or the scripted `agent`);
    returns a count per winner."""
    b = CoreBuffers.allocate(num_games, rules.OBS_SIZE, rules.NUM_ACTIONS)
    core = DuelCore(num_games, rules.core_tables(), opponent, {"shaping": shaping}, True, b)
    seeds = np.arange(first_seed, first_seed + num_games, dtype=np.uint64)
    core.reset(seeds)
    refs = [rules.DuelGame(Rng(int(s))) for s in seeds]
    picker = np.random.default_rng(first_seed)
    episodes = np.zeros(num_games, dtype=np.int64)
    winners: dict[int, int] = {}
    active = np.ones(num_games, dtype=np.bool_)
    scripted = np.zeros(num_games, dtype=np.int64)

    def compare_pending(i: int) -> None:
        ref = refs[i]
        assert_array_equal(ref.observation(), b.obs[i], err_msg=f"obs of game {i}")
        assert_array_equal(np.array(ref.legal_mask()), b.masks[i], err_msg=f"mask of game {i}")
        assert rng_state(ref) == tuple(int(v) for v in core.rng_states()[i]), f"draws of game {i}"

    for i in range(num_games):
        compare_pending(i)
    while active.any():
        if agent is None:
            actions = np.argmax(b.masks * ACTION_WEIGHTS * picker.random(b.masks.shape), axis=1).astype(np.int64)
        else:
            core.choose(agent, scripted)
            actions = scripted
        assert core.step(actions) == -1
        for i in np.flatnonzero(active).tolist():
            ref = refs[i]
            if agent is not None:
                assert ref.choose(0, agent) == actions[i], f"scripted agent of game {i}"
            result = ref.play_turn((int(actions[i]), ref.choose(1, opponent)))
            assert result.draws == core.turn_draws[i].tolist(), f"the turn's draws in game {i}"
            assert ref.reward(result, shaping) == b.rewards[i]
            assert (ref.over, False) == (bool(b.terminated[i]), bool(b.truncated[i]))
            if ref.over:
                assert_array_equal(ref.observation(), b.terminal_obs[i])
                assert ref.end_info() == core.end_info(i)
                assert core.episode_length[i] == ref.turn
                winners[ref.winner] = winners.get(ref.winner, 0) + 1
                episodes[i] += 1
                if episodes[i] == episodes_per_game:
                    active[i] = False
                    continue
                ref.reset()
            compare_pending(i)
    return winners


# 4 chunks per opponent; the edit loop (make test-fast) compares the first chunk of each only
@pytest.mark.parametrize("chunk", [0, *(pytest.param(k, marks=pytest.mark.heavy) for k in (1, 2, 3))])
@pytest.mark.parametrize("opponent", rules.OPPONENTS)
def test_core_matches_reference_over_many_games(opponent: str, chunk: int) -> None:
    seed = 5_000 + 1_000 * rules.OPPONENTS.index(opponent) + 64 * chunk
    winners = play_both(num_games=32, episodes_per_game=4, first_seed=seed, opponent=opponent)
    assert sum(winners.values()) == 128
    # Weighted random play wins and loses against every player (the draw: the test below).
    assert {0, 1} <= set(winners)


@pytest.mark.parametrize("agent", rules.OPPONENTS)
def test_scripted_agent_side_matches_reference(agent: str) -> None:
    winners = play_both(num_games=16, episodes_per_game=3, first_seed=77, opponent="sensible", agent=agent)
    assert sum(winners.values()) == 48


def test_no_shaping_matches_reference() -> None:
    play_both(num_games=16, episodes_per_game=2, first_seed=91, opponent="random", shaping="none")


def test_random_play_reaches_the_turn_limit_draw() -> None:
    # Random against random passes and switches enough that some games run to the 40-turn draw.
    assert play_both(num_games=32, episodes_per_game=2, first_seed=3, opponent="random").get(-1, 0) > 0


@pytest.mark.parametrize("opponent", rules.OPPONENTS)
def test_gym_env_on_core_matches_reference_with_reseeds(opponent: str) -> None:
    cores = {name: DuelEnv(core=name, opponent=opponent, seed=5) for name in ("cython", "reference")}
    picker = np.random.default_rng(5)
    for episode in range(6):
        seed = 77 + episode if episode % 3 == 2 else None  # reseed some episodes, continue the stream on others
        first = {name: env.reset(seed=seed)[0] for name, env in cores.items()}
        assert_array_equal(first["cython"], first["reference"])
        terminated = False
        while not terminated:
            mask = cores["reference"].action_masks()
            assert_array_equal(cores["cython"].action_masks(), mask)
            action = int(np.argmax(mask * ACTION_WEIGHTS * picker.random(mask.shape)))
            results = {name: env.step(action) for name, env in cores.items()}
            (obs, reward, terminated, truncated, info), reference = results["cython"], results["reference"]
            assert_array_equal(obs, reference[0])
            assert (reward, terminated, truncated, info) == reference[1:]
        assert not cores["cython"].action_masks().any()


def test_core_vocabulary_matches_rules() -> None:
    assert duel_core.OPPONENTS == rules.OPPONENTS and duel_core.SHAPINGS == rules.SHAPINGS
    assert set(duel_core.TABLE_KEYS) == set(rules.core_tables())
    assert len(rules.DRAWS) == duel_core.TURN_DRAWS


def test_the_core_plays_by_the_tables_it_is_given() -> None:
    # With every move's power tripled, greedy play ends more games in as many turns: the core has no copy.
    tables = rules.core_tables()
    stronger = {**tables, "move_power": [3 * p for p in tables["move_power"]]}
    ended = []
    for t in (tables, stronger):
        b = CoreBuffers.allocate(64, rules.OBS_SIZE, rules.NUM_ACTIONS)
        core = DuelCore(64, t, "greedy", {"shaping": "hp"}, True, b)
        agent = np.zeros(64, dtype=np.int64)
        games = 0
        for _ in range(200):
            core.choose("greedy", agent)
            assert core.step(agent) == -1
            games += int(b.terminated.sum())
        ended.append(games)
    assert ended[1] > ended[0]


@pytest.mark.parametrize(("change", "message"), [
    ({"species_hp": [1, 2]}, r"tables\['species_hp'\] must hold 6 ints"),
    ({"effect": [[2, 2], [2, 2]]}, r"tables\['effect'\] must hold 4 rows of 4 ints"),
    ({"species_moves": [[0, 1, 9]] * 6}, r"tables\['species_moves'\]\[0\] names a move outside 0..7"),
])
def test_the_core_refuses_tables_that_do_not_fit(change: dict, message: str) -> None:
    b = CoreBuffers.allocate(2, rules.OBS_SIZE, rules.NUM_ACTIONS)
    with pytest.raises(ValueError, match=message):
        DuelCore(2, {**rules.core_tables(), **change}, "random", {"shaping": "hp"}, True, b)
