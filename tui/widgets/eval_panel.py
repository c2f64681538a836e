"""The eval panel: the run's latest evaluation table (docs/events.md, `eval` events) with each win rate's
95 % interval, each opponent's win rate over the run's evaluations as a trend, and the best evaluation
(by the score `best/` is chosen by: engine.eval_scores) marked.

It shows what `trainctl eval` and evaluation during training wrote; it must not read files or compute a
rate that is not in the events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.widgets import Static

from engine.eval_scores import table_score
from tui.model import RunSnapshot

TREND_BARS = "▁▂▃▄▅▆▇█"
TREND_POINTS = 24  # the newest evaluations a trend shows, one cell each


def event_score(game: str, event: Mapping[str, Any]) -> float | None:
    """The event's table score as `game`'s trainer ranks it for best/ (engine.eval_scores), over the
    pairings that were played; None without one."""
    played = [row for row in event.get("rows", ()) if row.get("games")]
    return table_score(game).of(played) if played else None


def trend(rates: Sequence[float]) -> str:
    """One bar per rate in [0, 1], ▁ (0) to █ (1)."""
    top = len(TREND_BARS) - 1
    return "".join(TREND_BARS[round(min(max(rate, 0.0), 1.0) * top)] for rate in rates)


def _percent(value: Any) -> str:
    return f"{100 * value:.1f}" if isinstance(value, int | float) else "-"


def _row(cells: Sequence[str]) -> str:
    """One line of the table: opponent, games, W-D-L, win %, interval, margin, turns, illegal (71 cells)."""
    opponent, games, wdl, win, interval, margin, turns, illegal = cells
    return f"{opponent[:12]:<12} {games:>5}  {wdl:<11} {win:>5}  {interval:<11} {margin:>6} {turns:>5} {illegal:>7}"


def table_lines(event: Mapping[str, Any]) -> list[str]:
    """The event's rows as aligned lines under a header; a stopped pairing says why under its row."""
    header = _row(("opponent", "games", "W-D-L", "win %", "95 % int.", "margin", "turns", "illegal"))
    lines = [f"[b]{escape(header)}[/b]"]
    for row in event.get("rows", ()):
        margin, illegal = row.get("margin"), row.get("illegal_rate")
        lines.append(escape(_row((
            str(row.get("opponent", "?")), str(row.get("games", 0)),
            f"{row.get('wins', 0)}-{row.get('draws', 0)}-{row.get('losses', 0)}", _percent(row.get("win_rate")),
            f"{_percent(row.get('win_low'))}-{_percent(row.get('win_high'))}",
            f"{margin:+.1f}" if isinstance(margin, int | float) else "-", f"{row.get('turns', 0):.1f}",
            f"{_percent(illegal)} %" if illegal is not None else "-"))))
        if row.get("stopped"):
            lines.append(f"  [$error]stopped: {escape(str(row['stopped']))}[/]")
    return lines


class EvalPanel(VerticalScroll):
    """`show(snapshot)`: the latest eval table, the trends and the best evaluation of the run."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._body = Static(classes="eval-body")
        self._shown: tuple[Mapping[str, Any], ...] | None = None

    def compose(self) -> ComposeResult:
        yield self._body

    def show(self, s: RunSnapshot) -> None:
        if s.evals is self._shown or s.evals == self._shown:
            return
        self._shown = s.evals
        if not s.evals:
            self._body.update("no evaluations yet: `trainctl eval RUN --vs …`, or `--set eval.every_steps=N` "
                              "when the run starts, writes them here")
            return
        latest = s.evals[-1]
        score = table_score(s.env)
        scores = [event_score(s.env, event) for event in s.evals]
        ranked = [(score, i) for i, score in enumerate(scores) if score is not None]
        best_score, best = max(ranked) if ranked else (None, None)
        mark = "  [$success]★ best so far[/]" if best == len(s.evals) - 1 else ""
        lines = [f"eval at step {latest.get('step', 0):,} · {escape(str(latest.get('checkpoint', '?')))} · "
                 f"{latest.get('games', 0):,} games a pairing{mark}", "", *table_lines(latest)]
        if best is not None and best != len(s.evals) - 1:
            shown_score = f"{_percent(best_score)} %" if score.rate else f"{best_score:+.2f}"
            lines += ["", f"★ best: step {s.evals[best].get('step', 0):,}, {score.name} {shown_score} "
                          f"({escape(str(s.evals[best].get('checkpoint', '?')))})"]
        lines += ["", f"[b]win rate over the last {min(len(s.evals), TREND_POINTS)} evaluations[/b]"]
        for opponent in dict.fromkeys(row.get("opponent") for event in s.evals for row in event.get("rows", ())):
            rates = [row["win_rate"] for event in s.evals[-TREND_POINTS:] for row in event.get("rows", ())
                     if row.get("opponent") == opponent and row.get("games")]
            if rates:
                lines.append(f"{escape(str(opponent)[:12]):<12} {trend(rates):<{TREND_POINTS}}  "
                             f"{_percent(rates[-1])} %")
        self._body.update("\n".join(lines))
