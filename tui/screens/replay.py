"""Watch a soccer game in the TUI: engine.soccer_replay's frames, a frame a step at real speed or faster.

`ReplayScreen(driver, names, opponent, seed)` draws the frames of one game (23 lines, with the footer
24: it fits 80 x 24) on a timer of 0.1 s / speed; space pauses, + and - double and halve the speed,
r plays the game again from its kick-off, n plays the next seed, escape goes back. `replay_screen(run)`
builds it for a soccer run's checkpoint (its best/ one when it has one) against the chaser; the runs
screen pushes it on `p`. A run of another game or without a checkpoint is refused with the reason (a
UsageError's line), before the screen opens. This module plays no game itself beyond drawing frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static

from engine.soccer_replay import Driver, Frame, ReplayGame, render, result_line

STEP_S = 0.1  # one game step of play, in seconds
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


class ReplayScreen(Screen[None]):
    """See the module docstring."""

    DEFAULT_CSS = """
    ReplayScreen #pitch { height: 23; width: 100%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,b", "back", "Back", key_display="esc"),
        Binding("space", "pause", "Pause"),
        Binding("plus,equals_sign", "speed(1)", "Faster", key_display="+"),
        Binding("minus", "speed(-1)", "Slower", key_display="-"),
        Binding("r", "restart", "Again"),
        Binding("n", "next_game", "Next seed"),
    ]

    def __init__(self, driver: Driver, names: tuple[str, str], opponent: str, seed: int = 0) -> None:
        super().__init__()
        self.driver, self.names, self.opponent, self.seed = driver, names, opponent, seed
        self.speed_index = SPEEDS.index(1.0)
        self.frames: Iterator[Frame] = iter(())
        self.frame: Frame | None = None
        self.timer: Timer | None = None
        self.paused = False

    def compose(self) -> ComposeResult:
        yield Static(id="pitch")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.action_restart()

    @property
    def speed(self) -> float:
        return SPEEDS[self.speed_index]

    def _start_timer(self) -> None:
        if self.timer is not None:
            self.timer.stop()
        self.timer = self.set_interval(STEP_S / self.speed, self.advance, pause=self.paused)

    def advance(self) -> None:
        """Draw the next frame; at the final whistle stop and say the result."""
        frame = next(self.frames, None)
        if frame is None:
            if self.timer is not None:
                self.timer.pause()
            if self.frame is not None:
                self.notify(result_line(self.frame, self.names))
            return
        self.frame = frame
        self.query_one("#pitch", Static).update(render(frame, self.names))

    def action_restart(self) -> None:
        self.frames = ReplayGame(self.driver, self.opponent, self.seed).frames()
        self.advance()
        self._start_timer()

    def action_next_game(self) -> None:
        self.seed += 1
        self.action_restart()

    def action_pause(self) -> None:
        self.paused = not self.paused
        if self.timer is not None:
            if self.paused:
                self.timer.pause()
            else:
                self.timer.resume()

    def action_speed(self, change: int) -> None:
        self.speed_index = min(max(self.speed_index + change, 0), len(SPEEDS) - 1)
        self._start_timer()
        self.notify(f"speed {self.speed:g}x", timeout=1.5)

    def action_back(self) -> None:
        if self.timer is not None:
            self.timer.stop()
        self.app.pop_screen()


def replay_screen(run_path: Path, opponent: str = "chaser") -> ReplayScreen:
    """The replay of a soccer run's checkpoint (engine.soccer_eval); UsageError for any other run."""
    from engine.soccer_eval import parse_soccer_subject
    from engine.soccer_replay import policy_driver

    subject = parse_soccer_subject(str(run_path), run_path.parent)
    names = (f"step {subject.step:,}", opponent)
    return ReplayScreen(policy_driver(subject.policy, subject.statistics), names, opponent)
