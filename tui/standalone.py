"""A Textual app around one screen, for the commands that open a screen of the TUI on their own
(`trainctl arena --show`, `trainctl play`): same stylesheet as the main app, and leaving the screen
(escape, q) ends the app. The commands reach Textual only through the functions here (an import-linter
contract: the entry point loads Textual only through the apps it opens)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

if TYPE_CHECKING:
    from engine.players import Player


class ScreenApp(App[None]):
    CSS_PATH = "trainctl.tcss"  # the main app's (tui.app sits in this folder too)
    TITLE = "trainctl"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit", "Quit", show=False)]

    def __init__(self, make_screen: Callable[[], Screen[None]]) -> None:
        super().__init__()
        self.make_screen = make_screen

    def on_mount(self) -> None:
        self.push_screen(self.make_screen(), lambda _result: self.exit())


def run_screen(make_screen: Callable[[], Screen[None]]) -> int:
    """Show the screen `make_screen` builds until it is dismissed; exit code 0."""
    ScreenApp(make_screen).run()
    return 0


def show_arena(*, runs_dir: Path | None = None, folder: Path | None = None) -> int:
    """The arena screen (tui.screens.arena) on one saved arena, or on those saved under `runs_dir`."""
    from tui.screens.arena import ArenaScreen

    return run_screen(lambda: ArenaScreen(runs_dir=runs_dir, folder=folder))


def play(agent: Player, first: str, seed: int) -> int:
    """The play screen (tui.screens.play): a person against `agent`, games from deal `seed` upwards."""
    from tui.screens.play import PlayScreen

    return run_screen(lambda: PlayScreen(agent, first, seed))
