"""`trainctl eval` speed: 10,000 games of a network against a scripted player, in games/s, against the
same games played one at a time through one-game gymnasium envs (`envs.make`, the Cython backend).

The network is an untrained PPO policy of the default size (the balance profile's `ppo.net_arch`): how
well it plays does not change the work. The eval path is engine.matches (lockstep on the batched core,
one forward per step over every game, deals from `paired_deals`); the baseline plays the first
BASELINE_GAMES of the same deals, each game alone, one forward per move, and checks that it gets the same
outcomes. Times include the deal schedule and the forwards, not loading. Each figure is the best of
REPEATS (the machine is shared). Prints the ratio LAST.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

import envs
from engine.matches import Deals, paired_deals, play_match
from engine.players import NeuralPlayer, parse_player
from engine.ppo import build_policy
from engine.profiles import resolve
from envs.beastybar import rules

GAMES = 10_000
BASELINE_GAMES = 1_000
OPPONENT = "heuristic"
SEED = 10_000
REPEATS = 3


def one_game_at_a_time(player: NeuralPlayer, deals: Deals, games: int) -> list[int]:
    outcomes = []
    for k in range(games):
        env = envs.make("beastybar", opponent=OPPONENT, seed=int(deals.seeds[k]), first=deals.first(k))
        obs, _ = env.reset()
        done, reward = False, 0.0
        while not done:
            action = player.choose_batch(obs[None], env.action_masks()[None])[0]
            obs, reward, done, _, _ = env.step(int(action))
        outcomes.append(int(reward))
    return outcomes


def main() -> None:
    torch.set_num_threads(1)  # as engine.players.load_neural does for every network it loads
    torch.manual_seed(0)
    net_arch = list(resolve("balance", algo="ppo", env="beastybar", environ={})["ppo.net_arch"])
    policy = build_policy(rules.OBS_SIZE, rules.NUM_ACTIONS, net_arch)
    policy.set_training_mode(False)
    player = NeuralPlayer(f"untrained PPO {net_arch}", network=policy)
    opponent = parse_player(OPPONENT, Path("runs"))

    def batched() -> tuple[float, np.ndarray]:
        started = time.perf_counter()
        result = play_match(player, opponent, paired_deals(GAMES, SEED))
        return GAMES / (time.perf_counter() - started), result.outcome

    def baseline() -> tuple[float, list[int]]:
        deals = paired_deals(GAMES, SEED)
        started = time.perf_counter()
        outcomes = one_game_at_a_time(player, deals, BASELINE_GAMES)
        return BASELINE_GAMES / (time.perf_counter() - started), outcomes

    runs = [batched() for _ in range(REPEATS)]
    eval_gps, outcome = max(runs, key=lambda r: r[0])
    bases = [baseline() for _ in range(REPEATS)]
    base_gps, base_outcome = max(bases, key=lambda r: r[0])
    same = outcome[:BASELINE_GAMES].tolist() == base_outcome
    print(f"eval, lockstep on the batched core ({GAMES:,} games vs {OPPONENT}, net {net_arch}): "
          f"{eval_gps:,.0f} games/s")
    print(f"one-game gym envs (first {BASELINE_GAMES:,} of the same games): {base_gps:,.0f} games/s; "
          f"same outcomes: {same}")
    print(f"ratio eval/one-game = {eval_gps / base_gps:,.1f}x")


if __name__ == "__main__":
    main()
