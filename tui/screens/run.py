"""One run of a sweep or bench, opened from its group's screen: the run monitor (its panels on 1-6) of a
run in the group's folder, which the app's own watcher (on the runs folder above it) does not follow.

Its own `tui.model.RunsWatcher` on the group folder, polled by the screen's worker (tui.screens.polled),
reads the run as the runs screen would: the same snapshots, log tail and process sample."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Footer, Header, TabbedContent

from tui.model import PollResult, RunsWatcher
from tui.screens.polled import PolledScreen
from tui.system import SystemProbe
from tui.widgets.run_monitor import PANEL_BINDINGS, RunMonitor


class RunScreen(PolledScreen):
    BINDINGS: ClassVar[list[BindingType]] = [*PolledScreen.BINDINGS, *PANEL_BINDINGS]

    def __init__(self, run_path: Path, title: str) -> None:
        super().__init__()
        self.run_path = run_path
        self.title_line = title
        self.watcher: RunsWatcher | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunMonitor(id="monitor")
        yield Footer(compact=True)

    def read(self) -> PollResult:
        if self.watcher is None:  # made in the worker: its probe may take a moment to start
            probe = self.trainctl.probe if self.trainctl.probe is not None else SystemProbe()
            self.watcher = RunsWatcher(self.run_path.parent, probe)
            self.watcher.selected = self.run_path.name
        return self.watcher.poll()

    def show(self, result: PollResult) -> None:
        self.sub_title = self.title_line
        run = next((s for s in result.runs if s.run_id == self.run_path.name), None)
        self.query_one(RunMonitor).show(run, result, self.trainctl.chosen_metrics)

    def action_panel(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
