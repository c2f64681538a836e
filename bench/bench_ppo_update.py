"""PPO's update alone on soccer: engine.cpu_ppo's `train()` (gradient steps in C) vs SB3's own `train()` on the same
rollouts from the same weights, same machine, same run.

Each round SB3's model collects a rollout of `--games` x `--steps` soccer steps (VecNormalize on), then
ours is given the same weights, Adam state, rollout and minibatch order, and each side runs
its update: `--epochs` passes in minibatches of `--batch` (SB3's defaults: 10 x 64), alternating which
goes first, one torch thread. Each side's time is its median update over `--repeats` rounds. Printed
besides: the largest weight difference between the two updated models in any round (float32 rounding),
and the ratio LAST.

    .venv/bin/python bench/bench_ppo_update.py [--games 16] [--steps 1024] [--batch 64] [--epochs 10]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

import envs
from engine.cpu_ppo import CpuUpdatePPO, supports

SEED = 7


def build(cls: type[PPO], args: argparse.Namespace) -> PPO:
    env = VecNormalize(envs.make_vec("soccer", args.games, opponent="chaser", seed=SEED), gamma=0.99)
    model = cls("MlpPolicy", env, n_steps=args.steps, batch_size=args.batch, n_epochs=args.epochs, seed=SEED,
                device="cpu", verbose=0)
    model._setup_learn(10**9, None)
    return model


def timed(model: PPO, rng_state: dict[str, Any]) -> float:
    """`model.train()` from the numpy random state `rng_state` (its minibatch order), in seconds."""
    np.random.set_state(rng_state)
    start = time.perf_counter()
    model.train()
    return time.perf_counter() - start


def same_inputs(sb3: PPO, ours: PPO) -> None:
    """Give `ours` SB3's weights, Adam state (a copy: loading aliases the tensors), rollout and progress."""
    ours.policy.load_state_dict(sb3.policy.state_dict())
    ours.policy.optimizer.load_state_dict(copy.deepcopy(sb3.policy.optimizer.state_dict()))
    ours.rollout_buffer = copy.deepcopy(sb3.rollout_buffer)
    ours._current_progress_remaining = sb3._current_progress_remaining


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1024, help="steps per game a rollout")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sb3, ours = build(PPO, args), build(CpuUpdatePPO, args)
    if supports(ours) is not None:
        raise SystemExit(f"the CPU update cannot run here: {supports(ours)}")
    rows = args.games * args.steps
    steps = args.epochs * -(-rows // args.batch)
    print(f"PPO update on soccer: {rows:,} rows, {args.epochs} epochs of minibatches of {args.batch} "
          f"({steps:,} gradient steps), {args.repeats} rounds, one torch thread", flush=True)
    sb3_times, our_times, gaps = [], [], []
    callback = sb3._init_callback(None)  # SB3's own empty callback list, bound to the model
    for repeat in range(args.repeats):
        assert sb3.env is not None
        sb3.collect_rollouts(sb3.env, callback, sb3.rollout_buffer, sb3.n_steps)
        same_inputs(sb3, ours)
        order = np.random.get_state()
        if repeat % 2:
            our_times.append(timed(ours, order))
            sb3_times.append(timed(sb3, order))
        else:
            sb3_times.append(timed(sb3, order))
            our_times.append(timed(ours, order))
        pairs = zip(ours.policy.parameters(), sb3.policy.parameters(), strict=True)
        gaps.append(max(float((a - b).detach().abs().max()) for a, b in pairs))
        print(f"round {repeat}: SB3 train() {sb3_times[-1]:.2f} s, ours {our_times[-1]:.2f} s", flush=True)
    print(f"largest weight difference after an update: {max(gaps):.2e}")
    sb3_s, our_s = statistics.median(sb3_times), statistics.median(our_times)
    print(f"median update: SB3 {sb3_s:.2f} s ({sb3_s / steps * 1e3:.2f} ms a gradient step), "
          f"ours {our_s:.2f} s ({our_s / steps * 1e3:.2f} ms)")
    print(f"ratio SB3/ours update time = {sb3_s / our_s:.1f}x")


if __name__ == "__main__":
    main()
