"""What the screens of one group folder share (tui.screens.bench, tui.screens.sweep): the folder, read
again only when something in it changed (tui.groups.GroupReader), the view last read, and Enter to open
the run under the cursor (each screen says which run that is)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.binding import Binding, BindingType

from tui.groups import GroupReader, GroupView
from tui.screens.polled import PolledScreen


class GroupScreen(PolledScreen):
    BINDINGS: ClassVar[list[BindingType]] = [*PolledScreen.BINDINGS,
                                             Binding("enter", "open_run", "Open run", priority=True)]

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.reader = GroupReader(folder)
        self.view: GroupView | None = None

    def read(self) -> GroupView | None:
        return self.reader.read()

    def action_open_run(self) -> None:
        raise NotImplementedError
