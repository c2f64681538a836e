"""`trainctl export CKPT|RUN --onnx OUT`: a checkpoint's network as an ONNX model, checked against
onnxruntime by the command itself (engine.onnx_export says what each format exports and how parity is
judged). `trainctl export CKPT|RUN --player OUT [--note TEXT]`: a small player checkpoint to share or
ship, float16 weights and no optimizer, with the record of its training (engine.player_asset).

CKPT is a checkpoint file; RUN a run id or folder, whose newest checkpoint in best/ (else checkpoints/)
is exported. Everything a user can get wrong (a missing or foreign file, a format we cannot export, an
OUT whose folder is missing or not writable, or that is a folder) is one line with exit code 2, found
before anything is exported. The file is written (temp name, then rename) only when its parity check
passed; a failed check prints its figures, writes nothing and exits 1. torch and onnx are imported when the
command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from engine.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="export a checkpoint's network (world model, PPO policy, DQN "
                            "Q-network) to ONNX, with a parity check against onnxruntime; or a PPO/DQN "
                            "checkpoint as a small float16 player file")
    parser.add_argument("subject", metavar="CKPT|RUN", help="a checkpoint file, or a run id or folder (its "
                        "newest best/ checkpoint, else its newest checkpoints/ one)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--onnx", type=Path, metavar="OUT", help="the ONNX file to write")
    target.add_argument("--player", type=Path, metavar="OUT", help="the player checkpoint (.pt) to write: "
                        "float16 weights, no optimizer, the training's record; plays, evaluates, exports")
    parser.add_argument("--note", default="", help="--player: a note kept in its training record (e.g. "
                        "what else the machine ran)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run ids are looked up")


def check_out(out: Path, flag: str, example: str) -> None:
    """UsageError unless `out` (given as `flag`) can be written: its folder exists and is writable, and it
    is not a folder (`example` is a file name to suggest inside it)."""
    folder = out.absolute().parent
    if out.is_dir():
        raise UsageError(f"{flag} {out} is a folder; expected a file name such as {out / example}")
    if not folder.is_dir():
        raise UsageError(f"{flag} {out}: folder {folder} does not exist; expected an existing folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {out}: folder {folder} is not writable")


def checkpoint_of(subject: str, runs_dir: Path) -> Path:
    """The checkpoint file `subject` names: itself when it is a file (or ends in .pt), else a run's."""
    from engine.players import run_checkpoint
    from engine.runstore import resolve_run

    path = Path(subject)
    if path.is_file() or subject.endswith(".pt"):
        return path
    return run_checkpoint(resolve_run(subject, runs_dir))


def write(out: Path, flag: str, data: bytes | memoryview) -> None:
    """Write `data` to `out` atomically; an OS refusal is the user's path (UsageError)."""
    from engine.runstore import atomic_write_bytes

    try:
        atomic_write_bytes(out, data)
    except OSError as exc:
        raise UsageError(f"{flag} {out} cannot be written ({exc.strerror or exc})") from None
    print(f"wrote {out} ({len(data):,} bytes)")


def run(args: argparse.Namespace) -> int:
    from engine.checkpoint import load_checkpoint

    if args.player is not None:
        check_out(args.player, "--player", "agent.pt")
    else:
        check_out(args.onnx, "--onnx", "model.onnx")
    path = checkpoint_of(args.subject, args.runs_dir)
    state = load_checkpoint(path)
    import torch

    torch.set_num_threads(1)  # a small MLP on a shared machine: a second thread only waits for a core
    return export_player(path, state, args) if args.player is not None else export_onnx(path, state, args.onnx)


def export_onnx(path: Path, state: dict[str, Any], out: Path) -> int:
    from engine.onnx_export import check_parity, exportable, to_onnx

    try:
        target = exportable(state)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None
    model_bytes = to_onnx(target)
    parity = check_parity(target, model_bytes)
    print(f"export {path} (step {state['step']:,}, {state.get('env')}): {target.kind}")
    print(f"  input {target.input_name} float32[batch, {target.width}] -> outputs {', '.join(target.output_names)}")
    for key, value in target.metadata.items():
        if not key.startswith("trainctl."):
            print(f"  {key}: {value}")
    print(parity.line())
    if not parity.passed:
        print(f"nothing written to {out}")
        return 1
    write(out, "--onnx", model_bytes)
    return 0


def export_player(path: Path, state: dict[str, Any], args: argparse.Namespace) -> int:
    import io

    import torch

    from engine.player_asset import check_half, player_state, trained_record

    try:
        player = player_state(state, trained_record(path, args.note))
        parity = check_half(state, player)  # runs the trainer's checks of the checkpoint first
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None
    print(f"player {path} (step {state['step']:,}, {state.get('env')}, {state['format']}): float16 weights, "
          "no optimizer")
    for key, value in player["trained"].items():
        print(f"  trained.{key}: {value}")
    print(parity.line())
    if not parity.passed:
        print(f"nothing written to {args.player}")
        return 1
    data = io.BytesIO()
    torch.save(player, data)
    write(args.player, "--player", data.getbuffer())
    return 0
