"""PPO end to end on soccer: `trainctl run --algo ppo --env soccer --profile speed` with OURS_SETTINGS (SB3's
defaults) vs SB3's PPO with its default settings on a DummyVecEnv of 8 reference
(pure-Python) soccer envs, the same step budget and training seeds (S..S+N-1) for both, same machine, same run.

Throughput: our env steps over the run process's training time (status.json `started` -> `ended`:
includes importing SB3, building the model, VecNormalize and saving checkpoints); the baseline's env
steps over its `learn()` call alone (model construction excluded); each side's steps/s is its steps over
its seconds summed over the seeds, and the seeds alternate (ours, SB3, ours, ...) so both see the same
load. Quality: every final policy plays the same fixed games against the chaser, half from each side
(engine.soccer_eval: deterministic actions; ours with its checkpoint's normalisation statistics frozen,
the baseline has none). With two or more seeds a side's figure is the mean over seeds of each policy's
mean goal difference, its 95 % interval Student's t over the seeds, and the difference ours - SB3 is
paired by seed index (valid, if no tighter than unpaired: the two sides of a seed share no weights);
with one seed the interval is over the games, the difference paired by game (the same games). Pass:
speed ratio >= 5x and quality not worse than SB3's by more than QUALITY_MARGIN: the lower end of the
95 % interval of ours - SB3 at or above -0.25 goals a game (below). Both sides use one torch thread. With `--jobs 2`
two seeds train at once, one process each (ours then SB3's for each seed), so each side shares the
machine with one other single-thread training the whole time; on a 2-core machine that halves the wall
time, and the ratio compares like with like. Prints each side's goal difference and steps/s, the
difference, the verdict in words, and the ratio LAST.

    .venv/bin/python bench/bench_soccer_ppo.py [--steps 32768] [--games 200] [--seeds 1] [--first-seed 0]
        [--jobs 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

import envs
from engine.abstats import Interval, difference_interval, mean_interval
from engine.runstore import list_runs
from engine.soccer_eval import load_soccer_policy, play_soccer, policy_actor, run_checkpoint

PROJECT = Path(__file__).resolve().parent.parent
EVAL_SEED = 1_000_000
TORCH_THREADS = 1
BASELINE_ENVS = 8
SPEED_TARGET = 5.0
# "Equal or better" goal difference, as a test that noise cannot decide: ours passes unless the data say it
# is worse than SB3's by more than this many goals a game (the interval of ours - SB3 reaches below
# -QUALITY_MARGIN). 0.25 goals is a tenth of what SB3's defaults learn in 1,048,576 steps here (from the
# random floor, about -2.4, to about 0). The earlier rule, our mean at or above SB3's, is a coin toss for
# an update that equals SB3's: two 8-seed runs came out level to 0.003 and 0.01 goals and failed it. This
# rule was set before the first run that it judges (seeds 8-15, 2026-12-03).
QUALITY_MARGIN = 0.25
# --games: an interval over one seed's games needs two of them
LEAST = {"steps": 1, "games": 2, "seeds": 1, "first_seed": 0, "jobs": 1}
OURS_PROFILE = "speed"
# On top of the speed profile: SB3's PPO defaults exactly (8 games x 2,048 steps a rollout, 10 epochs of
# minibatches of 64, a constant step size of 3e-4, gamma 0.99, no entropy bonus, no VecNormalize), so the
# two sides differ only in the code that runs them. Why (docs/games/soccer.md): the earlier settings (16 x
# 1,024 with VecNormalize and the soccer defaults' step size schedule) came out 0.28 goals behind on
# seeds 8-15, and these settings, run on the same seeds afterwards as a diagnostic, came out level (+0.02):
# the gap was the settings, not the update. On fresh seeds 16-23 they passed: +0.16 [-0.09, +0.41], 9.0x.
OURS_SETTINGS = ("env.num_envs=8", "ppo.n_steps=2048", "ppo.batch_size=64", "ppo.n_epochs=10",
                 "ppo.learning_rate=3e-4", "ppo.learning_rate_end=3e-4", "ppo.gamma=0.99",
                 "ppo.ent_coef=0", "ppo.ent_coef_end=0", "env.normalize=false")


@dataclass(frozen=True)
class Trained:
    """One side's policy of one seed: its env steps, the seconds they took, and its per-game goal
    differences (int[games]) on the fixed evaluation games."""

    steps: int
    seconds: float
    differences: np.ndarray


def run_ours(seed: int, steps: int, games: int, runs_dir: Path) -> Trained:
    """A `trainctl run` of OURS_PROFILE + OURS_SETTINGS, its final checkpoint played against the chaser."""
    cmd = [sys.executable, "-m", "cli.main", "run", "--algo", "ppo", "--env", "soccer", "--profile", OURS_PROFILE,
           "--steps", str(steps), "--seed", str(seed), "--runs-dir", str(runs_dir),
           "--set", f"torch.threads={TORCH_THREADS}"]
    for setting in OURS_SETTINGS:
        cmd += ["--set", setting]
    done = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"our run failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    (run,) = list_runs(runs_dir)
    status = json.loads(run.status_path.read_text())
    subject = load_soccer_policy("ours", run_checkpoint(run), run)
    result = play_soccer(subject.actor(), "chaser", games, EVAL_SEED, subject.statistics)
    return Trained(subject.step, status["ended"] - status["started"], result.difference)


def run_seed(seed: int, steps: int, games: int) -> tuple[Trained, Trained]:
    """Both sides of one training seed, ours first."""
    with tempfile.TemporaryDirectory(prefix="bench_soccer_ppo_") as tmp:
        ours = run_ours(seed, steps, games, Path(tmp))
    return ours, run_baseline(seed, steps, games)


def run_baseline(seed: int, steps: int, games: int) -> Trained:
    """PPO("MlpPolicy") with SB3 defaults on 8 reference envs (seeded seed, seed + 1, ...), timed over
    learn(), played against the chaser."""
    torch.set_num_threads(TORCH_THREADS)

    def make(i: int) -> Any:
        return lambda: envs.make("soccer", core="reference", opponent="chaser", seed=seed + i)

    env = DummyVecEnv([make(i) for i in range(BASELINE_ENVS)])
    model = PPO("MlpPolicy", env, seed=seed)
    start = time.perf_counter()
    model.learn(steps)
    seconds = time.perf_counter() - start
    result = play_soccer(policy_actor(model.policy), "chaser", games, EVAL_SEED)
    return Trained(model.num_timesteps, seconds, result.difference)


@dataclass(frozen=True)
class GoalComparison:
    """Each side's mean goal difference and ours - baseline, with 95 % intervals `over` "seeds" or
    "games" (see the module docstring)."""

    ours: Interval
    baseline: Interval
    difference: Interval
    over: str

    @property
    def significant(self) -> bool:
        """Whether the difference's interval excludes 0."""
        return self.difference.low > 0 or self.difference.high < 0


def compare_goals(ours: Sequence[np.ndarray], baseline: Sequence[np.ndarray]) -> GoalComparison:
    """Compare per-game goal differences, one array per seed, both sides on the same games: over the
    seeds' means with two or more seeds, over the games of the one seed otherwise."""
    if len(ours) != len(baseline) or not ours:
        raise ValueError(f"{len(ours)} seeds of ours against {len(baseline)} of the baseline")
    if len(ours) >= 2:
        ours_values = [float(d.mean()) for d in ours]
        base_values = [float(d.mean()) for d in baseline]
        over = "seeds"
    else:
        ours_values = [float(x) for x in ours[0]]
        base_values = [float(x) for x in baseline[0]]
        over = "games"
    return GoalComparison(mean_interval(ours_values), mean_interval(base_values),
                          difference_interval(base_values, ours_values), over)


def rate(trained: Sequence[Trained]) -> float:
    """Steps/s over all of a side's seeds."""
    return sum(t.steps for t in trained) / sum(t.seconds for t in trained)


def verdict(goals: GoalComparison, ratio: float) -> str:
    """The pass rule in words."""
    fast = ratio >= SPEED_TARGET
    good = goals.difference.low >= -QUALITY_MARGIN
    sure = "significant" if goals.significant else "not significant"
    return (f"{'PASS' if fast and good else 'FAIL'}: speed ratio {ratio:.1f}x {'>=' if fast else '<'} "
            f"{SPEED_TARGET:g}x, and our goal difference is {'not worse' if good else 'possibly worse'} than "
            f"SB3's by more than {QUALITY_MARGIN:g} goals: ours - SB3 = {goals.difference.estimate:+.2f}, "
            f"95 % interval over {goals.over} [{goals.difference.low:+.2f}, {goals.difference.high:+.2f}] "
            f"({'above' if good else 'reaching below'} -{QUALITY_MARGIN:g}; the difference is {sure}; means "
            f"ours {goals.ours.estimate:+.2f}, SB3 {goals.baseline.estimate:+.2f})")


def _interval(i: Interval) -> str:
    return f"{i.estimate:+.2f} [{i.low:+.2f}, {i.high:+.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=32_768,
                        help="env steps each side trains for (32,768 = 2 baseline rollouts of 8 x 2048)")
    parser.add_argument("--games", type=int, default=200, help="evaluation games per policy")
    parser.add_argument("--seeds", type=int, default=1, help="training seeds for each side")
    parser.add_argument("--first-seed", type=int, default=0, help="the first training seed (seeds S..S+N-1)")
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained at once (one process each)")
    args = parser.parse_args()
    for name, least in LEAST.items():
        if getattr(args, name) < least:
            flag = name.replace("_", "-")
            print(f"--{flag} {getattr(args, name)}: expected a whole number >= {least}", file=sys.stderr)
            raise SystemExit(2)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"soccer PPO end to end: {args.steps:,} env steps each, training seeds {seeds[0]}..{seeds[-1]} "
          f"({args.jobs} at a time), "
          f"evaluation on {args.games} fixed games vs chaser (seeded {EVAL_SEED:,})", flush=True)
    print(f"ours: --profile {OURS_PROFILE} " + " ".join(f"--set {s}" for s in OURS_SETTINGS), flush=True)
    ours: list[Trained] = []
    base: list[Trained] = []
    # spawn, not fork: a forked child of a process that has run torch can hang in its thread pools
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for seed, (mine, theirs) in zip(seeds, pool.map(run_seed, seeds, [args.steps] * args.seeds,
                                                        [args.games] * args.seeds), strict=True):
            ours.append(mine)
            base.append(theirs)
            for name, t in (("ours", mine), ("SB3", theirs)):
                print(f"seed {seed} {name:<4} goal difference {t.differences.mean():+.2f} over {t.differences.size} "
                      f"games, {t.steps:,} steps in {t.seconds:.0f} s = {t.steps / t.seconds:,.0f} steps/s", flush=True)
    goals = compare_goals([t.differences for t in ours], [t.differences for t in base])
    ours_sps, base_sps = rate(ours), rate(base)
    ratio = ours_sps / base_sps
    print(f"mean goal difference vs chaser, 95 % interval over {goals.over}: ours {_interval(goals.ours)}, "
          f"SB3 {_interval(goals.baseline)}")
    print(f"goal difference ours - SB3 = {_interval(goals.difference)} (target: interval above -{QUALITY_MARGIN:g})")
    print(f"steps/s: ours {ours_sps:,.0f}, SB3 defaults on {BASELINE_ENVS} reference envs {base_sps:,.0f}")
    print(verdict(goals, ratio))
    print(f"ratio ours/SB3 steps/s = {ratio:.1f}x (target >= {SPEED_TARGET:g}x)")


if __name__ == "__main__":
    main()
