"""Benchmark: Duel dataset generation, transitions/s written to the JSONL source by the Cython core,
against the same writer fed by the pure-Python reference (the baseline, in the same process), then
loading the dataset: the cache rebuilt by parsing the source (the generator writes it too; the bench
deletes it first) against a cache hit. Absolute figures drift
with machine load; the ratios are the figures of merit. Prints the generation ratio last.
Usage: python bench/bench_duel_data.py [--transitions 200000] [--reference-transitions 5000] [--games 256]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from engine import datasets

PLAYERS = ("sensible", "random")


def generation_rate(folder: Path, transitions: int, games: int, backend: str) -> float:
    """Transitions/s written to the source (its whole write, fsync included; the cache written after it
    is not timed)."""
    result = datasets.generate(folder, PLAYERS, transitions, seed=1, num_games=games, backend=backend)
    return result.transitions / result.seconds


def load_seconds(folder: Path) -> tuple[float, str]:
    started = time.perf_counter()
    dataset = datasets.load(folder)
    return time.perf_counter() - started, dataset.cache_line()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=200_000)
    parser.add_argument("--reference-transitions", type=int, default=5_000)
    parser.add_argument("--games", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reference = generation_rate(Path(tmp) / "reference", args.reference_transitions, args.games, "reference")
        core = generation_rate(Path(tmp) / "core", args.transitions, args.games, "cython")
        size_mb = (Path(tmp) / "core" / datasets.SOURCE_NAME).stat().st_size / 1e6
        shutil.rmtree(Path(tmp) / "core" / datasets.CACHE_NAME)
        rebuild_s, rebuilt = load_seconds(Path(tmp) / "core")
        hit_s, hit = load_seconds(Path(tmp) / "core")
    print(f"reference writer: {reference:,.0f} transitions/s ({args.reference_transitions:,} transitions, "
          f"{args.games} games in flight, {'/'.join(PLAYERS)})")
    print(f"core writer: {core:,.0f} transitions/s ({args.transitions:,} transitions, {size_mb:,.1f} MB of JSONL)")
    print(f"load: {rebuild_s:.2f} s with {rebuilt} ({args.transitions / rebuild_s:,.0f} transitions/s parsed), "
          f"{hit_s:.3f} s with {hit} (ratio {rebuild_s / hit_s:.0f}x)")
    print(f"ratio core/reference generation = {core / reference:.1f}x")


if __name__ == "__main__":
    main()
