"""Beasty Bar through the SB3 VecEnv API: `make_vec("beastybar", 1024)` vs the reference env in a
`DummyVecEnv`, in one process.

Counts agent steps (one decision per game per `step`, the opponent's reply included). Actions are legal
random ones, picked in numpy from the current masks with precomputed noise; only `venv.step(...)` is
timed (picking is the caller's cost, not the VecEnv's). Each figure is the best of a few repeats (the
machine is shared). Prints the ratio LAST.
"""

from __future__ import annotations

import time

import numpy as np
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3.common.vec_env import DummyVecEnv

from envs import make, make_vec

NUM_GAMES = 1024
VEC_STEPS = 240
REFERENCE_GAMES = 16
REFERENCE_STEPS = 60
REPEATS = 5


def steps_per_second(venv, num_games: int, num_steps: int) -> float:
    noise = np.random.default_rng(0).random((16, num_games, 33), dtype=np.float32)
    venv.reset()
    elapsed_ns = 0
    for step in range(num_steps):
        actions = np.argmax(get_action_masks(venv) * noise[step % 16], axis=1)
        t0 = time.perf_counter_ns()
        venv.step(actions)
        elapsed_ns += time.perf_counter_ns() - t0
    return num_games * num_steps / (elapsed_ns * 1e-9)


def main() -> None:
    vec = make_vec("beastybar", NUM_GAMES, seed=0)
    reference = DummyVecEnv([lambda i=i: make("beastybar", core="reference", seed=i) for i in range(REFERENCE_GAMES)])
    vec_sps = max(steps_per_second(vec, NUM_GAMES, VEC_STEPS) for _ in range(REPEATS))
    reference_sps = max(steps_per_second(reference, REFERENCE_GAMES, REFERENCE_STEPS) for _ in range(REPEATS))
    print(f"BeastyBarVecEnv ({NUM_GAMES} games): {vec_sps:,.0f} agent steps/s through VecEnv.step")
    print(f"reference env in DummyVecEnv ({REFERENCE_GAMES} games): {reference_sps:,.0f} agent steps/s")
    print(f"ratio vec/reference = {vec_sps / reference_sps:,.1f}x (target >= 1M steps/s: {vec_sps / 1e6:.2f}M)")


if __name__ == "__main__":
    main()
