"""A sparkline of (step, value) points whose x axis is env steps, redrawn to fit its width."""

from __future__ import annotations

from collections.abc import Sequence

from textual.events import Resize
from textual.widgets import Sparkline

from tui.model import resample


class StepPlot(Sparkline):
    """Draws a run's history of one quantity; `points` are (step, value) pairs in step order."""

    def __init__(self, points: Sequence[tuple[float, float]] = (), *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__([], id=id, classes=classes)
        self._points: Sequence[tuple[float, float]] = points

    def set_points(self, points: Sequence[tuple[float, float]]) -> None:
        if points is self._points:
            return
        self._points = points
        self._redraw()

    def on_resize(self, _event: Resize) -> None:
        self._redraw()

    def _redraw(self) -> None:
        self.data = resample(self._points, self.size.width)
