"""Soccer evaluation: the games a fixed policy plays agree with the rules reference game by game, the
observations are normalised by frozen statistics, best/ keeps only improvements by mean goal
difference (its table written first), and (slow) a training run's eval events, best/ and checkpoints
that play back through `load_soccer_policy` and `trainctl eval`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tui_fixtures import fabricate_run

from cli.commands import report_text
from cli.main import main
from engine import checkpoint, soccer_eval
from engine.checkpoint import checkpoint_name, latest_checkpoint, list_checkpoints, load_checkpoint
from engine.context import RunContext
from engine.errors import UsageError
from engine.eval_scores import suite_margin
from engine.profiles import resolve
from engine.runstore import RunDir
from engine.soccer_eval import load_soccer_policy, parse_soccer_subject, play_soccer, soccer_row
from engine.train_eval import EvalDuringTraining, SoccerSuite, best_score
from envs.soccer import rules
from tests.test_soccer_ppo import make_ctx, run_train

torch.set_num_threads(1)


def full_throttle_left(obs: np.ndarray) -> np.ndarray:
    """A fixed policy: full throttle, steering a little left."""
    return np.tile(np.array([1.0, 0.25], dtype=np.float32), (len(obs), 1))


def reference_goals(seed: int, side: str, opponent: str, steps: int) -> tuple[int, int]:
    game = rules.SoccerGame(seed, opponent, side=side, max_steps=steps)
    for _ in range(steps):
        game.step(float(np.float32(1.0)), float(np.float32(0.25)))
    info = game.end_info()
    return int(info["goals_for"]), int(info["goals_against"])  # type: ignore[call-overload]


@pytest.mark.parametrize("opponent", rules.OPPONENTS)
def test_a_fixed_policy_plays_the_reference_games_half_from_each_side(opponent: str) -> None:
    result = play_soccer(full_throttle_left, opponent, games=5, seed=40, max_steps=300)
    assert result.sides == ("left", "left", "left", "right", "right")
    expected = [reference_goals(40 + i, side, opponent, 300) for i, side in enumerate(result.sides)]
    assert list(zip(result.goals_for.tolist(), result.goals_against.tolist(), strict=True)) == expected
    row = soccer_row(result)
    assert row["wins"] + row["draws"] + row["losses"] == row["games"] == 5
    assert row["margin"] == pytest.approx(sum(f - a for f, a in expected) / 5)
    assert row["goals_against"] == pytest.approx(sum(a for _f, a in expected) / 5)
    assert row["turns"] == 300.0 and 0.0 <= row["win_low"] <= row["win_rate"] <= row["win_high"] <= 1.0
    differences = np.array([f - a for f, a in expected], dtype=float)
    half = 1.96 * differences.std(ddof=1) / np.sqrt(5)
    mean = differences.mean()
    assert (row["margin_low"], row["margin_high"]) == pytest.approx((mean - half, mean + half))


def test_the_goal_difference_interval_needs_two_games() -> None:
    assert soccer_eval.margin_interval(np.array([2])) == (None, None)
    assert soccer_eval.margin_interval(np.array([1, 1, 1])) == (1.0, 1.0)  # no spread: the mean itself
    low, high = soccer_eval.margin_interval(np.array([0, 2] * 50))
    assert low == pytest.approx(1 - 1.96 * np.std([0, 2] * 50, ddof=1) / 10) and high == pytest.approx(2 - low)


def test_the_chaser_beats_a_car_that_stands_still() -> None:
    row = soccer_row(play_soccer(lambda obs: np.zeros((len(obs), 2), np.float32), "chaser", 4, 0))
    assert row["wins"] == 0 and row["losses"] >= 3 and row["margin"] < -1.0 and row["goals_against"] >= 2.0


def test_the_policy_sees_observations_normalised_by_frozen_statistics() -> None:
    mean, var = np.linspace(-0.5, 0.5, rules.OBS_SIZE), np.linspace(0.5, 2.0, rules.OBS_SIZE)
    stats = {"obs_mean": torch.from_numpy(mean), "obs_var": torch.from_numpy(var), "obs_count": 10.0,
             "ret_mean": 0.0, "ret_var": 4.0, "ret_count": 10.0}
    seen: list[np.ndarray] = []

    def record(obs: np.ndarray) -> np.ndarray:
        seen.append(obs.copy())
        return full_throttle_left(obs)

    play_soccer(record, "goalie", 2, 3, None, max_steps=20)
    raw = np.stack(seen)
    seen.clear()
    play_soccer(record, "goalie", 2, 3, stats, max_steps=20)
    expected = np.clip((raw - mean) / np.sqrt(var + 1e-8), -10.0, 10.0)
    np.testing.assert_allclose(np.stack(seen), expected, rtol=1e-6, atol=1e-6)
    assert stats["obs_count"] == 10.0  # frozen: evaluation never updates them


def test_zero_games_are_refused() -> None:
    with pytest.raises(ValueError, match="games must be >= 1"):
        play_soccer(full_throttle_left, "chaser", 0, 0)


def rows(*margins: float) -> list[dict[str, Any]]:
    return [{"opponent": name, "margin": m, "win_rate": 0.5} for name, m in zip(rules.OPPONENTS, margins, strict=False)]


def test_best_keeps_only_improvements_of_the_mean_goal_difference(tmp_path: Path, monkeypatch: Any) -> None:
    cfg = resolve("balance", algo="ppo", env="soccer", cli={}, assignments=["eval.every_steps=256"], environ={})
    ctx = RunContext(RunDir.create(tmp_path, "run", {"config": {}}), cfg)  # no git: no subprocess
    try:
        callback = EvalDuringTraining(ctx, object(), lambda: {"weights": torch.zeros(2)})
        assert isinstance(callback.suite, SoccerSuite) and callback.best is None
        tables = iter([rows(0.5, -1.0), rows(0.0, 0.0), rows(1.0, 0.0), rows(0.25, 0.25)])
        monkeypatch.setattr(callback.suite, "play", lambda: next(tables))
        for step in (256, 512, 768, 1024):
            callback.evaluate(step)
        best = ctx.run.path / "best"
        assert sorted(p.name for p in best.iterdir()) == ["step_000000000768.json", "step_000000000768.pt"]
        assert json.loads((best / "step_000000000768.json").read_text())["rows"] == rows(1.0, 0.0)
        assert best_score(best, suite_margin) == callback.best == 0.5
        # The table goes first: when the checkpoint's write fails, the previous pair is still whole.
        monkeypatch.setattr(callback.suite, "play", lambda: rows(2.0, 2.0))
        monkeypatch.setattr(checkpoint, "save_checkpoint", lambda *_a, **_k: (_ for _ in ()).throw(OSError("full")))
        with pytest.raises(OSError):
            callback.evaluate(1280)
        assert latest_checkpoint(best) == best / "step_000000000768.pt"
        assert (best / "step_000000000768.json").is_file() and not list(best.glob("*.tmp*"))
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> RunContext:
    ctx = make_ctx(tmp_path_factory.mktemp("runs"), 512, "eval.every_steps=256", "eval.games=3")
    assert run_train(ctx) == "finished"
    return ctx


@pytest.mark.slow
def test_a_run_evaluates_against_both_cars_and_keeps_its_best(trained: RunContext) -> None:
    events = [json.loads(line) for line in trained.run.events_path.read_text().splitlines()]
    evals = [e for e in events if e["kind"] == "eval"]
    assert [e["step"] for e in evals] == [256, 512]
    for event in evals:
        assert [row["opponent"] for row in event["rows"]] == ["chaser", "goalie"]
        assert all(row["games"] == 3 and row["turns"] == 600.0 and "goals_for" in row for row in event["rows"])
    [best] = list_checkpoints(trained.run.path / "best")
    scores = [suite_margin(e["rows"]) for e in evals]
    assert load_checkpoint(best)["step"] == evals[scores.index(max(scores))]["step"]
    policy = parse_soccer_subject(trained.run.run_id, trained.run.path.parent)
    assert policy.path == best and policy.statistics is not None and policy.run is not None
    # The best policy replays its table: the same games, the same frozen statistics.
    table = json.loads(best.with_suffix(".json").read_text())["rows"][0]
    again = soccer_row(play_soccer(policy.actor(), "chaser", 3, 10_000, policy.statistics))
    assert again == table


@pytest.mark.slow
def test_trainctl_eval_of_a_soccer_run(trained: RunContext, capsys: pytest.CaptureFixture[str]) -> None:
    runs = str(trained.run.path.parent)
    assert main(["eval", trained.run.run_id, "--games", "2", "--runs-dir", runs]) == 0
    out = capsys.readouterr().out
    assert "chaser" in out and "goalie" in out and "GOALS" in out
    last = json.loads(trained.run.events_path.read_text().splitlines()[-1])
    assert last["kind"] == "eval" and last["games"] == 2 and last["checkpoint"].startswith("step_")
    assert main(["eval", trained.run.run_id, "--vs", "heuristic", "--runs-dir", runs]) == 2


@pytest.mark.slow
def test_a_checkpoint_without_the_statistics_its_run_used_is_refused(trained: RunContext, tmp_path: Path) -> None:
    best = latest_checkpoint(trained.run.path / "best")
    assert best is not None
    state = {k: v for k, v in load_checkpoint(best).items() if k != "vecnormalize"}
    bare = trained.run.checkpoints / "step_000000999999.pt"
    torch.save(state, bare)
    try:
        with pytest.raises(UsageError, match="no normalisation statistics but its run trained with env"):
            load_soccer_policy("x", bare)
        elsewhere = tmp_path / "step_1.pt"  # outside any run: nothing says it needed them
        torch.save(state, elsewhere)
        assert load_soccer_policy("x", elsewhere).statistics is None
    finally:
        bare.unlink()


def test_a_checkpoint_of_another_game_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "step_000000000001.pt"
    torch.save({"step": 1, "env": "beastybar", "format": "trainctl.ppo/1"}, path)
    with pytest.raises(UsageError, match="trained on 'beastybar'; expected a soccer checkpoint"):
        soccer_eval.load_soccer_policy("x", path)


@pytest.mark.slow
def test_trainctl_replay_of_a_soccer_run_and_of_a_checkpoint_missing_its_statistics(
        trained: RunContext, capsys: pytest.CaptureFixture[str]) -> None:
    runs = str(trained.run.path.parent)
    assert main(["replay", trained.run.run_id, "--vs", "goalie", "--frames", "3", "--runs-dir", runs]) == 0
    printed = capsys.readouterr().out.split("\n\n")
    assert len(printed) == 4 and printed[0].startswith(" A step ") and "goalie B" in printed[0]
    best = latest_checkpoint(trained.run.path / "best")
    assert best is not None
    bare = trained.run.checkpoints / "step_000000999998.pt"
    torch.save({k: v for k, v in load_checkpoint(best).items() if k != "vecnormalize"}, bare)
    try:
        assert main(["replay", str(bare), "--runs-dir", runs]) == 2
        err = capsys.readouterr().err
        assert "has no normalisation statistics but its run trained with env.normalize = true" in err
    finally:
        bare.unlink()


def test_report_of_a_soccer_run_shows_goals_the_difference_with_its_interval_and_the_best(tmp_path: Path) -> None:
    run = fabricate_run(tmp_path, "soccer_run", env="soccer", windows=2)
    rows = soccer_eval.evaluate_policy(lambda obs: np.zeros((len(obs), 2), np.float32), ["chaser", "goalie"],
                                       games=6, seed=3, statistics=None)
    event = {"t": 0.0, "step": 8192, "kind": "eval", "checkpoint": "training", "games": 6, "seed": 3, "rows": rows}
    with open(run.events_path, "a", encoding="utf-8") as f:
        f.write(json.dumps(event) + "\n")
    best = run.path / "best"
    best.mkdir()
    (best / checkpoint_name(8192)).write_bytes(b"")  # the report reads the table beside it, not the weights
    (best / checkpoint_name(8192)).with_suffix(".json").write_text(json.dumps(event))
    text = report_text(RunDir(run.path))
    for row in rows:
        line = next(line for line in text.splitlines() if line.startswith(f"  vs {row['opponent']}"))
        assert (f"goals {row['goals_for']:.2f}:{row['goals_against']:.2f}  difference {row['margin']:+.2f} "
                f"({row['margin_low']:+.2f} to {row['margin_high']:+.2f})  win {100 * row['win_rate']:5.1f}% "
                f"({100 * row['win_low']:.1f}-{100 * row['win_high']:.1f}%)") in line
    mean_difference = (rows[0]["margin"] + rows[1]["margin"]) / 2
    assert f"best     best/step_000000008192.pt (step 8,192): mean goal difference {mean_difference:+.3f}" in text
