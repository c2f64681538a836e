"""The PPO trainer in-process: events, metrics, checkpoints, schedules, stop and resume, and the pieces
it hooks into SB3 with (phase timing, AMP wrapper, gradient norms, outcome window, logger capture)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO

import envs
from engine import ppo
from engine.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from engine.context import RunContext
from engine.errors import UsageError
from engine.evaluate import Outcomes, play_games, random_chooser, sb3_chooser
from engine.launcher import create_trainer_run
from engine.perf import PerfTimer
from engine.profiles import resolve
from engine.sb3_hooks import GradNormMonitor, InstrumentedVecEnv, MetricCapture, OutcomeWindow, PolicyPhases

torch.set_num_threads(1)

TINY = ["env.num_envs=16", "ppo.n_steps=16", "ppo.batch_size=128", "ppo.n_epochs=2", "ppo.net_arch=[32, 32]",
        "log.every_steps=256", "checkpoint.every_steps=512", "torch.threads=1", "log.tensorboard=false",
        "log.every_seconds=3600"]  # events by the step rule only: the tests check their steps


def make_ctx(tmp_path: Path, steps: int, *extra: str) -> RunContext:
    cfg = resolve("balance", algo="ppo", env="beastybar", cli={"run.total_steps": steps},
                  assignments=[*TINY, *extra], environ={})
    return RunContext(create_trainer_run(cfg, tmp_path, ["test"]), cfg)


def events(ctx: RunContext) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ctx.run.events_path.read_text().splitlines()]


def run_train(ctx: RunContext, resume: dict[str, Any] | None = None) -> str:
    try:
        return ppo.train(ctx, resume)
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunContext, str]:
    ctx = make_ctx(tmp_path_factory.mktemp("runs"), 1024, "log.tensorboard=true")
    return ctx, run_train(ctx)


@pytest.mark.slow
def test_run_emits_perf_metric_and_checkpoints(trained: tuple[RunContext, str]) -> None:
    ctx, state = trained
    assert state == "finished"
    evs = events(ctx)
    perf = [e for e in evs if e["kind"] == "perf"]
    assert [e["step"] for e in perf] == [256, 512, 768, 1024]
    assert all(e["sps"] > 0 and e["eps"] > 0 for e in perf)
    phases = set().union(*(e["ms"] for e in perf))
    assert {"action", "env_step", "train_fwd", "train_bwd", "log"} <= phases
    metrics: dict[str, float] = {}
    for e in evs:
        if e["kind"] == "metric":
            metrics.update(e["values"])
    for name in ("rollout/ep_rew_mean", "rollout/ep_len_mean", "rollout/win_rate", "rollout/draw_rate",
                 "rollout/loss_rate", "train/policy_loss", "train/value_loss", "train/entropy", "train/approx_kl",
                 "train/clip_fraction", "train/explained_variance", "train/lr", "train/ent_coef",
                 "train/grad_norm_pre_clip", "train/grad_norm_post_clip"):
        assert name in metrics, name
    assert metrics["rollout/win_rate"] + metrics["rollout/draw_rate"] + metrics["rollout/loss_rate"] == pytest.approx(1)
    assert metrics["train/entropy"] > 0  # SB3 logs the entropy loss (negative); we report the entropy
    assert metrics["train/grad_norm_post_clip"] <= ctx.cfg["ppo.max_grad_norm"] + 1e-4
    assert metrics["train/grad_norm_pre_clip"] >= metrics["train/grad_norm_post_clip"] - 1e-6
    assert [p.name for p in list_checkpoints(ctx.run.checkpoints)] == ["step_000000000512.pt", "step_000000001024.pt"]
    assert any(ctx.run.tb.iterdir())


@pytest.mark.slow
def test_checkpoint_is_weights_only_and_resumable(trained: tuple[RunContext, str]) -> None:
    ctx, _ = trained
    path = latest_checkpoint(ctx.run.checkpoints)
    assert path is not None
    state = torch.load(path, weights_only=True)
    ppo.check_resume(state)
    assert state["step"] == state["num_timesteps"] == 1024
    assert state["n_updates"] == 4 * ctx.cfg["ppo.n_epochs"]
    assert state["progress_remaining"] == 0.0
    policy = ppo.policy_from_checkpoint(state)
    outcomes = play_games(sb3_chooser(policy), games=64, seed=5)
    assert outcomes.games == 64


@pytest.mark.slow
def test_schedules_reach_their_ends(trained: tuple[RunContext, str]) -> None:
    ctx, _ = trained
    state = load_checkpoint(latest_checkpoint(ctx.run.checkpoints))  # type: ignore[arg-type]
    lr_last = state["optimizer"]["param_groups"][0]["lr"]
    p = ctx.cfg.section("ppo")
    # Each update uses the schedule at the steps taken so far: the 4th of 4 runs at the end value.
    assert lr_last == pytest.approx(p["learning_rate_end"])
    lrs = [e["values"]["train/lr"] for e in events(ctx) if e["kind"] == "metric" and "train/lr" in e["values"]]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] < p["learning_rate"]
    assert state["ent_coef"] == pytest.approx(p["ent_coef_end"])


@pytest.mark.slow
def test_resume_continues_step_count_and_schedules(tmp_path: Path) -> None:
    first = make_ctx(tmp_path / "a", 512)
    run_train(first)
    state = load_checkpoint(latest_checkpoint(first.run.checkpoints))  # type: ignore[arg-type]
    assert state["num_timesteps"] == 512
    second = make_ctx(tmp_path / "b", 1024)
    assert run_train(second, state) == "finished"
    perf_steps = [e["step"] for e in events(second) if e["kind"] == "perf"]
    assert perf_steps == [768, 1024]
    final = load_checkpoint(latest_checkpoint(second.run.checkpoints))  # type: ignore[arg-type]
    assert final["num_timesteps"] == 1024
    assert final["n_updates"] == 4 * second.cfg["ppo.n_epochs"]
    assert final["ent_coef"] == pytest.approx(second.cfg["ppo.ent_coef_end"])


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_of_another_network(tmp_path: Path) -> None:
    first = make_ctx(tmp_path / "a", 256)
    run_train(first)
    state = load_checkpoint(latest_checkpoint(first.run.checkpoints))  # type: ignore[arg-type]
    other = make_ctx(tmp_path / "b", 512, "ppo.net_arch=[16]")
    with pytest.raises(UsageError, match="net_arch"):
        run_train(other, state)


@pytest.mark.slow
def test_stop_request_ends_with_a_checkpoint(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, 100_000)
    ctx.stop.set()
    assert run_train(ctx) == "stopped"
    state = load_checkpoint(latest_checkpoint(ctx.run.checkpoints))  # type: ignore[arg-type]
    ppo.check_resume(state)
    assert state["num_timesteps"] < 100_000


@pytest.mark.slow
def test_timing_off_drops_phases_but_keeps_rates(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, 512, "log.timing=false")
    run_train(ctx)
    perf = [e for e in events(ctx) if e["kind"] == "perf"]
    assert perf and all(e["ms"] == {} and e["sps"] > 0 and e["eps"] > 0 for e in perf)


@pytest.mark.slow
@pytest.mark.parametrize("damage, message", [
    (lambda s: s.pop("optimizer"), "missing optimizer"),
    (lambda s: s.update(num_timesteps="many"), "wrong type for: num_timesteps"),
    (lambda s: s.update(format="other/9"), "format"),
    (lambda s: s.update(net_arch=[64, 64]), "shape"),
    (lambda s: s["policy"].pop("value_net.bias"), "keys differ"),
])
def test_check_resume_rejects_damaged_checkpoints(trained: tuple[RunContext, str], damage: Any, message: str) -> None:
    ctx, _ = trained
    state = load_checkpoint(latest_checkpoint(ctx.run.checkpoints))  # type: ignore[arg-type]
    damage(state)
    with pytest.raises(UsageError, match=message):
        ppo.check_resume(state)


@pytest.mark.slow
def test_check_resume_with_a_config_refuses_other_hidden_layers(trained: tuple[RunContext, str]) -> None:
    ctx, _ = trained
    state = load_checkpoint(latest_checkpoint(ctx.run.checkpoints))  # type: ignore[arg-type]
    ppo.check_resume(state, ctx.cfg)
    other = resolve("balance", environ={}, assignments=["ppo.net_arch=[32]"])
    with pytest.raises(UsageError, match=r"checkpoint net_arch = \[.*\] does not fit this run \(net_arch = \[32\]\)"):
        ppo.check_resume(state, other)


# -- the hooks ----------------------------------------------------------------------------------------
def test_outcome_window_keeps_the_last_games() -> None:
    window = OutcomeWindow(capacity=4)
    assert window.rates() == {}
    window.add(np.array([1, 1, 1], np.int8))
    window.add(np.array([-1, 0, -1], np.int8))  # wraps: kept = [1, -1, 0, -1]
    assert window.rates() == {"rollout/win_rate": 0.25, "rollout/draw_rate": 0.25, "rollout/loss_rate": 0.5}
    window.add(np.array([0, 0, 0, 0, 0, 1], np.int8))  # more than capacity: the last 4 only
    assert window.rates()["rollout/draw_rate"] == 0.75
    assert window.total == 12


def test_instrumented_vec_env_counts_outcomes_from_rewards() -> None:
    timer = PerfTimer()
    env = InstrumentedVecEnv(envs.make_vec("beastybar", 32, seed=3), timer, outcome_window=10_000)
    choose = random_chooser(0)
    obs = env.reset()
    for _ in range(40):
        obs, _rewards, _dones, _infos = env.step(choose(obs, env.action_masks()))
    assert env.outcomes.total >= 32
    assert sum(env.outcomes.rates().values()) == pytest.approx(1)
    window = timer.window(40 * 32)
    assert window.eps > 0 and window.ms["env_step"] > 0


def test_metric_capture_renames_and_drops_time() -> None:
    timer = PerfTimer()
    capture = MetricCapture(timer)
    capture.write({"train/entropy_loss": -1.3, "train/policy_gradient_loss": 0.1, "train/learning_rate": 3e-4,
                   "time/fps": 123, "rollout/ep_rew_mean": 0.5}, {})
    assert capture.take() == {"train/entropy": 1.3, "train/policy_loss": 0.1, "train/lr": 3e-4,
                              "rollout/ep_rew_mean": 0.5}
    assert capture.take() == {}


def test_grad_norms_before_and_after_clipping() -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    monitor = GradNormMonitor(net.parameters(), opt)
    loss = (net(torch.randn(8, 4)) * 100).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    expected = torch.nn.utils.get_total_norm([p.grad for p in net.parameters()]).item()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
    opt.step()
    norms = monitor.take()
    assert norms["train/grad_norm_pre_clip"] == pytest.approx(expected)
    assert norms["train/grad_norm_post_clip"] == pytest.approx(0.5)
    assert monitor.take() == {}


@pytest.mark.slow
def test_policy_phases_time_and_autocast_without_changing_sb3() -> None:
    timer = PerfTimer()
    model = MaskablePPO("MlpPolicy", envs.make_vec("beastybar", 8, seed=1), n_steps=16, batch_size=64, n_epochs=1,
                        policy_kwargs={"net_arch": [16]}, seed=0, device="cpu")
    PolicyPhases(model.policy, model.policy.optimizer, timer, autocast_device="cpu")
    obs = torch.as_tensor(model.env.reset())  # type: ignore[union-attr]
    _actions, values, log_probs = model.policy(obs, action_masks=model.env.action_masks())  # type: ignore[union-attr]
    assert values.dtype == log_probs.dtype == torch.float32  # bf16 inside, float32 out
    model.learn(128)
    window = timer.window(128)
    assert {"action", "train_fwd", "train_bwd"} <= set(window.ms)


def test_evaluation_uses_fixed_games() -> None:
    first = play_games(random_chooser(7), games=200, seed=11)
    again = play_games(random_chooser(7), games=200, seed=11)
    assert first == again and first.games == 200
    low, high = first.win_rate_interval()
    assert low <= first.win_rate <= high
    assert Outcomes(0, 0, 0).win_rate == 0.0


@pytest.mark.slow
def test_ppo_learns_to_beat_random_play(tmp_path: Path) -> None:
    """16,384 steps of PPO against the random opponent (seconds), then 2,000 games on fixed deals and
    opponent seeds. The trained policy (greedy) must beat, by `Outcomes.beats` (its Wilson lower bound,
    95 %, above the other's upper bound, as both rates are measured over 2,000 games), a uniform-random
    legal player and the same network untrained. The second shows the learning: an untrained network
    played greedily is a fixed policy that may beat random by the luck of its weights (run seed 1's did:
    0.522 against 0.446). Measured here: trained 0.662 [0.641, 0.682], untrained 0.396 [0.375, 0.418],
    random 0.446 [0.424, 0.467]; with the learning rate at 0 the test failed."""
    ctx = make_ctx(tmp_path, 16_384, "env.num_envs=64", "ppo.batch_size=256", "ppo.n_epochs=4",
                   "ppo.net_arch=[64, 64]", "ppo.learning_rate=2e-3", "ppo.learning_rate_end=1e-3",
                   "log.every_steps=4096", "checkpoint.every_steps=0")
    assert run_train(ctx) == "finished"
    policy = ppo.policy_from_checkpoint(load_checkpoint(latest_checkpoint(ctx.run.checkpoints)))  # type: ignore[arg-type]
    untrained = ppo.make_model(ctx.cfg, ppo.make_env(ctx.cfg, PerfTimer(), 0), torch.device("cpu")).policy
    trained, before, random = (play_games(choose, games=2000, seed=50_000)
                               for choose in (sb3_chooser(policy), sb3_chooser(untrained), random_chooser(0)))
    assert trained.beats(random) and trained.beats(before), f"trained {trained}, untrained {before}, random {random}"


@pytest.mark.slow
def test_compile_failure_falls_back_to_eager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = make_ctx(tmp_path, 256)
    env = ppo.make_env(ctx.cfg, ctx.timer, seed=0)
    model = ppo.make_model(ctx.cfg, env, torch.device("cpu"))

    def broken_compile(module: torch.nn.Module, *_args: Any, **_kwargs: Any) -> None:
        def fail(*_a: Any, **_k: Any) -> None:
            raise RuntimeError("no compiler backend here")

        module._compiled_call_impl = fail  # what a compiled module calls instead of forward

    monkeypatch.setattr(torch.nn.Module, "compile", broken_compile)
    assert ppo.compile_policy(model, env, ctx) is False
    ctx.close()
    actions, _values, _log_probs = model.policy(torch.as_tensor(env.reset()), action_masks=env.action_masks())
    assert actions.shape == (ctx.cfg["env.num_envs"],)
    assert any(e["kind"] == "log" and e["level"] == "warning" and "no compiler backend here" in e["msg"]
               for e in events(ctx))


@pytest.mark.parametrize("selfplay", [False, True])
def test_beastybar_reward_weights_reach_its_games_with_or_without_self_play(selfplay: bool) -> None:
    assignments = ["env.reward_weights={margin = 0.5}", f"selfplay.enabled={str(selfplay).lower()}"]
    cfg = resolve("balance", algo="ppo", env="beastybar", cli={}, assignments=assignments, environ={})
    env = ppo.make_env(cfg, PerfTimer(enabled=False), 0).game_env
    games = env.game_env if selfplay else env  # self-play's pool wraps the game's own VecEnv
    assert games.reward_weights == {"outcome": 1.0, "margin": 0.5}
