"""The last lines of the selected run's stdout.log (read by the watcher thread, shown here)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import Log


class LogTail(Log):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=1000, auto_scroll=True)
        self._shown: Sequence[str] | None = ()

    def show(self, lines: Sequence[str] | None) -> None:
        """`lines` of the log, or None while the watcher has not read this run's log yet."""
        if lines == self._shown:
            return
        self._shown = lines
        self.clear()
        self.write_lines(["reading stdout.log…"] if lines is None else lines or ["(stdout.log is empty)"])
