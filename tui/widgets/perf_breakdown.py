"""The `[PERF]` breakdown of the selected run: each phase's ms per env step and its share of the step
as a bar, most costly first, with the phase that grew most since the run's first perf event marked,
then what the run reports beside the phases (a foreign trainer's queue depth, updates/s ...) as
`name value` pairs packed into the panel's width, at most `EXTRA_LINES` lines."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.model import RunSnapshot

BAR_CELLS = 8
WIDTH = 37  # cells: the panel fits half of an 80-column terminal
EXTRA_LINES = 5
EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(share: float, cells: int = BAR_CELLS) -> str:
    """A horizontal bar `cells` wide filled to `share` (0..1), in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, share)) * cells * 8)
    full, rest = divmod(eighths, 8)
    return ("█" * full + (EIGHTHS[rest] if rest else "")).ljust(cells)


def breakdown_text(s: RunSnapshot) -> Text:
    """Fixed-width lines (`WIDTH` cells) so the panel fits half of an 80-column terminal."""
    phases = sorted(s.perf_latest_ms.items(), key=lambda kv: -kv[1])
    if not phases:
        # A trainer may report steps/s (SB3's time/fps) or extras without any phase timing.
        reported = bool(s.perf_extras) or s.sps is not None
        text = Text("[PERF] no phases reported" if reported else "[PERF] no perf events yet", style="dim")
        return _with_extras(text, s.perf_extras)
    total = sum(ms for _, ms in phases) or 1.0
    grew = s.grew_most()
    text = Text("[PERF] ms/step   share       %\n", style="bold")
    for phase, ms in phases:
        marked = grew is not None and phase == grew[0]
        text.append(f"{'▲' if marked else ' '} {phase[:13]:<13}", style="bold yellow" if marked else "")
        text.append(f"{ms:7.3f} ")
        text.append(bar(ms / total), style="green")
        text.append(f" {100 * ms / total:3.0f}%\n")
    text.append(f"  {'total':<13}{total:7.3f}\n", style="bold")
    if grew is not None:
        text.append(f"▲ grew most: {grew[0]} +{grew[1]:.3f} ms", style="yellow")
    return _with_extras(text, s.perf_extras)


def extra_lines(extras: tuple[tuple[str, str], ...], width: int = WIDTH, lines: int = EXTRA_LINES) -> list[str]:
    """`name value` pairs packed into at most `lines` lines of `width` cells (each pair cut to fit a
    line); an ellipsis ends the last line when some did not fit."""
    out: list[str] = []
    line = ""
    for name, value in extras:
        pair = f"{name} {value}"[:width - 2]
        if line and len(line) + 2 + len(pair) <= width:
            line += "  " + pair
            continue
        if line:
            out.append(line)
        line = pair
        if len(out) == lines:
            out[-1] = out[-1][:width - 1] + "…"
            return out
    return [*out, line] if line else out


def _with_extras(text: Text, extras: tuple[tuple[str, str], ...]) -> Text:
    for line in extra_lines(extras):
        text.append(line if text.plain.endswith("\n") else f"\n{line}", style="cyan")
    return text


class PerfBreakdown(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[object, ...] | None = None

    def show(self, s: RunSnapshot) -> None:
        shown = (s.perf_latest_ms, s.perf_first_ms, s.perf_extras)
        if shown != self._shown:
            self._shown = shown
            self.update(breakdown_text(s), layout=False)  # fixed size: no layout pass needed
