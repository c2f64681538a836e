"""The metric panels of the selected run: one plot per chosen metric, in a grid that scrolls."""

from __future__ import annotations

from collections.abc import Sequence

from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.model import RunSnapshot
from tui.widgets.metric_plot import MetricPlot

# Shown until the user chooses: for each group (reward, win rate, loss, LR, entropy, gradient norm) the
# first key matching its patterns, tried in order.
DEFAULT_GROUPS = (("ep_rew_mean", "reward", "rew"), ("win_rate", "win"),
                  ("train/loss", "policy_loss", "value_loss", "loss"), ("learning_rate", "/lr", "lr"),
                  ("entropy",), ("grad_norm",))


def default_metrics(keys: Sequence[str]) -> list[str]:
    chosen: list[str] = []
    for patterns in DEFAULT_GROUPS:
        match = next((k for p in patterns for k in keys if p in k.lower() and k not in chosen), None)
        if match is not None:
            chosen.append(match)
    return chosen


class MetricPlots(VerticalScroll, can_focus=False):
    """`show(snapshot, chosen)`: plots for `chosen` keys (None: the defaults among the run's keys)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._keys: list[str] | None = None
        self._plots: list[MetricPlot] = []

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
