"""`trainctl export CKPT|RUN --onnx OUT`: a checkpoint's network as an ONNX model, checked against
onnxruntime by the command itself (engine.onnx_export says what each format exports and how parity is
judged).

CKPT is a checkpoint file; RUN a run id or folder, whose newest checkpoint in best/ (else checkpoints/)
is exported. Everything a user can get wrong (a missing or foreign file, a format we cannot export, an
OUT whose folder is missing or not writable, or that is a folder) is one line with exit code 2, found
before anything is exported. The model is written (temp name, then rename) only when parity passed; a
failed parity check prints its figures, writes nothing and exits 1. torch and onnx are imported when the
command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from engine.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="export a checkpoint's network (world model, PPO policy, DQN "
                            "Q-network) to ONNX, with a parity check against onnxruntime")
    parser.add_argument("subject", metavar="CKPT|RUN", help="a checkpoint file, or a run id or folder (its "
                        "newest best/ checkpoint, else its newest checkpoints/ one)")
    parser.add_argument("--onnx", type=Path, required=True, metavar="OUT", help="the ONNX file to write")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run ids are looked up")


def check_out(out: Path) -> None:
    """UsageError unless `out` can be written: its folder exists and is writable, and it is not a folder."""
    folder = out.absolute().parent
    if out.is_dir():
        raise UsageError(f"--onnx {out} is a folder; expected a file name such as {out / 'model.onnx'}")
    if not folder.is_dir():
        raise UsageError(f"--onnx {out}: folder {folder} does not exist; expected an existing folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--onnx {out}: folder {folder} is not writable")


def checkpoint_of(subject: str, runs_dir: Path) -> Path:
    """The checkpoint file `subject` names: itself when it is a file (or ends in .pt), else a run's."""
    from engine.players import run_checkpoint
    from engine.runstore import resolve_run

    path = Path(subject)
    if path.is_file() or subject.endswith(".pt"):
        return path
    return run_checkpoint(resolve_run(subject, runs_dir))


def run(args: argparse.Namespace) -> int:
    from engine.checkpoint import load_checkpoint
    from engine.onnx_export import check_parity, exportable, to_onnx
    from engine.runstore import atomic_write_bytes

    check_out(args.onnx)
    path = checkpoint_of(args.subject, args.runs_dir)
    state = load_checkpoint(path)
    try:
        target = exportable(state)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None
    import torch

    torch.set_num_threads(1)  # a small MLP on a shared machine: a second thread only waits for a core
    model_bytes = to_onnx(target)
    parity = check_parity(target, model_bytes)
    print(f"export {path} (step {state['step']:,}, {state.get('env')}): {target.kind}")
    print(f"  input {target.input_name} float32[batch, {target.width}] -> outputs {', '.join(target.output_names)}")
    for key, value in target.metadata.items():
        if not key.startswith("trainctl."):
            print(f"  {key}: {value}")
    print(parity.line())
    if not parity.passed:
        print(f"nothing written to {args.onnx}")
        return 1
    try:
        atomic_write_bytes(args.onnx, model_bytes)
    except OSError as exc:
        raise UsageError(f"--onnx {args.onnx} cannot be written ({exc.strerror or exc})") from None
    print(f"wrote {args.onnx} ({len(model_bytes):,} bytes)")
    return 0
