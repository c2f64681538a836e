"""`trainctl play CKPT|RUN [--seat first|second|random] [--seed S]`: play Beasty Bar against an agent.

The agent is named as the subject of `trainctl eval` is (engine.players.parse_subject): a checkpoint
file, a run id or folder (its best/ checkpoint when it has one), `ckpt:PATH`, `run:RUN`, a scripted
player by name, or a `py:MODULE:FUNC` bot. It is loaded before the screen opens: a missing or foreign checkpoint, a
checkpoint or run of another game, `--seed` out of range, or no terminal to play on is one line and
exit code 2. The game is tui.screens.play's (a screen of its own, tui.standalone); nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import UsageError

DEFAULT_SEED = 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The `play` subcommand's parser."""
    parser = sub.add_parser("play", help="play Beasty Bar against a checkpoint or run with the keyboard")
    parser.add_argument("subject", metavar="CKPT|RUN", help="a checkpoint file, a run id or folder, ckpt:PATH, "
                        "run:RUN, or a scripted player's name")
    parser.add_argument("--seat", choices=("first", "second", "random"), default="random",
                        help="whether you move first (default: the deal decides)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the first game's deal; the next game "
                        "deals seed + 1 (default: %(default)s)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run ids are looked up")


def run(args: argparse.Namespace) -> int:
    from engine.play import SEATS
    from engine.players import parse_subject

    if not 0 <= args.seed < 2**63:
        raise UsageError(f"--seed must be in 0 to 2**63 - 1, got {args.seed}")
    agent = parse_subject(args.subject, args.runs_dir)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("trainctl play needs a terminal (stdin and stdout) to play on")
    from tui.standalone import play

    return play(agent, SEATS[args.seat], args.seed)
