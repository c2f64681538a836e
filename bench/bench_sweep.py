"""A local sweep of 4 equal short runs with --parallel 2 against the same 4 runs one after another (--parallel 1):
the ratio of total wall times, parallel / sequential. Target: <= 1 (two at a time must not be slower than one
at a time; each run takes its fair share of the cores, engine.cores).

Each sweep is one `trainctl sweep --algo ppo --env beastybar --grid run.seed=0,1,2,3` subprocess in a fresh
folder, timed from start to exit (start-up of every run included: that is what a user waits for). The runs
differ only in their seed, so they do equal work. Both sweeps run in this one process, sequential first.

.venv/bin/python bench/bench_sweep.py [--steps 40000] [--profile balance]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def sweep_seconds(parallel: int, steps: int, profile: str, folder: Path) -> float:
    """Wall seconds of a 4-run sweep at `parallel` runs at once."""
    cmd = [sys.executable, "-m", "cli.main", "sweep", "--algo", "ppo", "--env", "beastybar", "--profile", profile,
           "--steps", str(steps), "--grid", "run.seed=0,1,2,3", "--parallel", str(parallel),
           "--set", "log.tensorboard=false", "--set", "checkpoint.every_steps=0", "--dir", str(folder)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"sweep failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout[-2000:]}"
                         f"{done.stderr[-2000:]}")
    print(done.stdout.rstrip().split("\n", 1)[0], flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40_000, help="env steps of each run")
    parser.add_argument("--profile", default="balance")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        sequential = sweep_seconds(1, args.steps, args.profile, Path(tmp) / "sequential")
        parallel = sweep_seconds(2, args.steps, args.profile, Path(tmp) / "parallel")
    ratio = parallel / sequential
    print(f"4 runs of ppo/beastybar, {args.steps:,} env steps each ({args.profile}): one at a time {sequential:.1f} s, "
          f"two at a time {parallel:.1f} s; ratio parallel/sequential = {ratio:.2f} (target <= 1) "
          f"{'PASS' if ratio <= 1 else 'FAIL'}")


if __name__ == "__main__":
    main()
