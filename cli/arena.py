"""`trainctl arena A B C ... --games N [--reference NAME] [--out DIR]`: a round robin with ratings;
`trainctl arena --show [DIR]`: a saved one on the TUI's arena screen.

Players are specs as for `trainctl eval` (engine.players), all parsed and loaded before a game is
played (a bad one: one line, exit code 2, nothing written). Prints the Bradley-Terry rating table, the
head-to-head matrix and, with --reference, a GO/NO-GO verdict line for each other player; the same
text (arena.txt) and the figures (arena.json) are saved in --out, by default a new folder under
`<runs-dir>/arenas/` (engine.arena_file), where the TUI's arena screen finds them. A pairing stopped
by a `py:` player's illegal move is reported and left out of the ratings; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.eval import add_match_arguments, check_match_arguments
from engine.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The `arena` subcommand's parser."""
    parser = sub.add_parser("arena", help="round robin among checkpoints, runs and scripted players: ratings, "
                            "head-to-head matrix, verdict")
    parser.add_argument("players", nargs="*", metavar="PLAYER", help="scripted name, ckpt:PATH, run:RUN or "
                        "py:MODULE:FUNC (at least two)")
    parser.add_argument("--reference", metavar="PLAYER", help="one of the players: ratings are anchored on it "
                        "(1500) and every other player gets a verdict against it")
    parser.add_argument("--out", type=Path, metavar="DIR", help="save arena.txt and arena.json in DIR (default: "
                        "a new folder in RUNS-DIR/arenas)")
    parser.add_argument("--show", nargs="?", const=True, type=Path, metavar="DIR", help="open a saved arena "
                        "(DIR, default the newest in RUNS-DIR/arenas) in the TUI's arena screen; plays nothing")
    add_match_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.show is not None:
        return _show(args)
    from engine.arena import format_arena, round_robin  # here, not at the top: see cli.eval
    from engine.arena_file import default_folder, save_arena
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
    out = args.out if args.out is not None else default_folder(args.runs_dir)
    save_arena(out, text, arena.to_json(reference))
    print(f"saved in {out} (trainctl arena --show {out})", flush=True)
    return 1 if any(r.stopped for r in arena.results.values()) else 0


def _show(args: argparse.Namespace) -> int:
    """The TUI's arena screen on a saved arena: --show DIR, or the newest under RUNS-DIR/arenas."""
    from engine.arena_file import ARENA_TEXT, ARENAS_FOLDER, read_arena, saved_arenas

    if args.players:
        raise UsageError("--show opens a saved arena; name no players with it")
    if args.show is True:
        found = saved_arenas(args.runs_dir)
        if not found:
            raise UsageError(f"no saved arena in {args.runs_dir / ARENAS_FOLDER}; run `trainctl arena A B ...` first")
        folder = found[-1]
    else:
        folder = args.show if args.show.is_dir() else args.show.parent  # DIR or DIR/arena.json
    read_arena(folder)  # a bad folder: one line and exit code 2, before the screen opens
    if not (sys.stdout.isatty() and sys.stdin.isatty()):  # no terminal for a screen: the saved tables
        print((folder / ARENA_TEXT).read_text(encoding="utf-8"), end="")
        return 0
    from tui.standalone import show_arena

    return show_arena(runs_dir=args.runs_dir) if args.show is True else show_arena(folder=folder)
