"""Evaluation during training: every `eval.every_steps` env steps the live policy plays the suite, the
table goes out as an `eval` event, and the best policy so far is kept in the run's `best/` folder.

`EvalDuringTraining` is an SB3 callback a trainer adds to its callbacks (PPO on Beasty Bar: see
engine.profiles.EVAL_RUNS). It evaluates when a rollout starts (after an update, so the policy reflects
every step counted) and once more when learning ends, with the matches of `trainctl eval`
(engine.arena.evaluate_subject: `eval.games` games against each scripted player of `eval.suite`, on the
same paired deals from `eval.seed` every time, so evaluations compare like with like). The suite score
is the mean win rate over the suite. A score above the best so far writes `best/step_<step>.json` (the
eval event) and then `best/step_<step>.pt` (the checkpoint), each atomically, then removes the previous
pair: a reader that takes the newest checkpoint in best/ always finds its table beside it, and
`run:RUN` (engine.players) plays it. A resumed run reads its best score back from best/, and its eval
history is in events.jsonl, which only grows. The evaluation's time falls between the [PERF] phases
(the window it lands in shows fewer steps/s). Nothing here trains.

What is played and how a table scores is the game's `TrainingSuite`: Beasty Bar's above; soccer's
(engine.soccer_eval) plays `eval.games` games against each scripted car of `eval.suite`, half from
each side, with the run's normalisation statistics of the moment frozen, and scores by the mean goal
difference over the suite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

from engine.arena import eval_event, eval_row, evaluate_subject
from engine.checkpoint import checkpoint_name, keep_best, latest_checkpoint
from engine.context import RunContext
from engine.eval_scores import suite_margin, suite_score
from engine.players import BEST_FOLDER, NeuralPlayer, parse_player, player_names
from engine.sb3_callbacks import next_multiple
from engine.soccer_eval import evaluate_policy, policy_actor
from engine.vec_normalize import statistics

TRAINING = "training"
"""The `checkpoint` field of an eval event made during training (the live policy; its `step` says when)."""


def best_score(folder: Path, score: Callable[[list[dict[str, Any]]], float] = suite_score) -> float | None:
    """The `score` of the newest checkpoint in `folder` (a run's best/), from its table beside it; None
    when there is none or its table cannot be read."""
    newest = latest_checkpoint(folder)
    if newest is None:
        return None
    try:
        return score(json.loads(newest.with_suffix(".json").read_text())["rows"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class TrainingSuite(Protocol):
    """What a game evaluates its live policy against: `play()` the eval rows (docs/events.md) now,
    `score(rows)` the number best/ keeps the highest of (named `score_name` in the log), `summary(row)`
    a few words on one row for the log line."""

    score_name: str

    def play(self) -> list[dict[str, Any]]: ...

    def score(self, rows: list[dict[str, Any]]) -> float: ...

    def summary(self, row: dict[str, Any]) -> str: ...


class BeastyBarSuite:
    """The live policy against the scripted players of `eval.suite`, on paired deals (engine.arena);
    scored by the mean win rate."""

    score_name = "suite score"

    def __init__(self, ctx: RunContext, policy: Any) -> None:
        e = ctx.cfg.section("eval")
        self.games: int = e["games"]
        self.seed: int = e["seed"]
        self.player = NeuralPlayer(TRAINING, network=policy)
        self.suite = [parse_player(name, ctx.run.path.parent) for name in (e["suite"] or player_names())]

    def play(self) -> list[dict[str, Any]]:
        return [eval_row(r) for r in evaluate_subject(self.player, self.suite, self.games, self.seed)]

    def score(self, rows: list[dict[str, Any]]) -> float:
        return suite_score(rows)

    def summary(self, row: dict[str, Any]) -> str:
        return f"{row['opponent']} {100 * row['win_rate']:.1f}%"


class SoccerSuite:
    """The live policy (deterministic) against the scripted cars of `eval.suite`, from both sides, its
    observations normalised by the training VecNormalize's statistics as they stand (frozen copies);
    scored by the mean goal difference."""

    score_name = "mean goal difference"

    def __init__(self, ctx: RunContext, policy: Any, normalizer: VecNormalize | None) -> None:
        from envs.soccer import OPPONENTS

        e = ctx.cfg.section("eval")
        self.games: int = e["games"]
        self.seed: int = e["seed"]
        self.opponents: list[str] = list(e["suite"] or OPPONENTS)
        self.act = policy_actor(policy)
        self.normalizer = normalizer

    def play(self) -> list[dict[str, Any]]:
        stats = statistics(self.normalizer) if self.normalizer is not None else None
        return evaluate_policy(self.act, self.opponents, self.games, self.seed, stats)

    def score(self, rows: list[dict[str, Any]]) -> float:
        return suite_margin(rows)

    def summary(self, row: dict[str, Any]) -> str:
        return f"{row['opponent']} {row['margin']:+.2f} goals ({100 * row['win_rate']:.1f}% won)"


def training_suite(ctx: RunContext, policy: Any, normalizer: VecNormalize | None = None) -> TrainingSuite:
    """The run's game's suite (soccer's, or Beasty Bar's for the discrete game)."""
    if ctx.cfg["run.env"] == "soccer":
        return SoccerSuite(ctx, policy, normalizer)
    return BeastyBarSuite(ctx, policy)


class EvalDuringTraining(BaseCallback):
    """See the module docstring. `policy` is the trainer's live policy (an SB3 actor-critic policy),
    `state()` the checkpoint state a resume needs, written to best/ for a new best, and `normalizer` the
    training VecNormalize when the run normalises (its statistics are read at each evaluation)."""

    def __init__(self, ctx: RunContext, policy: Any, state: Callable[[], dict[str, Any]],
                 normalizer: VecNormalize | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.state = state
        self.every: int = ctx.cfg["eval.every_steps"]
        self.games: int = ctx.cfg["eval.games"]
        self.seed: int = ctx.cfg["eval.seed"]
        self.suite = training_suite(ctx, policy, normalizer)
        self.folder = ctx.run.path / BEST_FOLDER
        self.best = best_score(self.folder, self.suite.score)
        self.next_step = 0
        self.last_step = -1

    def _on_training_start(self) -> None:
        self.next_step = next_multiple(self.model.num_timesteps, self.every)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        step = self.model.num_timesteps
        if step >= self.next_step:
            self.evaluate(step)
            self.next_step = next_multiple(step, self.every)

    def _on_training_end(self) -> None:
        if self.model.num_timesteps != self.last_step:
            self.evaluate(self.model.num_timesteps)

    def evaluate(self, step: int) -> dict[str, Any]:
        """Play the suite now, write the eval event, keep the policy in best/ if it is the best so far."""
        self.last_step = step
        rows = self.suite.play()
        event = eval_event(step, TRAINING, self.games, self.seed, rows)
        self.ctx.events.write(event)
        score = self.suite.score(rows)
        summary = ", ".join(self.suite.summary(row) for row in rows)
        name = self.suite.score_name
        if self.best is None or score > self.best:
            keep_best(self.folder, step, event, self.state())
            self.ctx.log("info", f"eval: {summary}; {name} {score:.3f}, the best so far: kept in "
                         f"{BEST_FOLDER}/{checkpoint_name(step)}", step)
            self.best = score
        else:
            self.ctx.log("info", f"eval: {summary}; {name} {score:.3f} (best {self.best:.3f})", step)
        return event
