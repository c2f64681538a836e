"""The selected run's resolved configuration, each value with its source (or a wrapped command)."""

from __future__ import annotations

from textual.widgets import DataTable

from tui.model import RunSnapshot


class ConfigView(DataTable[str]):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._run_id: str | None = None

    def on_mount(self) -> None:
        self.add_columns("key", "value", "source")

    def show(self, s: RunSnapshot) -> None:
        if s.run_id == self._run_id and self.row_count:
            return
        self._run_id = s.run_id
        self.clear()
        if s.config:
            for key, (value, source) in s.config.items():
                self.add_row(key, str(value), source)
        else:
            self.add_row("command", " ".join(s.command) or "?", s.kind)
