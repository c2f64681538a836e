"""Self-play throughput: `trainctl run --algo ppo --env beastybar` with `selfplay.enabled=true` against the
same run with a fixed scripted opponent, at equal settings (the `speed` profile, same steps and seed, one
torch thread each), in the same process tree, one after the other.

Self-play's extra cost is the neural opponents' forward passes (one per network per round of waiting
games: engine.selfplay.NeuralOpponents) and the pool's bookkeeping; the fixed side's opponent plays
inside the Cython core. Snapshots are taken every 2 updates here so the pool holds several frozen
networks for most of the run (the case that costs most). Steps/s of each run: the steps of its perf
windows after the first (which holds start-up and the first rollout) over their wall time. Prints each
run's steps/s and, LAST, the ratio self-play / fixed (target >= 0.70).

    .venv/bin/python bench/bench_selfplay.py [--steps 81920] [--opponent random]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from itertools import pairwise
from pathlib import Path

from engine.runstore import list_runs

PROJECT = Path(__file__).resolve().parent.parent
TARGET = 0.70
SELFPLAY = ["selfplay.enabled=true", "selfplay.snapshot_every_updates=2", "selfplay.pool_size=5"]


def run_steps_per_second(steps: int, assignments: list[str], runs_dir: Path) -> tuple[float, int]:
    """(steps/s over the perf windows after the first, perf windows counted) of one `trainctl run`."""
    cmd = [sys.executable, "-m", "cli.main", "run", "--algo", "ppo", "--env", "beastybar", "--profile", "speed",
           "--steps", str(steps), "--seed", "0", "--runs-dir", str(runs_dir), "--set", "torch.threads=1",
           "--set", "log.every_steps=8192", "--set", "log.every_seconds=3600"]
    for assignment in assignments:
        cmd += ["--set", assignment]
    done = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    (run,) = list_runs(runs_dir)
    perf = [e for e in map(json.loads, run.events_path.read_text().splitlines()) if e["kind"] == "perf"]
    # Each window's steps are those since the previous perf event; its seconds follow from its steps/s.
    windows = [(e["step"] - before["step"], e["sps"]) for before, e in pairwise(perf)]
    windows = [(steps_done, sps) for steps_done, sps in windows if steps_done > 0 and sps > 0]
    if not windows:
        raise SystemExit("the run made fewer than two perf windows: raise --steps")
    return sum(n for n, _ in windows) / sum(n / sps for n, sps in windows), len(windows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=81_920, help="env steps of each run (10 speed rollouts)")
    parser.add_argument("--opponent", default="random",
                        help="the fixed run's scripted opponent (random, the default, costs least)")
    args = parser.parse_args()
    print(f"self-play vs fixed-opponent PPO: {args.steps:,} env steps each, profile speed, one torch thread",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_selfplay_fixed_") as tmp:
        fixed, fixed_windows = run_steps_per_second(args.steps, [f"env.opponent={args.opponent}"], Path(tmp))
    print(f"fixed ({args.opponent}) {fixed:10,.0f} steps/s over {fixed_windows} perf windows", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_selfplay_pool_") as tmp:
        pooled, pooled_windows = run_steps_per_second(args.steps, SELFPLAY, Path(tmp))
    print(f"self-play       {pooled:10,.0f} steps/s over {pooled_windows} perf windows", flush=True)
    print(f"ratio self-play/fixed steps/s = {pooled / fixed:.2f} (target >= {TARGET:.2f})")
