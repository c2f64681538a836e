"""The world model's rollout benchmark (`trainctl wm-bench CKPT`): real Duel games are played by two
scripted players through the pure-Python rules, and the same games' actions are replayed through the
model autoregressively beside them: each turn the model reads its own previous prediction of the HP and
KO state (the first turn reads the real deal). The parts of the observation the model does not predict
(which creature is active, species, the turn count, the opponent's last action) come from the real game,
since the replayed actions decide them. Then the gates (docs/worldmodel.md):

- HP divergence MAE < 1.0: |predicted HP - real HP| in HP points, over every turn and creature slot;
- KO miss rate < 1 %: real KOs the model did not predict that turn / real KOs;
- done F1 > 0.95: of the predicted "the game ends this turn" flags against the real ones;
- reward MAE < 0.05: |predicted reward - real reward| per turn;
- cumulative HP drift per game < 5.0: the six creatures' |predicted HP - real HP| summed at each game's
  last turn, averaged over games.

HP divergence on pass turns alone (the turns side 0 passed) is judged against a baseline model, seed 000's
"a significant decrease vs baseline": with `--baseline`, both models replay the same games and the gate
passes when the 95 % interval of the per-game difference (candidate - baseline, games with a pass turn)
lies below 0 (`compare_pass`). Without a baseline it is printed without a gate.
A `Predictor` is anything that maps (observation, both actions, the turn's random draws) to a
`Prediction`: the replay knows each turn's draws (accuracy and damage roll a side, the speed tie;
envs.duel.rules.DRAWS) since it plays the same games, and hands them to the model as the dataset did; `ModelPredictor`
wraps a world model's forward pass, either the trained WorldModel in torch (`torch_network`) or its ONNX
export run by onnxruntime (`onnx_network`, `--backend onnx`): the same gates judge both.
Nothing here trains or writes files (the command appends `bench_event` to the
checkpoint's run).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from engine.datasets import HP_COLUMNS, hp_and_alive
from engine.worldmodel import HP_SCALE, WorldModel, features
from envs.duel import rules
from envs.rng import Rng


@dataclass(frozen=True)
class Turn:
    """One real turn: the observation before it, both actions, its random draws int[5] (rules.DRAWS), the
    observation after, reward, done."""

    obs: np.ndarray
    action: int
    opp_action: int
    draws: np.ndarray
    next_obs: np.ndarray
    reward: float
    done: bool


@dataclass(frozen=True)
class Prediction:
    """What a predictor says one turn does: HP deltas float[6] in HP points, KO flags bool[6], done, reward."""

    hp_delta: np.ndarray
    ko: np.ndarray
    done: bool
    reward: float


Predictor = Callable[[np.ndarray, int, int, np.ndarray], Prediction]
"""(observation float32[62], action, opponent's action, the turn's draws int[5]) -> Prediction."""


def play_games(num_games: int, seed: int, players: tuple[str, str]) -> list[list[Turn]]:
    """`num_games` real games, game i dealt by a generator seeded `seed + i`, players[0] on side 0."""
    games = []
    for i in range(num_games):
        game, turns = rules.DuelGame(Rng(seed + i)), []
        while not game.over:
            obs = game.observation()
            action, opp_action = game.choose(0, players[0]), game.choose(1, players[1])
            result = game.play_turn((action, opp_action))
            turns.append(Turn(obs, action, opp_action, np.array(result.draws, dtype=np.int64), game.observation(),
                              game.reward(result, "hp"), game.over))
        games.append(turns)
    return games


Network = Callable[[np.ndarray], Sequence[np.ndarray]]
"""A world model's forward pass: features float32[B, F] -> (HP deltas [B, 6] in HP / 100, KO logits [B, 6],
done logits [B], rewards [B])."""
BACKENDS = ("torch", "onnx")


def torch_network(model: WorldModel) -> Network:
    """The trained model's own forward pass (CPU)."""
    model.eval()

    @torch.no_grad()
    def forward(x: np.ndarray) -> Sequence[np.ndarray]:
        return [o.numpy() for o in model(torch.from_numpy(x))]

    return forward


def onnx_network(model_bytes: bytes) -> Network:
    """An exported model (engine.onnx_export) run by onnxruntime on CPU, one intra-op thread."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    input_name = session.get_inputs()[0].name
    return lambda x: session.run(outputs, {input_name: x})


class ModelPredictor:
    """A world model's forward pass (either backend) as a Predictor, one transition at a time."""

    def __init__(self, network: Network) -> None:
        self.network = network

    def __call__(self, obs: np.ndarray, action: int, opp_action: int, draws: np.ndarray) -> Prediction:
        x = features(torch.from_numpy(obs[None]), torch.tensor([action]), torch.tensor([opp_action]),
                     torch.from_numpy(np.asarray(draws, dtype=np.int64)[None]))
        hp, ko, done, reward = self.network(x.numpy())
        return Prediction(hp[0] * HP_SCALE, ko[0] > 0, bool(done[0] > 0), float(reward[0]))


def with_state(real: np.ndarray, hp: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """The real observation `real` with the HP (points) and alive flags of the six creatures replaced."""
    obs = real.copy()
    slots = obs[: HP_COLUMNS * rules.SLOT_SIZE].reshape(HP_COLUMNS, rules.SLOT_SIZE)
    slots[:, 0] = hp / HP_SCALE
    slots[:, 1] = alive
    return obs


@dataclass
class Tally:
    """Sums over the replayed turns and games."""

    hp_err: list[float] = field(default_factory=list)
    pass_err: list[float] = field(default_factory=list)
    pass_turns: int = 0
    reward_err: list[float] = field(default_factory=list)
    ko_true: int = 0
    ko_missed: int = 0
    done_tp: int = 0
    done_fp: int = 0
    done_fn: int = 0
    drift: list[float] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        f1_base = 2 * self.done_tp + self.done_fp + self.done_fn
        return {"hp_mae": float(np.mean(self.hp_err)) if self.hp_err else 0.0,
                "pass_hp_mae": float(np.mean(self.pass_err)) if self.pass_err else 0.0,
                "pass_turns": float(self.pass_turns),
                "ko_miss_rate": self.ko_missed / self.ko_true if self.ko_true else 0.0,
                "done_f1": 2 * self.done_tp / f1_base if f1_base else 1.0,
                "reward_mae": float(np.mean(self.reward_err)) if self.reward_err else 0.0,
                "drift_per_game": float(np.mean(self.drift)) if self.drift else 0.0}


def replay(games: Sequence[Sequence[Turn]], predict: Predictor,
           pass_by_game: list[float] | None = None) -> dict[str, float]:
    """Replay each game's actions through `predict` autoregressively; the metrics of the module docstring.
    `pass_by_game`, when given, gets each game's mean HP divergence on its pass turns (NaN for a game
    without one), what `compare_pass` pairs."""
    tally = Tally()
    for turns in games:
        passes_before = len(tally.pass_err)
        hp, alive = hp_and_alive(turns[0].obs)
        hp = hp.astype(np.float64)
        for turn in turns:
            guess = predict(with_state(turn.obs, hp, alive), turn.action, turn.opp_action, turn.draws)
            real_hp, real_alive = hp_and_alive(turn.next_obs)
            _, was_alive = hp_and_alive(turn.obs)
            alive = alive & ~guess.ko
            hp = np.where(alive, np.clip(np.rint(hp + guess.hp_delta), 1, None), 0.0)
            error = np.abs(hp - real_hp)
            tally.hp_err.extend(error.tolist())
            if turn.action == rules.PASS:
                tally.pass_err.extend(error.tolist())
                tally.pass_turns += 1
            real_ko = was_alive & ~real_alive
            tally.ko_true += int(real_ko.sum())
            tally.ko_missed += int((real_ko & ~guess.ko).sum())
            tally.done_tp += int(guess.done and turn.done)
            tally.done_fp += int(guess.done and not turn.done)
            tally.done_fn += int(turn.done and not guess.done)
            tally.reward_err.append(abs(guess.reward - turn.reward))
        tally.drift.append(float(error.sum()))
        if pass_by_game is not None:
            own = tally.pass_err[passes_before:]
            pass_by_game.append(float(np.mean(own)) if own else float("nan"))
    return tally.metrics()


@dataclass(frozen=True)
class PassComparison:
    """HP divergence on pass turns, candidate against baseline on the same games: each model's mean over
    the games with a pass turn, and the mean per-game difference (candidate - baseline) with its 95 %
    interval (Student's t over those games)."""

    baseline: str
    candidate_mae: float
    baseline_mae: float
    difference: float
    low: float
    high: float
    games: int

    @property
    def decreased(self) -> bool:
        """Seed 000's gate: a significant decrease, the whole interval below 0."""
        return self.high < 0

    def line(self) -> str:
        return (f"{self.candidate_mae:.4f} vs baseline {self.baseline_mae:.4f}: {self.difference:+.4f} "
                f"[{self.low:+.4f}, {self.high:+.4f}] over {self.games} games with a pass")

    def as_json(self) -> dict[str, Any]:
        return {"checkpoint": self.baseline, "candidate_pass_hp_mae": self.candidate_mae,
                "baseline_pass_hp_mae": self.baseline_mae, "difference": self.difference, "low": self.low,
                "high": self.high, "games": self.games, "decreased": self.decreased}


def compare_pass(candidate: Sequence[float], baseline: Sequence[float], baseline_name: str) -> PassComparison:
    """Pair two `pass_by_game` lists of the same games. ValueError when fewer than two games had a pass
    turn (no interval)."""
    from scipy import stats

    ours, theirs = np.asarray(candidate, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    both = ~np.isnan(ours) & ~np.isnan(theirs)
    if int(both.sum()) < 2:
        raise ValueError(f"{int(both.sum())} game(s) with a pass turn: at least 2 are needed for an interval")
    diff = ours[both] - theirs[both]
    half = float(stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)))
    mean = float(diff.mean())
    return PassComparison(baseline_name, float(ours[both].mean()), float(theirs[both].mean()), mean, mean - half,
                          mean + half, int(both.sum()))


# Gate name -> (metric, comparison, threshold).
GATES: dict[str, tuple[str, str, float]] = {
    "HP divergence MAE": ("hp_mae", "<", 1.0),
    "KO miss rate": ("ko_miss_rate", "<", 0.01),
    "done F1": ("done_f1", ">", 0.95),
    "reward MAE": ("reward_mae", "<", 0.05),
    "cumulative HP drift per game": ("drift_per_game", "<", 5.0),
}


PASS_GATE = "HP divergence on pass"


def failing_gates(metrics: dict[str, float], pass_gate: PassComparison | None = None) -> list[str]:
    """The names of the gates `metrics` (and, with a baseline, `pass_gate`) do not pass (GO when empty)."""
    failed = []
    for name, (key, op, threshold) in GATES.items():
        value = metrics[key]
        if not (value < threshold if op == "<" else value > threshold):
            failed.append(name)
    if pass_gate is not None and not pass_gate.decreased:
        failed.append(PASS_GATE)
    return failed


def bench_event(step: int, checkpoint: str, games: int, seed: int, players: str, backend: str,
                metrics: dict[str, float], pass_gate: PassComparison | None = None) -> dict[str, Any]:
    """The `wm_bench` event appended to a run's events.jsonl (docs/events.md); `step` is the checkpoint's."""
    failed = failing_gates(metrics, pass_gate)
    return {"t": time.time(), "step": int(step), "kind": "wm_bench", "checkpoint": checkpoint, "games": games,
            "seed": seed, "players": players, "backend": backend, "metrics": dict(metrics), "failed": failed,
            "verdict": "NO-GO" if failed else "GO",
            **({"baseline": pass_gate.as_json()} if pass_gate is not None else {})}


def report(metrics: dict[str, float], games: int, turns: int, pass_gate: PassComparison | None = None) -> list[str]:
    """The lines wm-bench prints: one a gate, HP divergence on pass (a gate against a baseline), then GO or
    NO-GO with the failures."""
    lines = [f"{games} games, {turns} turns replayed autoregressively"]
    for name, (key, op, threshold) in GATES.items():
        ok = name not in failing_gates(metrics)
        lines.append(f"  {name:<30} {metrics[key]:>9.4f}  {op} {threshold:g}  {'pass' if ok else 'FAIL'}")
    if pass_gate is not None:
        verdict = "pass" if pass_gate.decreased else "FAIL (not a significant decrease)"
        lines.append(f"  {PASS_GATE:<30} {pass_gate.line()}  {verdict}")
    elif metrics.get("pass_turns", 1.0) > 0:  # wm_bench events written before the count: pass turns or 0.0
        lines.append(f"  {PASS_GATE:<30} {metrics['pass_hp_mae']:>9.4f}  (no gate: name a baseline)")
    else:
        lines.append(f"  {PASS_GATE:<30} {'-':>9}  (no pass turns in these games: no figure)")
    failed = failing_gates(metrics, pass_gate)
    lines.append("GO" if not failed else f"NO-GO: {', '.join(failed)}")
    return lines
