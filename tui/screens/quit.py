"""Asked on quit while runs this app launched are still going: leave them running (the default), stop
them, or stay."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static


class QuitScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "choose('leave')", "Leave running"),
        Binding("s", "choose('stop')", "Stop them"),
        Binding("escape", "choose(None)", "Stay"),
    ]

    def __init__(self, active: int) -> None:
        super().__init__()
        self.active = active

    def compose(self) -> ComposeResult:
        runs = f"{self.active} run{'s' if self.active != 1 else ''} launched here {'is' if self.active == 1 else 'are'}"
        with Vertical(classes="dialog"):
            yield Static(f"{runs} still running.\nThey keep running after trainctl closes; "
                         "`trainctl watch` shows them again.", classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Leave running (l)", id="leave", variant="primary")
                yield Button("Stop them (s)", id="stop", variant="error")
                yield Button("Stay (esc)", id="stay")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#leave", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "stay" else event.button.id)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
