"""Pilot tests of the TUI on fabricated run folders: keys pressed as a person would, assertions on
what the screen shows. The real-trainer and wrapped-command cases are in test_tui_live.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tui_fixtures import (
    T0,
    fabricate_run,
    screen_text,
    settle,
    standard_runs,
    wait_for_text,
    write_big_events,
)

from tui.app import TrainctlApp
from tui.model import FULL_READ_BYTES

CLOCK = lambda: T0 + 86400  # noqa: E731 - a fixed "now" one day after the fabricated runs


def make_app(runs_dir: Path, **kwargs: object) -> TrainctlApp:
    return TrainctlApp(runs_dir, clock=CLOCK, poll_s=0.1, **kwargs)  # type: ignore[arg-type]


async def test_attach_shows_finished_failed_and_corrupt_runs(tmp_path: Path) -> None:
    standard_runs(tmp_path)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(app, pilot)
        shown = screen_text(app)
        assert "finished" in shown and "failed" in shown and "running" in shown
        # The newest run is selected: its corrupt line is counted, its torn last line reported.
        assert "20260101T020000_corrupt" in shown
        assert "1 malformed line skipped" in shown
        assert "incomplete line" in shown
        await pilot.press("up")
        shown = await wait_for_text(app, pilot, "20260101T010000_ppo_beastybar_speed · failed")
        assert "exit 1" in shown
        assert "▲ train_bwd" in shown  # the phase that grew most in that run is marked
        assert "steps/s" in shown and "[PERF]" in shown


async def test_torn_last_line_is_read_once_completed(tmp_path: Path) -> None:
    run = fabricate_run(tmp_path, "20260101T000000_ppo_beastybar_balance", state="running", windows=3)
    with open(run.events_path, "a", encoding="utf-8") as f:
        f.write('{"t": 1, "step": 999999, "kind": "perf", "sps": 4242.0, "eps"')
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_for_text(app, pilot, "incomplete line")
        with open(run.events_path, "a", encoding="utf-8") as f:
            f.write(': 1.0, "ms": {"env_step": 0.5}}\n')
        shown = await wait_for_text(app, pilot, "steps/s 4,242")
        assert "incomplete line" not in shown and "malformed" not in shown


async def test_new_runs_appear_and_deleted_runs_are_reported(tmp_path: Path) -> None:
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_for_text(app, pilot, "does not exist yet")
        run = fabricate_run(tmp_path / "runs", "20260101T000000_ppo_beastybar_balance")
        await wait_for_text(app, pilot, "01-01 00:00:00")
        shutil.rmtree(run.path)
        shown = await wait_for_text(app, pilot, "was deleted")
        assert "deleted" in shown and "steps/s 5,0" in shown  # what was read before stays on screen
        await pilot.press("5")  # still answering keys
        await wait_for_text(app, pilot, "ppo.batch_size")


async def test_half_written_run_folder_is_shown_with_what_is_missing(tmp_path: Path) -> None:
    run = fabricate_run(tmp_path, "20260101T000000_ppo_beastybar_balance", state="running")
    run.status_path.unlink()
    run.config_path.write_text('{"kind": "trainer", "algo": "ppo"', encoding="utf-8")
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        shown = await wait_for_text(app, pilot, "half-written run")
        assert "run.json is not valid JSON" in shown or "status.json is missing" in shown


async def test_panels_switch_with_number_keys(tmp_path: Path) -> None:
    standard_runs(tmp_path)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(app, pilot)
        await pilot.press("up", "up")
        await pilot.press("2")
        await wait_for_text(app, pilot, "rollout/ep_rew_mean")
        await pilot.press("3")
        await wait_for_text(app, pilot, "run is finished: no process to measure")
        await pilot.press("4")
        await wait_for_text(app, pilot, "run finished")  # the last line of its stdout.log
        await pilot.press("5")
        shown = await wait_for_text(app, pilot, "ppo.batch_size")
        assert "profile:balance" in shown and "default" in shown  # each value with its source


async def test_choose_metrics(tmp_path: Path) -> None:
    standard_runs(tmp_path)
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(app, pilot)
        await pilot.press("m")
        await wait_for_text(app, pilot, "Metrics to plot")
        # The defaults are ticked; untick everything but the reward by toggling the others off.
        from textual.widgets import SelectionList

        choices = app.screen.query_one(SelectionList)
        for index in range(choices.option_count):
            choices.highlighted = index
            key = choices.get_option_at_index(index).prompt
            if str(key) != "rollout/ep_rew_mean" and choices.get_option_at_index(index).value in choices.selected:
                await pilot.press("space")
        await pilot.press("enter")
        shown = await wait_for_text(app, pilot, "rollout/ep_rew_mean 0.36")
        assert "eval/win_rate" not in shown
        assert app.chosen_metrics == ("rollout/ep_rew_mean",)


async def test_compare_two_runs(tmp_path: Path) -> None:
    standard_runs(tmp_path)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(app, pilot)
        await pilot.press("c")  # nothing marked yet: told how
        await wait_for_text(app, pilot, "mark two or more runs")
        await pilot.press("up", "space", "up", "space", "c")
        shown = await wait_for_text(app, pilot, "config differences")
        assert "env.num_envs" in shown and "256" in shown  # speed differs from balance
        assert "steps/s median" in shown
        await pilot.press("escape")
        await wait_for_text(app, pilot, "New run")


async def test_invalid_override_shows_the_cli_error_inline_and_starts_nothing(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    app = make_app(runs_dir)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(app, pilot, polls=1)
        await pilot.press("n")
        await wait_for_text(app, pilot, "Launch a run")
        await pilot.click("#overrides")
        await pilot.press(*"ppo.gamma=2")
        shown = await wait_for_text(app, pilot, "out of range")
        assert "✗ --set: ppo.gamma = 2 is out of range; expected in [0, 1]" in shown
        await pilot.press("ctrl+s")
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert "Launch a run" in screen_text(app)
        assert not runs_dir.exists() or not any(runs_dir.iterdir())
        await pilot.press("escape")
        await wait_for_text(app, pilot, "New run")


async def test_stop_of_a_finished_run_is_refused_and_quit_needs_no_answer(tmp_path: Path) -> None:
    standard_runs(tmp_path)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(app, pilot)
        await pilot.press("up", "up", "s")
        await wait_for_text(app, pilot, "nothing to stop")
        await pilot.press("q")
        await pilot.pause(0.1)
    assert app.return_code == 0


# 100,000 events (~11 MB) already take the sampled read (above tui.model.FULL_READ_BYTES); the million is the
# size a long run reaches, left to `make test` (writing it costs the edit loop ~3 s of CPU).
@pytest.mark.parametrize("events", [100_000, pytest.param(1_000_000, marks=pytest.mark.heavy)])
async def test_a_long_run_opens_with_its_whole_history(tmp_path: Path, events: int) -> None:
    run = fabricate_run(tmp_path, "20260101T000000_ppo_beastybar_balance", state="running", windows=2)
    assert write_big_events(run.events_path, events) > FULL_READ_BYTES
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(app, pilot, polls=1)
        shown = screen_text(app)
        assert "history sampled" in shown
        snapshot = app.runs_poll.runs[0] if app.runs_poll else None
        assert snapshot is not None
        first, last = snapshot.sps_history[0][0], snapshot.sps_history[-1][0]
        assert first <= 4096 * 2 and last >= 64 * (events - 10)  # from the start to the end of the file
        assert len(snapshot.sps_history) <= 1024
