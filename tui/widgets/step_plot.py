"""A plot of one quantity of a run over env steps, with axes, its last value and its median marked.

`StepPlot` is a title line and a textual-plot `PlotWidget` below it. The title names the quantity and
its unit (it is the y axis's label) and gives the last value (● on the plot) and the median of the
history (┄: a dashed row where the line leaves it free, and a mark on the y axis). The x axis is env
steps with compact tick labels (20k, 1.5M); the bottom-left corner says "steps".

Drawing is kept off the poll's path: `show()` compares the points it is given with the ones drawn and
does nothing when they are equal; otherwise it updates the title at once and hands the plot at most two
points per cell column (the history's bucket means, `tui.model.resample`), which it draws on its next
frame, or, for more points of the same run, `REDRAW_EVERY_S` after its last drawing if that is later.
Another run's points (a key selected another run) blank the plot on the key's frame and are drawn on the
frame after it, so that the new run's title and numbers are not held up by the drawing.

The y range is chosen so that noise does not look like cliffs: a throughput (`zero_based`) is drawn from
zero, so a dip reads as the share of the rate it is; any other quantity spans at least ±`MIN_HALF_SPAN`
of its median's magnitude, so a steady value with a little noise stays a flat line, and grows to hold
every point when the quantity really moves. This module must not read files or compute what it shows
from anything but the points it is given.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from contextlib import ExitStack
from math import ceil, floor, isfinite, log10

import numpy as np
from textual.app import ComposeResult, RenderResult
from textual.containers import Vertical
from textual.content import Content
from textual.events import Resize
from textual.markup import escape
from textual.timer import Timer
from textual.widgets import Static
from textual_hires_canvas import Canvas
from textual_plot import PlotWidget
from textual_plot.axis_formatter import AxisFormatter

from tui.format import number
from tui.model import resample

MIN_HALF_SPAN = 0.1  # a quantity's y range spans at least ±10% of its median's magnitude
PAD = 0.05  # share of the y range left free above and below the points
X_TICK_CELLS = 7  # at most one x tick label per this many cells (labels are up to 5 wide: 12.5M)
Y_TICK_ROWS = 2  # at most one y tick label per this many rows
X_LABEL = "steps"  # written left of the x tick labels, under the y tick labels
MARGIN_BOTTOM = 1  # rows under the plot's box: the x tick labels
HIRES_COLUMNS = 2  # braille dots per cell column: points drawn per column at most
# A plot draws at most this often (its title's numbers follow every poll): a frame of new axes costs
# ~15-25 ms of CPU at 38x8 to 58x14 cells, about twice a Sparkline's, and the watcher polls twice a second.
# At 2 s the TUI's CPU while a run writes 20 events/s is about what it was with Sparklines at every poll.
REDRAW_EVERY_S = 2.0


def nice_ticks(lo: float, hi: float, count: int) -> list[float]:
    """As many round values in [lo, hi] as fit in `count` (at least 1): 1, 2, 2.5 or 5 times a power of
    ten apart, the closest spacing that gives at most `count` ticks."""
    count = max(1, count)
    if hi <= lo:
        return [lo]
    power = 10.0 ** (floor(log10((hi - lo) / count)) - 1)
    while True:
        for m in (1.0, 2.0, 2.5, 5.0):
            step = m * power
            first, last = ceil(lo / step - 1e-9), floor(hi / step + 1e-9)
            if last - first + 1 <= count:
                return [i * step for i in range(first, last + 1)] or [lo]
        power *= 10


def decimals_of(spacing: float) -> int:
    """Decimal places that write a tick spacing (1, 2, 2.5 or 5 times a power of ten) exactly."""
    places = max(0, -floor(log10(spacing)))
    while abs(round(spacing, places) - spacing) > spacing * 1e-6:
        places += 1
    return places


def tick_label(value: float, spacing: float) -> str:
    """A short label for a tick `spacing` (> 0) from its neighbours: 20k, 1.5M, 0.25, -1.5, 2.75e-4."""
    for suffix, unit in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= unit:
            places = decimals_of(spacing / unit)
            if places <= 2:  # else the suffix would need more digits than the plain number
                return f"{value / unit:.{places}f}{suffix}"
            break
    if abs(value) < spacing * 1e-6:
        return "0"
    places = decimals_of(spacing)
    if places <= 4:
        return f"{value:.{places}f}"
    mantissa, _, exponent = f"{value:.{max(0, places + floor(log10(abs(value))))}e}".partition("e")
    return f"{mantissa}e{int(exponent)}"


class CompactFormatter(AxisFormatter):
    """Ticks at round values; labels as short as `tick_label` makes them."""

    def get_ticks(self, min_: float, max_: float, max_ticks: int = 8) -> list[float]:
        return nice_ticks(min_, max_, max_ticks)

    def get_labels_for_ticks(self, ticks: Sequence[float]) -> list[str]:
        spacing = ticks[1] - ticks[0] if len(ticks) > 1 else abs(ticks[0]) if ticks and ticks[0] else 1.0
        return [tick_label(t, spacing) for t in ticks]


def y_range(values: Sequence[float], median: float, zero_based: bool) -> tuple[float, float]:
    """The y axis's limits for `values` (not empty) whose median is `median` (see the module's doc)."""
    lo, hi = min(values), max(values)
    if zero_based:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        if hi == lo:
            return lo, lo + 1.0
        return (lo - (hi - lo) * PAD if lo < 0 else lo), (hi + (hi - lo) * PAD if hi > 0 else hi)
    half = MIN_HALF_SPAN * (abs(median) or max(abs(lo), abs(hi))) or 1.0
    lo, hi = min(lo, median - half), max(hi, median + half)
    return lo - (hi - lo) * PAD, hi + (hi - lo) * PAD


# Braille dot bits by (row, column) within a cell: a cell is 2 dots wide and 4 high (U+2800 + bits).
BRAILLE_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint8)


def braille_cells(hx: np.ndarray, hy: np.ndarray, right: int, bottom: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The cells a polyline covers in braille dots, inside the box whose inner cells are columns
    1..right-1 and rows 1..bottom-1: (columns int[C], rows int[C], braille characters[C]).

    hx, hy: float[P] point positions in cells (fractions pick the dot). Every segment is sampled once per
    dot along its longer side (a digital line), all segments at once; a single point is one dot."""
    px = np.floor(hx * 2).astype(np.int64)
    py = np.floor(hy * 4).astype(np.int64)
    if len(px) > 1:
        dx, dy = np.diff(px), np.diff(py)
        samples = np.maximum(np.abs(dx), np.abs(dy)) + 1  # dots per segment, both ends included
        segment = np.repeat(np.arange(len(dx)), samples)
        starts = np.cumsum(samples) - samples
        t = (np.arange(int(samples.sum())) - starts[segment]) / np.maximum(samples - 1, 1)[segment]
        px = np.rint(px[segment] + t * dx[segment]).astype(np.int64)
        py = np.rint(py[segment] + t * dy[segment]).astype(np.int64)
    inside = (px >= 2) & (px < 2 * right) & (py >= 4) & (py < 4 * bottom)
    px, py = px[inside], py[inside]
    cells = np.zeros((bottom, right), dtype=np.uint8)
    np.bitwise_or.at(cells, (py // 4, px // 2), BRAILLE_BITS[py % 4, px % 2])
    rows, columns = np.nonzero(cells)
    return columns, rows, [chr(0x2800 + int(bits)) for bits in cells[rows, columns]]


def _write(canvas: Canvas, column: int, row: int, text: str, style: str) -> None:
    """`text` on one row of `canvas` from `column` on, in one style, cut at the canvas's edges."""
    size = canvas._canvas_size
    if 0 <= row < size.height:
        for offset, char in enumerate(text):
            if 0 <= column + offset < size.width:
                canvas.set_pixel(column + offset, row, char, style)


class StepAxes(PlotWidget, can_focus=False):
    """The plot itself: a line of (step, value) points, the median line and the last point.

    Not focusable and not zoomable: keys stay with the screen, and the axes always show the whole run."""

    def __init__(self, zero_based: bool, *, id: str | None = None) -> None:
        super().__init__(id=id, allow_pan_and_zoom=False)
        self.zero_based = zero_based
        self._points: Sequence[tuple[float, float]] = ()
        self._median = 0.0
        self._median_at: tuple[float, float, int] | None = None  # (x0, median, width in cells) once drawn
        self._line: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))  # steps, values of the drawn line
        # x ticks, their labels, y ticks, their labels, (x0, x1, y0, y1)
        self._ticks: tuple[list[float], list[str], list[float], list[str], tuple[float, float, float, float]] = \
            ([], [], [], [], (0.0, 1.0, 0.0, 1.0))
        self._drawn_at = -REDRAW_EVERY_S  # time.monotonic() of the last drawing
        self._pending: Timer | None = None  # the drawing put off until REDRAW_EVERY_S after the last
        self._on_screen = False  # whether the last drawing asked for is on the canvases
        self._deferred = False  # whether a drawing waits for the frame that blanked the plot (`draw`)
        self.set_x_formatter(CompactFormatter())
        self.set_y_formatter(CompactFormatter())
        # Set before mounting, so the plot's grid is laid out once with them: no title rows above the box
        # (StepPlot's title line is above), the x tick labels below, and on the left the width most plots
        # keep ("steps" or a y label of up to five characters, and two cells): a y label that is wider
        # costs a second layout pass.
        self.set_reactive(StepAxes.margin_top, 0)
        self.set_reactive(StepAxes.margin_bottom, MARGIN_BOTTOM)
        self.set_reactive(StepAxes.margin_left, len(X_LABEL) + 2)

    def draw(self, points: Sequence[tuple[float, float]], median: float, at_once: bool) -> None:
        """Draw `points` (not empty): if `at_once` (another run's points), blank the plot now and draw them
        on the frame after this one; else on the next frame if `REDRAW_EVERY_S` has passed since the last
        drawing, or then (only the newest points given are drawn). Before the plot has a size, once it has
        one."""
        self._points, self._median = points, median
        if at_once:
            if self._pending is not None:
                self._pending.stop()
                self._pending = None
            # The frame that answers a key shows the new run's title and numbers without waiting for its
            # plots (drawing one takes longer than the rest of that frame), and never the old run's line
            # under the new run's title: the plot is blank on that frame and drawn on the next.
            for canvas in self.query(Canvas):
                canvas.reset()
            self._on_screen = False
            if not self._deferred:
                self._deferred = True
                self.call_after_refresh(self._draw_deferred)
            return
        if self._deferred:
            return  # the deferred drawing takes the newest points
        wait = self._drawn_at + REDRAW_EVERY_S - time.monotonic()
        if wait <= 0:
            if self._pending is not None:
                self._pending.stop()
            self._replot()
        elif self._pending is None:
            self._pending = self.set_timer(wait, self._replot)

    def _draw_deferred(self) -> None:
        self._deferred = False
        self._replot()

    def on_resize(self, _event: Resize) -> None:
        self._replot()

    @property
    def up_to_date(self) -> bool:
        """Whether the last drawing asked for (not one put off by `REDRAW_EVERY_S`) is on the canvases, at
        their current size (tests wait for it before reading the screen)."""
        return self._on_screen

    def on_canvas_resize(self, event: Canvas.Resize) -> None:
        """A canvas got its new size after the frame that drew into it (a wider y margin): draw again, on
        pixels of the new size, rather than wait for the next data."""
        event.stop()
        if event.size != event.canvas._canvas_size:
            self._on_screen = False
            self.refresh(layout=True)

    def _replot(self) -> None:
        self._pending = None
        points, median = self._points, self._median
        if not points or not self.size:  # not laid out yet (margins are not even readable before mount)
            return
        height = self.size.height - self.margin_top - self.margin_bottom - 2  # the box takes a row above and below
        if height <= 0:
            return
        values = [v for _, v in points]
        y0, y1 = y_range(values, median, self.zero_based)
        y_ticks = nice_ticks(y0, y1, max(1, (height + 1) // Y_TICK_ROWS))
        labels = CompactFormatter().get_labels_for_ticks(y_ticks)
        # The plot right-aligns the labels two cells left of the box: the median's mark takes the cell between.
        margin_left = max(len(X_LABEL), *(len(label) for label in labels)) + 2
        if margin_left != self.margin_left:
            self.margin_left = margin_left
            self.refresh(layout=True)  # the plot fits its canvases to their new widths on its next frame
        width = self.size.width - self.margin_left - 2  # and a column left and right
        if width <= 0:
            return
        first, last = points[0][0], points[-1][0]
        x0, x1 = (first, last) if last > first else (first - 1.0, first + 1.0)  # one point, or all at one step
        x1 += (x1 - x0) / width  # a free column on the right, so the last point is not on the box
        self.clear()
        self.set_xlimits(x0, x1)
        self.set_ylimits(y0, y1)
        # The ticks are drawn here (`_draw_ticks`), not by the plot, whose markup parsing per label cost
        # more of a frame than the line.
        self.set_xticks([])
        self.set_yticks([])
        x_ticks = nice_ticks(x0, x1, max(1, width // X_TICK_CELLS))
        self._ticks = (x_ticks, CompactFormatter().get_labels_for_ticks(x_ticks), y_ticks, labels, (x0, x1, y0, y1))
        if len(points) > HIRES_COLUMNS * width:
            line = resample(points, HIRES_COLUMNS * width)
            bucket = (last - first) / len(line)
            self._line = (first + (np.arange(len(line)) + 0.5) * bucket, np.asarray(line, dtype=float))
        else:
            self._line = (np.array([s for s, _ in points], dtype=float), np.asarray(values, dtype=float))
        self._median_at = (x0, median, width)
        self._drawn_at = time.monotonic()
        self._on_screen = False

    def render(self) -> RenderResult:
        redrawn = self._needs_rerender  # else the canvases still hold the last drawing, line included
        # Each pixel the plot sets would repaint its canvas: one repaint per canvas per frame instead.
        with ExitStack() as batch:
            for canvas in self.query(Canvas):
                batch.enter_context(canvas.batch_refresh())
            result = super().render()
            if redrawn and self._median_at is not None and self._canvases_fit(self._median_at[2]):
                self._draw_ticks(*self._ticks)
                self._draw_line()
                self._mark_median(*self._median_at)
                self._on_screen = True
                self.query_one("#margin-bottom", Canvas).write_text(0, 0, f"[dim]{X_LABEL}")
        return result

    def _canvases_fit(self, width: int) -> bool:
        """Whether the canvases' pixels cover the box `width` cells wide: a canvas's pixels are resized on
        its own Resize event, which may come after this frame (the next frame draws once they do)."""
        plot = self.query_one("#plot", Canvas)._canvas_size
        margin = self.query_one("#margin-left", Canvas)._canvas_size
        return width < plot.width - 1 and plot.height > 2 and self.margin_left - 1 < margin.width \
            and margin.height >= plot.height

    def _draw_ticks(self, x_ticks: list[float], x_labels: list[str], y_ticks: list[float], y_labels: list[str],
                    limits: tuple[float, float, float, float]) -> None:
        """Tick marks on both sides of the box and their labels in the margins, at the places the plot
        would put them: an x label centred under its tick (right-aligned at the right end), a y label
        right-aligned two cells left of the box."""
        plot = self.query_one("#plot", Canvas)
        bottom = self.query_one("#margin-bottom", Canvas)
        left = self.query_one("#margin-left", Canvas)
        axis_style = str(self.get_component_rich_style("plot--axis"))
        tick_style = str(self.get_component_rich_style("plot--tick"))
        box = self._scale_rectangle
        x_min, x_max, y_min, y_max = limits
        for tick, label in zip(x_ticks, x_labels, strict=True):
            if not x_min <= tick <= x_max:
                continue
            column = self.get_pixel_from_coordinate(tick, 0.0)[0] - (tick == x_min)  # the box's corner
            for row, quad in ((0, (2, 0, 0, 0)), (box.bottom, (0, 0, 2, 0))):
                plot.set_pixel(column, row, self.combine_quad_with_pixel(quad, plot, column, row), axis_style)
            start = column - len(label) + 1 if tick == x_max else column - (len(label) - 1) // 2
            _write(bottom, start + self.margin_left, 0, label, tick_style)
        for tick, label in zip(y_ticks, y_labels, strict=True):
            if not y_min <= tick <= y_max:
                continue
            row = self.get_pixel_from_coordinate(0.0, tick)[1] + (tick == y_min)
            for column, quad in ((0, (0, 0, 0, 2)), (box.right, (0, 2, 0, 0))):
                plot.set_pixel(column, row, self.combine_quad_with_pixel(quad, plot, column, row), axis_style)
            label = label[: self.margin_left - 1]
            _write(left, self.margin_left - 1 - len(label), row, label, tick_style)

    def _draw_line(self) -> None:
        """The history's line in braille dots, then the last point on it. Drawn here in one pass over all
        segments (`braille_cells`) rather than as a textual-plot dataset, whose per-segment drawing cost
        most of a plot's frame."""
        theme = self.app.theme_variables
        plot = self.query_one("#plot", Canvas)
        steps, values = self._line
        # A linear map, typed for one point: arrays map element by element.
        hx, hy = self.get_hires_pixel_from_coordinate(steps, values)  # type: ignore[arg-type]
        box = plot._canvas_size
        columns, rows, chars = braille_cells(np.asarray(hx), np.asarray(hy), box.width - 1, box.height - 1)
        line_style = theme["success"]
        for column, row, char in zip(columns.tolist(), rows.tolist(), chars, strict=True):
            plot.set_pixel(column, row, char, line_style)
        column, row = self.get_pixel_from_coordinate(steps[-1], values[-1])
        if 0 < column < box.width - 1 and 0 < row < box.height - 1:
            plot.set_pixel(column, row, "●", f"bold {theme['accent']}")

    def _mark_median(self, x0: float, median: float, width: int) -> None:
        """The median's row: dashes where the history's line leaves the cell empty (the line wins, so a
        steady rate hides them), and always a dash on the y axis, between the tick labels and the box."""
        style = self.app.theme_variables["warning"]
        plot = self.query_one("#plot", Canvas)
        margin = self.query_one("#margin-left", Canvas)
        _, row = self.get_pixel_from_coordinate(x0, median)
        if not 0 < row < plot._canvas_size.height - 1:
            return
        for column in range(1, width + 1):
            if plot.get_pixel(column, row)[0] == " ":
                plot.set_pixel(column, row, "┄", style)
        margin.set_pixel(self.margin_left - 1, row, "┄", style)


class StepPlot(Vertical):
    """A title line over `StepAxes`. Its parts exist from construction, so `show()` works before the
    widget is mounted (the plot draws once it has a size)."""

    def __init__(self, quantity: str, *, value_format: str = ".4g", zero_based: bool = False,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.quantity = quantity
        self.value_format = value_format
        self._title = Static(classes="plot-title")
        self._axes = StepAxes(zero_based)
        self._shown: tuple[Sequence[tuple[float, float]], float | None, object] | None = None
        self._median: float | None = None
        self._title_for: tuple[object, ...] | None = None

    def compose(self) -> ComposeResult:
        yield self._title
        yield self._axes

    def show(self, points: Sequence[tuple[float, float]], last: float | None = None, *, source: object = None) -> None:
        """`points`: (env step, value) in step order; `last`: the newest value (default: the last point's);
        `source`: what they are of (a run id): another source's points are drawn at once, more points of
        the same at most every `REDRAW_EVERY_S`."""
        if last is None and points:
            last = points[-1][1]
        shown = self._shown
        if shown is not None and shown[2] == source and (shown[0] is points or shown[0] == points) \
                and shown[1] == last:
            return
        self._shown = (points, last, source)
        if not all(isfinite(s) and isfinite(v) for s, v in points):  # a NaN loss is shown, not drawn
            points = tuple((s, v) for s, v in points if isfinite(s) and isfinite(v))
        self._axes.display = bool(points)
        self._median = statistics.median(v for _, v in points) if points else None
        self._update_title()
        if points and self._median is not None:
            self._axes.draw(points, self._median, at_once=shown is None or shown[2] != source)

    def on_resize(self, _event: Resize) -> None:
        self._update_title()

    def _update_title(self) -> None:
        """The longest title that fits the width: the marks named in words, or only by their glyphs."""
        last = self._shown[1] if self._shown else None
        title_for = (last, self._median, self.size.width)
        if title_for == self._title_for:
            return
        self._title_for = title_for
        name = f"[b]{escape(self.quantity)}[/b]"  # a metric's name is anyone's text
        if self._median is None:
            self._title.update(f"{name} [dim]no values yet[/dim]", layout=False)
            return
        titles = [f"{name} {number(last, self.value_format)} [$accent]●[/] last  "
                  f"[$warning]┄[/] median {number(self._median, self.value_format)}",
                  f"{name} {number(last, self.value_format)}[$accent]●[/] "
                  f"[$warning]┄[/]{number(self._median, self.value_format)}"]
        fits = [t for t in titles if Content.from_markup(t).cell_length <= self.size.width]
        self._title.update(fits[0] if fits else titles[-1], layout=False)
