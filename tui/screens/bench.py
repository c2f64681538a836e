"""A bench (`trainctl bench`) as a compare screen of its two sides with the verdict on top.

The banner: the verdict (PASS, FAIL, UNDECIDED, or none yet), the paired seeds, both sides, the rule and
its thresholds, and the stopping rule of `--until-decided`. The table, a column per side as in the
compare screen: throughput (mean steps/s, the candidate / baseline ratio with its interval, the bar and
how the interval stands to it), each [PERF] phase's ratio, quality (mean win rate, the difference with
its interval), the sequential test's log-likelihood ratios, then one row per seed: each cell a run, Enter
opens it. Everything comes from engine.abtest's report of the folder, re-read while the bench runs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Header, Static

from engine import abstats
from engine.abtest import BenchAsk, paired
from engine.sweep import Row as TrialRow
from tui.comparison import Row, section_row
from tui.format import number
from tui.groups import GroupView
from tui.screens.group import GroupScreen
from tui.screens.run import RunScreen
from tui.widgets.table_fill import refill

SIDES = ("baseline", "candidate")
COLUMNS = (("field", ""), ("baseline", "baseline"), ("candidate", "candidate"), ("change", "vs baseline"),
           ("bar", "bar verdict"))
# Which win rate the pairs compare (engine.abtest.QUALITY_SOURCES says it in full, in the report).
QUALITY_SOURCE = {"eval": "last eval table", "eval/win_rate": "eval/win_rate", "rollout/win_rate": "rollout window"}
VERDICT_STYLE = {abstats.PASS: "bold green", abstats.FAIL: "bold red", abstats.UNDECIDED: "bold yellow"}


def _said(part: str, bar: str) -> Text:
    return Text(f"{bar} {part}", style=VERDICT_STYLE.get(part, ""))


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _interval(data: dict[str, Any] | None) -> abstats.Interval | None:
    return abstats.Interval(**data) if data else None


def verdict_of(view: GroupView) -> str | None:
    """PASS, FAIL, UNDECIDED (maybe '(still running)'), or None: no verdict yet or none asked."""
    return view.report.get("verdict") if view.report else None


def banner(view: GroupView) -> tuple[str, str]:
    """(markup of the lines above the table, the CSS class of its verdict)."""
    if view.error:
        return f"[b]bench {escape(view.path.name)}[/b]\n{escape(view.error)}", "none"
    ask = BenchAsk.from_json(view.ask)
    report = view.report or {}
    verdict = verdict_of(view)
    if verdict:
        head, css = f"VERDICT: {verdict}", verdict.split()[0].lower()
    elif ask.verdict:
        head, css = "VERDICT: none yet (fewer than 2 paired seeds finished)", "none"
    else:
        head, css = "no verdict asked (--no-verdict)", "none"
    shared = f", both with {' '.join(ask.sets)}" if ask.sets else ""
    rule = ask.rule()
    lines = [f"[b]{head}[/b] · {report.get('pairs', 0)} paired seeds · {view.progress()}",
             f"{ask.algo}/{ask.env}, {ask.steps:,} steps a run, baseline {ask.baseline.describe()}, candidate "
             f"{ask.candidate.describe()}{shared}",
             f"rule: throughput >= x{rule.ratio_bar:.2f} and win-rate change >= {-rule.max_loss:+g} points, "
             f"{100 * rule.confidence:g} % intervals"]
    seq = ask.sequential()
    if seq is not None:
        h1 = {name: test.mu1 for name, test in seq.tests().items()}
        lines.append(f"stop: SPRT, alpha = beta = {seq.alpha:g}, H1 at x{math.exp(h1['throughput']):.2f} / "
                     f"{h1['quality']:+g} points, at most {seq.max_pairs} seeds")
    return "\n".join(escape(line) if i else line for i, line in enumerate(lines)), css


def bench_rows(view: GroupView) -> list[tuple[str | None, Row]]:
    """(row key, cells) of the table: a seed row's key is its seed ('s3'), the others have none."""
    ask = BenchAsk.from_json(view.ask)
    rule, seq = ask.rule(), ask.sequential()
    report = view.report or {}
    judged = report.get("interval_verdict") or {}
    pairs = paired(list(view.rows))
    base, cand = [b for b, _ in pairs], [c for _, c in pairs]
    rows: list[tuple[str | None, Row]] = [(None, section_row("throughput", 4))]
    ratio = _interval(judged.get("throughput"))
    rows.append((None, ("steps/s", number(_mean([f.sps for f in base]), ",.0f"),
                        number(_mean([f.sps for f in cand]), ",.0f"),
                        f"x{ratio.estimate:.2f} [{ratio.low:.2f},{ratio.high:.2f}]" if ratio else "-",
                        _said(ratio.against(rule.ratio_bar), f">=x{rule.ratio_bar:.2f}") if ratio else
                        f">=x{rule.ratio_bar:.2f}")))
    phases = report.get("phases") or {}
    if phases:
        rows.append((None, section_row("[PERF] ms", 4)))
    for phase, data in phases.items():
        got = abstats.Interval(**data)
        rows.append((None, (phase, number(_mean([f.ms[phase] for f in base]), ".3f"),
                            number(_mean([f.ms[phase] for f in cand]), ".3f"),
                            f"x{got.estimate:.2f} [{got.low:.2f},{got.high:.2f}]", "")))
    sources = report.get("quality_from") or []
    source = "mixed sources!" if len(sources) > 1 else QUALITY_SOURCE.get(sources[0], sources[0]) if sources else ""
    rows.append((None, (*section_row("quality", 2), Text(source, style="italic"), "")))
    diff = _interval(judged.get("quality"))
    with_quality = all(f.win is not None for f in (*base, *cand))
    bar = f">={-rule.max_loss:+g}"
    rows.append((None, ("win %", number(_mean([f.win for f in base]) if with_quality else None, ".1f"),
                        number(_mean([f.win for f in cand]) if with_quality else None, ".1f"),
                        f"{diff.estimate:+.1f} [{diff.low:+.1f},{diff.high:+.1f}]" if diff else "-",
                        _said(diff.against(-rule.max_loss), bar) if diff else
                        (bar if with_quality else "none"))))
    sequential = report.get("sequential")
    if seq is not None:
        rows.append((None, section_row("SPRT LLR", 4)))
        for name, test in seq.tests().items():
            llr = (sequential or {}).get("llr", {}).get(name)
            decided = (sequential or {}).get("decided", {}).get(name)
            low, high = test.bounds
            said = {"H1": Text("H1 pass", style="bold green"), "H0": Text("H0 fail", style="bold red")}
            bounds = f"of {low:.2f},{high:.2f}"
            rows.append((None, (name, "", "", f"{llr:+.2f} {bounds}" if llr is not None else f"- {bounds}",
                                said.get(decided or "", "open"))))
    unit = Text("sps · win %", style="italic")
    rows.append((None, (*section_row("seeds", 0), unit, unit, Text("ratio · diff", style="italic"), "")))
    rows += [(f"s{seed}", (f"seed {seed}", *(_run_cell(r) for r in sides), _pair_change(*sides), ""))
             for seed, sides in seed_rows(view.rows).items()]
    return rows


def seed_rows(rows: tuple[TrialRow, ...]) -> dict[int, tuple[TrialRow | None, TrialRow | None]]:
    """Each seed's (baseline, candidate) trial rows, in seed order (trials are named s<seed>-<side>)."""
    by_seed: dict[int, dict[str, TrialRow]] = {}
    for row in rows:
        seed, _, side = row.trial.name[1:].partition("-")
        by_seed.setdefault(int(seed), {})[side] = row
    return {seed: (sides.get("baseline"), sides.get("candidate")) for seed, sides in sorted(by_seed.items())}


def _run_cell(row: TrialRow | None) -> str:
    f = row.figures if row else None
    if f is None:
        return "not started"
    if f.state != "finished":
        return f.state
    return f"{number(f.sps, ',.0f')} · {number(f.win, '.1f')}"


def _pair_change(base: TrialRow | None, cand: TrialRow | None) -> str:
    b, c = (r.figures if r else None for r in (base, cand))
    if b is None or c is None or b.state != "finished" or c.state != "finished" or not b.sps or not c.sps:
        return ""
    quality = f" · {c.win - b.win:+.1f}" if b.win is not None and c.win is not None else ""
    return f"x{c.sps / b.sps:.2f}{quality}"


class BenchScreen(GroupScreen):
    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self._rows: list[tuple[str | None, Row]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"reading {self.folder} …", id="verdict", classes="none")
        yield DataTable(id="bench", zebra_stripes=True, cursor_type="cell")
        yield Footer(compact=True)

    def show(self, view: GroupView) -> None:
        self.view = view
        self.sub_title = f"bench {self.folder.name}"
        text, css = banner(view)
        verdict = self.query_one("#verdict", Static)
        verdict.update(text)
        verdict.set_classes(css)
        table: DataTable[str | Text] = self.query_one(DataTable)
        rows = bench_rows(view) if not view.error else []
        if rows == self._rows and table.columns:
            return
        self._rows = rows
        cursor = table.cursor_coordinate
        first = not table.columns
        refill(table, COLUMNS, rows)
        if first:
            table.focus()
        if rows:
            table.move_cursor(row=min(cursor.row, len(rows) - 1), column=cursor.column)

    def action_open_run(self) -> None:
        """Open the run under the cursor: a seed row's baseline or candidate cell."""
        table: DataTable[str | Text] = self.query_one(DataTable)
        if self.view is None or not table.row_count:
            return
        cell = table.coordinate_to_cell_key(table.cursor_coordinate)
        side = cell.column_key.value
        seed = cell.row_key.value
        if seed is None or not seed.startswith("s") or side not in SIDES:
            self.notify("move to a seed's baseline or candidate cell to open its run", severity="warning")
            return
        row = self.view.row(f"{seed}-{side}")
        if row is None or row.run is None:
            self.notify(f"{seed}-{side} has no run yet", severity="warning")
            return
        self.app.push_screen(RunScreen(row.run.path, f"{self.folder.name} · {row.trial.label}"))
