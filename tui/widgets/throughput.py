"""Throughput of the selected run: steps/s and episodes/s over env steps, each with its last value and
median marked (plots drawn from zero: a dip shows as the share of the rate it is)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical

from tui.model import RunSnapshot
from tui.widgets.step_plot import StepPlot


class ThroughputPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield StepPlot("steps/s", value_format=",.0f", zero_based=True, id="sps-plot")
        yield StepPlot("episodes/s", value_format=",.1f", zero_based=True, id="eps-plot")

    def show(self, s: RunSnapshot) -> None:
        self.query_one("#sps-plot", StepPlot).show(s.sps_history, s.sps, source=s.run_id)
        self.query_one("#eps-plot", StepPlot).show(s.eps_history, s.eps, source=s.run_id)
