"""PPO on soccer (a Box action space): VecNormalize statistics kept in checkpoints without pickles and
restored exactly, the refusals of statistics that do not fit, the reward parts logged per window, and
(slow) a run, its checkpoint and its resume through the trainer."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import VecNormalize

import envs
from engine import ppo, vec_normalize
from engine.checkpoint import latest_checkpoint, load_checkpoint
from engine.context import RunContext
from engine.errors import UsageError
from engine.launcher import create_trainer_run
from engine.perf import PerfTimer
from engine.profiles import resolve
from engine.reward_parts import RewardParts, reports_parts

TINY = ["env.num_envs=8", "ppo.n_steps=32", "ppo.batch_size=128", "ppo.n_epochs=1", "ppo.net_arch=[16]",
        "log.every_steps=256", "checkpoint.every_steps=256", "torch.threads=1", "log.tensorboard=false",
        "log.every_seconds=3600", "log.reward_debug=true"]


def stepped_normalizer(seed: int, steps: int) -> tuple[VecNormalize, np.ndarray]:
    """A VecNormalize over 4 soccer games after `steps` random steps, and the last raw observations."""
    norm = vec_normalize.wrap(envs.make_vec("soccer", 4, seed=seed, max_steps=60), gamma=0.99)
    norm.reset()
    picker = np.random.default_rng(seed)
    for _ in range(steps):
        norm.step(picker.uniform(-1.0, 1.0, (4, 2)).astype(np.float32))
    return norm, norm.get_original_obs()


def through_a_checkpoint(value: dict[str, Any]) -> dict[str, Any]:
    data = io.BytesIO()
    torch.save({"vecnormalize": value}, data)
    data.seek(0)
    loaded: dict[str, Any] = torch.load(data, weights_only=True)["vecnormalize"]
    return loaded


def test_statistics_round_trip_exactly_and_restore_frozen() -> None:
    norm, raw = stepped_normalizer(1, 150)
    saved = through_a_checkpoint(vec_normalize.statistics(norm))
    fresh = vec_normalize.wrap(envs.make_vec("soccer", 4, seed=99), gamma=0.99)
    assert not np.array_equal(fresh.normalize_obs(raw), norm.normalize_obs(raw))
    vec_normalize.restore(fresh, saved, training=False)
    assert np.array_equal(fresh.normalize_obs(raw), norm.normalize_obs(raw))
    counts = vec_normalize.statistics(fresh)["obs_count"], vec_normalize.statistics(norm)["obs_count"]
    assert counts == (1e-4 + 4 + 600, 1e-4 + 4 + 600)  # the reset's 4 observations, then 150 steps of 4
    assert not fresh.training and not fresh.norm_reward
    before = vec_normalize.statistics(fresh)
    fresh.reset()
    fresh.step(np.zeros((4, 2), dtype=np.float32))
    assert torch.equal(vec_normalize.statistics(fresh)["obs_mean"], before["obs_mean"])  # frozen


@pytest.mark.parametrize("games", [5, 16])
def test_the_compiled_normalizer_is_sb3s_bit_for_bit(games: int) -> None:
    """Statistics, observations, rewards and the ended games' terminal observations equal SB3's VecNormalize
    on the same games and actions, learning and then frozen."""
    ours = vec_normalize.wrap(envs.make_vec("soccer", games, seed=games, max_steps=40), gamma=0.99)
    sb3 = VecNormalize(envs.make_vec("soccer", games, seed=games, max_steps=40), gamma=0.99)
    assert isinstance(ours, vec_normalize.CompiledVecNormalize)
    assert np.array_equal(ours.reset(), sb3.reset())
    picker, ended = np.random.default_rng(games), 0
    for step in range(300):
        if step == 200:  # frozen, as an evaluation restores them
            for norm in (ours, sb3):
                vec_normalize.restore(norm, vec_normalize.statistics(norm), training=False)
        actions = picker.uniform(-1.2, 1.2, (games, 2)).astype(np.float32)
        (obs, rewards, dones, infos), (their_obs, their_rewards, their_dones, their_infos) = (
            ours.step(actions), sb3.step(actions))
        assert obs.dtype == their_obs.dtype and rewards.dtype == their_rewards.dtype
        assert np.array_equal(obs, their_obs) and np.array_equal(rewards, their_rewards)
        assert np.array_equal(dones, their_dones)
        for i in np.flatnonzero(dones):
            assert np.array_equal(infos[i]["terminal_observation"], their_infos[i]["terminal_observation"])
            ended += 1
        mine, theirs = vec_normalize.statistics(ours), vec_normalize.statistics(sb3)
        assert all(torch.equal(mine[k], theirs[k]) if isinstance(mine[k], torch.Tensor) else mine[k] == theirs[k]
                   for k in mine)
    assert ended >= 5 * games  # games of 40 steps: every game ended several times, in both phases


@pytest.mark.parametrize(("damage", "message"), [
    (lambda s: None, r"checkpoint has no normalisation statistics \(vecnormalize\)"),
    (lambda s: {k: v for k, v in s.items() if k != "ret_var"}, "statistics lack ret_var"),
    (lambda s: {**s, "obs_mean": torch.zeros(17, dtype=torch.float64)}, r"obs_mean has shape \(17,\); the "
     "observation size is 18"),
    (lambda s: {**s, "obs_count": "many"}, "obs_count must be numbers"),
])
def test_statistics_that_do_not_fit_are_refused_in_one_line(damage: Any, message: str) -> None:
    norm, _ = stepped_normalizer(2, 3)
    with pytest.raises(UsageError, match=message):
        vec_normalize.check_statistics(damage(vec_normalize.statistics(norm)), 18)


def test_reward_parts_are_averaged_per_game_step_and_sum_to_the_mean_reward() -> None:
    venv = envs.make_vec("soccer", 6, seed=3, max_steps=40)
    assert reports_parts(venv) and not reports_parts(envs.make_vec("beastybar", 2))
    parts = RewardParts(venv)
    assert parts.take() == {}
    venv.reset()
    picker = np.random.default_rng(3)
    total = 0.0
    for _ in range(100):
        total += float(venv.step(picker.uniform(-1.0, 1.0, (6, 2)).astype(np.float32))[1].sum())
        parts._on_step()  # what SB3 calls after each vec-env step
    means = parts.take()
    assert set(means) == {"reward/goal", "reward/touch", "reward/ball_to_goal", "reward/ball_distance"}
    assert sum(means.values()) == pytest.approx(total / 600, abs=1e-6)
    assert means["reward/ball_distance"] < 0.0 and parts.take() == {}


def make_ctx(tmp_path: Path, steps: int, *extra: str) -> RunContext:
    cfg = resolve("balance", algo="ppo", env="soccer", cli={"run.total_steps": steps}, assignments=[*TINY, *extra],
                  environ={})
    return RunContext(create_trainer_run(cfg, tmp_path, ["test"]), cfg)


def run_train(ctx: RunContext, resume: dict[str, Any] | None = None) -> str:
    try:
        return ppo.train(ctx, resume)
    finally:
        ctx.close()


def test_soccer_runs_default_to_normalisation_and_decaying_schedules(tmp_path: Path) -> None:
    cfg = resolve("balance", algo="ppo", env="soccer", cli={}, assignments=[], environ={})
    assert (cfg["env.opponent"], cfg["env.normalize"], cfg["ppo.gamma"]) == ("chaser", True, 0.995)
    assert (cfg["ppo.ent_coef"], cfg["ppo.ent_coef_end"]) == (0.001, 0.0)
    assert cfg["ppo.learning_rate"] == 3e-4 and cfg.source("ppo.ent_coef_end") == "hyperparams:ppo/soccer"
    # The game's end step size (5e-5) gives way to a profile's, as every algo + game value does.
    assert (cfg["ppo.learning_rate_end"], cfg.source("ppo.learning_rate_end")[:15]) == (1e-4, "profile:balance")
    (tmp_path / "bare.toml").write_text("")
    bare = resolve("bare", algo="ppo", env="soccer", cli={}, assignments=[], environ={}, profiles_dir=tmp_path)
    assert (bare["ppo.learning_rate_end"], bare["ppo.ent_coef_end"]) == (5e-5, 0.0)


@pytest.mark.slow
def test_a_run_normalises_logs_reward_parts_and_resumes_with_its_statistics(tmp_path: Path) -> None:
    first = make_ctx(tmp_path / "a", 512)
    assert run_train(first) == "finished"
    lines = [json.loads(line) for line in first.run.events_path.read_text().splitlines()]
    metrics = [e["values"] for e in lines if e["kind"] == "metric"]
    windows = [m for m in metrics if "reward/goal" in m]  # each window's; the last event (no steps since) has none
    assert len(windows) == 2 and all(set(m) >= {"reward/touch", "reward/ball_to_goal", "reward/ball_distance"}
                                     for m in windows)
    # the CPU update ran (engine.cpu_ppo) and reported its gradient norms like torch's hooks do
    assert any(e["msg"].startswith("update: SB3's PPO update in C") for e in lines if e["kind"] == "log")
    updated = [m for m in metrics if "train/grad_norm_pre_clip" in m]  # the windows that saw an update
    assert updated and all(m["train/grad_norm_pre_clip"] >= m["train/grad_norm_post_clip"] > 0 for m in updated)
    state = load_checkpoint(latest_checkpoint(first.run.checkpoints))  # type: ignore[arg-type]
    assert (state["action_space"], state["num_actions"], state["num_timesteps"]) == ("box", 2, 512)
    assert state["vecnormalize"]["obs_count"] == pytest.approx(1e-4 + 8 + 512)  # the first reset, the steps
    ppo.check_resume(state, first.cfg)

    second = make_ctx(tmp_path / "b", 1024)
    assert run_train(second, state) == "finished"
    final = load_checkpoint(latest_checkpoint(second.run.checkpoints))  # type: ignore[arg-type]
    assert final["num_timesteps"] == 1024
    assert final["vecnormalize"]["obs_count"] == pytest.approx(1e-4 + 8 + 512 + 8 + 512)  # continued

    without = {k: v for k, v in state.items() if k != "vecnormalize"}
    with pytest.raises(UsageError, match="checkpoint has no normalisation statistics"):
        run_train(make_ctx(tmp_path / "c", 1024), without)


@pytest.mark.parametrize(("assignment", "message"), [
    ("env.reward_weights={touch = 'x'}", r"env.reward_weights = \{'touch': 'x'\} is out of range; expected a table of "
                                         "finite numbers"),
    ("env.reward_weights={touch = nan}", "is out of range; expected a table of finite numbers"),
    ("env.reward_weights={kick = 1.0}", "env.reward_weights has 'kick', not a reward part of soccer; expected: goal, "
                                        "touch, ball_to_goal, ball_distance"),
    ("env.reward_weights=2", "env.reward_weights = 2 has the wrong type; expected dict"),
])
def test_reward_weights_that_are_not_numbers_of_known_parts_are_refused(assignment: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve("balance", algo="ppo", env="soccer", cli={}, assignments=[assignment], environ={})


def test_reward_weights_reach_the_game_and_other_games_have_none() -> None:
    goal_weight = ["env.reward_weights={goal = 3}"]
    cfg = resolve("balance", algo="ppo", env="soccer", cli={}, assignments=goal_weight, environ={})
    assert cfg["env.reward_weights"] == {"goal": 3}
    venv = ppo.make_env(cfg, PerfTimer(enabled=False), 0).game_env
    assert venv.reward_weights == {"goal": 3.0, "touch": 0.02, "ball_to_goal": 0.01, "ball_distance": 0.001}
    with pytest.raises(UsageError, match=r"reward_weights has 'goal', not a reward part of beastybar; "
                                         r"expected: outcome, margin"):
        resolve("balance", algo="ppo", env="beastybar", cli={}, assignments=goal_weight, environ={})
    with pytest.raises(UsageError, match=r"reward_weights has 'goal', not a reward part of skirmish; expected: none"):
        resolve("balance", algo="dqn-per", env="skirmish", cli={}, assignments=goal_weight, environ={})
