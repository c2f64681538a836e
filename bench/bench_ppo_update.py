"""PPO's update alone on soccer: engine.numpy_ppo's numpy `train()` vs SB3's own `train()` on the same
rollouts, same machine, same run.

Both models start from the same weights and collect the same rollout of `--games` x `--steps` soccer steps
(VecNormalize on, the same seed), then each runs its update: `--epochs` passes in minibatches of
`--batch` (SB3's defaults: 10 x 64). The updates alternate (SB3, numpy, SB3, ...) for `--repeats`
rounds on fresh rollouts, one torch thread, and each side's time is its median update. Also printed: the
largest weight difference after the first round (float32 rounding), and the ratio LAST.

    .venv/bin/python bench/bench_ppo_update.py [--games 64] [--steps 256] [--batch 64] [--epochs 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

import envs
from engine.numpy_ppo import NumpyUpdatePPO, supports

SEED = 7


class _Continue(BaseCallback):
    def _on_step(self) -> bool:
        return True


def build(cls: type[PPO], args: argparse.Namespace) -> PPO:
    env = VecNormalize(envs.make_vec("soccer", args.games, opponent="chaser", seed=SEED), gamma=0.99)
    model = cls("MlpPolicy", env, n_steps=args.steps, batch_size=args.batch, n_epochs=args.epochs, seed=SEED,
                device="cpu", verbose=0)
    model._setup_learn(10**9, None)
    return model


def timed_update(model: PPO, round_seed: int) -> float:
    """Collect one rollout (sampling seeded `round_seed`), then time `train()` alone (seconds)."""
    callback = _Continue()
    callback.init_callback(model)
    torch.manual_seed(round_seed)
    assert model.env is not None
    model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    np.random.seed(round_seed)
    start = time.perf_counter()
    model.train()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=64)
    parser.add_argument("--steps", type=int, default=256, help="steps per game a rollout")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sb3, ours = build(PPO, args), build(NumpyUpdatePPO, args)
    if supports(ours) is not None:
        raise SystemExit(f"the numpy update cannot run here: {supports(ours)}")
    rows = args.games * args.steps
    steps = args.epochs * -(-rows // args.batch)
    print(f"PPO update on soccer: {rows:,} rows, {args.epochs} epochs of minibatches of {args.batch} "
          f"({steps:,} gradient steps), {args.repeats} rounds, one torch thread", flush=True)
    sb3_times, our_times = [], []
    for repeat in range(args.repeats):
        sb3_times.append(timed_update(sb3, repeat))
        our_times.append(timed_update(ours, repeat))
        if repeat == 0:
            pairs = zip(ours.policy.parameters(), sb3.policy.parameters(), strict=True)
            gap = max(float((a - b).detach().abs().max()) for a, b in pairs)
            print(f"largest weight difference after one update: {gap:.2e}")
        print(f"round {repeat}: SB3 train() {sb3_times[-1]:.2f} s, numpy {our_times[-1]:.2f} s", flush=True)
    sb3_s, our_s = statistics.median(sb3_times), statistics.median(our_times)
    print(f"median update: SB3 {sb3_s:.2f} s ({sb3_s / steps * 1e3:.2f} ms a gradient step), "
          f"numpy {our_s:.2f} s ({our_s / steps * 1e3:.2f} ms)")
    print(f"ratio SB3/numpy update time = {sb3_s / our_s:.1f}x")


if __name__ == "__main__":
    main()
