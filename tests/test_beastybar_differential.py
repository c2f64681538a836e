"""The Cython core (ext/beastybar_core) against the pure-Python reference (envs/beastybar/rules.py).

Whole games, step for step (batched vec env vs one reference env per game, several episodes per game
so auto-reset's stream continuation is covered), the one-game backend through the gym env, single
plays (`resolve_play`) on random queues, and the scenarios of the rules file plus hand-derived ones.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from envs.beastybar import rules, scenario
from envs.beastybar.env import BeastyBarEnv
from envs.beastybar.vec_env import BeastyBarVecEnv
from ext.beastybar_core import resolve_play as core_resolve_play

GAMES = 128
EPISODES_PER_GAME = 8
STEPS_PER_EPISODE = 12


def random_legal_actions(masks: np.ndarray, picker: np.random.Generator) -> np.ndarray:
    """One uniformly random legal action per row of bool[N, 33] masks."""
    return np.argmax(masks * picker.random(masks.shape), axis=1)


@pytest.mark.parametrize("scoring", rules.SCORINGS)
@pytest.mark.parametrize("opponent", rules.OPPONENTS)
def test_vec_core_matches_reference_step_for_step(opponent: str, scoring: str) -> None:
    seed = 9_000 + 100 * rules.OPPONENTS.index(opponent) + rules.SCORINGS.index(scoring)
    venv = BeastyBarVecEnv(GAMES, opponent=opponent, seed=seed, scoring=scoring)
    references = [
        BeastyBarEnv(core="reference", opponent=opponent, seed=seed + i, scoring=scoring) for i in range(GAMES)
    ]
    picker = np.random.default_rng(seed)
    obs = venv.reset()
    assert_array_equal(obs, np.stack([env.reset()[0] for env in references]))
    assert_array_equal(venv.action_masks(), np.stack([env.action_masks() for env in references]))
    outcomes = []
    for _ in range(EPISODES_PER_GAME):
        for step in range(STEPS_PER_EPISODE):
            actions = random_legal_actions(venv.action_masks(), picker)
            obs, rewards, dones, infos = venv.step(actions)
            last = step == STEPS_PER_EPISODE - 1
            assert dones.all() if last else not dones.any()
            for i, env in enumerate(references):
                ref_obs, ref_reward, terminated, truncated, ref_info = env.step(int(actions[i]))
                assert (terminated, truncated) == (last, False)
                assert rewards[i] == ref_reward
                if last:
                    assert_array_equal(infos[i]["terminal_observation"], ref_obs)
                    assert {k: infos[i][k] for k in ("winner", "points", "bar_count")} == ref_info
                    assert infos[i]["episode"]["r"] == ref_reward
                    assert infos[i]["episode"]["l"] == STEPS_PER_EPISODE
                    outcomes.append(ref_info["winner"])
                    ref_obs = env.reset()[0]
                else:
                    assert infos[i] == {}
                assert_array_equal(obs[i], ref_obs, err_msg=f"game {i}, step {step}")
                assert_array_equal(venv.action_masks()[i], env.action_masks(), err_msg=f"game {i}")
    # The games were real contests: both sides won some (and the count scoring splits ties).
    assert {0, 1} <= set(outcomes)


@pytest.mark.parametrize("opponent", rules.OPPONENTS)
def test_gym_env_on_core_matches_reference_with_reseeds(opponent: str) -> None:
    cores = {
        name: BeastyBarEnv(core=name, opponent=opponent, seed=5, scoring="count") for name in ("cython", "reference")
    }
    picker = np.random.default_rng(5)
    for episode in range(6):
        # Reseed on some episodes, continue the stream on others.
        seed = 77 + episode if episode % 3 == 2 else None
        first = {name: env.reset(seed=seed)[0] for name, env in cores.items()}
        assert_array_equal(first["cython"], first["reference"])
        terminated = False
        while not terminated:
            mask = cores["reference"].action_masks()
            assert_array_equal(cores["cython"].action_masks(), mask)
            action = int(random_legal_actions(mask[None], picker)[0])
            results = {name: env.step(action) for name, env in cores.items()}
            (obs, reward, terminated, truncated, info), reference = results["cython"], results["reference"]
            assert_array_equal(obs, reference[0])
            assert (reward, terminated, truncated, info) == reference[1:]
        assert not cores["cython"].action_masks().any()


def test_gym_env_on_core_passes_the_checkers() -> None:
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    gym_check_env(BeastyBarEnv(core="cython", seed=3), skip_render_check=True)
    sb3_check_env(BeastyBarEnv(core="cython", seed=4))


# --- one play ---------------------------------------------------------------------------------------

cards = st.tuples(st.integers(0, 1), st.integers(0, rules.NUM_SPECIES - 1))


@settings(max_examples=1500, deadline=None)
@given(queue=st.lists(cards, max_size=4, unique=True), owner=st.integers(0, 1), data=st.data())
def test_resolve_play_matches_reference(queue: list[tuple[int, int]], owner: int, data: st.DataObject) -> None:
    legal = [
        action
        for action in rules.legal_actions(queue, frozenset(range(rules.NUM_SPECIES)))
        if (owner, rules.ACTIONS[action].card) not in queue
    ]
    if not legal:  # every playable card of this owner is already in the queue
        return
    action = data.draw(st.sampled_from(legal))
    assert core_resolve_play(queue, owner, action) == rules.resolve_play(queue, owner, action)


@settings(max_examples=300, deadline=None)
@given(queue=st.lists(cards, max_size=4, unique=True), action=st.integers(0, rules.NUM_ACTIONS - 1))
def test_resolve_play_rejects_what_the_reference_rejects(queue: list[tuple[int, int]], action: int) -> None:
    owner = 1
    if (owner, rules.ACTIONS[action].card) in queue:
        return
    try:
        expected = rules.resolve_play(queue, owner, action)
    except ValueError:
        with pytest.raises(ValueError, match=f"action {action}"):
            core_resolve_play(queue, owner, action)
    else:
        assert core_resolve_play(queue, owner, action) == expected


def test_resolve_play_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at most 4"):
        core_resolve_play([(0, s) for s in range(5)], 1, 0)
    with pytest.raises(ValueError, match="already in the queue"):
        core_resolve_play([(1, 3)], 1, 3)
    with pytest.raises(ValueError, match="bad card"):
        core_resolve_play([(2, 3)], 1, 0)


# --- scenarios: (before, play, choices, queue after, bar, thrown out), derived by hand ----------------

SCENARIOS = [
    # The rules file's eight.
    ("B:monkey A:hippo B:zebra A:monkey", "A:lion", {}, "A:lion A:hippo B:zebra", "", "B:monkey A:monkey"),
    ("B:lion A:monkey", "A:lion", {}, "B:lion A:monkey", "", "A:lion"),
    ("A:hippo B:hippo", "A:kangaroo", {"jump": 2}, "A:hippo B:hippo A:kangaroo", "", ""),
    ("B:parrot B:crocodile", "A:kangaroo", {"jump": 2}, "B:crocodile", "", "B:parrot A:kangaroo"),
    ("B:monkey A:hippo B:zebra A:crocodile", "A:monkey", {}, "A:monkey B:monkey B:zebra", "", "A:hippo A:crocodile"),
    (
        "A:crocodile B:crocodile B:parrot A:zebra",
        "B:skunk",
        {},
        "B:parrot B:skunk",
        "",
        "A:crocodile B:crocodile A:zebra",
    ),
    (
        "B:parrot B:zebra A:kangaroo",
        "A:chameleon",
        {"copy": "parrot", "target": 1},
        "B:parrot A:kangaroo A:chameleon",
        "",
        "B:zebra",
    ),
    ("B:skunk A:giraffe B:giraffe", "A:zebra", {}, "A:giraffe B:giraffe B:skunk A:zebra", "", ""),
    # A fifth card: the front two enter the bar, the last is thrown out, after the action.
    ("A:seal B:zebra A:parrot B:kangaroo", "A:lion", {}, "B:zebra A:parrot", "A:lion A:seal", "B:kangaroo"),
    # A chameleon as lion is always thrown out.
    ("B:lion A:seal", "A:chameleon", {"copy": "lion"}, "B:lion A:seal", "", "A:chameleon"),
    # A hippo stops behind a zebra; a chameleon as hippo passes another chameleon, stops at a lion.
    ("A:snake B:zebra A:seal", "B:hippo", {}, "A:snake B:zebra B:hippo A:seal", "", ""),
    (
        "B:hippo A:lion B:chameleon A:seal",
        "A:chameleon",
        {"copy": "hippo"},
        "A:chameleon B:chameleon",
        "B:hippo A:lion",
        "A:seal",
    ),
    # A crocodile eats until the zebra.
    ("A:parrot B:zebra A:seal", "B:crocodile", {}, "A:parrot B:zebra B:crocodile", "", "A:seal"),
    # Snake: a chameleon as snake sorts as 9 (after the snake: stable), the other chameleon as 5.
    (
        "B:chameleon A:skunk B:snake",
        "A:chameleon",
        {"copy": "snake"},
        "B:snake A:chameleon B:chameleon A:skunk",
        "",
        "",
    ),
    # Recurring giraffes step once each past a chameleon, front to back, after a seal.
    (
        "A:chameleon B:seal A:giraffe B:giraffe",
        "B:chameleon",
        {"copy": "seal"},
        "B:chameleon B:seal",
        "B:giraffe A:giraffe",
        "A:chameleon",
    ),
    # A recurring crocodile eats after a seal; the played giraffe does not recur.
    ("A:zebra B:parrot A:crocodile", "B:seal", {}, "A:crocodile B:parrot A:zebra", "", "B:seal"),
    ("B:zebra A:seal A:crocodile", "B:giraffe", {}, "B:zebra A:crocodile B:giraffe", "", "A:seal"),
    # Skunk: the two strongest species go, either owner.
    ("A:lion B:lion A:seal B:monkey", "A:skunk", {}, "B:monkey A:skunk", "", "A:lion B:lion A:seal"),
    # Monkeys: a lone monkey does nothing; two monkeys throw out hippos and crocodiles.
    ("A:hippo B:crocodile", "A:monkey", {}, "A:hippo B:crocodile A:monkey", "", ""),
    (
        "A:monkey B:crocodile B:monkey",
        "A:chameleon",
        {"copy": "monkey"},
        "A:chameleon B:monkey A:monkey",
        "",
        "B:crocodile",
    ),
    # Skunk with one species only; skunks stay.
    ("A:skunk B:parrot A:parrot", "B:skunk", {}, "A:skunk B:skunk", "", "B:parrot A:parrot"),
    # Parrot and kangaroo with an empty queue.
    ("", "A:parrot", {}, "A:parrot", "", ""),
    ("", "B:kangaroo", {}, "B:kangaroo", "", ""),
    # A chameleon with nothing to copy, and copying a zebra (nothing happens).
    ("B:chameleon", "A:chameleon", {}, "B:chameleon A:chameleon", "", ""),
    ("B:zebra A:skunk", "A:chameleon", {"copy": "zebra"}, "B:zebra A:skunk A:chameleon", "", ""),
]


@pytest.mark.parametrize(("before", "play", "choices", "queue", "bar", "thrown"), SCENARIOS)
def test_scenarios_on_core(before: str, play: str, choices: dict, queue: str, bar: str, thrown: str) -> None:
    on_core = scenario.resolve(before, play, core="cython", **choices)
    assert on_core == scenario.resolve(before, play, core="reference", **choices)
    assert on_core == {"queue": queue, "bar": bar, "thats_it": thrown}
