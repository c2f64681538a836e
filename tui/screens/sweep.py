"""A sweep (`trainctl sweep`) as one group: its comparison table (the one `trainctl report` prints: trial,
state, time, steps/s, win rate, reward, the best marked, config; for a world model samples/s, its lowest
validation loss and wm-bench verdict in place of steps/s, win rate and reward), sortable by any column (`o` moves the
sort to the next column, `r` turns it round, a click on a header sorts by it), Enter opens the trial's
run. Re-read from the folder while trials run.

The config column comes last here (first after the trial in the printed table): a grid's labels are
long, and at 80 columns the figures must stay in view while the labels run off to the right.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Static

from engine.sweep import WORLD_MODEL, Row, best_row, step_unit, table_cells, table_header
from tui.groups import GroupView
from tui.screens.group import GroupScreen
from tui.screens.run import RunScreen
from tui.widgets.table_fill import refill

SortValue = str | float | int | None


@dataclass(frozen=True)
class Column:
    """A column of the table: its header in engine.sweep's table_header, what it sorts by, and whether its
    first sort puts the highest first (figures where more is better)."""

    header: str
    value: Callable[[Row, bool], SortValue]  # (row, is it the best) -> what the column sorts by
    highest_first: bool = False


def _figure(name: str) -> Callable[[Row, bool], SortValue]:
    return lambda row, _best: row.figures.value(name) if row.figures else None


_LEAD = (
    Column("TRIAL", lambda row, _best: row.trial.name),
    Column("STATE", lambda row, _best: row.figures.state if row.figures else "not started"),
    Column("TIME", lambda row, _best: row.figures.wall if row.figures else None),
)
_TAIL = (
    Column("BEST", lambda _row, best: int(best), highest_first=True),
    Column("CONFIG", lambda row, _best: row.trial.label),
)
COLUMNS = (
    *_LEAD,
    Column("STEPS/S", _figure("sps"), highest_first=True),
    Column("WIN %", _figure("win"), highest_first=True),
    Column("REWARD", _figure("reward"), highest_first=True),
    *_TAIL,
)
WORLD_MODEL_COLUMNS = (  # engine.sweep.WORLD_MODEL_HEADER: a lower validation loss is better
    *_LEAD,
    Column("SAMPLES/S", _figure("sps"), highest_first=True),
    Column("VAL LOSS", _figure("val")),
    Column("WM-BENCH", lambda row, _best: row.figures.wm_verdict if row.figures else None),
    *_TAIL,
)


def sorted_rows(rows: tuple[Row, ...], best: Row | None, column: Column, descending: bool) -> list[Row]:
    """`rows` ordered by `column` (ties keep the trials' order); rows without a value go last either way."""
    valued = [r for r in rows if column.value(r, r is best) is not None]
    missing = [r for r in rows if column.value(r, r is best) is None]
    return sorted(valued, key=lambda r: column.value(r, r is best), reverse=descending) + missing  # type: ignore[arg-type,return-value]


class SweepScreen(GroupScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        *GroupScreen.BINDINGS,
        Binding("o", "next_sort", "Sort column"),
        Binding("r", "reverse_sort", "Reverse"),
    ]

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.sort_column = 0
        self.descending = False
        self._shown: tuple[object, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"reading {self.folder} …", id="sweep-head")
        yield DataTable(id="sweep", zebra_stripes=True, cursor_type="row")
        yield Footer(compact=True)

    def show(self, view: GroupView) -> None:
        self.view = view
        self.sub_title = f"sweep {self.folder.name}"
        self._draw()

    def _draw(self) -> None:
        view = self.view
        if view is None:
            return
        algo = str(view.ask.get("algo"))
        columns_shown = self.columns
        column = columns_shown[self.sort_column]
        order = "highest first" if self.descending else "lowest first"
        head = self.query_one("#sweep-head", Static)
        if view.error:
            head.update(f"[b]sweep {escape(self.folder.name)}[/b]\n{escape(view.error)}")
        else:
            ask = view.ask
            errors = [f"{r.trial.name}: {r.error}" for r in view.rows if r.error]
            head.update("\n".join([
                f"[b]sweep {escape(self.folder.name)}[/b]: {escape(str(ask.get('algo')))} on "
                f"{escape(str(ask.get('env')))}, {len(view.rows)} trials of {int(ask.get('steps') or 0):,} "
                f"{step_unit(algo)}",
                escape(f"{view.progress()} · best by {view.best_by} · sorted by {column.header} ({order})"),
                *(escape(line) for line in errors[:3])]))
        table: DataTable[str] = self.query_one(DataTable)
        best = best_row(view.rows, view.best_by)
        cells = dict(zip((r.trial.name for r in view.rows), table_cells(view.rows, view.best_by, algo),
                         strict=True))
        rows = sorted_rows(view.rows, best, column, self.descending)
        shown = (view, self.sort_column, self.descending)
        if self._shown is not None and self._shown[0] is view and self._shown[1:] == shown[1:]:
            return
        self._shown = shown
        selected = self._selected_trial()
        arrows = {self.sort_column: " ▼" if self.descending else " ▲"}
        columns = [(col.header, col.header + arrows.get(i, "")) for i, col in enumerate(columns_shown)]
        header = table_header(algo)
        shown_rows = []
        for row in rows:
            by_header = dict(zip(header, cells[row.trial.name], strict=True))
            shown_rows.append((row.trial.name, [by_header[col.header] for col in columns_shown]))
        refill(table, columns, shown_rows)
        if selected is not None and selected in cells:
            table.move_cursor(row=table.get_row_index(selected))
        table.focus()

    @property
    def columns(self) -> tuple[Column, ...]:
        """The table's columns for the sweep's trainer (a world model's figures differ)."""
        algo = self.view.ask.get("algo") if self.view is not None else None
        return WORLD_MODEL_COLUMNS if algo == WORLD_MODEL else COLUMNS

    def _selected_trial(self) -> str | None:
        table: DataTable[str] = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def sort_by(self, index: int, descending: bool | None = None) -> None:
        self.sort_column = index
        self.descending = self.columns[index].highest_first if descending is None else descending
        self._draw()

    def action_next_sort(self) -> None:
        self.sort_by((self.sort_column + 1) % len(self.columns))

    def action_reverse_sort(self) -> None:
        self.sort_by(self.sort_column, not self.descending)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by(event.column_index, not self.descending if event.column_index == self.sort_column else None)

    def action_open_run(self) -> None:
        trial = self._selected_trial()
        row = self.view.row(trial) if self.view is not None and trial is not None else None
        if row is None:
            return
        if row.run is None:
            self.notify(f"{row.trial.name} has no run yet", severity="warning")
            return
        self.app.push_screen(RunScreen(row.run.path, f"{self.folder.name} · {row.trial.name} {row.trial.label}"))
