"""PPO end to end on soccer: `trainctl run --algo ppo --env soccer --profile speed` vs SB3's PPO with its
default settings on a DummyVecEnv of 8 reference (pure-Python) soccer envs, same step budget, same
machine, same run.

Throughput: the speed run's env steps over its run process's training time (status.json `started` ->
`ended`: includes importing SB3, building the model, VecNormalize and saving checkpoints); the
baseline's env steps over its `learn()` call alone (model construction excluded). Quality: both final
policies play the same fixed games against the chaser, half from each side (engine.soccer_eval:
deterministic actions; ours with its checkpoint's normalisation statistics frozen, the baseline has
none), reported as the mean goal difference and the win rate with its 95 % interval. Both sides use
one torch thread. Prints each side's steps/s and goal difference, and the ratio LAST.

    .venv/bin/python bench/bench_soccer_ppo.py [--steps 32768] [--games 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

import envs
from engine.runstore import list_runs
from engine.soccer_eval import SoccerResult, load_soccer_policy, play_soccer, policy_actor, run_checkpoint

PROJECT = Path(__file__).resolve().parent.parent
EVAL_SEED = 1_000_000
TRAIN_SEED = 0
TORCH_THREADS = 1
BASELINE_ENVS = 8


def run_speed_profile(steps: int, games: int, runs_dir: Path) -> tuple[float, SoccerResult, int]:
    """(steps/s, games vs the chaser, env steps done) of a `trainctl run --profile speed` soccer run."""
    cmd = [sys.executable, "-m", "cli.main", "run", "--algo", "ppo", "--env", "soccer", "--profile", "speed",
           "--steps", str(steps), "--seed", str(TRAIN_SEED), "--runs-dir", str(runs_dir),
           "--set", f"torch.threads={TORCH_THREADS}"]
    done = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"speed run failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    (run,) = list_runs(runs_dir)
    status = json.loads(run.status_path.read_text())
    subject = load_soccer_policy("speed", run_checkpoint(run), run)
    sps = subject.step / (status["ended"] - status["started"])
    return sps, play_soccer(subject.actor(), "chaser", games, EVAL_SEED, subject.statistics), subject.step


def run_baseline(steps: int, games: int) -> tuple[float, SoccerResult]:
    """(steps/s of learn(), games vs the chaser) of PPO("MlpPolicy") with SB3 defaults on 8 reference envs."""
    torch.set_num_threads(TORCH_THREADS)

    def make(i: int) -> Any:
        return lambda: envs.make("soccer", core="reference", opponent="chaser", seed=TRAIN_SEED + i)

    env = DummyVecEnv([make(i) for i in range(BASELINE_ENVS)])
    model = PPO("MlpPolicy", env, seed=TRAIN_SEED)
    start = time.perf_counter()
    model.learn(steps)
    sps = model.num_timesteps / (time.perf_counter() - start)
    return sps, play_soccer(policy_actor(model.policy), "chaser", games, EVAL_SEED)


def describe(name: str, sps: float, result: SoccerResult) -> str:
    o = result.outcomes
    low, high = o.win_rate_interval()
    return (f"{name:<9} {sps:10,.0f} steps/s   vs chaser: goal difference {result.difference.mean():+.2f} "
            f"(for {result.goals_for.mean():.2f}, against {result.goals_against.mean():.2f}), win rate "
            f"{o.win_rate:.3f} [{low:.3f}, {high:.3f}] over {o.games} games")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=32_768,
                        help="env steps each side trains for (32,768 = 2 baseline rollouts of 8 x 2048)")
    parser.add_argument("--games", type=int, default=200, help="evaluation games per policy")
    args = parser.parse_args()
    print(f"soccer PPO end to end: {args.steps:,} env steps each, evaluation on {args.games} fixed games vs chaser",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_soccer_ppo_") as tmp:
        speed_sps, speed_result, speed_steps = run_speed_profile(args.steps, args.games, Path(tmp))
    print(describe("speed", speed_sps, speed_result) + f"  ({speed_steps:,} steps)", flush=True)
    base_sps, base_result = run_baseline(args.steps, args.games)
    print(describe("baseline", base_sps, base_result), flush=True)
    gap = speed_result.difference.mean() - base_result.difference.mean()
    print(f"goal difference speed - baseline = {gap:+.2f} (target >= 0)")
    print(f"ratio speed/baseline steps/s = {speed_sps / base_sps:.1f}x (target >= 5x)")
