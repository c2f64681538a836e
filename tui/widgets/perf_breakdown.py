"""The `[PERF]` breakdown of the selected run: each phase's ms per env step and its share of the step
as a bar, most costly first, with the phase that grew most since the run's first perf event marked."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.model import RunSnapshot

BAR_CELLS = 8
EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(share: float, cells: int = BAR_CELLS) -> str:
    """A horizontal bar `cells` wide filled to `share` (0..1), in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, share)) * cells * 8)
    full, rest = divmod(eighths, 8)
    return ("█" * full + (EIGHTHS[rest] if rest else "")).ljust(cells)


def breakdown_text(s: RunSnapshot) -> Text:
    """Fixed-width lines (37 cells) so the panel fits half of an 80-column terminal."""
    phases = sorted(s.perf_latest_ms.items(), key=lambda kv: -kv[1])
    if not phases:
        return Text("[PERF] no perf events yet", style="dim")
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
    return text


class PerfBreakdown(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[object, ...] | None = None

    def show(self, s: RunSnapshot) -> None:
        shown = (s.perf_latest_ms, s.perf_first_ms)
        if shown != self._shown:
            self._shown = shown
            self.update(breakdown_text(s), layout=False)  # fixed size: no layout pass needed
