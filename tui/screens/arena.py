"""A finished round robin as `trainctl arena` saved it (engine.arena_file): the rating table on the Elo
scale with its 95 % intervals, the head-to-head matrix and the verdict lines.

Opened from the runs screen (`A`: the arenas saved under the runs folder, the newest first) or by
`trainctl arena --show [DIR]`. `[` and `]` step to the older and newer saved arenas (listed again on
each step, so an arena saved meanwhile is found). The arena.json is
read in a thread worker; a folder that holds none, or not a trainctl arena result, shows that one line
instead of the tables. The screen only reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from engine.arena_file import ARENAS_FOLDER, read_arena, saved_arenas
from engine.errors import UsageError
from tui.format import short_name

NAME_WIDTH = 28  # a player's name in the tables: ckpt: paths are long, their file name matters most


def _percent(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def rating_rows(figures: dict[str, Any]) -> list[tuple[str | Text, ...]]:
    """(rank, player, Elo, +-95 %, fallback rate), best first; the anchor's interval says "anchor"."""
    ratings = sorted(figures["ratings"], key=lambda r: -r["rating"])
    rows: list[tuple[str | Text, ...]] = []
    for rank, r in enumerate(ratings, 1):
        fallback = r.get("fallback")
        rows.append((str(rank), short_name(r["player"]), f"{r['rating']:.0f}",
                     "anchor" if r["player"] == figures["anchor"] else f"±{1.96 * r['error']:.0f}",
                     "-" if fallback is None else _percent(fallback[0], 2)))
    return rows


def matrix_rows(figures: dict[str, Any]) -> list[tuple[str | Text, ...]]:
    """One row a player ("P1 name", then its win rate against P1, P2, ...), the diagonal blank."""
    rows: list[tuple[str | Text, ...]] = []
    for i, (player, rates) in enumerate(zip(figures["players"], figures["matrix"], strict=True)):
        cells = [Text("") if i == j else _rate_cell(rate) for j, rate in enumerate(rates)]
        rows.append((f"P{i + 1} {short_name(player, NAME_WIDTH - 4)}", *cells))
    return rows


def _rate_cell(rate: float | None) -> Text:
    if rate is None:
        return Text("-", justify="right")
    style = "green" if rate > 0.55 else "red" if rate < 0.45 else ""
    return Text(_percent(rate), style=style, justify="right")


def verdict_text(figures: dict[str, Any]) -> Text:
    """A line per verdict (GO green, NO-GO red with its reasons), or how to get one."""
    reference = figures.get("reference")
    if reference is None:
        return Text("no verdict: run the arena with --reference PLAYER for GO/NO-GO lines", style="dim")
    text = Text()
    for k, verdict in enumerate(figures["verdicts"]):
        if k:
            text.append("\n")
        text.append(f"{short_name(verdict['player'])} vs {short_name(reference)}: ")
        if verdict["go"]:
            text.append("GO", style="bold green")
        else:
            text.append("NO-GO", style="bold red")
            text.append(f" ({'; '.join(verdict['reasons'])})")
    return text


class ArenaScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,b", "back", "Back", key_display="esc"),
        Binding("left_square_bracket", "step(-1)", "Older", key_display="["),
        Binding("right_square_bracket", "step(1)", "Newer", key_display="]"),
    ]

    def __init__(self, *, runs_dir: Path | None = None, folder: Path | None = None) -> None:
        """One saved arena `folder`, or the arenas saved under `runs_dir` (the newest shown first)."""
        super().__init__()
        if (runs_dir is None) == (folder is None):
            raise ValueError("an arena screen shows either one folder or a runs folder's arenas")
        self.runs_dir = runs_dir
        self.folders: list[Path] = [] if folder is None else [folder]
        self.index = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="arena-title")
        with VerticalScroll(id="arena-body"):
            yield DataTable(id="arena-ratings", cursor_type="none", zebra_stripes=True)
            yield Static("head to head: the row player's win rate", id="arena-caption")
            yield DataTable(id="arena-matrix", cursor_type="none", zebra_stripes=True)
            yield Static(id="arena-verdicts")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._load(0, newest=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "step":
            return len(self.folders) > 1  # the keys are offered only when there is another arena
        return True

    def action_step(self, delta: int) -> None:
        if 0 <= self.index + delta < len(self.folders):
            self._load(self.index + delta)

    def action_back(self) -> None:
        self.dismiss(None)

    @work(thread=True, exclusive=True, group="arena")
    def _load(self, index: int, newest: bool = False) -> None:
        """Read the arena at `index` (with `newest`, list the runs folder's arenas and take the last)."""
        runs_dir = self.runs_dir
        folders = self.folders if runs_dir is None else saved_arenas(runs_dir)
        if newest:
            index = len(folders) - 1
        if not folders:  # only a runs folder's list can be empty
            figures: dict[str, Any] | str = (f"no saved arena in {runs_dir}/{ARENAS_FOLDER}: "
                                             "`trainctl arena A B ...` saves one there")
        else:
            try:
                figures = read_arena(folders[index])
            except UsageError as exc:
                figures = str(exc)
        self.app.call_from_thread(self._show, folders, index, figures)

    def _show(self, folders: list[Path], index: int, figures: dict[str, Any] | str) -> None:
        self.folders, self.index = folders, index
        self.refresh_bindings()
        title = self.query_one("#arena-title", Static)
        ratings = self.query_one("#arena-ratings", DataTable)
        matrix = self.query_one("#arena-matrix", DataTable)
        verdicts = self.query_one("#arena-verdicts", Static)
        ratings.clear(columns=True)
        matrix.clear(columns=True)
        position = f"  ({index + 1}/{len(folders)})" if len(folders) > 1 else ""
        self.sub_title = f"arena {folders[index].name}{position}" if folders else "arena"
        self.query_one("#arena-caption").display = not isinstance(figures, str)
        if isinstance(figures, str):
            title.update(Text(figures, style="bold red"))
            verdicts.update("")
            return
        players = figures["players"]
        title.update(f"{len(players)} players · {figures['games']} games a pairing, each deal from both "
                     f"seats · seed {figures['seed']}")
        ratings.add_columns("#", "PLAYER", "ELO", "95%", "FALLBACK")
        ratings.add_rows(rating_rows(figures))
        matrix.add_columns("", *(f"P{k + 1}" for k in range(len(players))))
        matrix.add_rows(matrix_rows(figures))
        verdicts.update(verdict_text(figures))
