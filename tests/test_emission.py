"""The run's SB3 callbacks and what they share: events by steps or by wall time (`log.every_seconds`), its
bad values, the stop that skips the rest of a step, the last emission and checkpoint, the one outcome
window of every trainer, the one autocast, and the checkpoint checks in engine.checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger

import envs
from engine import dqn, ppo, sb3_callbacks
from engine.checkpoint import NETWORK_KEYS, check_checkpoint, latest_checkpoint, load_checkpoint
from engine.context import RunContext, StopRequest
from engine.errors import UsageError
from engine.launcher import create_trainer_run
from engine.perf import PerfTimer
from engine.profiles import resolve
from engine.sb3_callbacks import EmitEvents, RunCallbacks, StopOnRequest
from engine.sb3_hooks import OutcomeWindow, bf16_autocast

torch.set_num_threads(1)
PROJECT = Path(__file__).resolve().parent.parent
TINY = {
    "ppo": ["env.num_envs=16", "ppo.n_steps=16", "ppo.batch_size=128", "ppo.n_epochs=1", "ppo.net_arch=[16]"],
    "dqn-per": ["env.num_envs=16", "dqn.batch_size=32", "dqn.buffer_size=4096", "dqn.net_arch=[16]",
                "dqn.warmup_steps=128", "dqn.updates_per_step=1"],
}
GAME = {"ppo": "beastybar", "dqn-per": "skirmish"}
TRAIN = {"ppo": ppo.train, "dqn-per": dqn.train}


def make_ctx(tmp_path: Path, algo: str, steps: int, *extra: str) -> RunContext:
    cfg = resolve("balance", algo=algo, env=GAME[algo], cli={"run.total_steps": steps}, environ={},
                  assignments=[*TINY[algo], "torch.threads=1", "log.tensorboard=false", *extra])
    return RunContext(create_trainer_run(cfg, tmp_path, ["test"]), cfg)


def events(ctx: RunContext, kind: str) -> list[dict[str, Any]]:
    lines = ctx.run.events_path.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["kind"] == kind]


def run_train(ctx: RunContext, resume: dict[str, Any] | None = None) -> str:
    try:
        return TRAIN[ctx.cfg["run.algo"]](ctx, resume)
    finally:
        ctx.close()


# -- log.every_seconds ----------------------------------------------------------------------------------
class FakeClock:
    """Stands in for the `time` module inside engine.sb3_callbacks: monotonic() reads `now`."""

    perf_counter_ns = staticmethod(time.perf_counter_ns)

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


class FakeModel:
    """What the callbacks read of an SB3 algorithm."""

    def __init__(self) -> None:
        self.num_timesteps = 0
        self.logger = Logger(folder=None, output_formats=[])

    def get_env(self) -> None:
        return None


@pytest.mark.slow
def test_events_come_by_steps_or_by_seconds_whichever_is_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(sb3_callbacks, "time", clock)
    ctx = make_ctx(tmp_path, "ppo", 10_000, "log.every_steps=1000", "log.every_seconds=5")
    emitted = iter(range(100))
    callback = EmitEvents(ctx, lambda: {"n": float(next(emitted))})
    model = FakeModel()
    callback.init_callback(model)  # type: ignore[arg-type]
    callback.on_training_start({}, {})  # step 0 at t=100: next by steps at 1000, by time at t=105
    for step, now in [(100, 101.0), (200, 106.0), (300, 110.9), (1000, 110.95), (1100, 115.9), (1200, 116.0),
                      (1300, 117.0)]:
        model.num_timesteps, clock.now = step, now
        assert callback.on_step()
    callback.on_training_end()
    ctx.close()
    # 200: 6 s after the start; 1000: the step rule; 1200: 5 s after the emission at 1000 (t=110.95): at 1100
    # (t=115.9) the deadline set at 200 (t=111) was past, but that emission moved it; then the last emission
    # at 1300, whose perf window holds the steps since 1200.
    assert [e["step"] for e in events(ctx, "perf")] == [200, 1000, 1200, 1300]
    assert [(e["step"], e["values"]["n"]) for e in events(ctx, "metric")] == [(200, 0), (1000, 1), (1200, 2),
                                                                               (1300, 3)]


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "dqn-per"])
def test_every_seconds_emits_when_the_step_rule_never_would(tmp_path: Path, algo: str) -> None:
    # every_steps is past the run's end, so each perf event below is the time rule's: with a nanosecond
    # of every_seconds, every vec-env step (16 games) is past the deadline.
    ctx = make_ctx(tmp_path, algo, 512, "log.every_steps=1000000000", "log.every_seconds=1e-9",
                   "checkpoint.every_steps=0")
    assert run_train(ctx) == "finished"
    assert [e["step"] for e in events(ctx, "perf")] == list(range(16, 513, 16))
    metrics = events(ctx, "metric")
    assert [e["step"] for e in metrics[-2:]] == [512, 512]  # the last step's emission, then the one after training
    assert any(name.startswith("train/") for name in metrics[-1]["values"])
    assert [p.name for p in ctx.run.checkpoints.iterdir()] == ["step_000000000512.pt"]


@pytest.mark.parametrize(("value", "message"), [
    ("0", r"--set: log.every_seconds = 0 is out of range; expected > 0"),
    ("-2.5", r"log.every_seconds = -2.5 is out of range; expected > 0"),
    ("nan", r"log.every_seconds = nan is out of range; expected > 0"),
    ("often", r"log.every_seconds = 'often' has the wrong type; expected int or float"),
    ("true", r"log.every_seconds = True has the wrong type; expected int or float"),
    ("[5]", r"log.every_seconds = \[5\] has the wrong type"),
])
def test_a_bad_every_seconds_is_one_usage_line(value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        resolve("speed", environ={}, assignments=[f"log.every_seconds={value}"])
    assert "\n" not in str(info.value)


def test_every_seconds_takes_ints_and_floats_and_the_profiles_set_it() -> None:
    assert resolve("balance", environ={}, assignments=["log.every_seconds=2"])["log.every_seconds"] == 2
    assert resolve("balance", environ={}, assignments=["log.every_seconds=0.25"])["log.every_seconds"] == 0.25
    assert resolve("speed", environ={})["log.every_seconds"] == 5


@pytest.mark.slow
def test_trainctl_run_refuses_a_bad_every_seconds_before_anything_starts(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "cli.main", "run", "--runs-dir", str(runs), "--steps", "256",
                           "--set", "log.every_seconds=0"], cwd=PROJECT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "log.every_seconds = 0 is out of range" in done.stderr
    assert not runs.exists() or not any(runs.iterdir())


# -- stop, last emission and checkpoint -----------------------------------------------------------------
class CountSteps(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def _on_step(self) -> bool:
        self.steps += 1
        return True


def test_a_stop_ends_the_step_before_the_callbacks_after_it() -> None:
    stop, counter = StopRequest(), CountSteps()
    callbacks = RunCallbacks([StopOnRequest(stop), counter])
    callbacks.init_callback(FakeModel())  # type: ignore[arg-type]
    assert callbacks.on_step() and counter.steps == 1
    stop.set()
    assert not callbacks.on_step() and counter.steps == 1


@pytest.mark.slow
def test_nothing_left_to_train_still_emits_and_saves_once(tmp_path: Path) -> None:
    first = make_ctx(tmp_path / "a", "ppo", 256, "log.every_seconds=3600")
    run_train(first)
    state = load_checkpoint(latest_checkpoint(first.run.checkpoints))  # type: ignore[arg-type]
    again = make_ctx(tmp_path / "b", "ppo", 256, "log.every_seconds=3600")
    assert run_train(again, state) == "finished"
    assert events(again, "perf") == []  # no step was taken: no window to close
    assert [e["step"] for e in events(again, "metric")] == [256]
    assert [p.name for p in again.run.checkpoints.iterdir()] == ["step_000000000256.pt"]
    assert any("nothing to train" in e["msg"] for e in events(again, "log"))


# -- the outcome window ---------------------------------------------------------------------------------
def test_outcome_window_keeps_the_last_games_of_every_column() -> None:
    window = OutcomeWindow(capacity=3, columns=("length",))
    assert window.rates() == {} and window.means({"len": "length"}) == {} and window.shares("length", {}) == {}
    window.add(np.array([1, -1], np.int8), length=np.array([10, 20]))
    window.add(np.array([0, 0, 1], np.int8), length=np.array([30, 40, 50]))  # wraps: the last 3 are kept
    assert window.count == 3 and window.total == 5
    assert window.rates() == pytest.approx({"rollout/win_rate": 1 / 3, "rollout/draw_rate": 2 / 3,
                                            "rollout/loss_rate": 0.0})
    assert window.means({"rollout/ep_len_mean": "length"}) == {"rollout/ep_len_mean": 40.0}
    assert window.shares("length", {30: "thirty", 10: "ten"}) == pytest.approx({"thirty": 1 / 3, "ten": 0.0})
    with pytest.raises(ValueError, match="columns are length; got none"):
        window.add(np.array([1]))
    with pytest.raises(ValueError, match="got length, vp"):
        window.add(np.array([1]), length=np.array([1]), vp=np.array([1]))


games = st.lists(st.lists(st.tuples(st.integers(-1, 1), st.integers(0, 1000)), max_size=12), max_size=8)


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(1, 10), batches=games)
def test_outcome_window_holds_exactly_the_last_capacity_games(capacity: int,
                                                               batches: list[list[tuple[int, int]]]) -> None:
    window = OutcomeWindow(capacity, columns=("length",))
    for batch in batches:
        rows = np.array(batch, dtype=np.int64).reshape(-1, 2)
        window.add(rows[:, 0].astype(np.int8), length=rows[:, 1])
    played = [game for batch in batches for game in batch]
    last = played[len(played) - min(capacity, len(played)):]
    assert window.total == len(played) and window.count == len(last)
    kept = sorted(zip(window.kept("outcome").tolist(), window.kept("length").tolist(), strict=True))
    assert kept == sorted((float(o), float(n)) for o, n in last)
    if last:
        assert window.rates()["rollout/win_rate"] == pytest.approx(sum(o == 1 for o, _ in last) / len(last))
        assert sum(window.rates().values()) == pytest.approx(1)


def test_skirmish_game_metrics_come_from_the_shared_window() -> None:
    stats = dqn.SkirmishStats(envs.make_vec("skirmish", 2, seed=0, mode="train"), PerfTimer(), reward_debug=False)
    assert stats.game_metrics() == {}
    stats.outcomes = OutcomeWindow(4, dqn.SkirmishStats.GAME_COLUMNS)
    columns = np.array([[1, 5, 1, 2.0, 20], [-1, -10, 2, -1.0, 10], [0, 0, 1, 0.0, 30],
                        [1, 3, 3, 1.0, 12], [1, 7, 1, 1.5, 40]], dtype=np.float64).T
    for part in (slice(0, 2), slice(2, 5)):
        stats.outcomes.add(columns[0, part], vp_diff=columns[1, part], end_reason=columns[2, part],
                        episode_return=columns[3, part], episode_length=columns[4, part])
    m = stats.game_metrics()
    assert m["rollout/games"] == 4
    assert m["rollout/win_rate"] == 0.5 and m["rollout/draw_rate"] == 0.25 and m["rollout/loss_rate"] == 0.25
    assert m["rollout/vp_diff_mean"] == pytest.approx((-10 + 0 + 3 + 7) / 4)
    assert m["rollout/end_reason/rounds"] == 0.5 and m["rollout/end_reason/player_destroyed"] == 0.25
    assert m["rollout/end_reason/truncated"] == 0.0
    assert m["rollout/ep_len_mean"] == pytest.approx(23) and m["rollout/ep_rew_mean"] == pytest.approx(0.375)


# -- one autocast, checkpoint checks ----------------------------------------------------------------------
def test_bf16_autocast_is_on_for_a_device_and_changes_nothing_for_none() -> None:
    net, x = torch.nn.Linear(4, 2), torch.randn(3, 4)
    with bf16_autocast("cpu"):
        assert net(x).dtype == torch.bfloat16
    with bf16_autocast(None):
        out = net(x)
    assert out.dtype == torch.float32 and torch.equal(out, net(x))


def build_linear(obs_size: int, num_actions: int, net_arch: list[int]) -> torch.nn.Module:
    return torch.nn.Sequential(*(torch.nn.Linear(a, b) for a, b in zip([obs_size, *net_arch], [*net_arch, num_actions],
                                                                          strict=True)))


def good_state() -> dict[str, Any]:
    return {"format": "test/1", "env": "beastybar", "net_arch": [8], "obs_size": 5, "num_actions": 3, "steps": 7,
            "net": build_linear(5, 3, [8]).state_dict()}


@pytest.mark.parametrize(("damage", "message"), [
    (lambda s: s.pop("net"), r"is not a test/1 checkpoint: missing net"),
    (lambda s: s.update(steps=True), r"wrong type for: steps"),  # a bool is no int
    (lambda s: s.update(obs_size="5"), r"wrong type for: obs_size"),
    (lambda s: s.update(format="other/1"), r"format 'other/1' is not 'test/1'"),
    (lambda s: s.update(net_arch=[4]), r"net.0.weight has shape \(8, 5\); the network needs \(4, 5\)"),
    (lambda s: s["net"].pop("1.bias"), r"keys differ"),
    (lambda s: s.update(net_arch=[-1]), r"does not build"),
])
def test_check_checkpoint_refuses_each_damage_in_one_line(damage: Any, message: str) -> None:
    keys = {**NETWORK_KEYS, "steps": int, "net": dict}
    check_checkpoint(good_state(), keys, "test/1", build_linear, ["net"], None, "ppo.net_arch")
    state = good_state()
    damage(state)
    with pytest.raises(UsageError, match=message) as info:
        check_checkpoint(state, keys, "test/1", build_linear, ["net"], None, "ppo.net_arch")
    assert "\n" not in str(info.value)


def test_check_checkpoint_with_a_config_refuses_other_layers() -> None:
    keys = {**NETWORK_KEYS, "net": dict}
    cfg = resolve("balance", environ={}, assignments=["ppo.net_arch=[8]"])
    check_checkpoint(good_state(), keys, "test/1", build_linear, ["net"], cfg, "ppo.net_arch")
    other = resolve("balance", environ={}, assignments=["ppo.net_arch=[16]"])
    with pytest.raises(UsageError, match=r"checkpoint net_arch = \[8\] does not fit this run \(net_arch = \[16\]\)"):
        check_checkpoint(good_state(), keys, "test/1", build_linear, ["net"], other, "ppo.net_arch")


@pytest.mark.slow
def test_the_checkpoint_module_imports_no_torch() -> None:
    # `trainctl status` lists checkpoints through it, and must not pay torch's import.
    code = "import sys, engine.checkpoint; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=PROJECT, timeout=60, check=False).returncode == 0
