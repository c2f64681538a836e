"""Batched Beasty Bar core throughput vs the pure-Python reference, in one process.

Counts agent steps (one agent decision, its opponent's reply included). The core steps 4,096 games
against the random opponent; their actions are picked outside the core, vectorised in numpy (argmax of
mask x precomputed uniform noise), and that picking is timed apart from the core call. The reference is
the gym env over `envs.beastybar.rules`, one game at a time in a Python loop. Each figure is the best
of a few repeats (the machine is shared). Prints the ratio core/reference LAST.
"""

from __future__ import annotations

import time

import numpy as np

from envs.batched_vec_env import CoreBuffers
from envs.beastybar.env import BeastyBarEnv, core_options
from envs.beastybar.rules import NUM_ACTIONS, OBS_SIZE, core_tables
from ext.beastybar_core import BeastyBarCore

NUM_GAMES = 4096
CORE_CALLS = 240  # 20 episodes per game
NOISE_BLOCKS = 16
REFERENCE_GAMES = 150
REPEATS = 5


def core_rates() -> tuple[float, float]:
    """(agent steps/s of the core call alone, agent steps/s including the numpy action picking)."""
    b = CoreBuffers.allocate(NUM_GAMES, OBS_SIZE, NUM_ACTIONS)
    core = BeastyBarCore(NUM_GAMES, core_tables(), "random", core_options("points"), True, b)
    core.reset(np.arange(NUM_GAMES, dtype=np.uint64))
    noise = np.random.default_rng(0).random((NOISE_BLOCKS, NUM_GAMES, NUM_ACTIONS), dtype=np.float32)
    core_ns = pick_ns = 0
    for call in range(CORE_CALLS):
        t0 = time.perf_counter_ns()
        actions = np.argmax(b.masks * noise[call % NOISE_BLOCKS], axis=1)
        t1 = time.perf_counter_ns()
        if core.step(actions) >= 0:
            raise AssertionError("the picker chose an illegal action")
        t2 = time.perf_counter_ns()
        pick_ns += t1 - t0
        core_ns += t2 - t1
    steps = NUM_GAMES * CORE_CALLS
    return steps / (core_ns * 1e-9), steps / ((core_ns + pick_ns) * 1e-9)


def reference_rate() -> float:
    """Agent steps/s of the reference gym env, single games in a Python loop."""
    env = BeastyBarEnv(core="reference", opponent="random", seed=0)
    picker = np.random.default_rng(0)
    steps = 0
    t0 = time.perf_counter()
    for _ in range(REFERENCE_GAMES):
        env.reset()
        terminated = False
        while not terminated:
            mask = env.action_masks()
            _, _, terminated, _, _ = env.step(int(np.argmax(mask * picker.random(NUM_ACTIONS))))
            steps += 1
    return steps / (time.perf_counter() - t0)


def main() -> None:
    core_sps, with_picking_sps = max(core_rates() for _ in range(REPEATS))
    reference_sps = max(reference_rate() for _ in range(REPEATS))
    print(f"core ({NUM_GAMES} games, random opponent): {core_sps:,.0f} agent steps/s (core call only)")
    print(f"core incl. numpy action picking: {with_picking_sps:,.0f} agent steps/s")
    print(f"reference (gym env over rules.py, one game at a time): {reference_sps:,.0f} agent steps/s")
    print(f"ratio core/reference incl. picking = {with_picking_sps / reference_sps:,.1f}x")
    print(
        f"ratio core/reference = {core_sps / reference_sps:,.1f}x (target >= 100x, and >= 5M agent steps/s: "
        f"{core_sps / 1e6:.2f}M)"
    )


if __name__ == "__main__":
    main()
