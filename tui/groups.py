"""Sweep and bench folders as the TUI shows them, read from disk — without Textual.

A group folder (engine.sweep: `group.json` plus a run folder per attempt of each trial) is read whole by
`GroupReader.read()`, from a screen's worker thread: each trial's newest run with its figures
(engine.sweep.group_rows: the figures `trainctl report` prints) and, for a bench, the report's verdict,
intervals and sequential test (engine.abtest.bench_report), so the screen and the headless report never
disagree. While no file of the folder changed (group.json, each run's status and events) a read returns
None, so a finished group costs a few stats a poll; while a run is active the folder is read again
every `ACTIVE_REREAD_S` regardless (a run whose process died changes no file). `list_groups` finds the
groups of a runs folder for the groups list. Nothing here raises for what it finds on disk: an
unreadable group.json becomes the view's `error`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import abtest
from engine.errors import UsageError
from engine.runstore import ACTIVE_STATES, list_runs
from engine.sweep import GROUP_FILE, Row, default_best_by, group_rows, latest_run, load_group
from tui.model import file_stamp

ACTIVE_REREAD_S = 5.0
DEFAULT_BEST_BY = "win"  # a view's until its folder is read; the saved report says which was asked


@dataclass(frozen=True)
class GroupView:
    """A group folder as last read: `kind` sweep or bench, what was asked, each trial's row, the bench's
    report JSON (None for a sweep), which figure marks a sweep's best trial, and what made it unreadable."""

    path: Path
    kind: str
    ask: dict[str, Any]
    rows: tuple[Row, ...]
    report: dict[str, Any] | None = None
    best_by: str = DEFAULT_BEST_BY
    error: str | None = None

    def state_counts(self) -> dict[str, int]:
        """How many trials are in each state ('not started' for a trial without a run yet)."""
        counts: dict[str, int] = {}
        for row in self.rows:
            state = row.figures.state if row.figures else "not started"
            counts[state] = counts.get(state, 0) + 1
        return counts

    def progress(self) -> str:
        """'3 finished, 1 running, 4 not started' (in that order of states, as they occur)."""
        return ", ".join(f"{n} {state}" for state, n in self.state_counts().items())

    def row(self, trial: str) -> Row | None:
        return next((r for r in self.rows if r.trial.name == trial), None)


def _saved_report(path: Path) -> dict[str, Any]:
    """The report.json the last `trainctl sweep|bench` saved there ({} when none yet, or unreadable)."""
    try:
        data = json.loads((path / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_group(path: Path) -> GroupView:
    """The group in `path` with every trial's figures (a view with `error` when the folder holds no
    readable group)."""
    try:
        group = load_group(path)
    except UsageError as exc:
        return GroupView(path, "?", {}, (), error=str(exc))
    rows = group_rows(group)
    if group.kind == "bench":
        try:
            report = abtest.bench_report(group, rows)[2]
        except (UsageError, KeyError, TypeError, ValueError) as exc:  # an ask of another version of trainctl
            return GroupView(path, group.kind, group.ask, tuple(rows), error=f"cannot judge this bench: {exc}")
        return GroupView(path, group.kind, group.ask, tuple(rows), report)
    best_by = str(_saved_report(path).get("best_by") or default_best_by(str(group.ask.get("algo"))))
    return GroupView(path, group.kind, group.ask, tuple(rows), best_by=best_by)


class GroupReader:
    """Reads one group folder again only when something in it changed (module docstring)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.clock = clock
        self._stamps: tuple[Any, ...] | None = None
        self._active_since: float | None = None

    def _folder_stamps(self) -> tuple[Any, ...]:
        runs = list_runs(self.path)
        return (file_stamp(self.path / GROUP_FILE), file_stamp(self.path / "report.json"),
                *((r.run_id, file_stamp(r.status_path), file_stamp(r.events_path)) for r in runs))

    def read(self) -> GroupView | None:
        """The group as it is now, or None when nothing changed since the last read."""
        try:
            stamps = self._folder_stamps()
        except OSError as exc:
            return GroupView(self.path, "?", {}, (), error=f"cannot read {self.path}: {exc.strerror or exc}")
        now = self.clock()
        stale = self._active_since is not None and now - self._active_since >= ACTIVE_REREAD_S
        if stamps == self._stamps and not stale:
            return None
        self._stamps = stamps
        view = read_group(self.path)
        active = any(r.figures is not None and r.figures.state in ACTIVE_STATES for r in view.rows)
        self._active_since = now if active else None
        return view


@dataclass(frozen=True)
class GroupSummary:
    """One line of the groups list: the folder, its kind, what it trains, its trials by state, and its
    outcome (a bench's verdict, a sweep's best trial, from the saved report; '-' before one is saved)."""

    path: Path
    kind: str
    what: str
    trials: int
    finished: int
    active: int
    outcome: str


def _outcome(kind: str, report: dict[str, Any]) -> str:
    if kind == "bench":
        return str(report.get("verdict") or "-")
    best = next((r for r in report.get("rows", []) if r.get("best")), None)
    return f"best {best['trial']}: {best['label']}" if best else "-"


def list_groups(runs_dir: Path) -> list[GroupSummary]:
    """The sweep and bench folders in `runs_dir` (and `runs_dir` itself when it is one), oldest first."""
    try:
        folders = [runs_dir, *sorted(p for p in runs_dir.iterdir() if p.is_dir())]
    except OSError:
        return []
    found = []
    for folder in folders:
        try:
            group = load_group(folder)
            stamp = (folder / GROUP_FILE).stat().st_mtime
        except (UsageError, OSError):
            continue
        states = [run.effective_state() if run else None for run in (latest_run(folder, t) for t in group.trials)]
        found.append((stamp, GroupSummary(folder, group.kind, f"{group.ask.get('algo')}/{group.ask.get('env')}",
                                          len(states), states.count("finished"),
                                          sum(s in ACTIVE_STATES for s in states),
                                          _outcome(group.kind, _saved_report(folder)))))
    return [summary for _, summary in sorted(found, key=lambda item: item[0])]
