"""A wrapped run in the TUI, from fabricated events: its [PERF] breakdown with the keys its trainer reports
beside the phases listed under it at 80x24, and compare between it and one of ours."""

from __future__ import annotations

from pathlib import Path

from tui_fixtures import T0, fabricate_run, screen_text, settle, wait_for_text

from engine.events import EventWriter, extra_event, metric_event, perf_event, status_event
from engine.runstore import RunDir, atomic_write_json
from tui.app import TrainctlApp
from tui.widgets.perf_breakdown import WIDTH, extra_lines

CLOCK = lambda: T0 + 86400  # noqa: E731 - a fixed "now" one day after the fabricated runs
WRAPPED_ID = "20260101T050000_cmd_python3"


def fabricate_wrapped_run(runs_dir: Path) -> RunDir:
    """A finished `trainctl run -- python3 train.py` whose trainer printed seed-004-style lines."""
    info = {"kind": "wrapped", "command": ["trainctl", "run", "--", "python3", "train.py"], "cwd": "/home/u/proj",
            "created": T0 + 3600, "algo": "cmd", "env": "python3", "wrapped": ["python3", "train.py"],
            "parse": "auto", "tb": None}
    run = RunDir.create(runs_dir, WRAPPED_ID, info)
    ms = {"env_step": 101.3, "enemy_turn": 98.1, "train_bwd": 3.3, "train_fwd": 2.1, "action": 0.412}
    with EventWriter(run.events_path) as writer:
        writer.write({**status_event("running"), "t": T0 + 3600})
        for i in range(1, 6):
            writer.write({**perf_event(256 * i, 2.5, 0.0, ms, updates=64, updates_total=64 * i), "t": T0 + 3600 + i})
            writer.write({**extra_event(256 * i, "DQN", {"qsize": "unknown", "updates/sec": 80.5,
                                                               "optimize_ms": 12.1, "dropped_batches": 0}),
                          "t": T0 + 3600 + i})
            writer.write({**metric_event(256 * i, {"eval/win_rate": 0.1 * i}), "t": T0 + 3600 + i})
        writer.write({**status_event("finished", exit_code=0), "t": T0 + 3610})
    atomic_write_json(run.status_path, {"state": "finished", "created": T0 + 3600, "started": T0 + 3600,
                                        "step": 1280, "exit_code": 0, "ended": T0 + 3610, "parse": "auto",
                                        "read": {"trainctl": 10}, "lines_not_understood": 2})
    return run


def test_extras_are_packed_into_the_panel_width_with_an_ellipsis_when_cut() -> None:
    extras = tuple((f"key{i}", "1.5") for i in range(40))
    lines = extra_lines(extras)
    assert len(lines) == 5 and all(len(line) <= WIDTH for line in lines) and lines[-1].endswith("…")
    assert extra_lines((("DQN qsize", "unknown"), ("updates", "64"))) == ["DQN qsize unknown  updates 64"]
    assert extra_lines((("a" * 80, "1"),)) == ["a" * (WIDTH - 2)]


async def test_wrapped_run_shows_its_breakdown_and_extras_at_80x24(tmp_path: Path) -> None:
    fabricate_wrapped_run(tmp_path)
    app = TrainctlApp(tmp_path, clock=CLOCK, poll_s=0.1)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        shown = await wait_for_text(app, pilot, f"{WRAPPED_ID} · finished")
        assert "env_step" in shown and "enemy_turn" in shown and "total" in shown
        assert "DQN qsize unknown" in shown and "DQN updates/sec 80.5" in shown
        assert "updates_total 320" in shown and "DQN dropped_batches 0" in shown
        assert "cmd/python3    -" in shown  # no profile


async def test_a_wrapped_run_with_throughput_and_no_phases_says_so(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, WRAPPED_ID, {"kind": "wrapped", "created": T0, "algo": "cmd", "env": "python3",
                                               "wrapped": ["python3", "sb3.py"], "parse": "sb3"})
    with EventWriter(run.events_path) as writer:
        writer.write({**perf_event(2048, 1203.0, 0.0, {}), "t": T0 + 1})
        writer.write({**metric_event(2048, {"rollout/ep_rew_mean": 22.5}), "t": T0 + 1})
    atomic_write_json(run.status_path, {"state": "finished", "created": T0, "step": 2048, "exit_code": 0})
    app = TrainctlApp(tmp_path, clock=CLOCK, poll_s=0.1)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        shown = await wait_for_text(app, pilot, "[PERF] no phases reported")
        assert "steps/s 1,203" in shown


async def test_compare_a_wrapped_run_with_one_of_ours(tmp_path: Path) -> None:
    fabricate_run(tmp_path, "20260101T000000_ppo_beastybar_balance")
    fabricate_wrapped_run(tmp_path)
    app = TrainctlApp(tmp_path, clock=CLOCK, poll_s=0.1)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(app, pilot)
        await pilot.press("space", "up", "space", "c")
        shown = await wait_for_text(app, pilot, "config differences")
        assert "cmd/python3" in shown and "ppo/beastybar" in shown
        assert "env_step" in shown and "steps/s final" in shown
        assert "ppo.batch_size" not in shown  # a wrapped run has no config of ours to differ from
        assert "eval/win_rate" in screen_text(app)
