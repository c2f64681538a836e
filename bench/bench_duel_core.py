"""Benchmark: Duel Cython core, batched steps/s, against the pure-Python reference's steps/s, measured in
the same process (absolute figures drift with machine load; the ratio is the figure of merit).

A step is one turn: the scripted side's choice and the turn's resolution (both inside the core). The
agent's random legal actions are drawn outside the core, vectorised (argmax of mask x precomputed noise)
and timed apart from the core call. Also reports the share of core time spent in the scripted side's
choices (`enemy_turn_ms`, from the core's own monotonic-clock counter). Prints the ratio last.
Usage: python bench/bench_duel_core.py [--opponent sensible] [--games 4096] [--calls 300]
[--reference-steps 20000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from envs.batched_vec_env import CoreBuffers
from envs.duel import rules
from envs.rng import Rng
from ext.duel_core import DuelCore


def bench_core(opponent: str, num_games: int, calls: int) -> tuple[float, float, float]:
    """(core steps/s, action-picking steps/s, enemy-turn ms per step)."""
    b = CoreBuffers.allocate(num_games, rules.OBS_SIZE, rules.NUM_ACTIONS)
    core = DuelCore(num_games, rules.core_tables(), opponent, {"shaping": "hp"}, True, b)
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


def bench_reference(opponent: str, steps: int) -> float:
    """Reference steps/s: one game in a Python loop, random legal actions (picking not timed)."""
    game = rules.DuelGame(Rng(0))
    picker = np.random.default_rng(0)
    step_s = 0.0
    for _ in range(steps):
        legal = rules.legal_actions(game.sides[0])
        action = legal[int(picker.integers(len(legal)))]
        started = time.perf_counter()
        result = game.play_turn((action, game.choose(1, opponent)))
        game.reward(result, "hp")
        game.observation()
        game.legal_mask()
        if game.over:
            game.reset()
        step_s += time.perf_counter() - started
    return steps / step_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opponent", default="sensible", choices=rules.OPPONENTS)
    parser.add_argument("--games", type=int, default=4096)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--reference-steps", type=int, default=20000)
    args = parser.parse_args()
    reference_sps = bench_reference(args.opponent, args.reference_steps)
    core_sps, pick_sps, enemy_ms = bench_core(args.opponent, args.games, args.calls)
    print(f"reference: {reference_sps:,.0f} steps/s (one game vs {args.opponent}, Python loop, observation and mask "
          "built each step as the env does)")
    print(f"core: {core_sps:,.0f} steps/s ({args.games} games x {args.calls} calls vs {args.opponent}); "
          f"action picking {pick_sps:,.0f} steps/s; enemy_turn_ms {enemy_ms:.6f} per step")
    print(f"ratio core/reference = {core_sps / reference_sps:.1f}x (target >= 50x)")


if __name__ == "__main__":
    main()
