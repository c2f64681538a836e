"""The main screen: the runs list on top, the selected run's monitor below, every action on a key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, TabbedContent

from tui.model import PollResult, RunSnapshot, default_metrics
from tui.screens.compare import CompareScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.groups import GroupsScreen
from tui.screens.launcher import LauncherScreen
from tui.screens.metric_picker import MetricPickerScreen
from tui.widgets.config_view import ConfigView
from tui.widgets.run_monitor import PANEL_BINDINGS, RunMonitor
from tui.widgets.runs_table import RunsTable

if TYPE_CHECKING:
    from tui.app import TrainctlApp


class RunsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "launch", "New run"),
        Binding("s", "stop", "Stop"),
        Binding("k", "kill", "Kill"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("m", "metrics", "Metrics"),
        Binding("g", "groups", "Groups"),
        Binding("a", "all_keys", "All keys"),
        Binding("p", "play", "Play"),
        # Shown on the groups screen's footer (g), with the other multi-run results; no room here at 80 columns.
        Binding("A", "arena", "Arena", show=False),
        # The tab bar shows each panel's number key: the footer has no room to say it again at 80 columns.
        *(replace(binding, show=False) for binding in PANEL_BINDINGS),
    ]

    selected: reactive[str | None] = reactive(None)

    def __init__(self, focus_run: str | None = None) -> None:
        super().__init__()
        self.focus_run = focus_run
        self._config_open = False

    @property
    def trainctl(self) -> TrainctlApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunsTable(self.trainctl.clock, id="runs")
        yield RunMonitor(id="monitor")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.watch(self.app, "runs_poll", self._show_poll)
        self.watch(self.app, "chosen_metrics", lambda _: self._show_monitor())
        self.query_one(RunsTable).focus()

    # -- showing ----------------------------------------------------------------------------------
    def _show_poll(self, poll: PollResult | None) -> None:
        if poll is None:
            return
        table = self.query_one(RunsTable)
        table.show(poll.runs, self.trainctl.marked)
        if self.focus_run is not None and any(s.run_id == self.focus_run for s in poll.runs):
            table.select_run(self.focus_run)
            self.focus_run = None
        elif self.selected is None and poll.runs:
            table.select_run(poll.runs[-1].run_id)
        self.selected = table.selected_run
        self.sub_title = f"{self.trainctl.runs_dir} · {len(poll.runs)} run{'s' if len(poll.runs) != 1 else ''}"
        self._show_monitor()

    def _show_monitor(self) -> None:
        poll = self.trainctl.runs_poll
        if poll is not None:
            self.query_one(RunMonitor).show(self.current, poll, self.trainctl.chosen_metrics)

    @property
    def current(self) -> RunSnapshot | None:
        poll = self.trainctl.runs_poll
        if poll is None or self.selected is None:
            return None
        return next((s for s in poll.runs if s.run_id == self.selected), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "runs":
            self.selected = event.row_key.value

    def watch_selected(self, run_id: str | None) -> None:
        self.trainctl.hold_gc_for_frame(self)
        self.trainctl.select(run_id)
        self._show_monitor()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # `a` is offered on the config panel only. A refresh of the bindings rebuilds the footer (a layout
        # pass of the whole screen, about a tenth of a panel switch's CPU): only when `a` comes or goes.
        config_open = event.pane.id == "config"
        if config_open != self._config_open:
            self._config_open = config_open
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "all_keys":
            return self.query_one(TabbedContent).active == "config"
        return True

    # -- actions ----------------------------------------------------------------------------------
    def action_panel(self, tab: str) -> None:
        self.query_one(RunMonitor).open_panel(tab)

    def action_all_keys(self) -> None:
        self.query_one(ConfigView).action_toggle_all()

    def action_launch(self) -> None:
        self.app.push_screen(LauncherScreen())

    def action_play(self) -> None:
        """Play against the selected Beasty Bar run (tui.screens.play), or watch a game of the selected
        soccer run (tui.screens.replay)."""
        from engine.errors import UsageError
        from tui.screens.replay import replay_screen

        run = self.current
        if run is None:
            return
        if run.env == "beastybar":
            self._load_agent(run.path)
            return
        if run.env != "soccer":
            self.notify(f"run {run.run_id} plays {run.env!r}: p plays against a Beasty Bar run or replays a "
                        "soccer run", severity="warning")
            return
        try:
            self.app.push_screen(replay_screen(run.path))
        except UsageError as exc:
            self.notify(str(exc), severity="warning")

    @work(thread=True, exclusive=True, group="play")
    def _load_agent(self, run_path: Path) -> None:
        """The run's checkpoint, loaded as `trainctl play` loads it (torch: off the event loop)."""
        from engine.errors import UsageError
        from engine.players import parse_player
        from tui.screens.play import PlayScreen

        try:
            agent = parse_player(f"run:{run_path}", run_path.parent)
        except UsageError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning")
            return
        self.app.call_from_thread(self.app.push_screen, PlayScreen(agent))

    def action_arena(self) -> None:
        """The round robins `trainctl arena` saved under this runs folder (tui.screens.arena)."""
        from tui.screens.arena import ArenaScreen

        self.app.push_screen(ArenaScreen(runs_dir=self.trainctl.runs_dir))

    def action_mark(self) -> None:
        if self.selected is None:
            return
        self.trainctl.marked = self.trainctl.marked ^ {self.selected}
        poll = self.trainctl.runs_poll
        if poll is not None:
            self.query_one(RunsTable).show(poll.runs, self.trainctl.marked)

    def action_compare(self) -> None:
        poll = self.trainctl.runs_poll
        known = {s.run_id for s in poll.runs} if poll else set()
        marked = [r for r in (s.run_id for s in poll.runs) if r in self.trainctl.marked] if poll else []
        if len(marked) < 2 or not set(marked) <= known:
            self.notify("mark two or more runs with space, then press c", severity="warning")
            return
        self.app.push_screen(CompareScreen(marked))

    def action_groups(self) -> None:
        """The sweeps and benches of this runs folder (tui.screens.groups)."""
        self.app.push_screen(GroupsScreen(self.trainctl.runs_dir))

    def action_metrics(self) -> None:
        run = self.current
        if run is None or not run.metric_keys():
            self.notify("this run has no metric events yet", severity="warning")
            return
        chosen = self.trainctl.chosen_metrics
        shown = list(chosen) if chosen is not None else default_metrics(run.metric_keys())

        def apply(keys: list[str] | None) -> None:
            if keys is not None:
                self.trainctl.chosen_metrics = tuple(keys)
                self.action_panel("metrics")

        self.app.push_screen(MetricPickerScreen(run.metric_keys(), shown), apply)

    def action_stop(self) -> None:
        self._signal(kill=False)

    def action_kill(self) -> None:
        self._signal(kill=True)

    def _signal(self, kill: bool) -> None:
        run = self.current
        if run is None:
            return
        if not run.active:
            self.notify(f"{run.run_id} is {run.state}: nothing to {'kill' if kill else 'stop'}", severity="warning")
            return
        question = (f"Kill {run.run_id}?\nSIGKILL to its process group: no final checkpoint." if kill else
                    f"Stop {run.run_id}?\nSIGINT to its process group: it saves a checkpoint and exits.")

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.trainctl.signal_run(run.path, kill)

        self.app.push_screen(ConfirmScreen(question, "Kill" if kill else "Stop"), confirmed)
