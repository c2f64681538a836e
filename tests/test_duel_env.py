"""The Duel gym env and VecEnv: gymnasium's and SB3's checkers on both backends, errors naming what is
legal, seeding and stream continuation, the VecEnv against N reference envs (infos included), and the
rules' invariants as hypothesis properties over random seeds and legal action sequences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

import envs
from envs.duel import rules
from envs.duel.env import DuelEnv, observation_space
from envs.duel.vec_env import DuelVecEnv
from envs.game_env import CORES
from envs.rng import Rng


@pytest.mark.parametrize("core", CORES)
def test_env_passes_the_checkers(core: str) -> None:
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    gym_check_env(DuelEnv(core=core, seed=3), skip_render_check=True)
    sb3_check_env(DuelEnv(core=core, seed=4))


@pytest.mark.parametrize("core", CORES)
def test_errors_name_what_is_legal(core: str) -> None:
    env = DuelEnv(core=core, seed=1)
    env.reset()
    with pytest.raises(ValueError, match=r"action 4 is illegal now; legal: \[0, 1, 2, 3, 5, 6\]"):
        env.step(4)  # switching to the active creature
    with pytest.raises(ValueError, match="unknown shaping 'dense'; expected one of 'hp', 'none'"):
        DuelEnv(core=core, shaping="dense")
    while not env.step(int(np.flatnonzero(env.action_masks())[0]))[2]:
        pass
    with pytest.raises(ValueError, match=r"the episode is over; call reset\(\)"):
        env.step(0)


@pytest.mark.parametrize("core", CORES)
def test_seeding_and_stream_continuation(core: str) -> None:
    a, b = DuelEnv(core=core, seed=11), DuelEnv(core=core, seed=11)
    assert_array_equal(a.reset()[0], b.reset()[0])
    firsts = [a.reset()[0] for _ in range(5)]  # the stream continues: new deals
    assert len({f.tobytes() for f in firsts}) > 1
    assert_array_equal(a.reset(seed=11)[0], DuelEnv(core=core, seed=11).reset()[0])


def test_vec_env_matches_reference_envs_with_infos() -> None:
    n = 8
    venv = envs.make_vec("duel", n, opponent="sensible", seed=40)
    assert isinstance(venv, DuelVecEnv)
    refs = [DuelEnv(core="reference", opponent="sensible", seed=40 + i) for i in range(n)]
    obs: Any = venv.reset()
    assert_array_equal(obs, np.stack([env.reset()[0] for env in refs]))
    picker = np.random.default_rng(0)
    ended = 0
    for _ in range(120):
        actions = np.argmax(venv.action_masks() * picker.random((n, rules.NUM_ACTIONS)), axis=1)
        obs, rewards, dones, infos = venv.step(actions)
        for i, env in enumerate(refs):
            ref_obs, ref_reward, terminated, _, ref_info = env.step(int(actions[i]))
            assert rewards[i] == ref_reward and dones[i] == terminated
            if terminated:
                ended += 1
                assert_array_equal(infos[i]["terminal_observation"], ref_obs)
                assert {k: infos[i][k] for k in ("winner", "turns", "alive")} == ref_info
                assert infos[i]["episode"]["l"] == ref_info["turns"]
                ref_obs = env.reset()[0]
            else:
                assert infos[i] == {}
            assert_array_equal(obs[i], ref_obs)
    assert ended > n


def test_render_names_the_teams() -> None:
    env = DuelEnv(seed=1, render_mode="ansi")
    env.reset()
    text = env.render()
    assert text is not None and text.count("\n") == 2 and "*" in text


# --- properties of the reference ------------------------------------------------------------------------

episodes = given(seed=st.integers(0, 2**64 - 1), choices=st.lists(st.integers(0, 2**16), min_size=60, max_size=60),
                 opponent=st.sampled_from(rules.OPPONENTS))


@settings(max_examples=150, deadline=None)
@episodes
def test_invariants_over_random_legal_play(seed: int, choices: list[int], opponent: str) -> None:
    env = DuelEnv(core="reference", opponent=opponent, seed=seed)
    obs, _ = env.reset()
    game = env._backend.game  # type: ignore[attr-defined]
    space = observation_space()
    for turn, choice in enumerate(choices):
        assert obs in space
        for index, creature in enumerate(c for s in game.sides for c in s.team):
            row = obs[index * rules.SLOT_SIZE:][:rules.SLOT_SIZE]
            assert 0 <= creature.hp <= creature.stats.hp  # HP never negative nor above its max
            assert round(float(row[0]) * rules.PARAMS.hp_scale) == creature.hp  # exact in the observation
            assert row[1] == (1.0 if creature.hp > 0 else 0.0)  # KO iff HP 0
        # The mask is the rules' action table: attacks and pass iff the active creature stands, a switch
        # iff its slot stands and is not the active one.
        mask = env.action_masks()
        me = game.sides[0]
        assert list(mask[:4]) == [me.fighter.hp > 0] * 4
        assert list(mask[4:]) == [c.hp > 0 and slot != me.active for slot, c in enumerate(me.team)]
        for action in np.flatnonzero(~mask).tolist():
            with pytest.raises(ValueError, match="is illegal now"):
                env.step(action)
        legal = np.flatnonzero(mask)
        knocked_out = sum(c.hp == 0 for s in game.sides for c in s.team)
        obs, reward, terminated, truncated, info = env.step(int(legal[choice % len(legal)]))
        assert not truncated
        assert sum(c.hp == 0 for s in game.sides for c in s.team) - knocked_out <= 1  # one KO a turn at most
        if terminated:
            assert reward == {0: 1.0, 1: -1.0, -1: 0.0}[info["winner"]] and turn + 1 <= rules.PARAMS.max_turns
            assert (info["winner"] == -1) == (min(info["alive"]) > 0)
            assert not env.action_masks().any()
            return
        assert abs(reward) < 1.0 and info == {}
    pytest.fail("a game outlived 60 turns; the limit is 40")


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**64 - 1), actions=st.lists(st.integers(0, 6), min_size=1, max_size=40))
def test_shaped_reward_is_the_damage_difference(seed: int, actions: list[int]) -> None:
    game = rules.DuelGame(Rng(seed))
    for wanted in actions:
        legal = rules.legal_actions(game.sides[0])
        action = wanted if wanted in legal else legal[0]
        before = [sum(c.hp for c in s.team) for s in game.sides]
        result = game.play_turn((action, game.choose(1, "random")))
        for side, s in enumerate(game.sides):
            lost = before[side] - sum(c.hp for c in s.team)
            # damage is all a side loses; a pass heals after it, so a passing side lost at most its damage
            assert lost == result.hp_lost[side] if s.last_action != rules.PASS else lost <= result.hp_lost[side]
        if result.over:
            break
        expected = (result.hp_lost[1] - result.hp_lost[0]) / rules.PARAMS.shaping_divisor
        assert game.reward(result, "hp") == pytest.approx(expected, rel=1e-6)
        assert game.reward(result, "none") == 0.0


@pytest.mark.slow
def test_ppo_trains_on_duel(tmp_path: Path) -> None:
    from engine import ppo
    from engine.context import RunContext
    from engine.launcher import create_trainer_run
    from engine.profiles import resolve

    cfg = resolve("balance", algo="ppo", env="duel", cli={"run.total_steps": 512},
                  assignments=["env.num_envs=16", "ppo.n_steps=16", "ppo.batch_size=128", "ppo.n_epochs=1",
                               "ppo.net_arch=[16]", "torch.threads=1", "log.tensorboard=false",
                               "env.opponent=greedy", "log.every_steps=256"], environ={})
    ctx = RunContext(create_trainer_run(cfg, tmp_path, ["test"]), cfg)
    try:
        assert ppo.train(ctx, None) == "finished"
    finally:
        ctx.close()
    lines = [json.loads(line) for line in ctx.run.events_path.read_text().splitlines()]
    perf = [e for e in lines if e["kind"] == "perf"]
    assert perf and all("enemy_turn" in e["ms"] and "env_step" in e["ms"] for e in perf)
    assert sum(e["eps"] for e in perf) > 0  # games of duel ended and were counted
