"""The reward panel (tab 7, offered for runs that log reward parts): each part of the reward as the run
logs it (`reward/<part>` metrics: docs/events.md, engine.reward_parts), its newest value and its share,
the shares over the run stacked, and each part over steps.

A part's share of a metric window is its magnitude over the sum of the parts' magnitudes
(|part| / sum |parts|): a penalty shapes the policy as much as a bonus of the same size, so both count.
A part is a mean over the window, so a part that is +1 and -1 equally often (a goal scored, a goal let
in) has a small share though its steps are large: the events hold means, not magnitudes.

It shows what the metric events hold; it must not read files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.containers import Grid, VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from tui.format import compact
from tui.model import RunSnapshot, resample
from tui.widgets.perf_breakdown import bar
from tui.widgets.step_plot import StepPlot

PART_PREFIX = "reward/"
TOTAL_KEY = "reward/mean"  # a wrapped program's whole reward per step ([METRIC] lines), not a part
# One glyph and colour per part, in the order the run logs them: the glyphs tell the parts apart where
# colours do not show (a monochrome terminal, a screen read as text).
PART_STYLES = (("█", "green"), ("▓", "yellow"), ("▒", "cyan"), ("░", "magenta"), ("▚", "red"), ("▞", "blue"))
CHART_ROWS = 5  # rows of the stacked shares over steps: 20 % each
Y_LABELS = {0: "100%", 2: "50%", 4: "0%"}  # by row of the chart, top first
Y_LABEL_CELLS = 5  # "100% " left of the chart
SHARE_CELLS = 20  # the newest window's share bar
NAME_CELLS = 14


def reward_part_keys(keys: Iterable[str]) -> list[str]:
    """The reward parts among a run's metric keys, in the order given (the run's: the game's order)."""
    return [k for k in keys if k.startswith(PART_PREFIX) and k != TOTAL_KEY and len(k) > len(PART_PREFIX)]


def has_reward_parts(s: RunSnapshot) -> bool:
    return bool(reward_part_keys(s.metric_history))


def shares(values: Sequence[float]) -> list[float]:
    """Each value's magnitude over the sum of the magnitudes (all zeros when they are all zero)."""
    total = sum(abs(v) for v in values)
    return [abs(v) / total if total else 0.0 for v in values]


def part_style(index: int) -> tuple[str, str]:
    return PART_STYLES[index % len(PART_STYLES)]


def stacked_cells(column_shares: Sequence[Sequence[float]], rows: int) -> list[list[int | None]]:
    """The stacked chart as `rows` lists (top row first) of one part index per column: a cell shows the
    part whose stretch of the column (the parts stacked from the bottom in order) holds the cell's middle;
    None where a column's shares are all zero."""
    grid: list[list[int | None]] = [[] for _ in range(rows)]
    for column in column_shares:
        bounds, total = [], 0.0
        for share in column:
            total += share
            bounds.append(total)
        for row in range(rows):
            middle = (rows - row - 0.5) / rows
            # The last part takes what rounding leaves above the top bound.
            grid[row].append(next((i for i, bound in enumerate(bounds) if bound > middle), len(column) - 1)
                             if total else None)
    return grid


def summary_text(s: RunSnapshot, parts: Sequence[str]) -> Text:
    """The newest window's parts: value (weighted mean per game step) and share, with their sum."""
    latest = [s.metrics_latest.get(key, 0.0) for key in parts]
    step = max((s.metric_history[key][-1][0] for key in parts if s.metric_history.get(key)), default=0.0)
    text = Text(f"reward parts at step {step:,.0f}: mean per game step, weighted · sum {sum(latest):+.3g}\n")
    text.append(f"  {'part':<{NAME_CELLS}} {'newest':>10}   {'share of |parts|':<{SHARE_CELLS}}     %\n",
                style="bold")
    for i, (key, value, share) in enumerate(zip(parts, latest, shares(latest), strict=True)):
        glyph, colour = part_style(i)
        text.append(glyph, style=colour)
        text.append(f" {key[len(PART_PREFIX):][:NAME_CELLS]:<{NAME_CELLS}} {value:>+10.3g}   ")
        text.append(bar(share, SHARE_CELLS), style=colour)
        text.append(f"  {100 * share:3.0f}\n")
    text.append("shares over steps, stacked from the bottom", style="bold")
    return text


class ShareChart(Widget):
    """`show(histories)`: the parts' shares over steps as stacked columns (each column a stretch of
    steps), as wide as the widget, with 0/50/100 % on the left and the first and last step below."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._histories: tuple[tuple[tuple[float, float], ...], ...] = ()

    def show(self, histories: Sequence[tuple[tuple[float, float], ...]]) -> None:
        if tuple(histories) != self._histories:
            self._histories = tuple(histories)
            self.refresh()

    def render(self) -> RenderResult:
        histories = [h for h in self._histories if h]
        width = self.size.width - Y_LABEL_CELLS
        if not histories or width <= 0:
            return Text("no reward parts yet", style="dim")
        span = (min(h[0][0] for h in histories), max(h[-1][0] for h in histories))
        columns = list(zip(*(resample(h, width, span) for h in self._histories if h), strict=True))
        grid = stacked_cells([shares(values) for values in columns], CHART_ROWS)
        text = Text()
        for row, cells in enumerate(grid):
            text.append(f"{Y_LABELS.get(row, ''):>{Y_LABEL_CELLS - 1}} ", style="dim")
            for part in cells:
                glyph, colour = part_style(part) if part is not None else (" ", "")
                text.append(glyph, style=colour)
            text.append("\n")
        first, last = compact(span[0]), f"{compact(span[1])} steps"
        text.append(f"{'':<{Y_LABEL_CELLS}}{first}{last:>{max(1, width - len(first))}}", style="dim")
        return text


class RewardPanel(VerticalScroll):
    """`show(snapshot)`: the summary of the newest window, the stacked shares over steps, and a plot of
    each part over steps (two a row; the panel scrolls where they do not fit)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._summary = Static(classes="reward-summary")
        self._chart = ShareChart(id="reward-shares")
        self._plots_grid = Grid(id="reward-part-plots")
        self._plots: list[StepPlot] = []
        self._shown: tuple[str, Mapping[str, tuple[tuple[float, float], ...]]] | None = None

    def compose(self) -> ComposeResult:
        yield self._summary
        yield self._chart
        yield self._plots_grid

    def show(self, s: RunSnapshot) -> None:
        parts = reward_part_keys(s.metric_history)
        histories = {key: s.metric_history[key] for key in parts}
        if self._shown == (s.run_id, histories):
            return
        self._shown = (s.run_id, histories)
        if not parts:
            self._summary.update("no reward parts logged: a game that reports them (soccer) logs them with "
                                 "`--set log.reward_debug=true`")
        else:
            self._summary.update(summary_text(s, parts))
        self._chart.display = bool(parts)
        self._chart.show(list(histories.values()))
        if [plot.quantity for plot in self._plots] != parts:
            self._plots = [StepPlot(key, value_format="+.3g", classes="reward-part-plot") for key in parts]
            self._plots_grid.remove_children()
            self._plots_grid.mount_all(self._plots)
        for plot in self._plots:
            plot.show(histories[plot.quantity], s.metrics_latest.get(plot.quantity), source=s.run_id)
