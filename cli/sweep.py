"""`trainctl sweep`: every combination of a grid, presets (profiles) or a batch ladder as a run, then a
comparison table (config, time, steps/s, win rate, reward, the best marked), printed and saved in the
sweep folder as report.md and report.json.

The trials run on this machine (`--backend local`: at most `--parallel` at once, each with its share of
the cores) or through Ray Tune on an existing Ray cluster (`--backend ray --address ADDR`; Ray is an
optional extra, imported only then). The same command again resumes the sweep: finished trials are
skipped. Everything is checked (keys, types, the Ray address, the folder) before anything starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine import sweep
from engine.cores import core_count
from engine.errors import UsageError
from engine.launcher import parse_steps


def steps_type(text: str) -> int:
    try:
        return parse_steps(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def comma_list(text: str) -> list[str]:
    """`a,b,c` -> ['a', 'b', 'c']; UsageError for an empty item."""
    items = [x.strip() for x in text.split(",")]
    if not all(items):
        raise UsageError(f"{text!r} has an empty item; expected a comma-separated list such as a,b")
    return items


def batch_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in comma_list(text))
    except ValueError:
        raise UsageError(f"--batch-ladder {text!r}: expected whole batch sizes such as 1024,2048,4096") from None


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sweep", help="run every combination of a grid, presets or a batch ladder and compare them")
    p.add_argument("--algo", required=True, help="trainer (ppo, dqn-per)")
    p.add_argument("--env", required=True, help="game (beastybar, skirmish)")
    p.add_argument("--steps", type=steps_type, required=True, help="env steps of each trial, e.g. 2e5")
    p.add_argument("--grid", action="append", default=[], metavar="SECTION.KEY=V1,V2",
                   help="values of one config key (repeatable: every combination runs)")
    p.add_argument("--preset", metavar="P1,P2", help="profiles to compare, e.g. balance,speed")
    p.add_argument("--profile", default="balance", help="the profile of every trial without --preset")
    p.add_argument("--batch-ladder", metavar="B1,B2", help="batch sizes; the step size follows lr_base * "
                   "sqrt(batch / batch_base) from the profile's own")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="assignments",
                   help="a value every trial shares (repeatable)")
    p.add_argument("--seed", type=int, help="seed of every trial")
    p.add_argument("--parallel", type=int, default=1, help="runs at once (local backend; Ray: trials at once)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--address", help="the Ray cluster's address (host:port) with --backend ray")
    p.add_argument("--best-by", choices=sweep.FIGURE_KEYS, help="which figure marks the best trial (default: win; "
                   "val, the lowest validation loss, for worldmodel)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where the sweep folder goes")
    p.add_argument("--dir", type=Path, help="the sweep folder (default: <runs-dir>/sweep-<algo>-<env>-<hash of "
                   "the trials>, so the same command resumes it)")


def run(args: argparse.Namespace) -> int:
    if args.parallel < 1:
        raise UsageError(f"--parallel {args.parallel}: at least one run must run at a time; expected 1 or more")
    if args.backend == "ray" and not args.address:
        raise UsageError("--backend ray needs --address host:port of a running Ray cluster")
    if args.address and args.backend != "ray":
        raise UsageError("--address goes with --backend ray")
    ask = sweep.SweepAsk(args.algo, args.env, args.steps,
                         tuple(comma_list(args.preset)) if args.preset else (args.profile,),
                         tuple(args.grid), batch_list(args.batch_ladder) if args.batch_ladder else (), args.seed,
                         tuple(args.assignments))
    trials, notes = sweep.expand(ask)
    sweep.plan_trials(trials)
    ask_json = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(ask).items()}
    folder = args.dir or sweep.default_folder(args.runs_dir, "sweep", ask_json)
    group = sweep.open_group(folder, "sweep", ask_json).with_trials(trials)
    if args.backend == "ray":
        from engine import sweep_ray  # Ray only for this backend: an optional extra

        sweep_ray.check_address(args.address)
    folder.mkdir(parents=True, exist_ok=True)
    group.save()
    where = f"on the Ray cluster at {args.address}" if args.backend == "ray" else \
        f"here, {args.parallel} at a time, each run a fair share of {core_count()} cores"
    print(f"sweep {folder}: {len(trials)} trials of {args.algo} on {args.env}, {args.steps:,} "
          f"{sweep.step_unit(args.algo)} each, {where}", flush=True)
    for line in notes:
        print(f"batch ladder: {line}", flush=True)
    for trial in trials:
        print(f"  {trial.name}  {trial.label}", flush=True)
    say = lambda line: print(line, flush=True)  # noqa: E731
    try:
        if args.backend == "ray":
            outcomes = sweep_ray.run_trials(args.address, folder, trials, args.parallel, say)
        else:
            outcomes = sweep.TrialPool(folder, trials, args.parallel, say=say).run()
    except KeyboardInterrupt:
        print(f"sweep interrupted; the same command resumes it (folder {folder})", file=sys.stderr, flush=True)
        return 130
    text, markdown, data = sweep.sweep_report(group, args.best_by)
    sweep.save_report(group, markdown, data)
    print(text, flush=True)
    print(f"saved {folder / 'report.md'} and report.json", flush=True)
    return 0 if all(o.state in ("finished", "skipped") for o in outcomes) else 1
