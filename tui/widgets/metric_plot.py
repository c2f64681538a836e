"""One metric of the selected run: its name, latest value and range, and a plot of its history."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from tui.format import number
from tui.widgets.step_plot import StepPlot


class MetricPlot(Vertical):
    """Its parts exist from construction, so `show()` works before the widget is mounted."""

    def __init__(self, key: str) -> None:
        super().__init__(classes="metric-plot")
        self.key = key
        self._label = Static(key, classes="plot-label")
        self._plot = StepPlot()
        self._points: Sequence[tuple[float, float]] | None = None

    def compose(self) -> ComposeResult:
        yield self._label
        yield self._plot

    def show(self, points: Sequence[tuple[float, float]], latest: float | None) -> None:
        if points is self._points:
            return
        self._points = points
        values = [v for _, v in points]
        span = f"  [dim]{min(values):.3g}…{max(values):.3g}[/dim]" if values else "  [dim]no values yet[/dim]"
        self._label.update(f"[b]{self.key}[/b] {number(latest)}{span}", layout=False)
        self._plot.set_points(points)
