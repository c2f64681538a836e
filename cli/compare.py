"""`trainctl compare RUN RUN ...`: runs side by side in one plain table, the TUI compare screen's
(tui.comparison): state, config differences, throughput, [PERF] phases, key metrics, and for world-model
runs their time, epochs and latest wm-bench figures and verdict."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.errors import UsageError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compare", help="runs side by side: config differences, time, speed, metrics, wm-bench")
    p.add_argument("runs", nargs="+", metavar="RUN", help="two or more run ids (or unique prefixes)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"))


def run(args: argparse.Namespace) -> int:
    from engine.runstore import check_runs_dir, resolve_run
    from tui.comparison import compare_rows, plain_table
    from tui.model import RunTracker

    check_runs_dir(args.runs_dir, writable=False)
    if len(args.runs) < 2:
        raise UsageError(f"compare needs two or more runs, got {len(args.runs)}; expected `trainctl compare RUN RUN "
                         "...`")
    runs = [resolve_run(ref, args.runs_dir) for ref in args.runs]
    if len({run.run_id for run in runs}) < len(runs):
        raise UsageError("the same run is named twice; expected two or more different runs")
    snapshots = []
    for run in runs:
        tracker = RunTracker(run)
        tracker.refresh()
        snapshots.append(tracker.snapshot())
    print(plain_table(["", *(run.run_id for run in runs)], compare_rows(snapshots)))
    return 0
