"""What the [PERF] phase timing costs: the same short PPO run (speed profile, one torch thread) with
`log.timing` on and off, alternated over several repeats, medians compared.

Each run goes through the real trainer (engine.ppo.train) in this process. Throughput is taken
between the first and the last perf window of a run (model set-up and the first window's warm-up
excluded), in env steps per CPU second of this process (`time.process_time`; with one torch thread
the whole run is this process's work, so other programs on the machine do not blur a 1 % figure),
and in steps per wall second for reference. On a machine shared with other work, CPU time per step
still swings by several % between identical runs (caches, SMT siblings), more than timing costs;
the figure compares the medians of many alternated runs, and the per-pair slowdowns and the best
runs are printed beside it so the spread is visible. Prints the cost in % LAST.

    .venv/bin/python bench/bench_instrumentation.py [--steps 32768] [--repeats 30]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from engine import ppo
from engine.context import RunContext
from engine.launcher import create_trainer_run
from engine.perf import PerfWindow
from engine.profiles import resolve

WINDOW_STEPS = 8192


class ClockedContext(RunContext):
    """A RunContext that notes the process CPU time and wall time at each perf window."""

    marks: list[tuple[int, float, float]]

    def perf(self, step: int, **extra: Any) -> PerfWindow:
        self.marks.append((step, time.process_time(), time.perf_counter()))
        return super().perf(step, **extra)


def one_run(steps: int, timing: bool, runs_dir: Path) -> tuple[float, float]:
    """(steps per CPU second, steps per wall second) between the first and the last perf window."""
    cfg = resolve("speed", algo="ppo", env="beastybar", cli={"run.total_steps": steps}, environ={},
                  assignments=["torch.threads=1", f"log.timing={str(timing).lower()}",
                               f"log.every_steps={WINDOW_STEPS}", "checkpoint.every_steps=0"])
    ctx = ClockedContext(create_trainer_run(cfg, runs_dir, ["bench_instrumentation"]), cfg)
    ctx.marks = []
    with contextlib.redirect_stdout(io.StringIO()):
        ppo.train(ctx, None)
    ctx.close()
    (step0, cpu0, wall0), (step1, cpu1, wall1) = ctx.marks[0], ctx.marks[-1]
    return (step1 - step0) / (cpu1 - cpu0), (step1 - step0) / (wall1 - wall0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=32_768, help="env steps per run")
    parser.add_argument("--repeats", type=int, default=30, help="runs per setting (alternated)")
    args = parser.parse_args()
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="bench_instr_") as tmp:
        for repeat in range(args.repeats):
            # Alternate which setting goes first so a drift in machine load hits both alike.
            for timing in ((True, False) if repeat % 2 == 0 else (False, True)):
                cpu_sps, wall_sps = one_run(args.steps, timing, Path(tmp))
                results[timing].append((cpu_sps, wall_sps))
                print(f"repeat {repeat} timing={'on ' if timing else 'off'} {cpu_sps:9,.0f} steps/CPU-s "
                      f"{wall_sps:9,.0f} steps/s", flush=True)
    med = {t: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
           for t, runs in results.items()}
    print(f"median timing off: {med[False][0]:,.0f} steps/CPU-s, {med[False][1]:,.0f} steps/s (wall)")
    print(f"median timing on:  {med[True][0]:,.0f} steps/CPU-s, {med[True][1]:,.0f} steps/s (wall)")
    wall_cost = 100 * (1 - med[True][1] / med[False][1])
    print(f"wall-clock cost {wall_cost:+.2f} % (for reference; machine load moves it)")
    pair_costs = [100 * (1 - on[0] / off[0]) for on, off in zip(results[True], results[False], strict=True)]
    print("per-pair cost %: " + " ".join(f"{c:+.2f}" for c in pair_costs) +
          f" (median {statistics.median(pair_costs):+.2f})")
    best = {t: max(r[0] for r in runs) for t, runs in results.items()}
    print(f"best timing off: {best[False]:,.0f} steps/CPU-s; best timing on: {best[True]:,.0f} steps/CPU-s")
    print(f"best-run cost {100 * (1 - best[True] / best[False]):+.2f} % (for reference)")
    print(f"cost of timing = {100 * (1 - med[True][0] / med[False][0]):+.2f} % of CPU steps/s "
          f"(medians of {args.repeats} alternated runs each; target <= 1 %)")
