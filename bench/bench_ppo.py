"""PPO end to end: `trainctl run --profile speed` vs plain MaskablePPO with SB3 defaults on a DummyVecEnv
of the reference (pure-Python) Beasty Bar env, same step budget, same machine, same run.

Throughput: the speed run's env steps over its run process's training time (status.json `started` ->
`ended`: includes importing SB3, building the model and saving checkpoints, so it flatters nobody);
the baseline's env steps over its `learn()` call alone (model construction excluded). Quality: both
final policies play the same fixed set of games against the random opponent (deterministic actions,
masks applied; engine.evaluate, game i dealt from seed EVAL_SEED + i). Both sides use one torch thread
(`--set torch.threads=1` / `torch.set_num_threads(1)`): on a small shared machine more threads mostly
add contention, and the comparison is of the pipelines, not of thread counts. Prints steps/s of each,
the win rates with 95 % intervals, and the ratio LAST.

    .venv/bin/python bench/bench_ppo.py [--steps 98304] [--games 2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from sb3_contrib import MaskablePPO
from stable_baselines3.common.vec_env import DummyVecEnv

import envs
from engine.checkpoint import latest_checkpoint, load_checkpoint
from engine.evaluate import Outcomes, play_games, sb3_chooser
from engine.ppo import policy_from_checkpoint
from engine.runstore import list_runs

PROJECT = Path(__file__).resolve().parent.parent
EVAL_SEED = 1_000_000
TRAIN_SEED = 0
TORCH_THREADS = 1


def run_speed_profile(steps: int, games: int, runs_dir: Path) -> tuple[float, Outcomes, int, int]:
    """(steps/s, outcomes, env steps done, epochs over rollouts) of a `trainctl run --profile speed` run."""
    cmd = [sys.executable, "-m", "cli.main", "run", "--algo", "ppo", "--env", "beastybar", "--profile", "speed",
           "--steps", str(steps), "--seed", str(TRAIN_SEED), "--runs-dir", str(runs_dir),
           "--set", f"torch.threads={TORCH_THREADS}"]
    done = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"speed run failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    (run,) = list_runs(runs_dir)
    status = json.loads(run.status_path.read_text())
    ckpt = latest_checkpoint(run.checkpoints)
    assert ckpt is not None, "the speed run saved no checkpoint"
    state = load_checkpoint(ckpt)
    sps = state["num_timesteps"] / (status["ended"] - status["started"])
    return sps, play_games(sb3_chooser(policy_from_checkpoint(state)), games, EVAL_SEED), \
        state["num_timesteps"], state["n_updates"]


def run_baseline(steps: int, games: int) -> tuple[float, Outcomes]:
    """(steps/s of learn(), outcomes) of MaskablePPO("MlpPolicy") with SB3 defaults on the reference env."""
    torch.set_num_threads(TORCH_THREADS)
    env = DummyVecEnv([lambda: envs.make("beastybar", core="reference", opponent="random", seed=TRAIN_SEED)])
    model = MaskablePPO("MlpPolicy", env, seed=TRAIN_SEED)
    start = time.perf_counter()
    model.learn(steps)
    sps = model.num_timesteps / (time.perf_counter() - start)
    return sps, play_games(sb3_chooser(model.policy), games, EVAL_SEED)


def describe(name: str, sps: float, outcomes: Outcomes) -> str:
    low, high = outcomes.win_rate_interval()
    return (f"{name:<9} {sps:10,.0f} steps/s   win rate vs random {outcomes.win_rate:.3f} "
            f"[{low:.3f}, {high:.3f}] over {outcomes.games} games (draws {outcomes.draws}, losses {outcomes.losses})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=98_304,
                        help="env steps each side trains for (98,304 = 12 speed rollouts = 48 baseline rollouts)")
    parser.add_argument("--games", type=int, default=2000, help="evaluation games per policy")
    args = parser.parse_args()
    print(f"PPO end to end: {args.steps:,} env steps each, evaluation on {args.games} fixed games vs random",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_ppo_") as tmp:
        speed_sps, speed_out, speed_steps, updates = run_speed_profile(args.steps, args.games, Path(tmp))
    print(describe("speed", speed_sps, speed_out) + f"  ({speed_steps:,} steps, {updates} rollout epochs)", flush=True)
    base_sps, base_out = run_baseline(args.steps, args.games)
    print(describe("baseline", base_sps, base_out), flush=True)
    diff_points = 100 * (speed_out.win_rate - base_out.win_rate)
    print(f"win rate speed - baseline = {diff_points:+.1f} points (target >= -4.0)")
    print(f"ratio speed/baseline steps/s = {speed_sps / base_sps:.1f}x (target >= 5x)")
