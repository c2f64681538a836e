"""The one shape every game in `envs.GAMES` follows (docs/adding-a-game.md): `OPPONENTS` and `opponent=` on
make, make_vec, the env and the VecEnv; the core constructor (names, order, checks); the one-game
backend's protocol; `enemy_turn_ns` on the VecEnv. A new game is covered by adding its default core
options to `DEFAULT_OPTIONS`. A continuous-control game (`CoreSpec.continuous`) has no masks and no
`legal_actions`: it is stepped with random float32[N, K] actions in [-1, 1] instead of random legal ones."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

import envs
from envs.batched_vec_env import BatchedVecEnv, CoreBuffers, CoreSpec, OneGame
from envs.game_env import CORES

# The core options each game's envs pass by default.
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "beastybar": {"scoring": "points", "first": "random", "reward_weights": {"outcome": 1.0, "margin": 0.0}},
    "duel": {"shaping": "hp"},
    "skirmish": {"mode": "train", "max_steps": 200},
    "soccer": {"side": "random", "max_steps": 600,
               "reward_weights": {"goal": 1.0, "touch": 0.02, "ball_to_goal": 0.01, "ball_distance": 0.001}},
}
GAMES = sorted(envs.GAMES)


def spec(game: str) -> CoreSpec:
    core: CoreSpec = importlib.import_module(f"{envs.GAMES[game]}.core").CORE
    return core


def buffers_for(game: str, num_games: int) -> CoreBuffers:
    return spec(game).allocate(num_games)


def random_actions(game: str, masks: np.ndarray, picker: np.random.Generator) -> np.ndarray:
    """One random action per row of `masks`: a legal one, or float32[K] in [-1, 1] for a continuous game."""
    s = spec(game)
    if s.continuous:
        return picker.uniform(-1.0, 1.0, (masks.shape[0], s.num_actions)).astype(np.float32)
    return np.argmax(masks * picker.random(masks.shape), axis=1)


def test_buffers_have_masks_only_for_discrete_games() -> None:
    for game in GAMES:
        s = spec(game)
        assert buffers_for(game, 3).masks.shape == (3, 0 if s.continuous else s.num_actions)


def test_every_game_is_described() -> None:
    assert set(DEFAULT_OPTIONS) == set(envs.GAMES)


@pytest.mark.parametrize("game", GAMES)
def test_opponents_are_one_tuple_everywhere(game: str) -> None:
    package = importlib.import_module(envs.GAMES[game])
    opponents = envs.opponents(game)
    assert isinstance(package.OPPONENTS, tuple) and package.OPPONENTS and opponents == package.OPPONENTS
    core_module = importlib.import_module(spec(game).core_type.__module__)
    assert spec(game).opponents == opponents == core_module.OPPONENTS


@pytest.mark.parametrize("game", GAMES)
def test_every_opponent_is_accepted_by_name_by_make_make_vec_env_and_vec_env(game: str) -> None:
    for opponent in envs.opponents(game):
        for core in CORES:
            env = envs.make(game, core=core, opponent=opponent, seed=5)
            assert env.opponent == opponent
            obs, _ = env.reset()
            assert obs in env.observation_space
        venv = envs.make_vec(game, 3, opponent=opponent, seed=5)
        assert isinstance(venv, BatchedVecEnv) and venv.get_attr("opponent") == [opponent] * 3
        assert np.array_equal(venv.reset()[0], envs.make(game, opponent=opponent, seed=5).reset()[0])


@pytest.mark.parametrize("game", GAMES)
def test_an_unknown_opponent_is_refused_naming_the_expected_ones(game: str) -> None:
    expected = ", ".join(map(repr, envs.opponents(game)))
    message = f"unknown opponent 'nobody'; expected one of {expected}"
    for build in (lambda: envs.make(game, opponent="nobody"),
                  lambda: envs.make(game, core="reference", opponent="nobody"),
                  lambda: envs.make_vec(game, 2, opponent="nobody"),
                  lambda: spec(game).core_type(2, dict(spec(game).tables), "nobody", DEFAULT_OPTIONS[game], True,
                                               buffers_for(game, 2))):
        with pytest.raises(ValueError) as caught:
            build()
        assert str(caught.value) == message


@pytest.mark.parametrize("game", GAMES)
def test_the_core_constructor_has_one_signature(game: str) -> None:
    s = spec(game)
    opponent = s.opponents[-1]
    by_position = s.core_type(3, dict(s.tables), opponent, DEFAULT_OPTIONS[game], False, buffers_for(game, 3))
    by_name = s.core_type(num_games=3, tables=dict(s.tables), opponent=opponent, options=DEFAULT_OPTIONS[game],
                          auto_reset=False, buffers=buffers_for(game, 3))
    for core in (by_position, by_name):
        assert (core.num_games, core.opponent, core.auto_reset) == (3, opponent, False)  # type: ignore[attr-defined]
        assert core.enemy_turn_ns >= 0
        if not s.continuous:
            assert core.legal_actions(2)
            with pytest.raises(IndexError, match="game index 3 out of range"):
                core.legal_actions(3)
        with pytest.raises(IndexError, match="game index 3 out of range"):
            core.end_info(3)
        with pytest.raises(IndexError, match="game index -1 out of range"):
            core.end_info(-1)


Change = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.mark.parametrize("game", GAMES)
@pytest.mark.parametrize(("change", "message"), [
    (lambda a: {"num_games": 0}, "num_games must be >= 1, got 0"),
    (lambda a: {"tables": {}}, "tables must be a dict with the keys .*; got none"),
    (lambda a: {"options": {}}, "options must be a dict with the keys .*; got none"),
    (lambda a: {"options": {**a["options"], "extra": 1}}, "options must be a dict with the keys .*; got .*extra"),
    (lambda a: {"buffers": replace(a["buffers"], obs=np.zeros((3, a["buffers"].obs.shape[1]), np.float32))},
     r"buffers\.obs must be a numpy float32 array of shape \(2, "),
    (lambda a: {"buffers": replace(a["buffers"], masks=a["buffers"].masks.astype(np.int8))},
     r"buffers\.masks must be a numpy bool array"),
    (lambda a: {"buffers": replace(a["buffers"], terminal_obs=np.asfortranarray(a["buffers"].terminal_obs))},
     r"buffers\.terminal_obs must be C-contiguous and writeable"),
], ids=["no-games", "no-tables", "no-options", "extra-option", "obs-rows", "mask-dtype", "fortran-order"])
def test_the_core_constructor_refuses_bad_arguments(game: str, change: Change, message: str) -> None:
    s = spec(game)
    arguments: dict[str, Any] = {"num_games": 2, "tables": dict(s.tables), "opponent": s.opponents[0],
                                 "options": DEFAULT_OPTIONS[game], "auto_reset": True, "buffers": buffers_for(game, 2)}
    with pytest.raises(ValueError, match=message):
        s.core_type(**{**arguments, **change(arguments)})


@pytest.mark.parametrize("game", GAMES)
def test_the_one_game_backend_follows_the_protocol(game: str) -> None:
    backend = importlib.import_module(f"{envs.GAMES[game]}.core").CoreBackend(envs.opponents(game)[0],
                                                                             DEFAULT_OPTIONS[game])
    assert isinstance(backend, OneGame)
    backend.reset(7)
    first = backend.obs.copy()
    assert backend.mask.any() != spec(game).continuous and not backend.terminated and not backend.truncated
    assert isinstance(backend.info(), dict)
    picker = np.random.default_rng(0)
    while not (backend.terminated or backend.truncated):
        backend.step(random_actions(game, backend.mask[None], picker)[0])
    assert backend.info()  # the end info
    backend.reset(7)
    assert np.array_equal(backend.obs, first)


@pytest.mark.parametrize("game", GAMES)
def test_enemy_turn_ns_is_on_every_vec_env_and_grows_as_the_opponent_plays(game: str) -> None:
    venv = envs.make_vec(game, 8, seed=1)
    venv.reset()
    before = venv.enemy_turn_ns
    assert isinstance(before, int) and before >= 0
    picker = np.random.default_rng(1)
    while not venv.step(random_actions(game, venv.action_masks(), picker))[2].any():
        pass  # to the end of a game: the opponent has had at least one turn since
    assert venv.enemy_turn_ns > before
