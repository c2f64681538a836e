"""`trainctl data gen` and `trainctl data show`: transition datasets of scripted games (engine.datasets).

`gen` writes a new dataset folder (the JSONL source, dataset.json, the cache) with a progress bar on
stderr, then loads it once to show the cache is used; `show` loads a dataset (rebuilding a cache that does not match,
and saying so) and prints its counts, split and cache state. Bad input is a one-line UsageError, which
cli.main prints with exit code 2, before anything is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from engine import dataset_format
from engine.errors import UsageError
from engine.launcher import parse_steps


def add_parser(sub: Any) -> None:
    data = sub.add_parser("data", help="transition datasets of scripted games (generate, show)")
    dsub = data.add_subparsers(dest="data_command", parser_class=type(data))
    gen = dsub.add_parser("gen", help="generate a dataset of scripted games into a new folder")
    gen.add_argument("--env", required=True, help=f"game ({', '.join(dataset_format.DATA_GAMES)})")
    gen.add_argument("--players", required=True, metavar="P,Q", help="scripted players of side 0 and side 1")
    gen.add_argument("--transitions", required=True, metavar="N", help="at least this many transitions "
                     "(whole games), e.g. 2e6")
    gen.add_argument("--seed", type=int, default=0, help="game i of those in flight is seeded seed + i; the "
                     "train/val split's seed too")
    gen.add_argument("--out", type=Path, required=True, metavar="DIR", help="a new (or empty) folder")
    gen.add_argument("--val-fraction", type=float, default=dataset_format.DEFAULT_VAL_FRACTION,
                     help="share of the games in the validation split")
    gen.add_argument("--games", type=int, default=256, help="games in flight at once")
    show = dsub.add_parser("show", help="counts, split and cache state of a dataset")
    show.add_argument("dir", type=Path, metavar="DIR")


def run(args: argparse.Namespace) -> int:
    from engine import datasets  # numpy only when a dataset is written or read, not for --help

    if args.data_command == "gen":
        return gen(datasets, args)
    if args.data_command == "show":
        return show(datasets, args.dir)
    raise UsageError("trainctl data needs a command: gen or show")


def _transitions(text: str) -> int:
    try:
        return parse_steps(text)
    except UsageError:
        raise UsageError(f"--transitions {text!r}: expected a positive whole number, e.g. 2e6") from None


def gen(datasets: ModuleType, args: argparse.Namespace) -> int:
    if args.env not in dataset_format.DATA_GAMES:
        raise UsageError(f"--env {args.env!r} has no dataset generator; expected one of: "
                         f"{', '.join(dataset_format.DATA_GAMES)}")
    players = tuple(args.players.split(","))
    transitions = _transitions(args.transitions)
    datasets.check_generation(args.out, players, transitions, args.seed, args.games, args.val_fraction)
    bar = ProgressBar(sys.stderr, "transitions")
    result = datasets.generate(args.out, (players[0], players[1]), transitions, args.seed, num_games=args.games,
                               val_fraction=args.val_fraction, progress=bar)
    bar.close()
    print(f"wrote {result.transitions:,} transitions in {result.games:,} games to {args.out / datasets.SOURCE_NAME} "
          f"({result.source_bytes / 1e6:,.1f} MB) in {result.seconds:.1f} s: "
          f"{result.transitions / result.seconds:,.0f} transitions/s")
    started = time.perf_counter()
    dataset = datasets.load(args.out)
    print(f"{dataset.cache_line()} in {time.perf_counter() - started:.1f} s")
    return 0


def show(datasets: ModuleType, path: Path) -> int:
    for line in datasets.describe(datasets.load(path)):
        print(line)
    return 0


class ProgressBar:
    """A progress bar on `stream`: redrawn in place on a terminal (at most 10 times a second), one line
    every 10 % otherwise (a log keeps a few lines, not thousands)."""

    WIDTH = 30

    def __init__(self, stream: TextIO, unit: str) -> None:
        self.stream, self.unit = stream, unit
        self.live = stream.isatty()
        self.started = self.last_draw = time.monotonic()
        self.last_tenth = -1

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        share = done / total
        if self.live and (now - self.last_draw >= 0.1 or done >= total):
            self.stream.write("\r" + self._text(done, total, share, now))
            self.last_draw = now
        elif not self.live and int(share * 10) > self.last_tenth:
            self.last_tenth = int(share * 10)
            self.stream.write(self._text(done, total, share, now) + "\n")
        self.stream.flush()

    def _text(self, done: int, total: int, share: float, now: float) -> str:
        filled = int(share * self.WIDTH)
        rate = done / max(now - self.started, 1e-9)
        return (f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {share:4.0%} {done:,}/{total:,} {self.unit} "
                f"{rate:,.0f}/s")

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
