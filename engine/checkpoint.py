"""Checkpoints: written whole or not at all, loaded without unpickling arbitrary objects, and checked
before a trainer trusts one.

A checkpoint is a `torch.save` of a dict of tensors, numbers, strings and lists (state dicts, counters,
schedule progress) loaded with `weights_only=True`. It is written to a temp name in the same folder,
fsynced, then renamed, so a trainer killed mid-write leaves the previous checkpoint intact and at
most a stray `.tmp` file that loading ignores. Names are `step_<zero-padded step>.pt`.

`check_checkpoint` refuses (UsageError, one line) a dict that lacks a key, holds a value of the wrong
type, has another format or weights that do not fit the network it describes; `check_fits` refuses one
trained for another game or other layers. The CLI imports this module to list checkpoints
(`trainctl status`), so torch is imported inside the functions that need it, never at the top.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import UsageError
from engine.runstore import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    import torch

    from engine.profiles import ResolvedConfig

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


def keep_best(folder: Path, step: int, table: Mapping[str, Any], state: dict[str, Any]) -> Path:
    """Make `state` the only checkpoint of a run's best/ `folder`: `step_<step>.pt`, with the `table` that
    made it the best (an evaluation, validation metrics) beside it in `step_<step>.json`, written first so
    that a reader that takes the newest checkpoint always finds its table; the previous pair is removed
    once the new one is in place. Used by training's evaluations (engine.train_eval) and the world model."""
    previous = list_checkpoints(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint_name(step)
    atomic_write_json(path.with_suffix(".json"), dict(table))
    save_checkpoint(folder, step, {**state, "step": int(step)})
    for old in previous:
        if old != path:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
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


# Checkpoint keys every trainer writes, with their types: what the network's shapes follow from.
NETWORK_KEYS: Mapping[str, type] = {"format": str, "env": str, "net_arch": list, "obs_size": int,
                                    "num_actions": int}


def network_description(model: Any, cfg: ResolvedConfig, net_arch_key: str) -> dict[str, Any]:
    """What the networks' shapes follow from: the game, the hidden layers (`cfg[net_arch_key]`), and the
    observation and action sizes of `model` (an SB3 algorithm on a flat Box observation and a Discrete
    action space, whose `num_actions` is its action count, or a Box one, whose `num_actions` is its size)."""
    space = model.action_space
    num_actions = int(space.n) if hasattr(space, "n") else int(space.shape[0])
    return {"env": cfg["run.env"], "net_arch": list(cfg[net_arch_key]),
            "obs_size": int(model.observation_space.shape[0]), "num_actions": num_actions}


def check_checkpoint(state: Mapping[str, Any], keys: Mapping[str, type | tuple[type, ...]], fmt: str,
                     build: Callable[[int, int, list[int]], torch.nn.Module], weights: Sequence[str],
                     cfg: ResolvedConfig | None, net_arch_key: str) -> None:
    """UsageError (one line) unless `state` has every key of `keys` with its type (a bool is no int),
    format `fmt`, and state dicts under `weights` that fit the network `build(obs_size, num_actions,
    net_arch)`; with `cfg`, also unless it was trained on the same game with the same hidden layers."""
    import torch

    missing = [k for k in keys if k not in state]
    if missing:
        raise UsageError(f"checkpoint is not a {fmt} checkpoint: missing {', '.join(missing)}")
    wrong = [k for k, t in keys.items() if not isinstance(state[k], t) or isinstance(state[k], bool)]
    if wrong:
        raise UsageError(f"checkpoint has values of the wrong type for: {', '.join(wrong)}")
    if state["format"] != fmt:
        raise UsageError(f"checkpoint format {state['format']!r} is not {fmt!r}")
    try:
        expected = build(state["obs_size"], state["num_actions"], state["net_arch"]).state_dict()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise UsageError(f"checkpoint network description does not build ({exc})") from None
    for which in weights:
        got = state[which]
        if set(got) != set(expected):
            raise UsageError(f"checkpoint {which} does not match the network: keys differ "
                             f"({sorted(set(got) ^ set(expected))[:3]})")
        for name, tensor in expected.items():
            if not isinstance(got[name], torch.Tensor) or got[name].shape != tensor.shape:
                shape = tuple(got[name].shape) if isinstance(got[name], torch.Tensor) else type(got[name])
                raise UsageError(f"checkpoint {which}.{name} has shape {shape}; the network needs "
                                 f"{tuple(tensor.shape)}")
    if cfg is not None:
        check_fits(state, {"env": cfg["run.env"], "net_arch": list(cfg[net_arch_key])})


def check_fits(state: Mapping[str, Any], description: Mapping[str, Any]) -> None:
    """UsageError unless the checkpoint's network description equals this run's (`network_description`)."""
    for key, value in description.items():
        if state[key] != value:
            raise UsageError(f"checkpoint {key} = {state[key]!r} does not fit this run ({key} = {value!r})")
