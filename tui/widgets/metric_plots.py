"""The metric panels of the selected run: one plot per chosen metric, in a grid that scrolls."""

from __future__ import annotations

from collections.abc import Sequence

from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.model import RunSnapshot
from tui.widgets.metric_plot import MetricPlot

# Shown until the user chooses: keys matching these, in this order (reward, win rate, losses, LR,
# entropy, gradient norm).
DEFAULT_PATTERNS = ("rew", "win", "loss", "learning_rate", "lr", "entropy", "grad_norm")
DEFAULT_COUNT = 6


def default_metrics(keys: Sequence[str]) -> list[str]:
    chosen: list[str] = []
    for pattern in DEFAULT_PATTERNS:
        chosen += [k for k in keys if pattern in k.lower() and k not in chosen]
    return chosen[:DEFAULT_COUNT]


class MetricPlots(VerticalScroll, can_focus=False):
    """`show(snapshot, chosen)`: plots for `chosen` keys (None: the defaults among the run's keys)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._keys: list[str] = []
        self._plots: list[MetricPlot] = []

    @property
    def keys(self) -> tuple[str, ...]:
        """The metrics plotted now."""
        return tuple(self._keys)

    def show(self, s: RunSnapshot, chosen: Sequence[str] | None) -> None:
        keys = list(chosen) if chosen is not None else default_metrics(s.metric_keys())
        if keys != self._keys:
            self._keys = keys
            self._plots = [MetricPlot(k) for k in keys]
            self.remove_children()
            if keys:
                self.mount_all(self._plots)
            else:
                self.mount(Static("no metric events yet (press m to choose metrics)", classes="empty"))
        for plot in self._plots:
            plot.show(s.metric_history.get(plot.key, ()), s.metrics_latest.get(plot.key))
