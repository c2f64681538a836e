"""`trainctl eval CKPT|RUN --vs LIST --games N [--seed S]`: one player against a list, as a table.

Every player is parsed and loaded before a game is played, so a bad spec (engine.players) is one line
and exit code 2 with nothing written. When the subject is a run (`run:RUN` or a plain run id), the table
is also appended to that run's events.jsonl as an `eval` event (docs/events.md), which `trainctl report`
and the TUI read. A `py:` player that makes an illegal move loses only its own pairing: the others are
played, printed and saved, and the exit code is 1. A soccer checkpoint or run plays the scripted
cars instead (`--vs chaser,goalie`, the default): engine.soccer_eval. The engine's players and matches (numpy, the
rules, scipy, torch) are imported when the command runs, not when the parser is built: `trainctl
status` and `--help` load none of them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import UsageError

if TYPE_CHECKING:
    from engine.runstore import RunDir

DEFAULT_SEED = 10_000


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The `eval` subcommand's parser."""
    parser = sub.add_parser("eval", help="win rates of a checkpoint or run against players, with 95 %% intervals")
    parser.add_argument("subject", metavar="CKPT|RUN", help="a checkpoint file, a run id or folder, or any player "
                        "spec (ckpt:PATH, run:RUN, py:MODULE:FUNC, a scripted player)")
    parser.add_argument("--vs", metavar="LIST", help="comma-separated players: scripted names (random, "
                        "heuristic, ...), ckpt:PATH, run:RUN, py:MODULE:FUNC (default: every scripted player)")
    add_match_arguments(parser)


def add_match_arguments(parser: argparse.ArgumentParser) -> None:
    """--games, --seed and --runs-dir, shared with `trainctl arena`."""
    parser.add_argument("--games", type=int, default=400, help="games a pairing, half with each player moving "
                        "first (default: 400)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="first deal seed (default: %(default)s)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run ids are looked up")


def check_match_arguments(args: argparse.Namespace) -> None:
    """UsageError for --games below 1 or a --seed out of 0 to 2**63 - 1 (deal seeds are counted up from it)."""
    if args.games < 1:
        raise UsageError(f"--games must be at least 1, got {args.games}")
    if not 0 <= args.seed < 2**63:
        raise UsageError(f"--seed must be in 0 to 2**63 - 1, got {args.seed}")


def run(args: argparse.Namespace) -> int:
    from engine.arena import eval_row, evaluate_subject, format_eval_table
    from engine.players import NeuralPlayer, parse_player, parse_subject, player_names
    from engine.soccer_eval import subject_game

    check_match_arguments(args)
    if subject_game(args.subject, args.runs_dir) == "soccer":
        return _soccer(args)
    specs = _specs(args.vs, player_names())
    subject = parse_subject(args.subject, args.runs_dir)
    opponents = [parse_player(spec, args.runs_dir) for spec in specs]
    results = evaluate_subject(subject, opponents, args.games, args.seed)
    rows = [eval_row(r) for r in results]
    print(format_eval_table(subject.spec, rows), flush=True)
    if isinstance(subject, NeuralPlayer) and subject.run is not None and subject.path is not None:
        _save(subject.run, subject.step, subject.path, args, rows)
    stopped = [r for r in results if r.stopped]
    for r in stopped:
        print(f"trainctl: {r.second}: {r.stopped}", file=sys.stderr)
    return 1 if stopped else 0


def _specs(vs: str | None, names: tuple[str, ...]) -> list[str]:
    specs = [s.strip() for s in (",".join(names) if vs is None else vs).split(",") if s.strip()]
    if not specs:
        raise UsageError(f"--vs names no player; expected a comma-separated list such as {','.join(names)}")
    return specs


def _save(run: RunDir, step: int, path: Path, args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    """Append the table to the evaluated run's events.jsonl as an eval event."""
    from engine.arena import eval_event
    from engine.events import EventWriter

    with EventWriter(run.events_path) as writer:
        writer.write(eval_event(step, path.name, args.games, args.seed, rows))
    print(f"saved as an eval event in {run.events_path}", flush=True)


def _soccer(args: argparse.Namespace) -> int:
    """A soccer checkpoint or run against the scripted cars (engine.soccer_eval): half the games from
    each side, the checkpoint's normalisation statistics frozen."""
    from engine.arena import format_eval_table
    from engine.soccer_eval import evaluate_policy, parse_soccer_subject
    from envs.soccer import OPPONENTS

    specs = _specs(args.vs, OPPONENTS)
    unknown = [spec for spec in specs if spec not in OPPONENTS]
    if unknown:
        raise UsageError(f"unknown soccer opponent {unknown[0]!r}; expected some of {', '.join(OPPONENTS)}")
    subject = parse_soccer_subject(args.subject, args.runs_dir)
    rows = evaluate_policy(subject.actor(), specs, args.games, args.seed, subject.statistics)
    print(format_eval_table(subject.spec, rows), flush=True)
    if subject.run is not None:
        _save(subject.run, subject.step, subject.path, args, rows)
    return 0
