"""The Cython core (ext/beastybar_core) against the pure-Python reference (envs/beastybar/rules.py).

Whole games, step for step (batched vec env vs one reference env per game, several episodes per game
so auto-reset's stream continuation is covered), the one-game backend through the gym env, single
plays (`resolve_play`) on random queues, the scenarios of the rules page plus hand-derived ones, and
the core's rules tables (it plays by those it is given, which come from the rules module).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from envs.batched_vec_env import CoreBuffers
from envs.beastybar import rules, scenario
from envs.beastybar.env import BeastyBarEnv, core_options
from envs.beastybar.vec_env import BeastyBarVecEnv
from ext import beastybar_core

TABLES = rules.core_tables()
GAMES = 128
EPISODES_PER_GAME = 8
STEPS_PER_EPISODE = 12


def core_resolve_play(queue: list[tuple[int, int]], owner: int, action: int) -> tuple[list, list, list]:
    return beastybar_core.resolve_play(TABLES, queue, owner, action)


def random_legal_actions(masks: np.ndarray, picker: np.random.Generator) -> np.ndarray:
    """One uniformly random legal action per row of bool[N, 33] masks."""
    return np.argmax(masks * picker.random(masks.shape), axis=1)


@pytest.mark.parametrize(("opponent", "scoring"), [  # the edit loop (make test-fast) checks the first only
    (opponent, scoring) if (opponent, scoring) == (rules.OPPONENTS[0], rules.SCORINGS[0])
    else pytest.param(opponent, scoring, marks=pytest.mark.heavy)
    for opponent in rules.OPPONENTS for scoring in rules.SCORINGS])
def test_vec_core_matches_reference_step_for_step(opponent: str, scoring: str) -> None:
    # Every scripted player with each scoring, 1,024 games each; who starts cycles through FIRSTS.
    seed = 9_000 + 100 * rules.OPPONENTS.index(opponent) + rules.SCORINGS.index(scoring)
    first = rules.FIRSTS[(2 * rules.OPPONENTS.index(opponent) + rules.SCORINGS.index(scoring)) % len(rules.FIRSTS)]
    venv = BeastyBarVecEnv(GAMES, opponent=opponent, seed=seed, scoring=scoring, first=first)
    references = [
        BeastyBarEnv(core="reference", opponent=opponent, seed=seed + i, scoring=scoring, first=first)
        for i in range(GAMES)
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
                    assert infos[i]["episode"]["r"] == pytest.approx(ref_reward, abs=1e-6)  # SB3 rounds it to 6 places
                    assert infos[i]["episode"]["l"] == STEPS_PER_EPISODE
                    outcomes.append(ref_info["winner"])
                    ref_obs = env.reset()[0]
                else:
                    assert infos[i] == {}
                assert_array_equal(obs[i], ref_obs, err_msg=f"game {i}, step {step}")
                assert_array_equal(venv.action_masks()[i], env.action_masks(), err_msg=f"game {i}")
    # The games were real contests: both sides won some (and the count scoring splits ties).
    assert {0, 1} <= set(outcomes)


def test_reward_weights_weigh_outcome_and_margin_alike_in_core_and_reference() -> None:
    # Weights whose products round: the core's float64 sum must still equal the reference's to the bit.
    weights = {"outcome": 0.7, "margin": 0.3}
    games = 32
    venv = BeastyBarVecEnv(games, opponent="heuristic", seed=31, reward_weights=weights)
    references = [BeastyBarEnv(core="reference", opponent="heuristic", seed=31 + i, reward_weights=weights)
                  for i in range(games)]
    venv.reset()
    for env in references:
        env.reset()
    picker = np.random.default_rng(31)
    margins = []
    for _ in range(3):
        for _ in range(STEPS_PER_EPISODE):
            actions = random_legal_actions(venv.action_masks(), picker)
            _, rewards, _, infos = venv.step(actions)
            for i, env in enumerate(references):
                _, ref_reward, terminated, _, info = env.step(int(actions[i]))
                assert rewards[i] == ref_reward
                if terminated:
                    outcome = {0: 1.0, 1: -1.0, -1: 0.0}[info["winner"]]
                    margin = (info["points"][0] - info["points"][1]) / rules.MARGIN_SCALE
                    assert ref_reward == pytest.approx(0.7 * outcome + 0.3 * margin, rel=1e-6)  # the parts sum
                    assert infos[i]["episode"]["r"] == pytest.approx(ref_reward, abs=1e-6)  # SB3 rounds it to 6 places
                    margins.append(margin)
                    env.reset()
    assert min(margins) < 0 < max(margins)  # both signs of the margin part were weighed


@pytest.mark.parametrize(("weights", "message"), [
    ({"bogus": 1.0}, r"reward_weights must have the keys outcome, margin; got bogus, margin, outcome"),
    ({"margin": "x"}, r"reward_weights\['margin'\] must be a finite number, got 'x'"),
    ({"margin": float("nan")}, r"reward_weights\['margin'\] must be a finite number, got nan"),
])
def test_bad_reward_weights_are_refused_by_the_envs(weights: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BeastyBarVecEnv(4, reward_weights=weights)
    with pytest.raises(ValueError, match=message):
        BeastyBarEnv(core="reference", reward_weights=weights)


def test_the_core_refuses_weights_the_envs_would_not_give() -> None:
    options = core_options("points")
    buffers = CoreBuffers.allocate(2, rules.OBS_SIZE, rules.NUM_ACTIONS)
    for weights, message in (({"outcome": 1.0}, r"reward_weights must be a dict with the keys outcome, margin"),
                             ({"outcome": 1.0, "margin": True}, r"reward_weights\['margin'\] must be a finite")):
        with pytest.raises(ValueError, match=message):
            beastybar_core.BeastyBarCore(2, TABLES, "random", {**options, "reward_weights": weights}, True, buffers)


@pytest.mark.parametrize("opponent", rules.OPPONENTS)
def test_gym_env_on_core_matches_reference_with_reseeds(opponent: str) -> None:
    first = rules.FIRSTS[rules.OPPONENTS.index(opponent) % len(rules.FIRSTS)]
    cores = {
        name: BeastyBarEnv(core=name, opponent=opponent, seed=5, scoring="count", first=first)
        for name in ("cython", "reference")
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


def resolve_play_matches_reference(queue: list[tuple[int, int]], owner: int, data: st.DataObject) -> None:
    legal = [
        action
        for action in rules.legal_actions(queue, frozenset(range(rules.NUM_SPECIES)))
        if (owner, rules.ACTIONS[action].card) not in queue
    ]
    if not legal:  # every playable card of this owner is already in the queue
        return
    action = data.draw(st.sampled_from(legal))
    assert core_resolve_play(queue, owner, action) == rules.resolve_play(queue, owner, action)


one_play = given(queue=st.lists(cards, max_size=4, unique=True), owner=st.integers(0, 1), data=st.data())
test_resolve_play_matches_reference = settings(max_examples=300, deadline=None)(
    one_play(resolve_play_matches_reference))
test_resolve_play_matches_reference_at_length = pytest.mark.heavy(settings(max_examples=1500, deadline=None)(
    one_play(resolve_play_matches_reference)))


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


def test_the_core_plays_by_the_tables_it_is_given() -> None:
    # A hippo passes a crocodile (10 < 11) under the rules' tables; with the crocodile made the strongest
    # animal it stops behind it, and the bar's points follow the points table: the core has no copy.
    queue, play = [(1, rules.CROCODILE), (1, rules.PARROT)], rules.HIPPO
    as_ruled = [(0, rules.HIPPO), (1, rules.CROCODILE), (1, rules.PARROT)]
    assert core_resolve_play(queue, 0, play)[0] == rules.resolve_play(queue, 0, play)[0] == as_ruled
    strength = [13 if species == rules.CROCODILE else v for species, v in enumerate(TABLES["strength"])]
    after = beastybar_core.resolve_play({**TABLES, "strength": strength}, queue, 0, play)[0]
    assert after == [(1, rules.CROCODILE), (0, rules.HIPPO), (1, rules.PARROT)]
    # Same deals and a random opponent: the same plays under both points tables, only the scores differ.
    buffers = [CoreBuffers.allocate(16, rules.OBS_SIZE, rules.NUM_ACTIONS) for _ in range(2)]
    cores = [beastybar_core.BeastyBarCore(16, tables, "random", core_options("points"), True, b)
             for tables, b in zip((TABLES, {**TABLES, "points": [0] * 12}), buffers, strict=True)]
    picker = np.random.default_rng(0)
    for _ in range(STEPS_PER_EPISODE):
        actions = random_legal_actions(buffers[0].masks, picker)
        assert [core.step(actions) for core in cores] == [-1, -1]
    assert cores[0].points.any() and not cores[1].points.any()
    assert np.array_equal(cores[0].bar_count, cores[1].bar_count)


@pytest.mark.parametrize(("tables", "message"), [
    ({"strength": TABLES["strength"]}, "tables must be a dict with the keys strength, points; got strength"),
    ({**TABLES, "strength": [1, 2, 3]}, "tables\\['strength'\\] must hold 12 ints"),
])
def test_the_core_refuses_tables_that_do_not_fit(tables: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        beastybar_core.resolve_play(tables, [], 0, 0)


@pytest.mark.parametrize(("name", "python_value"), [
    ("OPPONENTS", rules.OPPONENTS), ("SCORINGS", rules.SCORINGS), ("FIRSTS", rules.FIRSTS)])
def test_core_vocabulary_matches_rules(name: str, python_value: object) -> None:
    assert getattr(beastybar_core, name) == python_value


def test_resolve_play_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at most 4"):
        core_resolve_play([(0, s) for s in range(5)], 1, 0)
    with pytest.raises(ValueError, match="already in the queue"):
        core_resolve_play([(1, 3)], 1, 3)
    with pytest.raises(ValueError, match="bad card"):
        core_resolve_play([(2, 3)], 1, 0)


# --- scenarios -------------------------------------------------------------------------------------

# Hand-derived rows beyond the scenario table of tests/test_beastybar_scenarios.py (which holds the rules
# page's eight and more): (id, before, play, choices, queue after, bar, thrown out).
MORE_SCENARIOS = [
    ("lion-front-then-step4", "A:seal B:zebra A:parrot B:kangaroo", "A:lion", {},
     "B:zebra A:parrot", "A:lion A:seal", "B:kangaroo"),
    ("hippo-stops-at-zebra", "A:snake B:zebra A:seal", "B:hippo", {}, "A:snake B:zebra B:hippo A:seal", "", ""),
    ("chameleon-hippo-stops-at-lion-step4", "B:hippo A:lion B:chameleon A:seal", "A:chameleon", {"copy": "hippo"},
     "A:chameleon B:chameleon", "B:hippo A:lion", "A:seal"),
    ("croc-eats-to-zebra", "A:parrot B:zebra A:seal", "B:crocodile", {}, "A:parrot B:zebra B:crocodile", "", "A:seal"),
    ("chameleon-snake-after-snake", "B:chameleon A:skunk B:snake", "A:chameleon", {"copy": "snake"},
     "B:snake A:chameleon B:chameleon A:skunk", "", ""),
    # after the seal, both giraffes step past the played chameleon, front to back
    ("giraffes-recur-after-seal-step4", "A:chameleon B:seal A:giraffe B:giraffe", "B:chameleon", {"copy": "seal"},
     "B:chameleon B:seal", "B:giraffe A:giraffe", "A:chameleon"),
    ("croc-recurs-after-seal", "A:zebra B:parrot A:crocodile", "B:seal", {},
     "A:crocodile B:parrot A:zebra", "", "B:seal"),
    # the played giraffe does not recur; the crocodile eats the seal and stops at the zebra
    ("played-giraffe-no-recur", "B:zebra A:seal A:crocodile", "B:giraffe", {},
     "B:zebra A:crocodile B:giraffe", "", "A:seal"),
    ("lone-monkey-recurring-stops", "A:hippo B:crocodile", "A:monkey", {}, "A:hippo B:crocodile A:monkey", "", ""),
    ("chameleon-monkey", "A:monkey B:crocodile B:monkey", "A:chameleon", {"copy": "monkey"},
     "A:chameleon B:monkey A:monkey", "", "B:crocodile"),
    ("skunk-two-strongest", "A:lion B:lion A:seal B:monkey", "A:skunk", {},
     "B:monkey A:skunk", "", "A:lion B:lion A:seal"),
    ("skunks-stay", "A:skunk B:parrot A:parrot", "B:skunk", {}, "A:skunk B:skunk", "", "B:parrot A:parrot"),
]  # fmt: skip


def scenario_table() -> list[tuple]:
    # The reference helper's table, imported from its test module (pytest puts tests/ on sys.path).
    from test_beastybar_scenarios import SCENARIOS

    return [*SCENARIOS, *MORE_SCENARIOS]


@pytest.mark.parametrize(
    ("before", "play", "choices", "queue", "bar", "thrown"),
    [row[1:] for row in scenario_table()],
    ids=[row[0] for row in scenario_table()],
)
def test_scenarios_on_core(before: str, play: str, choices: dict, queue: str, bar: str, thrown: str) -> None:
    on_core = scenario.resolve(before, play, core="cython", **choices)
    assert on_core == scenario.resolve(before, play, core="reference", **choices)
    assert on_core == {"queue": queue, "bar": bar, "thats_it": thrown}
