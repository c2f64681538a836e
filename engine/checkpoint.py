"""Checkpoints: written whole or not at all, loaded without unpickling arbitrary objects.

A checkpoint is a `torch.save` of a dict of tensors, numbers, strings and lists (state dicts, counters,
schedule progress) loaded with `weights_only=True`. It is written to a temp name in the same folder,
fsynced, then renamed, so a trainer killed mid-write leaves the previous checkpoint intact and at
most a stray `.tmp` file that loading ignores. Names are `step_<zero-padded step>.pt`.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.runstore import atomic_write_bytes

_NAME = re.compile(r"^step_(\d{12})\.pt$")


def checkpoint_name(step: int) -> str:
    return f"step_{step:012d}.pt"


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep: int | None = None) -> Path:
    """Write `state` as the checkpoint of `step` atomically; keep only the newest `keep` if given."""
    import torch  # here, not at the top: listing checkpoints (trainctl status/report) needs no torch

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint_name(step)
    data = io.BytesIO()
    torch.save(state, data)
    atomic_write_bytes(path, data.getbuffer())
    if keep is not None:
        for old in list_checkpoints(folder)[:-keep]:
            old.unlink(missing_ok=True)
    return path


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def latest_checkpoint(folder: Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's dict; a missing, truncated or foreign file is a UsageError naming it."""
    import torch

    if not path.is_file():
        raise UsageError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file; all mean the same to a user
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"checkpoint {path} cannot be loaded ({first_line[:160]})") from None
    if not isinstance(state, dict) or "step" not in state:
        raise UsageError(f"checkpoint {path} is not a trainctl checkpoint (no step recorded)")
    return state
