"""Round robin among Beasty Bar's scripted players (random included), played in the core, and the core's
speed at it against the pure-Python reference, in one process.

Each unordered pairing plays GAMES_PER_SEAT seeds with player 0 starting and the same seeds with player 1
starting (`first` = "agent" / "opponent": the same deals from both seats), so every pairing is balanced.
The table gives the row player's score against the column player in percent, a draw counting half; the
mirror cell is 100 minus it, the diagonal is a player against itself. With 2 x GAMES_PER_SEAT games a
cell's 95 % interval is about +-1.8 points near 50 %.

Speed: games/s of `ext.beastybar_core.play_games` over the whole round robin against `rules.play_game`
over REFERENCE_GAMES_PER_SEAT seeds of every pairing and seat (the same mix of pairings), one game at a
time. Prints the ratio core/reference LAST.
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from envs.beastybar import rules
from envs.rng import Rng
from ext.beastybar_core import play_games

GAMES_PER_SEAT = 1500
REFERENCE_GAMES_PER_SEAT = 2
SEATS = ("agent", "opponent")  # player 0 starts, player 1 starts
SCORING = "points"


def score(winner: np.ndarray) -> float:
    """Player 0's score in percent over games with `winner` 0, 1 or -1 (a draw counts half)."""
    return 100.0 * float(np.mean(np.where(winner == 0, 1.0, np.where(winner == -1, 0.5, 0.0))))


def round_robin() -> tuple[dict[tuple[str, str], float], int, float]:
    """({(row, column): row's score}, games played, seconds in the core)."""
    table: dict[tuple[str, str], float] = {}
    seeds = np.arange(GAMES_PER_SEAT, dtype=np.uint64)
    games, seconds = 0, 0.0
    for a, b in itertools.combinations_with_replacement(rules.OPPONENTS, 2):
        winners = []
        for first in SEATS:
            t0 = time.perf_counter()
            result = play_games(rules.core_tables(), (a, b), seeds, {"scoring": SCORING, "first": first})
            seconds += time.perf_counter() - t0
            winners.append(result["winner"])
            games += len(seeds)
        table[a, b] = score(np.concatenate(winners))
        if a != b:
            table[b, a] = 100.0 - table[a, b]
    return table, games, seconds


def reference_rate() -> float:
    """Games/s of the reference over the same pairings and seats."""
    games = 0
    t0 = time.perf_counter()
    for a, b in itertools.combinations_with_replacement(rules.OPPONENTS, 2):
        policies = [rules.OPPONENT_POLICIES[a], rules.OPPONENT_POLICIES[b]]
        for first in SEATS:
            for seed in range(REFERENCE_GAMES_PER_SEAT):
                rules.play_game(policies, Rng(seed), first)
                games += 1
    return games / (time.perf_counter() - t0)


def main() -> None:
    table, games, seconds = round_robin()
    names = rules.OPPONENTS
    print(f"Round robin, {2 * GAMES_PER_SEAT} games a pairing ({GAMES_PER_SEAT} with each side starting), "
          f"scoring {SCORING}: the row player's score vs the column player, % (a draw counts half)")
    print(f"{'':>11}" + "".join(f"{name[:8]:>9}" for name in names) + f"{'mean':>8}")
    for row in names:
        others = [table[row, column] for column in names if column != row]
        cells = "".join(f"{table[row, column]:9.1f}" for column in names)
        print(f"{row:>11}{cells}{sum(others) / len(others):8.1f}")
    core_rate = games / seconds
    reference = reference_rate()
    print(f"core play_games: {games:,} games in {seconds:.1f} s = {core_rate:,.0f} games/s")
    print(f"reference play_game (same pairing mix, one game at a time): {reference:,.1f} games/s")
    print(f"ratio core/reference = {core_rate / reference:,.0f}x")


if __name__ == "__main__":
    main()
