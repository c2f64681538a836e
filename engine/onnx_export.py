"""ONNX export of a trained network (`trainctl export CKPT|RUN --onnx OUT`), checked against onnxruntime.

What each checkpoint format exports (`exportable`):

- a world model (`trainctl.worldmodel/3`): input `features` float32[B, F] (engine.worldmodel.features'
  layout, F recorded in the metadata), outputs `hp_delta` [B, 6] (HP / 100), `ko_logits` [B, 6],
  `done_logit` [B], `reward` [B];
- a PPO policy of a game with discrete actions (`trainctl.ppo/1`, beastybar, duel, skirmish): input `obs`
  float32[B, D], output `logits` float32[B, A], the action logits before any mask (a player applies its
  legal mask and takes the argmax, as engine.players does);
- a PPO policy of a game with a Box of actions (soccer): input `obs`, the raw observation, output
  `action` float32[B, A], the deterministic action (the Gaussian's mean clipped to [-1, 1], as SB3's
  `predict(deterministic=True)`); when the checkpoint holds VecNormalize statistics their scaling
  (frozen: (obs - mean) / sqrt(var + 1e-8), clipped to +-10) is part of the graph, so the caller feeds
  the game's observation as it is;
- a DQN Q-network (`trainctl.dqn-per/1`): input `obs`, output `q_values` float32[B, A] (masked argmax
  by the caller).

The graph is exported with a dynamic batch axis, then run by onnxruntime on `PARITY_INPUTS` seeded
inputs (N(0, 4) for a policy or Q-network; a world model's are the features of real Duel turns) beside
the project's own torch path for the same network (`reference`): the largest difference of any output
must be <= `PARITY_TOLERANCE`, absolute for values within +-1 and relative to the value beyond (float32
itself rounds a logit of 95 by ~1e-5), and for the discrete kinds the masked argmax under random legal
masks (each row with at least one legal action) must be the same in every row. `to_onnx` returns the
serialized model and `check_parity` the `Parity` figures; writing the file (atomically) is the
command's job, and only a model that passed is written. Bad input a user can cause (not a checkpoint, a
format we cannot export) is a one-line UsageError. Nothing here trains or plays games.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from engine import dqn, ppo, vec_normalize, worldmodel
from engine.errors import UsageError
from engine.players import action_scores

PARITY_INPUTS = 1_000
PARITY_TOLERANCE = 1e-5
OPSET = 17


@dataclass
class Exportable:
    """One checkpoint's network ready to export: `module` maps the inputs (float32[B, width]) to the
    outputs; `reference` is the project's own torch path from the same input to the same outputs (numpy);
    `masked` when the first output scores discrete actions (the parity check also compares masked argmax);
    `metadata` goes into the ONNX model's metadata_props."""

    kind: str
    module: nn.Module
    input_name: str
    width: int
    output_names: tuple[str, ...]
    reference: Callable[[np.ndarray], list[np.ndarray]]
    masked: bool
    metadata: dict[str, str] = field(default_factory=dict)
    inputs: Callable[[np.random.Generator, int], np.ndarray] | None = None  # parity inputs; None: N(0, 4)


@dataclass(frozen=True)
class Parity:
    """The parity check's figures: inputs compared, the largest |torch - onnxruntime| over every output,
    the largest of the same divided by max(1, |torch|) (what the tolerance judges), and for a masked
    kind the rows whose masked argmax agrees (None otherwise)."""

    inputs: int
    max_abs_diff: float
    max_scaled_diff: float
    argmax_agree: int | None

    @property
    def passed(self) -> bool:
        return self.max_scaled_diff <= PARITY_TOLERANCE and self.argmax_agree in (None, self.inputs)

    def line(self) -> str:
        argmax = "" if self.argmax_agree is None else \
            f", masked argmax identical in {self.argmax_agree:,}/{self.inputs:,} rows"
        verdict = "passed" if self.passed else "FAILED"
        scaled = "" if self.max_scaled_diff == self.max_abs_diff else \
            f", {self.max_scaled_diff:.3g} relative to outputs beyond +-1"
        return (f"parity vs onnxruntime on {self.inputs:,} inputs: max abs diff {self.max_abs_diff:.3g}{scaled} "
                f"(<= {PARITY_TOLERANCE:g}){argmax}: {verdict}")


# -- what each format exports -------------------------------------------------------------------------------
class _WorldModelGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model(features))


class _ScoresGraph(nn.Module):
    """A policy's action logits or a Q-network's Q-values (engine.players.action_scores)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return action_scores(self.network, obs)


class _DeterministicActionGraph(nn.Module):
    """A Box policy's deterministic action: frozen VecNormalize scaling (when given), the Gaussian's mean,
    clipped to the action space [-1, 1]."""

    def __init__(self, policy: nn.Module, stats: Mapping[str, Any] | None) -> None:
        super().__init__()
        self.policy = policy
        self.scaling: tuple[torch.Tensor, torch.Tensor] | None = None
        if stats is not None:  # constants of the graph: the standard deviation taken in float64, as SB3 does
            self.scaling = (stats["obs_mean"].float(), torch.sqrt(stats["obs_var"] + vec_normalize.EPSILON).float())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.scaling is not None:
            mean, std = self.scaling
            obs = ((obs - mean) / std).clamp(-vec_normalize.CLIP_OBS, vec_normalize.CLIP_OBS)
        return action_scores(self.policy, obs).clamp(-1.0, 1.0)


def _numpy_outputs(module: Callable[[torch.Tensor], Any]) -> Callable[[np.ndarray], list[np.ndarray]]:
    """A torch path as a function of numpy inputs to a list of numpy outputs."""

    @torch.no_grad()
    def run(x: np.ndarray) -> list[np.ndarray]:
        out = module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return [o.numpy() for o in (out if isinstance(out, tuple | list) else (out,))]

    return run


def _worldmodel(state: Mapping[str, Any]) -> Exportable:
    worldmodel.check_resume(state)
    model = worldmodel.model_from_checkpoint(state)
    width = int(model.input_width)
    return Exportable("world model", _WorldModelGraph(model).eval(), "features", width,
                      ("hp_delta", "ko_logits", "done_logit", "reward"), _numpy_outputs(model), masked=False,
                      metadata={"features": f"float32[B, {width}]: engine.worldmodel.features' layout",
                                "hp_delta_unit": "HP / 100"}, inputs=_real_turns)


def _real_turns(rng: np.random.Generator, count: int) -> np.ndarray:
    """The features of `count` real Duel turns (random games of the scripted players, seeded by `rng`): a
    world model's inputs are sparse one-hots and crosses, and on dense random ones a trained model's
    outputs run into the hundreds, where float32's rounding alone exceeds the tolerance."""
    from engine.wm_bench import play_games
    from envs.duel import rules

    turns: list[Any] = []
    first = int(rng.integers(0, 2**31))
    while len(turns) < count:
        players = (rules.OPPONENTS[len(turns) % 3], rules.OPPONENTS[(len(turns) // 3) % 3])
        turns += [t for game in play_games(10, first + len(turns), players) for t in game]
    turns = turns[:count]
    return worldmodel.features(torch.from_numpy(np.stack([t.obs for t in turns])),
                               torch.tensor([t.action for t in turns]), torch.tensor([t.opp_action for t in turns]),
                               torch.from_numpy(np.stack([t.draws for t in turns]))).numpy()


def _ppo(state: Mapping[str, Any]) -> Exportable:
    ppo.check_resume(state)
    policy = ppo.policy_from_checkpoint(state)
    obs_size = int(state["obs_size"])
    if state.get("action_space") != "box":
        return Exportable("PPO policy (action logits, before the legal mask)", _ScoresGraph(policy).eval(), "obs",
                          obs_size, ("logits",), _numpy_outputs(lambda obs: action_scores(policy, obs)), masked=True,
                          metadata={"logits": "unmasked: apply the legal mask, then argmax"})
    stats = state.get(vec_normalize.STATE_KEY)
    if stats is not None:
        vec_normalize.check_statistics(stats, obs_size)

    def reference(obs: np.ndarray) -> list[np.ndarray]:  # SB3's own deterministic prediction
        seen = obs if stats is None else vec_normalize.normalize_observations(stats, obs).astype(np.float32)
        actions, _ = policy.predict(seen, deterministic=True)
        return [np.asarray(actions, dtype=np.float32)]

    scaling = ("the raw observation: the saved VecNormalize statistics' scaling (frozen, clip 10) is part of "
               "the graph") if stats is not None else "the raw observation (the run did not normalise)"
    return Exportable("PPO policy (deterministic action: the Gaussian's mean clipped to [-1, 1])",
                      _DeterministicActionGraph(policy, stats).eval(), "obs", obs_size, ("action",), reference,
                      masked=False, metadata={"obs": scaling})


def _dqn(state: Mapping[str, Any]) -> Exportable:
    dqn.check_resume(state)
    q_net = dqn.q_net_from_checkpoint(state)
    return Exportable("DQN Q-network (Q-values, before the legal mask)", _ScoresGraph(q_net).eval(), "obs",
                      int(state["obs_size"]), ("q_values",), _numpy_outputs(q_net), masked=True,
                      metadata={"q_values": "unmasked: apply the legal mask, then argmax"})


# Checkpoint format -> how its network is made exportable.
FORMATS: dict[str, Callable[[Mapping[str, Any]], Exportable]] = {
    worldmodel.STATE_FORMAT: _worldmodel, ppo.STATE_FORMAT: _ppo, dqn.STATE_FORMAT: _dqn,
}


def exportable(state: Mapping[str, Any]) -> Exportable:
    """The network of a loaded checkpoint (engine.checkpoint.load_checkpoint), checked by its trainer;
    UsageError (one line) for a format not in `FORMATS` or a damaged checkpoint."""
    fmt = state.get("format")
    if fmt not in FORMATS:
        raise UsageError(f"checkpoint format {fmt!r} cannot be exported; expected one of {', '.join(FORMATS)}")
    found = FORMATS[str(fmt)](state)
    found.metadata.update({"trainctl.format": str(fmt), "trainctl.env": str(state.get("env")),
                           "trainctl.step": str(state.get("step")), "trainctl.kind": found.kind})
    return found


# -- export and parity --------------------------------------------------------------------------------------
def to_onnx(target: Exportable) -> bytes:
    """The serialized ONNX model of `target.module` (batch axis dynamic) with `target.metadata`."""
    import onnx

    buffer = io.BytesIO()
    # The TorchScript exporter (dynamo=False): these are plain MLPs, exported in a fraction of a second,
    # where the torch.export one took ~12 s a model on this machine and printed warnings about torchvision.
    example = torch.zeros(2, target.width)
    axes = {name: {0: "batch"} for name in (target.input_name, *target.output_names)}
    torch.onnx.export(target.module, (example,), buffer,  # type: ignore[arg-type]  # a file object works too
                      input_names=[target.input_name], output_names=list(target.output_names),
                      dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    model = onnx.load_from_string(buffer.getvalue())
    for key, value in target.metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model.SerializeToString()


def random_masks(rng: np.random.Generator, rows: int, actions: int) -> np.ndarray:
    """bool[rows, actions]: each action legal with probability 1/2, one forced legal in a row left empty."""
    masks = rng.random((rows, actions)) < 0.5
    empty = ~masks.any(axis=1)
    masks[empty, rng.integers(0, actions, int(empty.sum()))] = True
    return masks


def masked_argmax(scores: np.ndarray, masks: np.ndarray) -> np.ndarray:
    return np.where(masks, scores, -np.inf).argmax(axis=1)


def parity_inputs(target: Exportable, rng: np.random.Generator, count: int) -> np.ndarray:
    """float32[count, width]: the network's own inputs if it names them (`Exportable.inputs`), else N(0, 4)."""
    x = target.inputs(rng, count) if target.inputs else 2.0 * rng.standard_normal((count, target.width))
    return np.ascontiguousarray(x, dtype=np.float32)


def check_parity(target: Exportable, model_bytes: bytes, count: int = PARITY_INPUTS, seed: int = 0) -> Parity:
    """Run the ONNX model in onnxruntime and the torch reference on `count` seeded random inputs."""
    import onnxruntime

    rng = np.random.default_rng(seed)
    x = parity_inputs(target, rng, count)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # a small MLP on a shared machine: a second thread only waits for a core
    session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    got = session.run(list(target.output_names), {target.input_name: x})
    want = [np.asarray(w, np.float64).reshape(np.shape(g)) for g, w in zip(got, target.reference(x), strict=True)]
    diffs = [np.abs(np.asarray(g, np.float64) - w) for g, w in zip(got, want, strict=True)]
    diff = max(float(d.max()) for d in diffs)
    # Beyond +-1 the tolerance is relative: float32 itself rounds a logit of 95 by ~1e-5 (torch's float32
    # and float64 forwards of a trained world model differ by 1.5e-5 there).
    scaled = max(float((d / np.maximum(1.0, np.abs(w))).max()) for d, w in zip(diffs, want, strict=True))
    agree = None
    if target.masked:
        masks = random_masks(rng, count, got[0].shape[1])
        agree = int((masked_argmax(got[0], masks) == masked_argmax(want[0], masks)).sum())
    return Parity(count, diff if math.isfinite(diff) else math.inf, scaled if math.isfinite(scaled) else math.inf,
                  agree)
