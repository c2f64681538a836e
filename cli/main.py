"""The `trainctl` entry point: parses the command line and hands it to a headless command or the TUI.

`trainctl` alone and `trainctl watch [DIR|RUN]` open the TUI (tui.app, imported only then) when stdin
and stdout are terminals (`watch SWEEP|BENCH` on that group's screen); without one (CI, a pipe, `make
run` in a log) they print the plain status table (a group's report) instead, and `trainctl
--launch-default` runs the default job headless, so a script that calls them never hangs or fails for
want of a terminal. Every user mistake is an `engine.errors.UsageError`,
printed here as one line on stderr with exit code 2, before anything is started or written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from cli import arena, bench, commands, compare, play, replay, sweep
from cli import data as data_cli
from cli import eval as eval_cli
from cli import export as export_cli
from cli import wm_bench as wm_bench_cli
from cli import wrapped as wrapped_cli
from engine.abtest import group_report
from engine.errors import UsageError
from engine.launcher import DEFAULT_JOB, parse_steps
from engine.runstore import check_runs_dir, resolve_run
from engine.sweep import GROUP_FILE, load_group

EXIT_USAGE = 2
# Subcommands in a module of their own: `add_parser(sub)` adds the subparser, `run(args)` runs it.
OWN_MODULE_COMMANDS = {"eval": eval_cli, "arena": arena, "bench": bench, "sweep": sweep, "data": data_cli,
                       "wm-bench": wm_bench_cli, "replay": replay, "play": play, "export": export_cli,
                       "compare": compare}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (and exit code 2) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _steps(text: str) -> int:
    try:
        return parse_steps(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _DataDir(argparse.Action):
    """`--data DIR`: the `data.dir` setting (as a `--set`), the folder made absolute so that a resume from
    another folder reads the same data; the game defaults to the dataset's (engine.datasets)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        folder = Path(str(values)).absolute()
        namespace.assignments = [*namespace.assignments, f"data.dir={json.dumps(str(folder))}"]
        if namespace.env is None and (folder / "dataset.json").is_file():
            with contextlib.suppress(OSError, ValueError, AttributeError):
                namespace.env = str(json.loads((folder / "dataset.json").read_text()).get("game")) or None


class _DistKey(argparse.Action):
    """`--nproc N`, `--nnodes M`, `--node-rank R`, `--master-addr A`, `--master-port P`: the `dist.*` setting
    of the same name (as a `--set`), so a resume starts the same processes."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        key = str(option_string).lstrip("-").replace("-", "_")
        value = json.dumps(values) if isinstance(values, str) else str(values)
        namespace.assignments = [*namespace.assignments, f"dist.{key}={value}"]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="trainctl", description="A terminal control center for training game-playing AI. "
                     "Without a command: the TUI on --runs-dir (the status table when stdout is not a terminal).")
    # dest differs from the subcommands' --runs-dir so that their defaults cannot overwrite it.
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), dest="app_runs_dir",
                        help="runs folder the TUI opens (default: runs)")
    parser.add_argument("--launch-default", action="store_true",
                        help="also launch the default run (Beasty Bar PPO, balance profile); "
                        "without a terminal it runs headless")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    run = sub.add_parser("run", help="start a training run (headless), or wrap any command after --")
    run.add_argument("--algo", help="trainer (ppo, dqn-per, worldmodel)")
    run.add_argument("--env", help="game (beastybar, duel, skirmish, soccer)")
    run.add_argument("--profile", help="profile name (trainctl profiles list; default balance, none for -- CMD)")
    run.add_argument("--steps", type=_steps, help="env steps to train for, e.g. 2e6; with --resume, the new total "
                     "(above the checkpoint's step)")
    run.add_argument("--seed", type=int, help="seed of games, policy and samplers")
    run.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="assignments",
                     help="override one config value (repeatable)")
    run.add_argument("--config", type=Path, help="a TOML file of overrides")
    run.add_argument("--data", action=_DataDir, metavar="DIR", help="dataset folder of a supervised trainer "
                     "(worldmodel): sets data.dir, and --env to the dataset's game unless given")
    run.add_argument("--nproc", type=int, action=_DistKey, metavar="N", help="worldmodel: train on N processes "
                     "here through torchrun (gloo on CPU, NCCL on CUDA; at most the cores, or GPUs)")
    run.add_argument("--nnodes", type=int, action=_DistKey, metavar="M", help="with --nproc: machines in the job")
    run.add_argument("--node-rank", type=int, action=_DistKey, metavar="R", help="with --nnodes: this machine's "
                     "rank (0 writes the run)")
    run.add_argument("--master-addr", action=_DistKey, metavar="A", help="with --nnodes: address of machine 0")
    run.add_argument("--master-port", type=int, action=_DistKey, metavar="P", help="with --nnodes: its port")
    run.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run folders go (default: runs)")
    run.add_argument("--name", help="name the run (its id becomes <time>_<name>)")
    run.add_argument("--resume", metavar="RUN", help="continue RUN from its latest checkpoint, with its own config")
    run.add_argument("--detach", action="store_true", help="start the run and return at once")
    wrapped_cli.add_run_options(run)

    status = sub.add_parser("status", help="table of runs")
    status.add_argument("--runs-dir", type=Path, default=Path("runs"))
    status.add_argument("--watch", action="store_true", help="refresh until interrupted")
    status.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes with --watch")

    report = sub.add_parser("report", help="concise snapshot of one run, or the table of a sweep or bench folder")
    report.add_argument("run", metavar="RUN|SWEEP|BENCH")
    report.add_argument("--runs-dir", type=Path, default=Path("runs"))

    stop = sub.add_parser("stop", help="graceful stop (final checkpoint), waiting a few seconds to say how it "
                          "ended; --kill for SIGKILL")
    stop.add_argument("run", metavar="RUN")
    stop.add_argument("--kill", action="store_true")
    stop.add_argument("--runs-dir", type=Path, default=Path("runs"))

    watch = sub.add_parser("watch", help="the TUI on runs started elsewhere (a runs folder, one run, a sweep or bench)")
    watch.add_argument("target", nargs="?", metavar="DIR|RUN", help="a runs folder, a run folder, a sweep or bench "
                       "folder (its screen), or a run id")
    watch.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run ids are looked up")
    wrapped_cli.add_watch_options(watch)

    profiles = sub.add_parser("profiles", help="list profiles, or show one resolved with sources")
    psub = profiles.add_subparsers(dest="profiles_command", parser_class=_Parser)
    psub.add_parser("list", help="known profiles")
    show = psub.add_parser("show", help="the resolved profile, each value with where it came from")
    show.add_argument("name")
    show.add_argument("--algo")
    show.add_argument("--env")
    show.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="assignments")
    show.add_argument("--config", type=Path)
    for module in OWN_MODULE_COMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    wrapped: list[str] = []
    if "--" in args_list:
        cut = args_list.index("--")
        args_list, wrapped = args_list[:cut], args_list[cut + 1:]
    try:
        args = build_parser().parse_args(args_list)
        if wrapped and args.command != "run":
            raise UsageError("a command after -- goes with `trainctl run`")
        return _dispatch(args, wrapped)
    except UsageError as exc:
        print(f"trainctl: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `trainctl status | head`
        return 0


def _dispatch(args: argparse.Namespace, wrapped: list[str]) -> int:
    if args.command == "run":
        return commands.run_command(args, wrapped)
    if args.command == "status":
        return commands.status_command(args.runs_dir, args.watch, args.interval)
    if args.command == "report":
        return commands.report_command(args.run, args.runs_dir)
    if args.command == "stop":
        return commands.stop_command(args.run, args.runs_dir, args.kill)
    if args.command == "profiles":
        return commands.profiles_command(args)
    if (module := OWN_MODULE_COMMANDS.get(args.command)) is not None:
        return int(module.run(args))
    if args.command == "watch":
        if args.tb is not None:
            return _open_app(args.runs_dir, wrapped_cli.watch_tb(args.tb, args.runs_dir, args.target), False)
        runs_dir, focus = watch_target(args.target, args.runs_dir)
        group = runs_dir if args.target is not None and focus is None and (runs_dir / GROUP_FILE).is_file() else None
        return _open_app(runs_dir, focus, launch_default=False, group=group)
    return _open_app(args.app_runs_dir, None, launch_default=args.launch_default)


def watch_target(target: str | None, runs_dir: Path) -> tuple[Path, str | None]:
    """(runs folder, run to select) for `trainctl watch [DIR|RUN]`: a folder holding run.json is one
    run (its parent is shown), any other folder is a runs folder, anything else a run id in runs_dir."""
    if target is None:
        return runs_dir, None
    path = Path(target)
    if path.is_dir():
        return (path.parent, path.name) if (path / "run.json").is_file() else (path, None)
    run = resolve_run(target, runs_dir)
    return run.path.parent, run.run_id


def _open_app(runs_dir: Path, focus: str | None, launch_default: bool, group: Path | None = None) -> int:
    """The TUI when stdin and stdout are terminals (on a sweep or bench folder `group`: its screen);
    otherwise the headless equivalent (for a group, its report)."""
    check_runs_dir(runs_dir, writable=False)
    if group is not None:
        load_group(group)  # a group file that cannot be read: one line here, not a traceback in the app
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        if group is not None:
            print(group_report(str(group), runs_dir))
            return 0
        if launch_default:
            job = DEFAULT_JOB
            args = build_parser().parse_args(["run", "--algo", str(job.algo), "--env", str(job.env), "--profile",
                                              job.profile, "--steps", str(job.steps), "--runs-dir", str(runs_dir)])
            return commands.run_command(args, [])
        return commands.status_command(runs_dir, watch=False, interval=0)
    from tui.app import run_app  # Textual only for the app itself: the headless commands never load it

    return run_app(runs_dir, focus_run=focus, launch_default=launch_default, open_group=group)


if __name__ == "__main__":
    sys.exit(main())
