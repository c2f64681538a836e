"""Evaluation during PPO training: eval events every eval.every_steps, the best policy kept in best/
with its table, read back by `run:RUN` and by a resumed run; the eval settings' checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from engine import ppo
from engine.checkpoint import list_checkpoints, load_checkpoint
from engine.context import RunContext
from engine.errors import UsageError
from engine.launcher import create_trainer_run
from engine.players import NeuralPlayer, parse_player
from engine.profiles import resolve
from engine.train_eval import EvalDuringTraining, best_score, suite_score
from tests.test_ppo import TINY

torch.set_num_threads(1)

EVAL = [*TINY, "eval.every_steps=256", "eval.games=20", 'eval.suite=["random", "heuristic"]']


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> RunContext:
    cfg = resolve("balance", algo="ppo", env="beastybar", cli={"run.total_steps": 1024}, assignments=EVAL,
                  environ={})
    ctx = RunContext(create_trainer_run(cfg, tmp_path_factory.mktemp("runs"), ["test"]), cfg)
    try:
        assert ppo.train(ctx, None) == "finished"
    finally:
        ctx.close()
    return ctx


def eval_events(ctx: RunContext) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in ctx.run.events_path.read_text().splitlines()]
    return [e for e in events if e["kind"] == "eval"]


@pytest.mark.slow
def test_eval_events_every_eval_steps_and_at_the_end(trained: RunContext) -> None:
    evals = eval_events(trained)
    assert [e["step"] for e in evals] == [256, 512, 768, 1024]
    for event in evals:
        assert [row["opponent"] for row in event["rows"]] == ["random", "heuristic"]
        assert all(row["games"] == 20 and row["illegal_rate"] is not None for row in event["rows"])


@pytest.mark.slow
def test_best_folder_holds_the_best_policy_and_its_table(trained: RunContext) -> None:
    best = trained.run.path / "best"
    [checkpoint] = list_checkpoints(best)
    table = json.loads(checkpoint.with_suffix(".json").read_text())
    scores = [suite_score(e["rows"]) for e in eval_events(trained)]
    first_best = scores.index(max(scores))
    assert table["step"] == eval_events(trained)[first_best]["step"] == load_checkpoint(checkpoint)["step"]
    assert sorted(p.name for p in best.iterdir()) == [checkpoint.with_suffix(".json").name, checkpoint.name]
    ppo.check_resume(load_checkpoint(checkpoint))
    player = parse_player(f"run:{trained.run.run_id}", trained.run.path.parent)
    assert isinstance(player, NeuralPlayer) and player.path == checkpoint


@pytest.mark.slow
def test_a_resumed_run_knows_its_best_score(trained: RunContext) -> None:
    recorded = max(suite_score(e["rows"]) for e in eval_events(trained))
    assert best_score(trained.run.path / "best") == recorded
    callback = EvalDuringTraining(trained, ppo.build_policy(160, 33, [32, 32]), dict)
    assert callback.best == recorded


def test_best_score_of_no_or_a_damaged_folder(tmp_path: Path) -> None:
    assert best_score(tmp_path) is None
    (tmp_path / "step_000000000100.pt").write_bytes(b"x")
    (tmp_path / "step_000000000100.json").write_text("{")
    assert best_score(tmp_path) is None
    (tmp_path / "step_000000000100.json").write_text(json.dumps({"rows": [{"win_rate": 0.5}, {"win_rate": 1.0}]}))
    assert best_score(tmp_path) == 0.75


@pytest.mark.parametrize(("assignments", "said"), [
    (['eval.suite=["heuristic", "grandmaster"]'], "eval.suite names 'grandmaster'"),
    (["eval.suite=[1]"], "a list of player names"),
    (["eval.every_steps=-1"], ">= 0"),
    (["eval.games=0"], "> 0"),
])
def test_bad_eval_settings_are_usage_errors(assignments: list[str], said: str) -> None:
    with pytest.raises(UsageError, match=said):
        resolve("balance", algo="ppo", env="beastybar", environ={}, assignments=assignments)


def test_eval_during_training_only_where_a_trainer_does_it() -> None:
    with pytest.raises(UsageError, match="dqn-per on skirmish does not evaluate during training"):
        resolve("balance", algo="dqn-per", env="skirmish", environ={}, assignments=["eval.every_steps=1000"])
