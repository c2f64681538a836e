"""`trainctl arena A B C ... --games N [--reference NAME] [--out DIR]`: a round robin with ratings.

Players are specs as for `trainctl eval` (engine.players), all parsed and loaded before a game is
played (a bad one: one line, exit code 2, nothing written). Prints the Bradley-Terry rating table, the
head-to-head matrix and, with --reference, a GO/NO-GO verdict line for each other player; with --out,
the same text (arena.txt) and the figures (arena.json) go into that folder. A pairing stopped by a
`py:` player's illegal move is reported and left out of the ratings; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli.eval import add_match_arguments, check_match_arguments
from engine.errors import UsageError
from engine.runstore import atomic_write_bytes


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The `arena` subcommand's parser."""
    parser = sub.add_parser("arena", help="round robin among checkpoints, runs and scripted players: ratings, "
                            "head-to-head matrix, verdict")
    parser.add_argument("players", nargs="+", metavar="PLAYER", help="scripted name, ckpt:PATH, run:RUN or "
                        "py:MODULE:FUNC (at least two)")
    parser.add_argument("--reference", metavar="PLAYER", help="one of the players: ratings are anchored on it "
                        "(1500) and every other player gets a verdict against it")
    parser.add_argument("--out", type=Path, metavar="DIR", help="also save arena.txt and arena.json in DIR")
    add_match_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from engine.arena import format_arena, round_robin  # here, not at the top: see cli.eval
    from engine.players import parse_player

    check_match_arguments(args)
    if len(args.players) < 2:
        raise UsageError(f"an arena needs at least two players, got {len(args.players)}")
    if len(set(args.players)) != len(args.players):
        raise UsageError(f"a player is named twice in {' '.join(args.players)}; name each once")
    if args.reference is not None and args.reference not in args.players:
        raise UsageError(f"--reference {args.reference!r} is not one of the players ({', '.join(args.players)})")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a folder")
    players = [parse_player(spec, args.runs_dir) for spec in args.players]
    reference = None if args.reference is None else args.players.index(args.reference)
    arena = round_robin(players, args.games, args.seed, anchor=reference or 0,
                        progress=lambda line: print(line, file=sys.stderr, flush=True))
    text = format_arena(arena, reference)
    print(text, flush=True)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(args.out / "arena.txt", (text + "\n").encode())
        atomic_write_bytes(args.out / "arena.json", json.dumps(arena.to_json(), indent=1).encode())
        print(f"saved in {args.out}", flush=True)
    return 1 if any(r.stopped for r in arena.results.values()) else 0
