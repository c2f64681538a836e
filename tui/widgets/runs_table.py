"""The runs list: one row per run folder with its state, what it trains, progress, speed, reward, age.

Rows are keyed by run id and updated cell by cell, so the cursor stays put while runs change and new
runs appear at the bottom. Marked runs (for compare) show a dot before their name.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from rich.text import Text
from textual.widgets import DataTable

from tui.format import age, compact, number, run_label
from tui.model import RunSnapshot

COLUMNS = (("run", "run", 16), ("state", "state", 8), ("what", "algo/env", 13), ("profile", "profile", 7),
           ("step", "step", 6), ("sps", "sps", 6), ("reward", "reward", 6), ("age", "age", 4))
# `lost` (process gone, no exit recorded: resumable) and `unreadable` (a corrupt run file) need a person:
# reversed, so that they stand out from every state a run ends in by itself.
STATE_STYLE = {"starting": "yellow", "running": "bold green", "finished": "cyan", "failed": "bold red",
               "stopped": "magenta", "deleted": "dim strike", "lost": "bold reverse dark_orange",
               "unreadable": "bold reverse red"}
ATTENTION_STATES = ("lost", "unreadable")
REWARD_KEYS = ("rollout/ep_rew_mean", "reward/mean")


def reward_of(snapshot: RunSnapshot) -> float | None:
    return next((snapshot.metrics_latest[k] for k in REWARD_KEYS if k in snapshot.metrics_latest), None)


class RunsTable(DataTable[str | Text]):
    """`show(runs, marked)` brings the rows up to date; `clock()` gives unix seconds for ages."""

    def __init__(self, clock: Callable[[], float], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.clock = clock
        self._cells: dict[str, tuple[str | Text, ...]] = {}

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def show(self, runs: Sequence[RunSnapshot], marked: Collection[str]) -> None:
        now = self.clock()
        for snapshot in runs:
            cells = self._row(snapshot, snapshot.run_id in marked, now)
            previous = self._cells.get(snapshot.run_id)
            if previous is None:
                self.add_row(*cells, key=snapshot.run_id)
            else:
                for (key, _, _), old, new in zip(COLUMNS, previous, cells, strict=True):
                    if old != new:
                        self.update_cell(snapshot.run_id, key, new)
            self._cells[snapshot.run_id] = cells

    def _row(self, s: RunSnapshot, marked: bool, now: float) -> tuple[str | Text, ...]:
        state = "deleted" if s.gone else s.state
        mark = "● " if marked else "  "
        return (
            mark + run_label(s.run_id, s.algo, s.env, s.profile),
            Text(state, style=STATE_STYLE.get(state, "")),
            f"{s.algo}/{s.env}"[:13],
            s.profile[:7],
            compact(s.step),
            compact(s.sps),
            number(reward_of(s), ".3g"),
            age(now - s.created) if s.created else "-",
        )

    @property
    def selected_run(self) -> str | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def select_run(self, run_id: str) -> None:
        if run_id in self._cells:
            self.move_cursor(row=self.get_row_index(run_id))
