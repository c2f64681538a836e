"""`trainctl wm-bench CKPT --games N --seed S [--players P,Q] [--baseline CKPT|RUN]`: a world-model checkpoint
replayed beside real Duel games, its gates and GO or NO-GO (engine.wm_bench, docs/worldmodel.md). With a
baseline, the baseline model replays the same games and HP divergence on pass turns becomes a gate (a
significant decrease against it).

The checkpoint is loaded and checked before a game is played, so a missing or foreign file is one line
with exit code 2. `--backend onnx` exports the model in memory as `trainctl export` does (engine.onnx_export),
prints its parity check, and replays the games through onnxruntime instead of torch.
Exit code 0 for GO, 1 for NO-GO. A checkpoint in a run's best/ or checkpoints/ folder
gets the table appended to that run's events.jsonl as a `wm_bench` event (docs/events.md). torch and the
rules are imported when the command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.eval import check_match_arguments
from cli.export import checkpoint_of
from engine.errors import UsageError
from engine.runstore import RunDir

if TYPE_CHECKING:
    from engine.wm_bench import Network


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("wm-bench", help="replay real Duel games through a world-model checkpoint: gates, "
                            "GO/NO-GO")
    parser.add_argument("checkpoint", type=Path, metavar="CKPT", help="a worldmodel checkpoint (a run's best/ or "
                        "checkpoints/ file)")
    parser.add_argument("--games", type=int, default=200, help="real games replayed (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=10_000, help="game i is dealt from seed + i (default: "
                        "%(default)s)")
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                        help="run the model in torch, or export it to ONNX (as `trainctl export` does, parity "
                        "checked) and run that in onnxruntime (default: %(default)s)")
    parser.add_argument("--players", default="sensible,random", metavar="P,Q",
                        help="scripted players of side 0 and side 1 (default: %(default)s)")
    parser.add_argument("--baseline", metavar="CKPT|RUN", help="a world model to beat on pass turns (a checkpoint, "
                        "or a run: its best/): the gate 'HP divergence on pass' needs a significant decrease "
                        "against it, on games whose side 0 passes (e.g. --players random,sensible)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where --baseline RUN is looked up")


def run(args: argparse.Namespace) -> int:
    from engine.checkpoint import load_checkpoint
    from engine.events import EventWriter
    from engine.wm_bench import ModelPredictor, bench_event, compare_pass, failing_gates, play_games, replay, report
    from engine.worldmodel import check_resume
    from envs.duel import rules

    check_match_arguments(args)
    players = tuple(args.players.split(","))
    if len(players) != 2 or any(p not in rules.OPPONENTS for p in players):
        raise UsageError(f"--players {args.players!r}: expected two of {', '.join(rules.OPPONENTS)} separated by a "
                         "comma (side 0's, then side 1's)")
    state = load_checkpoint(args.checkpoint)
    check_resume(state)
    baseline_path = checkpoint_of(args.baseline, args.runs_dir) if args.baseline else None
    baseline = load_checkpoint(baseline_path) if baseline_path is not None else None
    if baseline is not None:
        try:
            check_resume(baseline)
        except UsageError as exc:
            raise UsageError(f"--baseline {baseline_path}: {exc}") from None
    print(f"wm-bench {args.checkpoint} (step {state['step']:,}), players {args.players}, seed {args.seed}, "
          f"backend {args.backend}" + (f", baseline {baseline_path}" if baseline_path else ""))
    network = _network(state, args.backend)
    games = play_games(args.games, args.seed, (players[0], players[1]))
    pass_by_game: list[float] = []
    metrics = replay(games, ModelPredictor(network), pass_by_game)
    pass_gate = None
    if baseline is not None:
        theirs: list[float] = []
        replay(games, ModelPredictor(_network(baseline, args.backend)), theirs)
        try:
            pass_gate = compare_pass(pass_by_game, theirs, str(baseline_path))
        except ValueError as exc:
            raise UsageError(f"--baseline needs games where side 0 passes: {exc} (side 0 is {players[0]!r}); "
                             "expected --players with a side 0 that passes, such as random,sensible") from None
    for line in report(metrics, len(games), sum(len(g) for g in games), pass_gate):
        print(line)
    run = _run_of(args.checkpoint)
    if run is not None:
        with EventWriter(run.events_path) as writer:
            writer.write(bench_event(int(state["step"]), args.checkpoint.name, args.games, args.seed, args.players,
                                     args.backend, metrics, pass_gate))
        print(f"saved as a wm_bench event in {run.events_path}")
    return 0 if not failing_gates(metrics, pass_gate) else 1


def _network(state: dict[str, Any], backend: str) -> Network:
    """The checkpoint's forward pass: the model in torch, or its ONNX export in onnxruntime once the export
    passed its parity check (engine.onnx_export; a failure is a RuntimeError, not the user's)."""
    from engine.wm_bench import onnx_network, torch_network
    from engine.worldmodel import model_from_checkpoint

    if backend == "torch":
        return torch_network(model_from_checkpoint(state))
    from engine.onnx_export import check_parity, exportable, to_onnx

    target = exportable(state)
    model_bytes = to_onnx(target)
    parity = check_parity(target, model_bytes)
    print(parity.line())
    if not parity.passed:
        raise RuntimeError(f"the ONNX export does not match the model: {parity.line()}")
    return onnx_network(model_bytes)


def _run_of(checkpoint: Path) -> RunDir | None:
    """The run a checkpoint in its `best/` or `checkpoints/` folder belongs to, else None."""
    folder = checkpoint.absolute().parent.parent
    return RunDir.open(folder) if checkpoint.parent.name in ("best", "checkpoints") and \
        (folder / "run.json").is_file() else None
