"""Compare two or more runs side by side: config differences, final and median steps/s, each [PERF]
phase, key metrics, and for world-model runs time, epochs and the wm-bench figures and verdict — one table
(tui.comparison), a column per run, kept live while the runs move."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header

from tui.comparison import Row, compare_rows
from tui.format import run_label
from tui.model import PollResult
from tui.widgets.table_fill import refill


class CompareScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,b", "back", "Back", key_display="esc")]

    def __init__(self, run_ids: Sequence[str]) -> None:
        super().__init__()
        self.run_ids = list(run_ids)
        self._rows: list[Row] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="compare", zebra_stripes=True, cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"compare {len(self.run_ids)} runs"
        self.watch(self.app, "runs_poll", self._show)

    def _show(self, poll: PollResult | None) -> None:
        if poll is None:
            return
        by_id = {r.run_id: r for r in poll.runs}
        runs = [by_id[r] for r in self.run_ids if r in by_id]
        table: DataTable[str | Text] = self.query_one(DataTable)
        rows = compare_rows(runs)
        if rows == self._rows:
            return
        self._rows = rows
        cursor = table.cursor_row
        columns = [("field", ""), *((r.run_id, run_label(r.run_id, r.algo, r.env, r.profile)) for r in runs)]
        refill(table, columns, [(None, row) for row in rows])
        table.move_cursor(row=min(cursor, len(rows) - 1))

    def action_back(self) -> None:
        self.app.pop_screen()
