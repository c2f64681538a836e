"""`trainctl replay RUN|CKPT [--games N] [--speed X] [--seed S] [--vs CAR] [--agent CAR] [--frames N]`:
soccer games drawn in the terminal, a frame a step (engine.soccer_replay).

The agent is a soccer checkpoint or run (its best/ checkpoint when it has one: engine.players
.run_checkpoint) or, with `--agent chaser|goalie` and no checkpoint, a scripted car, so the game can be
watched before anything is trained. On a terminal each frame replaces the last, at `--speed` times real
time (a step is 0.1 s); into a pipe or a file the frames are printed one after another, blank-line
separated, without pauses. `--frames N` stops after N frames (frame 0 is the kick-off). Every check
runs before the first frame: a bad argument, another game's run or checkpoint, or a checkpoint without
the normalisation statistics its run trained with is one line and exit code 2. Nothing is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.errors import UsageError

DEFAULT_SEED = 0
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear the screen


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The `replay` subcommand's parser."""
    parser = sub.add_parser("replay", help="watch soccer games of a checkpoint or run in the terminal")
    parser.add_argument("subject", metavar="RUN|CKPT", nargs="?", help="a soccer run id or folder, or a checkpoint "
                        "file (ckpt:PATH and run:RUN also work); leave out with --agent")
    parser.add_argument("--agent", metavar="CAR", help="a scripted car drives the agent's car instead of a "
                        "checkpoint: chaser or goalie")
    parser.add_argument("--vs", metavar="CAR", default="chaser", help="the scripted opponent: chaser or goalie "
                        "(default: %(default)s)")
    parser.add_argument("--games", type=int, default=1, help="games, one after another, seeded from --seed up "
                        "(default: 1)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the first game's seed (kick-offs and "
                        "the agent's side; default: %(default)s)")
    parser.add_argument("--speed", type=float, default=1.0, help="times real speed on a terminal (default: 1)")
    parser.add_argument("--frames", type=int, help="stop after this many frames (default: every frame)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run ids are looked up")


def _check(args: argparse.Namespace, opponents: tuple[str, ...]) -> None:
    if args.games < 1:
        raise UsageError(f"--games must be at least 1, got {args.games}")
    if not 0 <= args.seed < 2**63:
        raise UsageError(f"--seed must be in 0 to 2**63 - 1, got {args.seed}")
    if not args.speed > 0:
        raise UsageError(f"--speed must be above 0, got {args.speed}")
    if args.frames is not None and args.frames < 1:
        raise UsageError(f"--frames must be at least 1, got {args.frames}")
    for flag, name in (("--vs", args.vs), ("--agent", args.agent)):
        if name is not None and name not in opponents:
            raise UsageError(f"{flag} {name!r} is not a scripted car; expected one of {', '.join(opponents)}")
    if (args.subject is None) == (args.agent is None):
        raise UsageError("replay needs a soccer run or checkpoint, or --agent chaser|goalie (one of them)")


def run(args: argparse.Namespace) -> int:
    from engine.soccer_eval import parse_soccer_subject
    from engine.soccer_replay import ReplayGame, policy_driver, render, result_line, scripted_driver
    from envs.soccer import OPPONENTS

    _check(args, OPPONENTS)
    if args.agent is not None:
        driver, name = scripted_driver(args.agent), args.agent
    else:
        subject = parse_soccer_subject(args.subject, args.runs_dir)
        driver, name = policy_driver(subject.policy, subject.statistics), f"step {subject.step:,}"
    names = (name, args.vs)
    live = sys.stdout.isatty()
    left = args.frames
    for game in range(args.games):
        frame = None
        for frame in ReplayGame(driver, args.vs, args.seed + game).frames():
            text = render(frame, names)
            print(CLEAR + text if live else text + "\n", flush=True)
            if left is not None:
                left -= 1
                if left == 0:
                    return 0
            if live:
                time.sleep(0.1 / args.speed)
        if frame is not None:
            print(result_line(frame, names), flush=True)
    return 0
