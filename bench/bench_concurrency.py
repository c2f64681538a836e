"""Concurrent runs on one machine: does each of two runs started together keep a fair part of the
throughput of one run alone?

Three cases, each a time box of real `trainctl` runs started through engine.launcher (the path of
`trainctl run --detach`), stopped together with SIGINT at the end of the box:
  1. one PPO run alone (balance profile, Beasty Bar);
  2. two such PPO runs started together;
  3. for information: a dqn-per run (balance, Skirmish) alone, then beside a PPO run.
Throughput is read from each run's events.jsonl perf events: env steps between the end of the first
window that closes after every run of the case has finished its first WARMUP_WINDOWS windows and the
end of the last window that closes before any run of the case has ended, over the time between them.
So imports, model building and a run alone at the end of a pair never count. DQN's perf windows are
made short (`log.every_steps=500`, about a second at its rate alone); a run too slow to close enough
windows is measured from its status.json step count instead (written about once a second).

Prints steps/s of each run and, last, `ratio run_a/alone = X %, run_b/alone = Y % (target >= 40 %)`
with PASS or FAIL. The machine is shared: the bench first waits (a few tries) for the 1-minute load
average to drop below --max-load and prints the load it started at.

    .venv/bin/python bench/bench_concurrency.py [--seconds 45] [--max-load 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from engine import launcher  # noqa: E402
from engine.runstore import RunDir  # noqa: E402

WARMUP_WINDOWS = 2
TARGET = 0.40
PPO = launcher.Job(algo="ppo", env="beastybar", profile="balance", steps=10**9)
DQN = launcher.Job(algo="dqn-per", env="skirmish", profile="balance", steps=10**9,
                   assignments=("log.every_steps=500",))


def perf_points(run: RunDir) -> list[tuple[float, int]]:
    """(time, step) at the end of each perf window of `run`."""
    points = []
    for line in run.events_path.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("kind") == "perf":
            points.append((float(event["t"]), int(event["step"])))
    return points


def rates(runs: list[RunDir]) -> list[float | None]:
    """Each run's steps/s over the time every run of the case was past its warm-up and still running."""
    points = [perf_points(run) for run in runs]
    if any(len(p) <= WARMUP_WINDOWS for p in points):
        return [None] * len(runs)
    start = max(p[WARMUP_WINDOWS - 1][0] for p in points)
    end = min(p[-1][0] for p in points)
    out: list[float | None] = []
    for p in points:
        inside = [(t, s) for t, s in p if start <= t <= end]
        if len(inside) < 2:
            out.append(None)
            continue
        (t0, s0), (t1, s1) = inside[0], inside[-1]
        out.append((s1 - s0) / (t1 - t0))
    return out


def status_point(run: RunDir) -> tuple[float, int]:
    """(time, step) of the run's last status.json update (written about once a second while it steps)."""
    status = run.read_status()
    return float(status.get("updated", 0.0)), int(status.get("step") or 0)


def run_case(jobs: list[launcher.Job], seconds: float, runs_dir: Path) -> list[float | None]:
    """Start `jobs` together, stop them after `seconds`; their steps/s (perf windows, else status.json
    between a third of the box and its end, for a run too slow to close windows)."""
    started = [launcher.launch(job, runs_dir) for job in jobs]
    time.sleep(seconds / 3)
    early = [status_point(run) for run, _proc in started]
    time.sleep(seconds - seconds / 3)
    late = [status_point(run) for run, _proc in started]
    for run, _proc in started:
        try:
            launcher.stop(run)
        except Exception as exc:  # a run that failed early: its log says why
            print(f"  {run.run_id}: {exc}; see {run.stdout_path}")
    for _run, proc in started:
        proc.wait(timeout=120)
    for run, _proc in started:
        thread_lines = [line for line in run.stdout_path.read_text(encoding="utf-8").splitlines()
                        if "threads" in line]
        for line in thread_lines[:4]:
            print(f"  {run.run_id[-24:]}: {line.strip()}")
    coarse = [(s1 - s0) / (t1 - t0) if t1 > t0 and s0 > 0 else None
              for (t0, s0), (t1, s1) in zip(early, late, strict=True)]
    fine = rates([run for run, _proc in started])
    return [f if f is not None else c for f, c in zip(fine, coarse, strict=True)]


def wait_for_quiet(max_load: float, tries: int, pause: float) -> float:
    for attempt in range(tries):
        load = os.getloadavg()[0]
        if load <= max_load:
            return load
        print(f"load {load:.2f} > {max_load}: waiting {pause:.0f} s (try {attempt + 1}/{tries})", flush=True)
        time.sleep(pause)
    return os.getloadavg()[0]


def show(value: float | None) -> str:
    return f"{value:,.0f}" if value is not None else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=45.0, help="time box of each case")
    parser.add_argument("--max-load", type=float, default=0.5)
    parser.add_argument("--tries", type=int, default=6)
    parser.add_argument("--no-dqn", action="store_true", help="skip the dqn-per + ppo case")
    args = parser.parse_args()
    load = wait_for_quiet(args.max_load, args.tries, 30.0)
    print(f"load average at start {load:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_concurrency_") as tmp:
        (alone,) = run_case([PPO], args.seconds, Path(tmp) / "alone")
        print(f"ppo alone: {show(alone)} steps/s", flush=True)
        if not args.no_dqn:
            (dqn_alone,) = run_case([DQN], args.seconds, Path(tmp) / "dqn")
            print(f"dqn-per alone: {show(dqn_alone)} steps/s (for information)", flush=True)
            dqn, ppo = run_case([DQN, PPO], args.seconds, Path(tmp) / "mixed")
            print(f"dqn-per beside ppo: dqn {show(dqn)} steps/s, ppo {show(ppo)} steps/s (for information)",
                  flush=True)
        a, b = run_case([replace(PPO, name="ppo-a"), replace(PPO, name="ppo-b")], args.seconds, Path(tmp) / "pair")
        print(f"ppo pair: run_a {show(a)} steps/s, run_b {show(b)} steps/s", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    if alone is None or a is None or b is None:
        print("FAIL: a run closed too few perf windows to measure")
        return 1
    ra, rb = a / alone, b / alone
    ok = min(ra, rb) >= TARGET
    print(f"ratio run_a/alone = {100 * ra:.0f} %, run_b/alone = {100 * rb:.0f} % (target >= {100 * TARGET:.0f} %)"
          f" {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
