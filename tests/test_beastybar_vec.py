"""`BeastyBarVecEnv` through the SB3 VecEnv API: spaces, auto-reset, end-of-episode infos, masks,
seeding, illegal actions, the opponent's time (`enemy_turn_ns`) as PPO's wrapper books it, and a
MaskablePPO smoke run."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported

from engine.perf import PerfTimer
from engine.sb3_hooks import InstrumentedVecEnv
from envs import make_vec
from envs.beastybar.vec_env import BeastyBarVecEnv

STEPS_PER_EPISODE = 12


def legal_random(masks: np.ndarray, picker: np.random.Generator) -> np.ndarray:
    return np.argmax(masks * picker.random(masks.shape), axis=1)


def test_shapes_and_dtypes() -> None:
    venv = make_vec("beastybar", 6, seed=1)
    assert venv.observation_space.shape == (160,) and venv.action_space.n == 33
    obs = venv.reset()
    assert obs.shape == (6, 160) and obs.dtype == np.float32
    obs, rewards, dones, infos = venv.step(legal_random(venv.action_masks(), np.random.default_rng(0)))
    assert obs.shape == (6, 160) and obs.dtype == np.float32
    assert rewards.shape == (6,) and rewards.dtype == np.float32
    assert dones.shape == (6,) and dones.dtype == np.bool_
    assert isinstance(infos, list) and len(infos) == 6
    assert all(venv.observation_space.contains(row) for row in obs)
    masks = venv.action_masks()
    assert masks.shape == (6, 33) and masks.dtype == np.bool_ and masks.any(axis=1).all()


def test_episode_end_infos_autoreset_and_cleared_keys() -> None:
    venv = BeastyBarVecEnv(8, opponent="heuristic", seed=3, scoring="count")
    venv.reset()
    picker = np.random.default_rng(1)
    for _ in range(STEPS_PER_EPISODE - 1):
        obs, rewards, dones, infos = venv.step(legal_random(venv.action_masks(), picker))
        assert not dones.any() and not rewards.any() and all(info == {} for info in infos)
    obs, rewards, dones, end_infos = venv.step(legal_random(venv.action_masks(), picker))
    assert dones.all() and end_infos is infos  # one persistent list, updated in place
    infos = [dict(info) for info in end_infos]
    for i, info in enumerate(infos):
        assert set(info) == {"terminal_observation", "episode", "TimeLimit.truncated", "winner", "points", "bar_count"}
        final = info["terminal_observation"]
        assert final[156] == 1.0  # all 24 turns played
        assert not final[70:82].any()  # the hand is empty at the end
        assert info["episode"]["l"] == STEPS_PER_EPISODE and info["episode"]["r"] == rewards[i]
        assert info["episode"]["t"] >= 0.0 and info["TimeLimit.truncated"] is False
        assert rewards[i] == {0: 1.0, 1: -1.0, -1: 0.0}[info["winner"]]
        points = info["points"]
        assert (final[154] * 20, final[155] * 20) == pytest.approx(points)
        # Auto-reset: the returned observation is a fresh game (nothing played by the agent yet).
        assert obs[i][70:82].sum() == 4 and obs[i][156] <= 1 / 24
    obs, rewards, dones, next_infos = venv.step(legal_random(venv.action_masks(), picker))
    assert all(info == {} for info in next_infos) and not dones.any()


@pytest.mark.parametrize("opponent", ["random", "heuristic"])
def test_every_card_is_accounted_for_at_each_end(opponent: str) -> None:
    # At the end each player's 12 species are split, without overlap, among bar, thrown out and queue.
    venv = BeastyBarVecEnv(64, opponent=opponent, seed=11)
    venv.reset()
    picker = np.random.default_rng(3)
    for _ in range(3 * STEPS_PER_EPISODE):
        _, _, dones, infos = venv.step(legal_random(venv.action_masks(), picker))
        for i in np.flatnonzero(dones):
            final = infos[i]["terminal_observation"]
            slots = final[:70].reshape(5, 14)
            for player, (bar, thrown) in enumerate(((106, 130), (118, 142))):
                in_queue = slots[slots[:, 12 + player] == 1.0, :12].sum(axis=0)
                places = final[bar : bar + 12] + final[thrown : thrown + 12] + in_queue
                assert_array_equal(places, np.ones(12), err_msg=f"game {i}, player {player}")
            assert not final[70:106].any() and final[157] == final[158] == 0.0  # hands and piles empty
            assert infos[i]["bar_count"] == (final[106:118].sum(), final[118:130].sum())


def test_masks_through_sb3_contrib() -> None:
    venv = BeastyBarVecEnv(5, seed=4)
    venv.reset()
    assert is_masking_supported(venv)
    masks = get_action_masks(venv)
    assert masks.shape == (5, 33) and masks.dtype == np.bool_
    assert_array_equal(masks, venv.action_masks())
    assert_array_equal(np.stack(venv.env_method("action_masks", indices=[1, 3])), masks[[1, 3]])


def test_illegal_action_raises_naming_game_action_and_legal_ones() -> None:
    venv = BeastyBarVecEnv(3, seed=5)
    obs = venv.reset()
    actions = legal_random(venv.action_masks(), np.random.default_rng(0))
    illegal = int(np.flatnonzero(~venv.action_masks()[2])[0])
    actions[2] = illegal
    legal = np.flatnonzero(venv.action_masks()[2]).tolist()
    with pytest.raises(ValueError, match=rf"game 2: action {illegal} is illegal; legal: \{legal}"):
        venv.step(actions)
    actions[2] = 33
    with pytest.raises(ValueError, match="game 2: action 33"):
        venv.step(actions)
    # Nothing moved: the same observation, and a legal step still works.
    assert_array_equal(venv.buffers.obs, obs)
    venv.step(legal_random(venv.action_masks(), np.random.default_rng(0)))


def test_game_i_is_seeded_with_seed_plus_i_and_resets_continue_the_stream() -> None:
    many, one = BeastyBarVecEnv(4, seed=20), BeastyBarVecEnv(1, seed=22)
    assert_array_equal(many.reset()[2], one.reset()[0])
    first_obs = many.buffers.obs.copy()
    picker = np.random.default_rng(0)
    for _ in range(3):
        actions = legal_random(many.action_masks(), picker)
        many.step(actions)
        one.step(actions[2:3])
        assert_array_equal(many.buffers.obs[2], one.buffers.obs[0])
    # reset() without seed(): the next games of each stream; seed() then reset(): the first ones again.
    assert not np.array_equal(many.reset(), first_obs)
    many.seed(20)
    assert_array_equal(many.reset(), first_obs)


@pytest.mark.parametrize(("first", "agent_starts"), [("agent", 1.0), ("opponent", 0.0)])
def test_first_makes_one_side_start_every_game_on_the_same_deals(first: str, agent_starts: float) -> None:
    # obs[159] is 1.0 when the agent started, obs[156] the turns played / 24: 0 when the agent starts,
    # 1/24 after the opponent's opening turn. The deals are those of first="random" (the draw is made);
    # the streams stay in step across episodes because a deal and each opponent turn draw a fixed count.
    venv, drawn = BeastyBarVecEnv(64, seed=4, first=first), BeastyBarVecEnv(64, seed=4)
    picker = np.random.default_rng(4)
    obs, drawn_obs = venv.reset(), drawn.reset()
    for _ in range(3):
        assert (obs[:, 159] == agent_starts).all()
        assert (obs[:, 156] == np.float32((1 - agent_starts) / 24)).all()
        same = drawn_obs[:, 159] == agent_starts
        assert 10 < same.sum() < 54
        assert_array_equal(obs[same, 70:94], drawn_obs[same, 70:94])  # my hand and draw pile
        for _ in range(STEPS_PER_EPISODE):
            actions = legal_random(venv.action_masks(), picker)
            obs = venv.step(actions)[0]
            drawn_obs = drawn.step(np.where(same, actions, legal_random(drawn.action_masks(), picker)))[0]


def test_attributes_and_wrappers() -> None:
    venv = BeastyBarVecEnv(3, opponent="heuristic", seed=0)
    assert venv.get_attr("opponent") == ["heuristic"] * 3
    assert venv.get_attr("scoring", indices=[0]) == ["points"]
    assert venv.env_is_wrapped(object) == [False, False, False]
    venv.set_attr("note", "x")
    assert venv.get_attr("note", indices=2) == ["x"]
    with pytest.raises(ValueError, match="shared"):
        venv.set_attr("note", "y", indices=[1])
    with pytest.raises(AttributeError):
        venv.env_method("render")
    venv.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_envs": 0}, "num_envs"),
        ({"num_envs": 2, "opponent": "greedy"}, "unknown opponent 'greedy'; expected one of 'random', 'heuristic'"),
        ({"num_envs": 2, "scoring": "fewest"}, "unknown scoring 'fewest'"),
        ({"num_envs": 2, "first": "me"}, "unknown first 'me'; expected one of 'random', 'agent', 'opponent'"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BeastyBarVecEnv(**kwargs)


@pytest.mark.parametrize("opponent", ["random", "heuristic"])
def test_enemy_turn_ns_counts_every_opponent_turn_openings_included(opponent: str) -> None:
    venv = BeastyBarVecEnv(64, opponent=opponent, seed=8)
    opened = venv.enemy_turn_ns
    assert opened > 0  # about half the games were dealt with the opponent to play first
    venv.reset()
    picker = np.random.default_rng(8)
    counts = [venv.enemy_turn_ns]
    for _ in range(2 * STEPS_PER_EPISODE):
        venv.step(legal_random(venv.action_masks(), picker))
        counts.append(venv.enemy_turn_ns)
    assert all(later > earlier for earlier, later in itertools.pairwise(counts))  # a reply every step
    assert venv.core.enemy_turn_ns == counts[-1]


class OneSecondOpponent(BeastyBarVecEnv):
    """Reports exactly one second of opponent time per step (the core's real count is microseconds)."""

    calls = 0

    def step_wait(self):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().step_wait()

    @property
    def enemy_turn_ns(self) -> int:
        return self.calls * 10**9


def test_ppo_wrapper_books_the_opponent_as_enemy_turn_and_the_rest_as_env_step() -> None:
    timer = PerfTimer()
    env = InstrumentedVecEnv(OneSecondOpponent(4, seed=2), timer)
    env.reset()
    picker = np.random.default_rng(2)
    for _ in range(3):
        env.step(legal_random(env.action_masks(), picker))
    window = timer.window(3 * 4)
    # 3 s of opponent over 12 env steps; the steps themselves took far less than the 1 s booked each,
    # so what is left for env_step after taking the opponent's second out is nothing.
    assert window.ms["enemy_turn"] == pytest.approx(3e3 / 12)
    assert window.ms["env_step"] == 0.0
    real = InstrumentedVecEnv(BeastyBarVecEnv(4, seed=2), timer)
    real.reset()
    before = real.game_env.enemy_turn_ns
    for _ in range(3):
        real.step(legal_random(real.action_masks(), picker))
    window = timer.window(2 * 3 * 4)
    assert window.ms["enemy_turn"] == pytest.approx((real.game_env.enemy_turn_ns - before) * 1e-6 / 12)
    assert window.ms["enemy_turn"] > 0 and window.ms["env_step"] > 0


@pytest.mark.slow
def test_maskable_ppo_trains_on_it_and_sees_its_episode_infos() -> None:
    from sb3_contrib import MaskablePPO

    venv = BeastyBarVecEnv(8, seed=0)
    model = MaskablePPO("MlpPolicy", venv, n_steps=16, batch_size=64, seed=0, device="cpu")
    model.learn(256)
    assert len(model.ep_info_buffer) > 0  # episode infos reached SB3's logger
