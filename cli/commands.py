"""The headless commands: `run` (start and follow), `status`, `report` (a run, a sweep or a bench), `stop`,
`profiles`.

Plain text for pods, logs and dumb terminals; a Rich progress bar only when stdout is a terminal.
Never imports Textual (an import-linter contract checks it). Starts runs only through engine.launcher;
reads them only through engine.runstore and engine.events.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from cli import wrapped as wrapped_cli
from engine import launcher
from engine.abtest import group_report
from engine.checkpoint import latest_checkpoint
from engine.errors import UsageError
from engine.events import STATUS_PREFIX, EventTail, LineTail
from engine.profiles import SCHEMA, list_profiles, profile_summary, resolve
from engine.runstore import (
    ACTIVE_STATES,
    EXIT_CODES,
    RunDir,
    RunSummary,
    check_runs_dir,
    list_runs,
    resolve_run,
    summarize,
)
from tui.format import age, number


# -- run ----------------------------------------------------------------------------------------------
def run_command(args: argparse.Namespace, wrapped: list[str]) -> int:
    """Check everything, create the run folder, start the run process, follow it (unless --detach).

    A resumed run is followed from the end of its stdout.log (its earlier output is not printed again),
    after one line saying where it resumes."""
    command = ["trainctl", *sys.argv[1:]] if sys.argv else ["trainctl"]
    log: LineTail | None = None
    if args.resume:
        if args.algo or args.env or args.assignments or args.config or args.seed is not None or wrapped \
                or args.parse != "auto" or args.tb is not None:
            raise UsageError("--resume continues a run with its own config; only --steps (a new, larger total) "
                             "may change; drop --algo/--env/--set/--config/--seed/--parse/--tb")
        plan = launcher.prepare_resume(args.resume, args.runs_dir, args.steps)
        run = plan.run
        log = LineTail(run.stdout_path)
        log.skip_to_end()
        proc = launcher.start_resume(plan)
        total = f"; total {plan.total_steps} env steps" if plan.total_steps is not None else ""
        first = f"run {run.run_id} resumed at step {plan.step} from {plan.source}{total} (pid {proc.pid})"
    elif wrapped:
        run, proc = launcher.launch_wrapped(wrapped, args.runs_dir, command, args.name, args.profile, args.parse,
                                            args.tb, args.seed)
    else:
        if args.parse != "auto" or args.tb is not None:
            raise UsageError("--parse and --tb read a command we did not write; expected `trainctl run [--parse "
                             "FORMAT] [--tb DIR] -- CMD ...`")
        job = launcher.Job(algo=args.algo, env=args.env, profile=args.profile or "balance", steps=args.steps,
                           seed=args.seed,
                           assignments=tuple(args.assignments), config_file=args.config, name=args.name)
        run, proc = launcher.launch(job, args.runs_dir, command)
    if log is None:
        first = f"run {run.run_id} started (pid {proc.pid}) in {run.path}"
    if args.detach:
        print(first, flush=True)
        return 0
    return follow(run, lambda: proc.poll() is not None, first, log)


class ForwardInterrupt:
    """While a run is followed in the foreground, Ctrl-C asks it to stop (`launcher.stop`: its
    stop.request, and SIGINT once it runs); a second Ctrl-C kills it."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.count = 0

    def __enter__(self) -> ForwardInterrupt:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        try:
            note = launcher.stop(self.run, kill=self.count > 1, by="Ctrl-C on trainctl run")
        except UsageError as exc:
            note = str(exc)
        print(f"\ntrainctl: {note}", file=sys.stderr, flush=True)


def follow(run: RunDir, exited: Callable[[], bool], first: str, log: LineTail | None = None,
           poll_s: float = 0.2) -> int:
    """Print `first` once Ctrl-C is forwarded to the run, then echo the run's stdout.log (from `log`'s
    offset; default the start) until its process ends; on a terminal, a progress bar replaces the
    [STATUS] lines. Returns 0 finished, 130 stopped, 1 failed or lost."""
    log = LineTail(run.stdout_path) if log is None else log
    tty = sys.stdout.isatty()
    total = int(run.read_config().get("total_steps") or 0)
    with ForwardInterrupt(run):
        print(first, flush=True)
        if tty:
            _follow_with_bar(run, log, exited, total, poll_s)
        else:
            while True:
                done = exited()
                for line in _decoded(log.poll_lines()):
                    print(line, flush=True)
                if done:
                    break
                time.sleep(poll_s)
    status = run.read_status()
    state = run.effective_state(status)
    print(f"run {run.run_id} {launcher.ending(run, status, state)}; folder {run.path}", flush=True)
    return EXIT_CODES.get(state, 1)


def _decoded(lines: list[bytes]) -> list[str]:
    return [line.decode("utf-8", errors="replace").rstrip("\r") for line in lines]


def _follow_with_bar(run: RunDir, log: LineTail, exited: Callable[[], bool], total: int, poll_s: float) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.completed:,.0f}/{task.total:,.0f}"), TextColumn("{task.fields[sps]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(run.run_id[:40], total=total or None, sps="")
        while True:
            done = exited()
            for line in _decoded(log.poll_lines()):
                if line.startswith(STATUS_PREFIX):
                    continue
                progress.console.print(line, markup=False, highlight=False)
            summary = summarize(run, tail_bytes=16 * 1024)
            sps = f"{summary.sps:,.0f} steps/s" if summary.sps else ""
            progress.update(task, completed=summary.step, sps=sps)
            if done:
                break
            time.sleep(poll_s)


# -- status -------------------------------------------------------------------------------------------
def status_table(summaries: list[RunSummary]) -> str:
    header = ("RUN", "STATE", "ALGO", "ENV", "PROFILE", "STEP", "SPS", "REWARD", "WIN", "AGE")
    rows = [header] + [
        (s.run_id, s.state, s.algo, s.env, s.profile,
         f"{s.step:,}" + (f"/{s.total_steps:,}" if s.total_steps else ""), number(s.sps, ",.0f"),
         number(s.reward, ".3f"), number(s.win_rate, ".2f"), age(time.time() - s.created if s.created else None))
        for s in summaries
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def status_notes(runs: list[RunDir], summaries: list[RunSummary]) -> list[str]:
    """A line for each run that needs a person: unreadable (which file, why) or lost (what is known and
    the line that continues it)."""
    notes = []
    for run, s in zip(runs, summaries, strict=True):
        if s.state == "unreadable":
            notes.append(f"{s.run_id}: unreadable: {s.problem}")
        elif s.state == "lost":
            notes.append(f"{s.run_id}: lost: {run.lost_note(s.step, latest_checkpoint(run.checkpoints))}")
    return notes


def status_command(runs_dir: Path, watch: bool, interval: float) -> int:
    check_runs_dir(runs_dir, writable=False)
    while True:
        runs = list_runs(runs_dir)
        summaries = [summarize(r) for r in runs]
        text = "\n".join([status_table(summaries), *status_notes(runs, summaries)]) if runs \
            else f"no runs in {runs_dir}"
        if watch and sys.stdout.isatty():
            print("\x1b[2J\x1b[H", end="")
        if watch:
            print(time.strftime("%H:%M:%S"), f"{runs_dir}", flush=True)
        print(text, flush=True)
        if not watch:
            return 0
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return 0


# -- report -------------------------------------------------------------------------------------------
def report_command(ref: str, runs_dir: Path) -> int:
    """A run's snapshot, or the table of a sweep or bench folder (engine.abtest.group_report)."""
    print(group_report(ref, runs_dir) or report_text(resolve_run(ref, runs_dir)))
    return 0


def report_text(run: RunDir) -> str:
    """A concise snapshot: identity, state, throughput and [PERF] breakdown, latest metrics, files."""
    info, status = run.read_config(), run.read_status()
    summary = summarize(run)
    tail = EventTail(run.events_path)
    metrics: dict[str, float] = {}
    warnings: list[str] = []
    last_eval: dict[str, Any] | None = None
    for event in tail.poll():
        if event["kind"] == "metric":
            metrics.update(event.get("values", {}))
        elif event["kind"] == "eval":
            last_eval = event
        elif event["kind"] == "log" and event.get("level") in ("warning", "error"):
            warnings.append(f"{event.get('level')}: {event.get('msg')}")
    start, end = status.get("started") or status.get("created"), status.get("ended") or time.time()
    lines = [
        f"run      {run.run_id}",
        f"state    {summary.state}" + (f" (exit code {code})" if (code := status.get("exit_code")) is not None else ""),
        f"what     {wrapped_cli.what_line(info)}",
        f"steps    {summary.step:,}" + (f" of {summary.total_steps:,}" if summary.total_steps else ""),
        f"time     {(end - start) if start else 0:.0f}s",
        f"speed    {number(summary.sps, ',.0f')} steps/s, {number(summary.eps, ',.1f')} episodes/s (last window)",
    ]
    if summary.perf_ms:
        total_ms = sum(summary.perf_ms.values()) or 1.0
        lines.append("perf     ms per step (share):")
        for phase, ms in sorted(summary.perf_ms.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {phase:<14} {ms:9.4f}  {100 * ms / total_ms:5.1f}%")
    if metrics:
        lines.append("metrics  (latest)")
        lines += [f"  {k:<28} {v:.4g}" for k, v in sorted(metrics.items())]
    if last_eval is not None:
        lines += eval_lines(last_eval)
        lines += best_lines(run, str(info.get("env", "")))
    ckpt = latest_checkpoint(run.checkpoints)
    lines.append(f"ckpt     {ckpt.name if ckpt else 'none'}")
    if summary.state == "lost":
        lines.append(f"lost     {run.lost_note(summary.step, ckpt)}")
    request = run.read_stop_request()
    if request is not None and summary.state in ACTIVE_STATES:
        lines.append(f"stop     requested by {request.get('by', '?')}; waiting for the run to take it")
    lines += [f"total    {e.get('from_total')} -> {e.get('to_total')} steps at step {e.get('at_step')} "
              "(--steps on resume)" for e in info.get("extensions", [])]
    lines += wrapped_cli.read_lines(status)
    malformed = tail.malformed + summary.malformed_lines
    if malformed:
        lines.append(f"skipped  {malformed} malformed event/[PERF] lines")
    lines += [f"note     {w}" for w in warnings[-5:]]
    lines.append(f"folder   {run.path}")
    return "\n".join(lines)


def eval_lines(event: dict[str, Any]) -> list[str]:
    """The latest `eval` event (docs/events.md) as report lines: per opponent the win rate, its 95 %
    interval, the mean point margin and the raw illegal-move rate; a soccer row (it has goals) its goals
    for and against, the mean goal difference with its 95 % interval and the win rate with its interval.
    A malformed row is skipped."""
    lines = [f"eval     {event.get('checkpoint', '?')} (step {event.get('step', '?')}), {event.get('games', '?')} "
             f"games a pairing, seed {event.get('seed', '?')}"]
    for row in event.get("rows") or []:
        try:
            lines.append(_soccer_eval_line(row) if "goals_for" in row else _eval_line(row))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return lines


def _win(row: dict[str, Any]) -> str:
    return f"win {100 * row['win_rate']:5.1f}% ({100 * row['win_low']:.1f}-{100 * row['win_high']:.1f}%)"


def _eval_line(row: dict[str, Any]) -> str:
    illegal = row.get("illegal_rate")
    return (f"  vs {row['opponent']:<18} {_win(row)}  margin {row['margin']:+.2f}"
            + ("" if illegal is None else f"  illegal {100 * illegal:.2f}%")
            + (f"  stopped: {row['stopped']}" if row.get("stopped") else ""))


def _soccer_eval_line(row: dict[str, Any]) -> str:
    """Goals a game for:against, the goal difference (95 % interval when the row has one), the win rate."""
    low, high = row.get("margin_low"), row.get("margin_high")
    interval = f" ({low:+.2f} to {high:+.2f})" if low is not None and high is not None else ""
    return (f"  vs {row['opponent']:<8} goals {row['goals_for']:.2f}:{row['goals_against']:.2f}  "
            f"difference {row['margin']:+.2f}{interval}  {_win(row)}")


def best_lines(run: RunDir, game: str) -> list[str]:
    """The run's best/ checkpoint (kept by evaluation during training) and the score it was kept for,
    read from its table beside it; nothing when the run has none."""
    from engine.eval_scores import table_score
    from engine.players import BEST_FOLDER

    best = latest_checkpoint(run.path / BEST_FOLDER)
    if best is None:
        return []
    try:
        table = json.loads(best.with_suffix(".json").read_text(encoding="utf-8"))
        score = table_score(game)
        value = score.of([row for row in table["rows"] if row.get("games")])
        step = int(table["step"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return [f"best     {BEST_FOLDER}/{best.name} (its table is unreadable)"]
    shown = f"{100 * value:.1f}%" if score.rate else f"{value:+.3f}"
    return [f"best     {BEST_FOLDER}/{best.name} (step {step:,}): {score.name} {shown}"]


# -- stop ---------------------------------------------------------------------------------------------
def stop_command(ref: str, runs_dir: Path, kill: bool) -> int:
    """Ask the run to stop (or kill it), then wait a few seconds and say how it ended: `stopped at step
    N`, `still stopping (...)`, or how else. A run that is not running is a usage error (exit 2), as
    is a name that is no run: there is nothing to stop."""
    run = resolve_run(ref, runs_dir)
    print(launcher.stop(run, kill=kill), flush=True)
    if not kill:
        print(launcher.wait_stopped(run).line, flush=True)
    return 0


# -- profiles -----------------------------------------------------------------------------------------
def profiles_command(args: argparse.Namespace) -> int:
    if args.profiles_command == "show":
        cfg = resolve(args.name, algo=args.algo, env=args.env, config_file=args.config,
                      assignments=args.assignments)
        width = max(len(k) for k, _ in cfg.items())
        print(f"profile {args.name}")
        for dotted, setting in cfg.items():
            section, _, key = dotted.partition(".")
            print(f"  {dotted:<{width}}  {setting.value!s:<12}  {setting.source:<36}  {SCHEMA[section][key].help}")
        return 0
    for name in list_profiles():
        print(f"{name:<10} {profile_summary(name)}")
    return 0

