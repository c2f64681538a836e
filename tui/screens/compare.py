"""Compare two or more runs side by side: config differences, final and median steps/s, each [PERF]
phase, key metrics — one table, a column per run, kept live while the runs move."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header

from engine.profiles import read_by
from tui.format import number, run_label
from tui.model import PollResult, RunSnapshot
from tui.widgets.metric_plots import default_metrics

Row = tuple[str | Text, ...]


def section_row(title: str, columns: int) -> Row:
    """A bold row that titles the rows below it, in a table of `columns` columns after the field's."""
    return (Text(title, style="bold underline"), *("" for _ in range(columns)))


def compare_rows(runs: Sequence[RunSnapshot]) -> list[Row]:
    """The table's rows: (field, value for each run), with bold section rows between groups."""
    def section(title: str) -> Row:
        return section_row(title, len(runs))

    rows: list[Row] = [
        ("state", *(("deleted" if r.gone else r.state) for r in runs)),
        ("algo/env", *(f"{r.algo}/{r.env}" for r in runs)),
        ("profile", *(r.profile for r in runs)),
        ("steps", *(f"{r.step:,}" for r in runs)),
        section("config differences"),
    ]
    # Another algorithm's section (dqn.* between two PPO runs) differs by profile but means nothing here.
    # A wrapped command has no config of ours: the differences are among the runs that have one.
    configured = [r for r in runs if r.config]
    keys = sorted({k for r in configured for k in r.config if any(read_by(k, run.algo) for run in configured)})
    differing = [k for k in keys if len({repr(r.config.get(k, (None, ""))[0]) for r in configured}) > 1]
    rows += [(k, *(str(r.config[k][0]) if k in r.config else "-" for r in runs)) for k in differing]
    if not differing:
        rows.append(("(none)" if len(configured) == len(runs) else "(none; wrapped: no config)",
                     *("" for _ in runs)))
    rows += [
        section("throughput"),
        ("steps/s final", *(number(r.sps, ",.0f") for r in runs)),
        ("steps/s median", *(number(r.sps_median, ",.0f") for r in runs)),
        ("episodes/s final", *(number(r.eps, ",.1f") for r in runs)),
        section("[PERF] ms per step"),
    ]
    phases = sorted({p for r in runs for p in r.perf_latest_ms},
                    key=lambda p: -max(r.perf_latest_ms.get(p, 0.0) for r in runs))
    rows += [(p, *(number(r.perf_latest_ms.get(p), ".3f") for r in runs)) for p in phases]
    rows.append(section("metrics (latest)"))
    metric_keys = default_metrics(sorted({k for r in runs for k in r.metric_history}))
    rows += [(k, *(number(r.metrics_latest.get(k)) for r in runs)) for k in metric_keys]
    return rows


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
        if not table.columns:
            table.add_column("", key="field")
            for r in runs:
                table.add_column(run_label(r.run_id, r.algo, r.env, r.profile), key=r.run_id)
        rows = compare_rows(runs)
        if rows == self._rows:
            return
        self._rows = rows
        cursor = table.cursor_row
        table.clear()
        table.add_rows(rows)
        table.move_cursor(row=min(cursor, len(rows) - 1))

    def action_back(self) -> None:
        self.app.pop_screen()
