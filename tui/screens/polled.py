"""A screen that shows what it reads from a folder, kept live without blocking the event loop.

`read()` runs in a thread worker; what it returns reaches `show(result)` on the event loop as a
`FolderRead` message; the next read is armed (a timer of the app's poll interval) only once that one is
shown, so reads never overlap and a slow disk slows the screen's updates, never its keys. Popping the
screen stops its timer and cancels its worker. The group screens and the run screen build on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import get_current_worker

from tui.messages import FolderRead

if TYPE_CHECKING:
    from tui.app import TrainctlApp

DEFAULT_POLL_S = 0.5


class PolledScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back", key_display="esc")]

    @property
    def trainctl(self) -> TrainctlApp:
        return self.app  # type: ignore[return-value]

    def read(self) -> Any:
        """What to show; runs in a worker thread (no widgets here). None: nothing new."""
        raise NotImplementedError

    def show(self, result: Any) -> None:
        """Show what `read` returned (never None)."""
        raise NotImplementedError

    def on_mount(self) -> None:
        self._read_folder()

    @work(thread=True, exclusive=True, group="folder-read")
    def _read_folder(self) -> None:
        result = self.read()
        if not get_current_worker().is_cancelled:
            self.post_message(FolderRead(result))

    def on_folder_read(self, message: FolderRead) -> None:
        if message.result is not None:
            self.show(message.result)
        self.set_timer(getattr(self.app, "poll_s", DEFAULT_POLL_S), self._read_folder)

    def action_back(self) -> None:
        self.app.pop_screen()
