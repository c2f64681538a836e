"""The TUI's replay screen at 80 x 24, driven by keys with Pilot: the whole frame on screen, pause that
holds the frame, again from the kick-off, the next seed, back; and the runs screen's `p`, which opens
it for soccer runs only (other runs get the reason, no screen)."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from tui_fixtures import T0, fabricate_run, screen_text, settle, wait_until

from engine.soccer_replay import ReplayGame, render, scripted_driver
from tui.app import TrainctlApp
from tui.screens.replay import ReplayScreen

NAMES = ("chaser", "goalie")


def frame_text(seed: int, step: int) -> str:
    for frame in ReplayGame(scripted_driver("chaser"), "goalie", seed).frames():
        if frame.step == step:
            return render(frame, NAMES)
    raise AssertionError(step)


def shown_pitch(app: App[None]) -> str:
    """The screen's text without the footer line, each line's trailing blanks dropped."""
    return "\n".join(line.rstrip() for line in screen_text(app).splitlines()[:-1]).rstrip("\n")


async def test_the_replay_screen_shows_whole_frames_pauses_restarts_and_goes_back() -> None:
    app: App[None] = App()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = ReplayScreen(scripted_driver("chaser"), NAMES, "goalie", seed=3)
        await app.push_screen(screen)
        await pilot.press("space")  # pause
        await pilot.pause(0.2)  # a tick queued before the pause is drawn by now
        assert screen.frame is not None
        held = screen.frame.step
        await pilot.pause(0.35)
        assert screen.frame.step == held and shown_pitch(app) == frame_text(3, held)
        await pilot.press("space")  # play on: the clock moves
        await wait_until(app, pilot, lambda _t: screen.frame is not None and screen.frame.step > held + 2, "play")
        await pilot.press("plus")
        assert screen.speed == 2.0
        await pilot.press("space", "r")  # paused, again from the kick-off
        await pilot.pause()
        assert screen.frame.step == 0 and shown_pitch(app) == frame_text(3, 0)
        await pilot.press("n")
        await pilot.pause()
        assert screen.seed == 4 and shown_pitch(app) == frame_text(4, 0)
        lines = screen_text(app).splitlines()
        assert len(lines) == 24 and "arrow: heading" in lines[22] and "Back" in lines[23]
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen


async def test_p_on_a_run_of_another_game_says_why_and_opens_nothing(tmp_path: Path) -> None:
    fabricate_run(tmp_path, "20260101T010000_ppo_duel_balance", env="duel")
    app = TrainctlApp(tmp_path, clock=lambda: T0 + 86400, poll_s=0.1)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(app, pilot)
        screen = app.screen
        await pilot.press("p")
        await pilot.pause()
        assert app.screen is screen
        assert [n.message for n in app._notifications] == [
            "run 20260101T010000_ppo_duel_balance plays 'duel': p plays against a Beasty Bar run or "
            "replays a soccer run"]


async def test_p_on_a_soccer_run_without_a_checkpoint_says_so(tmp_path: Path) -> None:
    fabricate_run(tmp_path, "20260101T010000_ppo_soccer_balance", env="soccer")
    app = TrainctlApp(tmp_path, clock=lambda: T0 + 86400, poll_s=0.1)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await pilot.pause()
        [note] = [n.message for n in app._notifications]
        assert "has no checkpoint yet" in note and not isinstance(app.screen, ReplayScreen)
