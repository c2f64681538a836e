"""Messages between the TUI's watcher thread, its widgets and its screens.

Small dataclass messages only; the data they carry is immutable (tui.model snapshots), so a message
can cross from the watcher thread to the event loop and be read by any screen without copying.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from tui.model import PollResult


@dataclass
class RunsPolled(Message):
    """The watcher read the runs folder again. Each result holds the full state of every run, so when
    polls arrive faster than the screen draws, only the newest one is kept (`can_replace`)."""

    result: PollResult

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsPolled)


@dataclass
class FolderRead(Message):
    """A screen's worker read its folder again (tui.screens.polled): `result` is what it read, None when
    nothing changed. One at a time: the next read starts once this one is shown."""

    result: Any
