"""Throughput of the selected run: current steps/s and episodes/s, and plots of their history."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from tui.format import number
from tui.model import RunSnapshot
from tui.widgets.step_plot import StepPlot


class ThroughputPanel(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._labels: tuple[str, str] = ("", "")

    def compose(self) -> ComposeResult:
        yield Static(id="sps-label", classes="plot-label")
        yield StepPlot(id="sps-plot")
        yield Static(id="eps-label", classes="plot-label")
        yield StepPlot(id="eps-plot")

    def show(self, s: RunSnapshot) -> None:
        median = s.sps_median
        labels = (f"[b]steps/s[/b] {number(s.sps, ',.0f')}   median {number(median, ',.0f')}",
                  f"[b]episodes/s[/b] {number(s.eps, ',.1f')}")
        if labels != self._labels:
            self._labels = labels
            self.query_one("#sps-label", Static).update(labels[0], layout=False)
            self.query_one("#eps-label", Static).update(labels[1], layout=False)
        self.query_one("#sps-plot", StepPlot).set_points(s.sps_history)
        self.query_one("#eps-plot", StepPlot).set_points(s.eps_history)
