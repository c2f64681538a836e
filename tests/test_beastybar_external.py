"""External opponents (self-play): the VecEnv with games facing a policy from outside, mixed per game with
scripted players and changed at auto-resets, against the reference (`ReferenceBackend` with
`rules.observed_policy`), one game at a time; the policy is called once per round of waiting games; the
core's waiting games show player B's observation; bad input is refused."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from envs.batched_vec_env import CoreBuffers
from envs.beastybar import rules
from envs.beastybar.env import ReferenceBackend, core_options
from envs.beastybar.vec_env import EXTERNAL, BeastyBarVecEnv
from envs.rng import Rng
from ext.beastybar_core import BeastyBarCore

WEIGHTS = np.random.default_rng(0).integers(-50, 50, size=(rules.OBS_SIZE, rules.NUM_ACTIONS))
STEPS_PER_EPISODE = 12


def external_policy(obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """A deterministic stand-in for a neural opponent, exact in integers so that a batch and one row agree:
    the legal action of the greatest score of the observation (its entries are multiples of 1/120)."""
    scores = np.rint(obs * 120).astype(np.int64) @ WEIGHTS
    return np.argmax(np.where(masks, scores, np.iinfo(np.int64).min), axis=1)


def one_game_policy(obs: np.ndarray, mask: np.ndarray) -> int:
    return int(external_policy(obs[None], mask[None])[0])


class Recorder:
    """The VecEnv's opponent policy, recording each call's game indexes."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def __call__(self, obs: np.ndarray, masks: np.ndarray, games: np.ndarray) -> np.ndarray:
        self.calls.append(games.tolist())
        assert masks[np.arange(len(games)), external_policy(obs, masks)].all()
        return external_policy(obs, masks)


def assignment(num_games: int, shift: int) -> list[str]:
    """Game i's opponent: external for every third game, else a scripted player."""
    names = (*rules.OPPONENTS, EXTERNAL)
    return [EXTERNAL if (i + shift) % 3 == 0 else names[(i + shift) % len(rules.OPPONENTS)] for i in range(num_games)]


@pytest.mark.parametrize("first", rules.FIRSTS)
def test_mixed_external_and_scripted_opponents_match_the_reference(first: str) -> None:
    games, seed, episodes = 48, 300 + rules.FIRSTS.index(first), 4
    recorder = Recorder()
    venv = BeastyBarVecEnv(games, seed=seed, scoring="count", first=first, opponent_policy=recorder)
    venv.set_next_opponents(assignment(games, 0))
    venv.seed(seed)
    obs = np.asarray(venv.reset())
    # The reference's player B for game i reads the game's current opponent, switched at its episode ends.
    current: dict[int, rules.Player] = {}

    def player(i: int) -> rules.Player:
        return lambda state, rng: current[i](state, rng)

    reference_turns = []

    def counted(obs: np.ndarray, mask: np.ndarray) -> int:
        reference_turns.append(1)
        return one_game_policy(obs, mask)

    def assign(names: list[str]) -> None:
        for i, name in enumerate(names):
            current[i] = rules.observed_policy(counted) if name == EXTERNAL else rules.OPPONENT_POLICIES[name]

    assign(assignment(games, 0))
    references = [ReferenceBackend(player(i), core_options("count", first)) for i in range(games)]
    for i, reference in enumerate(references):
        reference.reset(seed + i)
    assert_array_equal(obs, np.stack([r.obs for r in references]))
    picker = np.random.default_rng(seed)
    for episode in range(episodes):
        for step in range(STEPS_PER_EPISODE):
            last = step == STEPS_PER_EPISODE - 1
            if last:  # the next deals face another assignment, from the auto-reset on
                venv.set_next_opponents(assignment(games, episode + 1))
            actions = np.argmax(venv.action_masks() * picker.random((games, rules.NUM_ACTIONS)), axis=1)
            calls_before = len(recorder.calls)
            stepped, rewards, dones, infos = venv.step(actions)
            obs = np.asarray(stepped)
            new_calls = recorder.calls[calls_before:]
            assert len(new_calls) <= 2 and all(calls == sorted(set(calls)) for calls in new_calls)
            assert dones.all() if last else not dones.any()
            for i, reference in enumerate(references):
                reference.step(int(actions[i]))
                assert rewards[i] == reference.reward
                if last:
                    assert_array_equal(infos[i]["terminal_observation"], reference.obs)
                    assert {k: infos[i][k] for k in ("winner", "points", "bar_count")} == reference.info()
            if last:
                assign(assignment(games, episode + 1))
                for reference in references:
                    reference.reset(None)
            assert_array_equal(obs, np.stack([r.obs for r in references]), err_msg=f"episode {episode}, step {step}")
            assert_array_equal(venv.action_masks(), np.stack([r.mask for r in references]))
    # every external turn of player B went through the policy (the reference's count, openings of the
    # games dealt at the last step included), in batches over the games
    external_turns = sum(map(len, recorder.calls))
    external_games = sum(assignment(games, e).count(EXTERNAL) for e in range(episodes))
    assert external_turns == len(reference_turns) >= 12 * external_games
    assert len(recorder.calls) < external_turns / 4


def test_waiting_games_show_player_b_its_own_observation() -> None:
    games = 16
    buffers = CoreBuffers.allocate(games, rules.OBS_SIZE, rules.NUM_ACTIONS)
    core = BeastyBarCore(games, rules.core_tables(), "random", core_options("points", "opponent"), True, buffers)
    core.set_next_opponents(np.full(games, -1))
    seeds = np.arange(games, dtype=np.uint64) + 40
    core.reset(seeds)
    assert core.waiting.all() and (core.opponents() == -1).all()
    for i, seed in enumerate(seeds.tolist()):
        state = rules.deal(Rng(seed), first="opponent")
        assert_array_equal(core.opponent_obs[i], rules.encode_observation(state, viewer=1))
        assert_array_equal(core.opponent_masks[i], rules.legal_mask(state.queue, state.hands[1]))
    with pytest.raises(ValueError, match="16 games wait for their external opponent"):
        core.step(np.zeros(games, np.int64))
    actions = external_policy(core.opponent_obs, core.opponent_masks)
    bad = actions.copy()
    bad[5] = np.flatnonzero(~core.opponent_masks[5])[0]
    assert core.opponent_step(bad) == 5 and core.waiting.all()  # nothing moved
    assert core.opponent_step(actions) == -1 and not core.waiting.any()
    assert (buffers.obs[:, 156] == np.float32(1 / 24)).all()  # the agent sees the openings played
    with pytest.raises(ValueError, match="no game waits"):
        core.opponent_step(actions)


@pytest.mark.parametrize(("build", "message"), [
    (lambda: BeastyBarVecEnv(2).set_next_opponents([EXTERNAL, "random"]),
     "unknown opponent 'external'; expected one of 'random'"),
    (lambda: BeastyBarVecEnv(2, opponent_policy=Recorder()).set_next_opponents(["random"]), "expected 2 opponents"),
    (lambda: BeastyBarVecEnv(2, opponent_policy=Recorder()).set_next_opponents(["random", "genius"]),
     "unknown opponent 'genius'"),
])
def test_bad_opponent_assignments_are_refused(build: Callable[[], None], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_an_illegal_external_action_names_the_game() -> None:
    def illegal(obs: np.ndarray, masks: np.ndarray, games: np.ndarray) -> np.ndarray:
        return np.argmin(masks, axis=1)  # the first illegal action of each row

    venv = BeastyBarVecEnv(4, seed=1, first="opponent", opponent_policy=illegal)
    venv.set_next_opponents([EXTERNAL] * 4)
    with pytest.raises(ValueError, match=r"game 0: the external opponent's action \d+ is illegal; legal: \["):
        venv.reset()


def test_core_ids_of_opponents_are_checked() -> None:
    buffers = CoreBuffers.allocate(2, rules.OBS_SIZE, rules.NUM_ACTIONS)
    core = BeastyBarCore(2, rules.core_tables(), "random", core_options("points"), True, buffers)
    with pytest.raises(ValueError, match="opponent ids must be -1"):
        core.set_next_opponents(np.array([0, len(rules.OPPONENTS)]))
    with pytest.raises(ValueError, match="expected 2 integer opponent ids"):
        core.set_next_opponents(np.zeros(3, np.int64))
