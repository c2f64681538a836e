"""`trainctl bench`: a baseline config against a candidate on paired seeds, with a verdict: PASS when the
candidate gains at least --min-gain throughput and loses at most --max-loss points of win rate, FAIL when it
surely does not, UNDECIDED when an interval straddles a bar. `--until-decided` adds seeds until a
sequential test decides (its rule printed before the first run). The report (markdown and JSON) is saved
in the bench folder; `trainctl report BENCH` prints it again. Everything is checked before the first run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cli.sweep import steps_type
from engine import abtest, sweep
from engine.errors import UsageError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="baseline against candidate on paired seeds: throughput, quality, verdict")
    p.add_argument("--algo", required=True, help="trainer (ppo, dqn-per)")
    p.add_argument("--env", required=True, help="game (beastybar, skirmish)")
    p.add_argument("--steps", type=steps_type, required=True, help="env steps of each run, e.g. 4e4")
    p.add_argument("--baseline", required=True, metavar="PROFILE")
    p.add_argument("--baseline-set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--candidate", required=True, metavar="PROFILE")
    p.add_argument("--candidate-set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="assignments",
                   help="a value both sides share (repeatable), e.g. torch.threads=1")
    p.add_argument("--seeds", type=int, help="paired seeds to run (default 5; the most with --until-decided)")
    p.add_argument("--until-decided", action="store_true", help="add seeds until the sequential test decides")
    p.add_argument("--max-seeds", type=int, help="with --until-decided: the most paired seeds (default 20)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--min-gain", type=float, default=10.0, help="throughput the candidate must gain, percent")
    p.add_argument("--max-loss", type=float, default=4.0, help="win-rate points the candidate may lose")
    p.add_argument("--confidence", type=float, default=0.95, help="of the intervals")
    p.add_argument("--gain-margin", type=float, default=5.0,
                   help="sequential test: H1 lies this many percent of throughput above the bar")
    p.add_argument("--loss-margin", type=float, default=2.0,
                   help="sequential test: H1 lies this many win-rate points above the bar")
    p.add_argument("--no-verdict", action="store_true", help="only the figures and intervals (allows --seeds 1)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where the bench folder goes")
    p.add_argument("--dir", type=Path, help="the bench folder (default: <runs-dir>/bench-<algo>-<env>-<hash of the "
                   "runs asked>, so the same command resumes it, also with more --seeds or other bars)")


def ask_from(args: argparse.Namespace) -> abtest.BenchAsk:
    if args.until_decided and args.seeds is not None:
        raise UsageError("--seeds and --until-decided exclude each other; expected --until-decided --max-seeds K")
    if args.max_seeds is not None and not args.until_decided:
        raise UsageError("--max-seeds goes with --until-decided; expected --seeds K for a fixed number")
    if args.until_decided and args.no_verdict:
        raise UsageError("--until-decided stops at a verdict; drop --no-verdict")
    seeds = (args.max_seeds if args.max_seeds is not None else 20) if args.until_decided else \
        (args.seeds if args.seeds is not None else 5)
    return abtest.BenchAsk(args.algo, args.env, args.steps, abtest.Side(args.baseline, tuple(args.baseline_set)),
                           abtest.Side(args.candidate, tuple(args.candidate_set)), seeds, args.until_decided,
                           args.first_seed, not args.no_verdict, args.min_gain / 100.0, args.max_loss,
                           args.confidence, args.gain_margin / 100.0, args.loss_margin, tuple(args.assignments))


def run(args: argparse.Namespace) -> int:
    ask = ask_from(args)
    abtest.plan(ask)
    folder = args.dir or sweep.default_folder(args.runs_dir, "bench", ask.identity())
    group = sweep.open_group(folder, "bench", ask.to_json(), abtest.BenchAsk.IDENTITY)
    folder.mkdir(parents=True, exist_ok=True)
    group.save()
    shared = f", both with {' '.join(ask.sets)}" if ask.sets else ""
    print(f"bench {folder}: {ask.algo} on {ask.env}, {ask.steps:,} env steps a run, baseline "
          f"{ask.baseline.describe()} against candidate {ask.candidate.describe()}{shared}, one run at a time",
          flush=True)
    if ask.verdict:
        print(f"rule: {ask.rule().describe()}", flush=True)
    seq = ask.sequential()
    print(f"stopping rule: {seq.describe()}" if seq else f"seeds: {ask.seeds} pairs from seed {ask.first_seed}",
          flush=True)
    try:
        group = abtest.run_bench(group, ask, lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print(f"bench interrupted; the same command resumes it (folder {folder})", file=sys.stderr, flush=True)
        return 130
    text, all_finished = abtest.save_bench_report(group)
    print(text, flush=True)
    print(f"saved {folder / 'report.md'} and report.json", flush=True)
    return 0 if all_finished else 1
