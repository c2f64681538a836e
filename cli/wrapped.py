"""The command-line side of watching trainers we did not write: `trainctl run --parse/--tb -- CMD`,
`trainctl watch --tb DIR`, and what `trainctl report` says of such a run.

`watch --tb DIR` makes a run folder in --runs-dir (id `<time>_cmd_tb-<folder name>`) whose process
follows DIR's TensorBoard event files alone, so the folder's scalars are a run like any other for the
TUI, `status`, `report` and `compare`; it ends when stopped, or `finished` after ten quiet minutes.
Then it opens the TUI on it (the status table without a terminal). Never imports Textual itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine import launcher
from engine.errors import UsageError
from engine.line_parsers import PARSE_CHOICES, read_summary
from engine.wrap import LINE_CAP_BYTES


def add_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("--parse", default="auto", metavar="FORMAT",
                     help=f"with -- CMD: how to read its output, one of {', '.join(PARSE_CHOICES)} (default auto)")
    run.add_argument("--tb", type=Path, metavar="DIR", help="with -- CMD: a TensorBoard log folder it writes, "
                     "followed for scalars (default: a runs/ or tb/ folder its arguments name)")


def add_watch_options(watch: argparse.ArgumentParser) -> None:
    watch.add_argument("--tb", type=Path, metavar="DIR", help="follow the TensorBoard log folder of a trainer "
                       "running or finished, as a run in --runs-dir")


def watch_tb(tb: Path, runs_dir: Path, target: str | None = None) -> str:
    """Start following `tb` alone as a new run in `runs_dir` (checked first: UsageError if it is no
    folder, or if a DIR|RUN `target` was given too); returns the run's id."""
    if target is not None:
        raise UsageError(f"watch --tb {tb} makes its own run; drop {target!r} (the runs folder is --runs-dir)")
    run, _ = launcher.launch_wrapped([], runs_dir, ["trainctl", *sys.argv[1:]], None, tb=tb)
    return run.run_id


def what_line(info: Mapping[str, Any]) -> str:
    """The report's `what` line: a wrapped run's command, folder and parser; ours' algo, game, profile, seed."""
    if info.get("kind") != "wrapped":
        return f"{info.get('algo')} on {info.get('env')}, profile {info.get('profile')}, seed {info.get('seed')}"
    command = " ".join(info.get("wrapped") or []) or "no command"
    given = "".join(f", {k} {info[k]}" for k in ("profile", "seed") if info.get(k) is not None)
    tb = f", TensorBoard {info['tb']}" if info.get("tb") else ""
    return f"wrapped: {command} (in {info.get('cwd')}), --parse {info.get('parse', 'auto')}{tb}{given}"


def read_lines(status: Mapping[str, Any]) -> list[str]:
    """The report's lines on how a wrapped run's output was read (none for a run of ours)."""
    lines = []
    if "read" in status:
        line = f"output   {read_summary(status['read'], int(status.get('lines_not_understood', 0)))}"
        cut = [f"{status[k]} {what}" for k, what in (("lines_capped", f"cut at {LINE_CAP_BYTES // 1024} KiB"),
                                                    ("lines_invalid_utf8", "not UTF-8")) if status.get(k)]
        lines.append(line + (f" ({', '.join(cut)})" if cut else ""))
    if status.get("tb"):
        lines.append(f"tb       {status.get('tb_files', 0)} event files in {status['tb']}")
    return lines
