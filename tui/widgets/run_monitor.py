"""The run monitor: the selected run's title, what is wrong with its folder (if anything), and its
panels in tabs — overview (throughput and [PERF]), metrics, system, log, config, eval. A lost or unreadable
run's state is styled in the title as in the runs list, and its notes say what is known (for a lost
run: last step, newest checkpoint, and the `trainctl run --resume` line that continues it)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static, TabbedContent, TabPane

from tui.model import PollResult, RunSnapshot
from tui.widgets.config_view import ConfigView
from tui.widgets.eval_panel import EvalPanel
from tui.widgets.log_tail import LogTail
from tui.widgets.metric_plots import MetricPlots
from tui.widgets.perf_breakdown import PerfBreakdown
from tui.widgets.runs_table import ATTENTION_STATES, STATE_STYLE
from tui.widgets.system_panel import SystemPanel
from tui.widgets.throughput import ThroughputPanel

TABS = (("overview", "1 Overview"), ("metrics", "2 Metrics"), ("system", "3 System"), ("log", "4 Log"),
        ("config", "5 Config"), ("eval", "6 Eval"))
# The keys 1-6 of every screen that holds a monitor: each calls that screen's `action_panel(tab)`.
PANEL_BINDINGS = tuple(Binding(str(i + 1), f"panel('{tab}')", "Panel", show=i == 0, key_display=f"1-{len(TABS)}")
                       for i, (tab, _) in enumerate(TABS))


class RunMonitor(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("no run selected", id="run-title")
        yield Static(id="run-notes")
        with TabbedContent(id="panels"):
            with TabPane(TABS[0][1], id="overview"), Horizontal():
                yield ThroughputPanel(id="throughput")
                yield PerfBreakdown(id="perf")
            with TabPane(TABS[1][1], id="metrics"):
                yield MetricPlots(id="metric-plots")
            with TabPane(TABS[2][1], id="system"):
                yield SystemPanel(id="system-panel")
            with TabPane(TABS[3][1], id="log"):
                yield LogTail(id="log-tail")
            with TabPane(TABS[4][1], id="config"):
                yield ConfigView(id="config-view")
            with TabPane(TABS[5][1], id="eval"):
                yield EvalPanel(id="eval-panel")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[object, ...] = ()
        self._problems: str | None = None
        self._last: tuple[RunSnapshot | None, PollResult, Sequence[str] | None] | None = None

    def show(self, s: RunSnapshot | None, poll: PollResult, chosen_metrics: Sequence[str] | None) -> None:
        """Bring the title, the notes and the visible panel up to date; hidden panels are filled when
        their tab is opened, and nothing is redrawn when nothing it shows changed."""
        panels = self.query_one("#panels", TabbedContent)
        shown = (s, poll.log_tail, poll.system, poll.note, chosen_metrics, panels.active)
        if len(shown) == len(self._shown) and all(a is b for a, b in zip(shown, self._shown, strict=True)):
            return
        self._shown, self._last = shown, (s, poll, chosen_metrics)
        title = self.query_one("#run-title", Static)
        notes = self.query_one("#run-notes", Static)
        panels.display = s is not None
        if s is None:
            title.update("no runs here yet")
            self._problems = None
            notes.update(f"{poll.note + chr(10) if poll.note else ''}press n to launch one, or start one elsewhere "
                         "with `trainctl run`: it shows up here")
            notes.display = True
            return
        total = f" / {s.total_steps:,}" if s.total_steps else ""
        exit_code = f" · exit {s.exit_code}" if s.exit_code is not None else ""
        state = "deleted" if s.gone else s.state
        if state in ATTENTION_STATES:
            state = f"[{STATE_STYLE[state]}]{state}[/]"
        title.update(f"[b]{s.run_id}[/b] · {state} · step {s.step:,}{total}{exit_code}", layout=False)
        problems = " · ".join([*s.notes, *s.recent_logs[-2:]])
        if problems != self._problems:  # a change of the notes may change the layout: only then
            self._problems = problems
            notes.update(f"⚠ {problems}" if problems else "")
            notes.display = bool(problems)
        tab = panels.active
        if tab == "overview":
            self.query_one(ThroughputPanel).show(s)
            self.query_one(PerfBreakdown).show(s)
        elif tab == "metrics":
            self.query_one(MetricPlots).show(s, chosen_metrics)
        elif tab == "system":
            self.query_one(SystemPanel).show(s, poll.system if poll.selected == s.run_id else None)
        elif tab == "log":
            self.query_one(LogTail).show(poll.log_tail if poll.selected == s.run_id else None)
        elif tab == "config":
            self.query_one(ConfigView).show(s)
        elif tab == "eval":
            self.query_one(EvalPanel).show(s)

    @property
    def shown_run(self) -> RunSnapshot | None:
        """The run the monitor shows now."""
        return self._last[0] if self._last else None

    def on_tabbed_content_tab_activated(self, _event: TabbedContent.TabActivated) -> None:
        if self._last is not None:
            self.show(*self._last)
