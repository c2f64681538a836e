"""Choose which of a run's metrics the metric panels plot (any key seen in its events)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, SelectionList, Static


class MetricPickerScreen(ModalScreen[list[str] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "apply", "Show chosen", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, keys: Sequence[str], shown: Sequence[str]) -> None:
        super().__init__()
        self.keys = list(keys)
        self.shown = set(shown)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Static("Metrics to plot: space toggles, enter shows them", classes="question")
            yield SelectionList[str](*((k, k, k in self.shown) for k in self.keys), id="metric-choices")
        yield Footer()

    def action_apply(self) -> None:
        selection = self.query_one(SelectionList).selected
        self.dismiss([k for k in self.keys if k in selection])

    def action_cancel(self) -> None:
        self.dismiss(None)
