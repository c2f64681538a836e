"""Benchmark: Skirmish Cython core, batched steps/s, against the pure-Python reference's steps/s, measured
in the same process (absolute figures drift with machine load; the ratio is the figure of merit).

A step is one model decision (with the scripted player's turn inside when it ends the model's turn).
The agent's random legal actions are drawn outside the core, vectorised (argmax of mask x precomputed
noise) and timed apart from the core call. Also reports the share of core time spent in the player's
turns (the `enemy_turn_ms` figure, from the core's own monotonic-clock counter). Prints the ratio last.
Usage: python bench/bench_skirmish_core.py [--games 4096] [--calls 300] [--reference-steps 20000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from envs.batched_vec_env import CoreBuffers
from envs.skirmish import rules
from ext.skirmish_core import SkirmishCore


def bench_core(num_games: int, calls: int) -> tuple[float, float, float]:
    """(core steps/s, action-picking steps/s, enemy-turn ms per step)."""
    b = CoreBuffers.allocate(num_games, rules.OBS_SIZE, rules.NUM_ACTIONS)
    core = SkirmishCore(num_games, rules.core_tables(), "scripted",
                        {"mode": "train", "max_steps": rules.GameParams.max_steps}, True, b)
    noise = np.random.default_rng(0).random((16, num_games, rules.NUM_ACTIONS)).astype(np.float32)
    core_s = pick_s = 0.0
    enemy_ns_before = core.enemy_turn_ns
    for call in range(calls):
        started = time.perf_counter()
        actions = np.argmax(b.masks * noise[call % len(noise)], axis=1)
        picked = time.perf_counter()
        core.step(actions)
        core_s += time.perf_counter() - picked
        pick_s += picked - started
    steps = num_games * calls
    return steps / core_s, steps / pick_s, (core.enemy_turn_ns - enemy_ns_before) / 1e6 / steps


def bench_reference(steps: int) -> float:
    """Reference steps/s: games in a Python loop, random legal actions (picking not timed)."""
    game = rules.SkirmishGame(seed=0)
    picker = np.random.default_rng(0)
    step_s = 0.0
    for _ in range(steps):
        legal = np.flatnonzero(game.legal_mask())
        action = int(legal[int(picker.integers(len(legal)))])
        started = time.perf_counter()
        game.step(action)
        if game.over:
            game.reset()
        step_s += time.perf_counter() - started
    return steps / step_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=4096)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--reference-steps", type=int, default=20000)
    args = parser.parse_args()
    reference_sps = bench_reference(args.reference_steps)
    core_sps, pick_sps, enemy_ms = bench_core(args.games, args.calls)
    print(f"reference: {reference_sps:,.0f} steps/s (one game, Python loop)")
    print(f"core: {core_sps:,.0f} steps/s ({args.games} games x {args.calls} calls); "
          f"action picking {pick_sps:,.0f} steps/s; enemy_turn_ms {enemy_ms:.6f} per step")
    print(f"ratio core/reference = {core_sps / reference_sps:.1f}x (target >= 50x)")


if __name__ == "__main__":
    main()
