"""A player checkpoint (`trainctl export CKPT|RUN --player OUT`): a trained PPO policy or DQN Q-network
reduced to what playing it needs, small enough to ship in a repository (assets/beastybar_agent.pt is one).

- The optimizer's moments are dropped (`optimizer` = {}): the file plays, evaluates, enters an arena and
  exports to ONNX, but no run resumes from it.
- The network weights are stored as float16, half the bytes of float32. Loading copies them into the
  trainer's float32 network (`load_state_dict` converts), so every forward still runs in float32; only
  the weights carry float16's rounding (a relative 2**-11).
- `trained` records where it came from, read from the run folder the checkpoint sits in: the run, its
  command, its env steps and wall time, its date, which checkpoint this is, and the user's `--note` (the
  machine's load, say). bench/bench_beastybar_strength.py prints it.

Before anything is written, the float16 network is checked against the checkpoint's own on the seeded
inputs of ONNX export's parity check (engine.onnx_export): under the same random legal masks its masked
argmax must pick the same action in at least `AGREEMENT` of the rows (a float16 rounding can flip the
choice between two near-equal scores, so not all); a continuous action may move by `ACTION_TOLERANCE` at
most. Figures in `HalfParity.line()`.
"""

from __future__ import annotations

import datetime
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import dqn, ppo
from engine.errors import UsageError
from engine.onnx_export import PARITY_INPUTS, exportable, masked_argmax, parity_inputs, random_masks
from engine.runstore import RunDir

AGREEMENT = 0.99
ACTION_TOLERANCE = 0.01  # a continuous action's largest change, of its [-1, 1] range
# Playable checkpoint format -> its keys holding network weights (state dicts), stored as float16.
WEIGHTS: Mapping[str, tuple[str, ...]] = {ppo.STATE_FORMAT: ("policy",), dqn.STATE_FORMAT: ("q_net", "q_net_target")}


def half_weights(weights: Mapping[str, Any]) -> dict[str, Any]:
    """A state dict with each floating-point tensor as float16 (others, such as counters, unchanged)."""
    return {name: value.half() if isinstance(value, torch.Tensor) and value.is_floating_point() else value
            for name, value in weights.items()}


def trained_record(checkpoint: Path, note: str) -> dict[str, Any]:
    """Where `checkpoint` came from: its run (the folder above its `best/` or `checkpoints/`), the run's
    command (quoted for a shell), env steps, wall seconds (status `started` -> `ended`, or the last update
    of a run still going; a resumed run's last process only), creation date (UTC) and the checkpoint's
    path within it; only `checkpoint` and `note` when the file lies outside a run folder."""
    record: dict[str, Any] = {"checkpoint": checkpoint.name, "note": note}
    folder = checkpoint.absolute().parent.parent
    if not (folder / "run.json").is_file():
        return record
    run = RunDir.open(folder)
    info, status = run.read_config(), run.read_status()
    started, ended = status.get("started"), status.get("ended") or status.get("updated")
    created = info.get("created")
    record.update({
        "run": run.run_id, "command": shlex.join(str(part) for part in info.get("command", [])),
        "run_steps": int(status.get("step", 0)),
        "wall_seconds": float(ended - started) if started and ended else None,
        "date": datetime.datetime.fromtimestamp(created, datetime.UTC).date().isoformat() if created else None,
        "checkpoint": f"{checkpoint.absolute().parent.name}/{checkpoint.name}",
    })
    return record


def player_state(state: Mapping[str, Any], trained: Mapping[str, Any]) -> dict[str, Any]:
    """`state` as a player checkpoint (see the module docstring); UsageError for a format no one plays."""
    fmt = state.get("format")
    if fmt not in WEIGHTS:
        raise UsageError(f"checkpoint format {fmt!r} is not a player; expected one of {', '.join(WEIGHTS)}")
    halved = {key: half_weights(state[key]) for key in WEIGHTS[str(fmt)] if isinstance(state.get(key), Mapping)}
    return {**state, **halved, "optimizer": {}, "trained": dict(trained)}


@dataclass(frozen=True)
class HalfParity:
    """The float16 network against the original on `inputs` seeded rows: the largest |output difference|,
    and the rows whose masked argmax agrees (None for a network with continuous actions, judged by its
    largest difference instead: at most `ACTION_TOLERANCE`)."""

    inputs: int
    max_abs_diff: float
    argmax_agree: int | None

    @property
    def passed(self) -> bool:
        if self.argmax_agree is None:
            return self.max_abs_diff <= ACTION_TOLERANCE
        return self.argmax_agree >= AGREEMENT * self.inputs

    def line(self) -> str:
        judged = (f" (<= {ACTION_TOLERANCE:g})" if self.argmax_agree is None else
                  f", masked argmax the same in {self.argmax_agree:,}/{self.inputs:,} rows (>= {100 * AGREEMENT:g} %)")
        return (f"float16 weights vs the checkpoint's on {self.inputs:,} inputs: max abs diff "
                f"{self.max_abs_diff:.3g}{judged}: {'passed' if self.passed else 'FAILED'}")


def check_half(original: Mapping[str, Any], halved: Mapping[str, Any], count: int = PARITY_INPUTS,
               seed: int = 0) -> HalfParity:
    """Compare the networks of two checkpoints of one format on ONNX export's seeded inputs and masks;
    UsageError (one line, from the trainer's checks) when either is incomplete or damaged."""
    full, half = exportable(original), exportable(halved)
    rng = np.random.default_rng(seed)
    x = parity_inputs(full, rng, count)
    want, got = full.reference(x)[0], half.reference(x)[0]
    diff = float(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64)).max())
    agree = None
    if full.masked:
        masks = random_masks(rng, count, want.shape[1])
        agree = int((masked_argmax(got, masks) == masked_argmax(want, masks)).sum())
    return HalfParity(count, diff, agree)
