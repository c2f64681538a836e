"""Learning on soccer: the minutes of `trainctl run --algo ppo --env soccer` (the balance profile with the
soccer defaults of engine/profiles.py) until its policy beats the ball-chasing car.

The run evaluates its live policy every `--eval-every` env steps on the same `--games` games against
the chaser, half from each side (eval.every_steps; engine.soccer_eval: deterministic actions, its
normalisation frozen). **Beating the chaser** is the issue's criterion: a mean goal difference above 0
with its 95 % interval (eval rows' `margin_low`) above 0. The win rate with its Wilson interval is
printed beside it, and whether its lower bound passed 50 % (a stricter test: a draw is not a win).
The time is wall-clock minutes from the run's start (status.json `started`) to the eval event that
first meets the criterion: training and the evaluations before it, on this machine as loaded as it is.
The run is then stopped (its final checkpoint saved), or at `--minutes` if it never gets there.

Baseline, measured in the same process: a policy of uniformly random actions plays the same games
against the chaser (what the agent starts from, near enough), printed for scale. The ratio printed last
is the minutes against the budget `--minutes` (the issue's "~20-30 min of training here"): below 1x
the recipe beats the chaser within the budget; "not reached" otherwise.

    nice -n -5 .venv/bin/python bench/bench_soccer_learning.py [--minutes 30] [--steps 3e6]
        [--eval-every 250000] [--games 200] [--set SECTION.KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine import launcher
from engine.errors import UsageError
from engine.events import EventTail
from engine.runstore import list_runs
from engine.soccer_eval import play_soccer

PROJECT = Path(__file__).resolve().parent.parent
OPPONENT = "chaser"
EVAL_SEED = 10_000  # eval.seed's default: the run's evaluations and the baseline play the same games
POLL_S = 2.0


def beats(row: dict[str, Any]) -> bool:
    """The issue's criterion: the mean goal difference's 95 % interval lies above 0."""
    low = row.get("margin_low")
    return low is not None and low > 0


def row_line(step: int, minutes: float, row: dict[str, Any]) -> str:
    low, high = row.get("margin_low"), row.get("margin_high")
    interval = f"({low:+.2f} to {high:+.2f})" if low is not None and high is not None else ""
    return (f"{step:>10,} {minutes:7.1f}  {row['margin']:+.2f} {interval:<16} "
            f"{100 * row['win_rate']:5.1f}% ({100 * row['win_low']:.1f}-{100 * row['win_high']:.1f}%)")


def random_baseline(games: int) -> np.ndarray:
    """Per-game goal differences of uniformly random actions vs the chaser on the run's eval games."""
    rng = np.random.default_rng(0)
    result = play_soccer(lambda obs: rng.uniform(-1, 1, (len(obs), 2)).astype(np.float32), OPPONENT, games,
                         EVAL_SEED)
    return result.difference


def train_until_beaten(args: argparse.Namespace, runs_dir: Path) -> tuple[float | None, int | None]:
    """Run training, print each evaluation; (minutes, step) of the first that beats the chaser, or
    (None, None) within the budget."""
    cmd = [sys.executable, "-m", "cli.main", "run", "--algo", "ppo", "--env", "soccer", "--steps", str(int(args.steps)),
           "--runs-dir", str(runs_dir), "--set", f"eval.every_steps={args.eval_every}",
           "--set", f"eval.games={args.games}", "--set", f'eval.suite=["{OPPONENT}"]',
           "--set", f"eval.seed={EVAL_SEED}", "--set", "log.console=false",
           *(arg for assignment in args.set for arg in ("--set", assignment))]
    print("$ " + " ".join(cmd[1:]), flush=True)
    stderr_path = runs_dir / "stderr.log"  # a file, not a pipe: a pipe nobody reads can block the run
    stderr = open(stderr_path, "w", encoding="utf-8")  # noqa: SIM115 (closed once the run has ended)
    proc = subprocess.Popen(cmd, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 60 * args.minutes
    found: tuple[float | None, int | None] = (None, None)
    tail: EventTail | None = None
    started: float | None = None
    print(f"{'step':>10} {'minutes':>7}  goal difference (95 %)  win rate (95 %)", flush=True)
    try:
        while proc.poll() is None and time.monotonic() < deadline and found[0] is None:
            time.sleep(POLL_S)
            runs = list_runs(runs_dir)
            if not runs:
                continue
            run = runs[0]
            started = started or run.read_status().get("started")
            tail = tail or EventTail(run.events_path)
            for event in tail.poll():
                if event.get("kind") != "eval" or started is None:
                    continue
                row = next(r for r in event["rows"] if r["opponent"] == OPPONENT)
                minutes = (float(event["t"]) - float(started)) / 60
                print(row_line(int(event["step"]), minutes, row), flush=True)
                if beats(row) and found[0] is None:
                    found = (minutes, int(event["step"]))
    finally:
        ended_alone = proc.poll() is not None
        if not ended_alone:
            try:
                launcher.stop(list_runs(runs_dir)[0], by="bench_soccer_learning")
            except (UsageError, IndexError):
                proc.terminate()
        proc.wait()
        stderr.close()
    if ended_alone and proc.returncode != 0:
        print(f"the run ended with exit code {proc.returncode}:\n{stderr_path.read_text()[-2000:]}", flush=True)
    return found


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="budget of wall-clock minutes for the run")
    parser.add_argument("--steps", type=float, default=3e6,
                        help="the run's total env steps: the length of its learning-rate and entropy schedules")
    parser.add_argument("--eval-every", type=int, default=250_000, help="env steps between evaluations")
    parser.add_argument("--games", type=int, default=200, help="evaluation games vs the chaser")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="an override passed to the run (repeatable), e.g. to try a recipe")
    args = parser.parse_args()
    print(f"soccer learning: PPO (balance profile, soccer defaults) until it beats the {OPPONENT} over "
          f"{args.games} games; budget {args.minutes:g} min; load average {os.getloadavg()[0]:.1f} at the start",
          flush=True)
    baseline = random_baseline(args.games)
    print(f"baseline (random actions, same games): goal difference {baseline.mean():+.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_soccer_learning_") as tmp:
        minutes, step = train_until_beaten(args, Path(tmp))
    print(f"load average {os.getloadavg()[0]:.1f} at the end", flush=True)
    if minutes is None:
        print(f"not reached: the chaser was not beaten within {args.minutes:g} min")
        print(f"ratio minutes/budget = not reached (> 1x, budget {args.minutes:g} min)")
    else:
        print(f"beat the {OPPONENT} at step {step:,} after {minutes:.1f} min")
        print(f"ratio minutes/budget = {minutes / args.minutes:.2f}x (target <= 1x, budget {args.minutes:g} min)")
