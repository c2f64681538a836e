"""The sweeps and benches of the runs folder (key `g` on the runs screen): one row each with what it
trains, its trials by state and its outcome (a bench's verdict, a sweep's best trial, from its saved
report); Enter opens it (tui.screens.bench, tui.screens.sweep). Re-read while open: a sweep started
elsewhere appears. `A` shows the round robins `trainctl arena` saved (tui.screens.arena)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui.groups import GroupSummary, list_groups
from tui.screens.bench import VERDICT_STYLE, BenchScreen
from tui.screens.polled import PolledScreen
from tui.screens.sweep import SweepScreen
from tui.widgets.table_fill import refill

COLUMNS = (("folder", "folder"), ("kind", "kind"), ("what", "algo/env"), ("runs", "finished"),
           ("active", "running"), ("outcome", "outcome"))


def group_screen(path: Path, kind: str) -> Screen[None]:
    """The screen of the group in `path` whose kind (from its group.json) is `kind`."""
    return BenchScreen(path) if kind == "bench" else SweepScreen(path)


class GroupsScreen(PolledScreen):
    BINDINGS: ClassVar[list[BindingType]] = [*PolledScreen.BINDINGS,
                                             Binding("enter", "open_group", "Open", priority=True),
                                             Binding("A", "arena", "Arenas")]

    def __init__(self, runs_dir: Path) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.groups: list[GroupSummary] | None = None  # None: not read yet (an empty list is shown)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"sweeps and benches in {escape(str(self.runs_dir))}", id="groups-head")
        yield DataTable(id="groups", zebra_stripes=True, cursor_type="row")
        yield Footer(compact=True)

    def read(self) -> list[GroupSummary] | None:
        groups = list_groups(self.runs_dir)
        return None if groups == self.groups else groups

    def show(self, groups: list[GroupSummary]) -> None:
        self.groups = groups
        self.sub_title = f"{self.runs_dir} · {len(groups)} sweep{'s' if len(groups) != 1 else ''} and benches"
        self.query_one("#groups-head", Static).update(
            f"sweeps and benches in {escape(str(self.runs_dir))}" if groups else
            f"no sweep or bench in {escape(str(self.runs_dir))} yet: `trainctl sweep` and `trainctl bench` make them")
        table: DataTable[str | Text] = self.query_one(DataTable)
        cursor = table.cursor_row
        first = not table.columns
        rows = [(str(g.path), (escape(g.path.name), g.kind, escape(g.what), f"{g.finished}/{g.trials}",
                               str(g.active) if g.active else "",
                               Text(g.outcome, style=VERDICT_STYLE.get(g.outcome, ""))))
                for g in groups]
        refill(table, COLUMNS, rows)
        if first:
            table.focus()
        if groups:
            table.move_cursor(row=min(cursor, len(groups) - 1))

    def action_arena(self) -> None:
        """The round robins `trainctl arena` saved under this runs folder (tui.screens.arena)."""
        from tui.screens.arena import ArenaScreen

        self.app.push_screen(ArenaScreen(runs_dir=self.runs_dir))

    def action_open_group(self) -> None:
        table: DataTable[str | Text] = self.query_one(DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        group = next((g for g in self.groups or [] if str(g.path) == key), None)
        if group is not None:
            self.app.push_screen(group_screen(group.path, group.kind))
