"""The metric panels of the selected run: one plot per chosen metric over env steps, in a grid that
scrolls (focus it with tab to scroll with the keyboard)."""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil

from textual.containers import VerticalScroll
from textual.events import Resize
from textual.widgets import Static

from tui.model import RunSnapshot, default_metrics
from tui.widgets.step_plot import StepPlot

COLUMNS = 2  # plots side by side (as the stylesheet's grid-size says)
MIN_PLOT_ROWS = 7  # a plot's title, its box around 3 rows of points, and its x tick labels

class MetricPlots(VerticalScroll):
    """`show(snapshot, chosen)`: plots for `chosen` keys (None: the defaults among the run's keys).

    The plots share the height in rows of `COLUMNS`, each at least `MIN_PLOT_ROWS` high: more rows
    than fit scroll (tab focuses the grid, arrows and page keys scroll it)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._keys: list[str] | None = None
        self._plots: list[StepPlot] = []
        self._row_height = 0

    def show(self, s: RunSnapshot, chosen: Sequence[str] | None) -> None:
        keys = list(chosen) if chosen is not None else default_metrics(s.metric_keys())
        if keys != self._keys:
            self._keys = keys
            self._plots = [StepPlot(k, classes="metric-plot") for k in keys]
            self.remove_children()
            self._fit_rows()
            if keys:
                self.mount_all(self._plots)
            else:
                self.mount(Static("no metric events yet (press m to choose metrics)", classes="empty"))
        for plot in self._plots:
            plot.show(s.metric_history.get(plot.quantity, ()), s.metrics_latest.get(plot.quantity), source=s.run_id)

    def on_resize(self, _event: Resize) -> None:
        self._fit_rows()

    def _fit_rows(self) -> None:
        rows = max(1, ceil(len(self._plots) / COLUMNS))
        height = max(MIN_PLOT_ROWS, self.size.height // rows)
        if height != self._row_height:  # a new height is a layout pass: only when it changes
            self._row_height = height
            self.styles.grid_rows = str(height)
