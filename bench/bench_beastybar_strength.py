"""How strong a Beasty Bar checkpoint is: its eval table against every scripted player and against two
players no run trains against (bench/beastybar_unseen_bots.py), with Wilson 95 % intervals, and the
training that made it.

    python bench/bench_beastybar_strength.py [CKPT] [--games N]

CKPT defaults to the shipped agent, assets/beastybar_agent.pt (read from this repository, not from the
installed package). Every pairing plays the same N games on paired deals (engine.matches.paired_deals: each
deal twice, once with each side moving first), as `trainctl eval` does. The training line comes from the checkpoint's
`trained` record (the run, command, wall time, env steps and a note on the machine's load, written by
`trainctl export RUN --player OUT`: engine/player_asset.py); a run's own checkpoint has none and says so.

The figure is relative, measured in the same run: the checkpoint's mean win rate over the field (the
eight scripted players and the two unseen ones) over the mean win rate of `outcome`, the strongest
scripted player, against the same field on the same deals (outcome against itself included, as the
checkpoint plays outcome). Above 1, the checkpoint beats the field more often than the best hand-written
player does. The target of issue 10 (>= 99 % vs random, >= 95 % vs each scripted player) is checked
row by row on the table. Prints the ratio LAST.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from engine.arena import eval_row, evaluate_subject, format_eval_table
from engine.checkpoint import load_checkpoint
from engine.players import parse_player, parse_subject, player_names

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "assets" / "beastybar_agent.pt"
UNSEEN = ("py:bench.beastybar_unseen_bots:rollout", "py:bench.beastybar_unseen_bots:hoarder")
REFERENCE = "outcome"
SEED = 10_000
TARGET_RANDOM, TARGET_SCRIPTED = 0.99, 0.95


def training_line(path: Path) -> str:
    state = load_checkpoint(path)
    trained = state.get("trained")
    if not isinstance(trained, dict):
        return f"training: {path} records none (a run's own checkpoint: see its run folder)"
    if "run" not in trained:
        return f"training: {path} was exported from {trained['checkpoint']}, outside a run folder | {trained['note']}"
    return (f"training: {trained['command']} | run {trained['run']}: {trained['run_steps']:,} env steps in "
            f"{trained['wall_seconds'] / 60:.1f} min wall, this checkpoint its {trained['checkpoint']} (step "
            f"{state['step']:,}) | {trained['note']} | {trained['date']}")


def mean_win_rate(rows: list[dict]) -> float:
    return sum(row["win_rate"] for row in rows) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", type=Path, default=SHIPPED)
    parser.add_argument("--games", type=int, default=400, help="games a pairing (default 400)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))  # the unseen bots are `py:bench.…` players: importable from the repo root
    torch.set_num_threads(1)
    runs = REPO / "runs"
    trained = training_line(args.checkpoint)
    subject = parse_subject(str(args.checkpoint), runs)
    field = [*player_names(), *UNSEEN]
    rows = [eval_row(r) for r in evaluate_subject(subject, [parse_player(s, runs) for s in field], args.games, SEED)]
    reference = [eval_row(r) for r in evaluate_subject(parse_player(REFERENCE, runs),
                                                       [parse_player(s, runs) for s in field], args.games, SEED)]
    print(trained)
    print(format_eval_table(str(args.checkpoint), rows))
    print(format_eval_table(f"{REFERENCE} (the baseline, same deals)", reference))
    scripted = [row for row in rows if row["opponent"] in player_names()]
    missed = [f"{row['opponent']} {100 * row['win_rate']:.1f}%" for row in scripted
              if row["win_rate"] < (TARGET_RANDOM if row["opponent"] == "random" else TARGET_SCRIPTED)]
    print(f"target (>= {100 * TARGET_RANDOM:.0f}% random, >= {100 * TARGET_SCRIPTED:.0f}% each scripted): "
          + ("met" if not missed else "missed on " + ", ".join(missed)))
    agent, baseline = mean_win_rate(rows), mean_win_rate(reference)
    print(f"mean win rate over the field of {len(field)}: checkpoint {100 * agent:.1f}% / {REFERENCE} "
          f"{100 * baseline:.1f}% = {agent / baseline:.3f}x")


if __name__ == "__main__":
    main()
