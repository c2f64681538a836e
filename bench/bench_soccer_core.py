"""Benchmark: soccer's Cython core and its batched VecEnv, steps/s, against the pure-Python reference's
steps/s, measured in the same process (absolute figures drift with machine load; the ratios are the
figures of merit).

A step is 0.1 s of one game (the scripted car's decision inside). The agent's actions are precomputed
uniform float32[N, 2] noise, so nothing but the step is timed. Three figures: the reference (one game in a
Python loop), the core's `step` alone, and `SoccerVecEnv.step` (the core plus SB3's plumbing: copies of
obs/rewards/dones and the infos of the games that ended), whose target is 1M steps/s on the team's
machine. Also reports the share of core time spent in the scripted cars (`enemy_turn_ns`). Prints the
ratio last.
Usage: python bench/bench_soccer_core.py [--games 4096] [--calls 300] [--reference-steps 20000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import envs
from envs.soccer import rules
from envs.soccer.core import CORE


def noise(num_games: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1.0, 1.0, (16, num_games, rules.NUM_ACTIONS)).astype(np.float32)


def bench_core(num_games: int, calls: int) -> tuple[float, float]:
    """(core steps/s, share of core time in the scripted cars)."""
    core, _ = CORE.build(num_games, "chaser", {"side": "random", "max_steps": rules.MAX_STEPS,
                                               "reward_weights": dict(rules.DEFAULT_WEIGHTS)}, auto_reset=True)
    actions = noise(num_games)
    enemy_before = core.enemy_turn_ns
    started = time.perf_counter()
    for call in range(calls):
        core.step(actions[call % len(actions)])
    elapsed = time.perf_counter() - started
    return num_games * calls / elapsed, (core.enemy_turn_ns - enemy_before) / 1e9 / elapsed


def bench_vec_env(num_games: int, calls: int) -> float:
    """SoccerVecEnv steps/s (step_async + step_wait)."""
    venv = envs.make_vec("soccer", num_games, seed=0)
    venv.reset()
    actions = noise(num_games)
    started = time.perf_counter()
    for call in range(calls):
        venv.step(actions[call % len(actions)])
    return num_games * calls / (time.perf_counter() - started)


def bench_reference(steps: int) -> float:
    """Reference steps/s: one game in a Python loop, random actions (drawing them not timed)."""
    game = rules.SoccerGame(0)
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, (steps, rules.NUM_ACTIONS)).tolist()
    started = time.perf_counter()
    for throttle, steer in actions:
        game.step(throttle, steer)
        if game.over:
            game.reset()
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=4096)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--reference-steps", type=int, default=20000)
    args = parser.parse_args()
    reference_sps = bench_reference(args.reference_steps)
    core_sps, enemy_share = bench_core(args.games, args.calls)
    vec_sps = bench_vec_env(args.games, args.calls)
    print(f"reference: {reference_sps:,.0f} steps/s (one game, Python loop)")
    print(f"core: {core_sps:,.0f} steps/s ({args.games} games x {args.calls} calls); "
          f"scripted cars {enemy_share:.1%} of core time")
    print(f"vec env: {vec_sps:,.0f} steps/s (SoccerVecEnv.step, target >= 1,000,000)")
    print(f"ratio core/reference = {core_sps / reference_sps:.1f}x (target >= 50x); "
          f"vec env/reference = {vec_sps / reference_sps:.1f}x")


if __name__ == "__main__":
    main()
