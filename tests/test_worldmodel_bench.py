"""wm-bench (engine/wm_bench.py, cli/wm_bench.py) against hand-made predictors: one that knows the real
next state scores no error and GO; one that never predicts KO fails the KO gate alone; fixed errors give
the figures worked out by hand; against a baseline, HP divergence on pass turns is a gate that a planted
better model passes and a worse one fails; the command refuses a checkpoint that is not a world model's."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from cli.main import main
from engine.checkpoint import save_checkpoint
from engine.datasets import hp_and_alive
from engine.onnx_export import exportable, to_onnx
from engine.runstore import RunDir
from engine.wm_bench import (
    PASS_GATE,
    ModelPredictor,
    Prediction,
    Predictor,
    Turn,
    bench_event,
    compare_pass,
    failing_gates,
    onnx_network,
    play_games,
    replay,
    report,
    torch_network,
)
from engine.worldmodel import STATE_FORMAT, WorldModel, model_from_checkpoint
from envs.duel import rules


@pytest.fixture(scope="module")
def games() -> list[list[Turn]]:
    return play_games(12, seed=7, players=("greedy", "random"))


def oracle(games: Sequence[Sequence[Turn]], first_turn_hp_error: float = 0.0, ko: bool = True,
           reward_error: float = 0.0, done: bool = True, pass_hp_error: float = 0.0) -> Predictor:
    """A predictor that reads each real turn in order and says what it did, with the errors asked for:
    `first_turn_hp_error` HP points added to my slot 0's delta on each game's first turn (`pass_hp_error`
    on each turn side 0 passed), KO never predicted (ko False), the reward off by `reward_error`, done
    never predicted (done False). Without errors it also checks that it is shown the real observation (the
    rollout rebuilt it exactly)."""
    turns: Iterator[tuple[int, Turn]] = ((i, t) for game in games for i, t in enumerate(game))
    exact = first_turn_hp_error == 0.0 and ko and pass_hp_error == 0.0

    def predict(obs: np.ndarray, action: int, opp_action: int, draws: np.ndarray) -> Prediction:
        number, turn = next(turns)
        assert (action, opp_action) == (turn.action, turn.opp_action) and np.array_equal(draws, turn.draws)
        if exact:
            assert np.array_equal(obs, turn.obs)
        hp, alive = hp_and_alive(turn.obs)
        next_hp, next_alive = hp_and_alive(turn.next_obs)
        delta = (next_hp - hp).astype(np.float64)
        if number == 0:
            delta[0] += first_turn_hp_error
        if turn.action == rules.PASS:
            delta[0] += pass_hp_error
        knocked = alive & ~next_alive if ko else np.zeros(6, dtype=bool)
        return Prediction(delta, knocked, turn.done and done, turn.reward + reward_error)

    return predict


def test_the_true_next_state_scores_zero_error_and_go(games: list[list[Turn]]) -> None:
    metrics = replay(games, oracle(games))
    passes = sum(turn.action == rules.PASS for game in games for turn in game)
    assert metrics == {"hp_mae": 0.0, "pass_hp_mae": 0.0, "pass_turns": passes, "ko_miss_rate": 0.0, "done_f1": 1.0,
                       "reward_mae": 0.0, "drift_per_game": 0.0}
    assert failing_gates(metrics) == [] and report(metrics, len(games), 0)[-1] == "GO"


def test_games_without_a_pass_turn_print_no_pass_figure(games: list[list[Turn]]) -> None:
    no_pass = [[turn for turn in game if turn.action != rules.PASS] for game in games]
    metrics = replay(no_pass, oracle(no_pass))
    assert metrics["pass_turns"] == 0
    assert "no pass turns in these games" in "\n".join(report(metrics, len(no_pass), 0))


def test_a_model_that_never_predicts_ko_fails_the_ko_gate(games: list[list[Turn]]) -> None:
    kos = sum(int((hp_and_alive(t.obs)[1] & ~hp_and_alive(t.next_obs)[1]).sum()) for g in games for t in g)
    assert kos > 0
    metrics = replay(games, oracle(games, ko=False))
    assert metrics["ko_miss_rate"] == 1.0
    assert "KO miss rate" in failing_gates(metrics)
    assert report(metrics, len(games), 0)[-1].startswith("NO-GO: ") and "KO miss rate" in report(metrics, 1, 0)[-1]


def test_fixed_errors_give_the_hand_computed_figures(games: list[list[Turn]]) -> None:
    metrics = replay(games, oracle(games, reward_error=0.1, done=False))
    assert metrics["reward_mae"] == pytest.approx(0.1) and metrics["done_f1"] == 0.0
    assert failing_gates(metrics) == ["done F1", "reward MAE"]
    assert report(metrics, len(games), 0)[-1] == "NO-GO: done F1, reward MAE"


def test_an_hp_error_carries_over_until_the_creature_is_ko(games: list[list[Turn]]) -> None:
    """3 HP too many on my slot 0 in each game's first turn stays 3 HP of divergence on that slot for every
    turn it is alive after, and is gone once it is KO (both sides of the rollout then say 0 HP)."""
    metrics = replay(games, oracle(games, first_turn_hp_error=3.0))
    alive_after = [[bool(hp_and_alive(t.next_obs)[1][0]) for t in game] for game in games]
    turns = sum(len(g) for g in games)
    assert metrics["hp_mae"] == pytest.approx(3.0 * sum(map(sum, alive_after)) / (6 * turns))
    assert metrics["drift_per_game"] == pytest.approx(3.0 * sum(a[-1] for a in alive_after) / len(games))
    assert metrics["ko_miss_rate"] == 0.0 and metrics["done_f1"] == 1.0


def test_the_pass_interval_is_students_t_over_the_games_with_a_pass_turn() -> None:
    gate = compare_pass([0.5, float("nan"), 1.0, 0.2], [1.5, float("nan"), 2.0, 1.4], "base.pt")
    half = 4.302653 * np.std([-1.0, -1.0, -1.2], ddof=1) / np.sqrt(3)  # t(0.975, 2 degrees of freedom)
    assert (gate.games, gate.candidate_mae, gate.baseline_mae) == (3, pytest.approx(1.7 / 3), pytest.approx(4.9 / 3))
    assert (gate.difference, gate.low, gate.high) == (pytest.approx(-3.2 / 3), pytest.approx(-3.2 / 3 - half),
                                                      pytest.approx(-3.2 / 3 + half))
    assert gate.decreased and gate.as_json()["checkpoint"] == "base.pt"
    assert not compare_pass([1.0, 0.0, 2.0], [0.9, 0.1, 2.0], "b").decreased  # a mixed difference: not significant
    with pytest.raises(ValueError, match="1 game"):
        compare_pass([1.0, float("nan")], [2.0, 3.0], "b")


def test_against_a_baseline_pass_divergence_is_a_gate_a_better_model_passes_and_a_worse_fails() -> None:
    games = play_games(12, seed=7, players=("random", "greedy"))  # side 0 random: it passes
    exact, off = [], []
    replay(games, oracle(games), exact)
    worse = replay(games, oracle(games, pass_hp_error=2.0), off)
    gate = compare_pass(exact, off, "worse.pt")
    assert gate.games >= 2 and gate.candidate_mae == 0.0 and gate.high < 0
    assert failing_gates(replay(games, oracle(games)), gate) == []
    reverse = compare_pass(off, exact, "better.pt")
    assert not reverse.decreased and failing_gates(worse, reverse)[-1] == PASS_GATE
    lines = report(worse, len(games), 0, reverse)
    assert "vs baseline 0.0000" in lines[-2] and "FAIL (not a significant decrease)" in lines[-2]
    assert lines[-1].endswith(PASS_GATE)
    event = bench_event(1, "best.pt", 12, 7, "random,greedy", "torch", worse, reverse)
    assert event["verdict"] == "NO-GO" and event["baseline"]["decreased"] is False


def worldmodel_state(hidden: Sequence[int] = (16,), seed: int = 0) -> dict[str, object]:
    torch.manual_seed(seed)
    model = WorldModel(rules.OBS_SIZE, rules.NUM_ACTIONS, list(hidden))
    return {"format": STATE_FORMAT, "env": "duel", "net_arch": list(hidden), "obs_size": rules.OBS_SIZE,
            "num_actions": rules.NUM_ACTIONS, "model": model.state_dict(), "optimizer": {}, "scheduler": {},
            "epoch": 0, "batch_in_epoch": 0, "samples": 0, "best_val_total": 1.0, "bad_epochs": 0,
            "data_sha256": "", "rng_torch": torch.get_rng_state()}


def test_the_command_prints_the_gates_and_no_go_and_saves_them_in_the_run(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    run = RunDir.create(tmp_path, "20260101T000000_worldmodel_duel_balance", {"kind": "trainer"})
    path = save_checkpoint(run.path / "best", 1, {**worldmodel_state(), "step": 1})
    assert main(["wm-bench", str(path), "--games", "3", "--seed", "1"]) == 1
    out = capsys.readouterr().out
    assert "3 games" in out and "HP divergence MAE" in out and "saved as a wm_bench event" in out
    verdict = next(line for line in out.splitlines() if line.startswith("NO-GO: "))
    (event,) = [json.loads(line) for line in run.events_path.read_text().splitlines()]
    assert event["kind"] == "wm_bench" and event["verdict"] == "NO-GO" and event["games"] == 3
    assert verdict == "NO-GO: " + ", ".join(event["failed"]) and set(event["metrics"]) >= {"hp_mae", "done_f1"}


def test_the_command_refuses_a_checkpoint_that_is_not_a_world_model(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = save_checkpoint(tmp_path, 1, {"step": 1, "format": "trainctl.ppo/1"})
    assert main(["wm-bench", str(path)]) == 2
    assert f"not a {STATE_FORMAT} checkpoint" in capsys.readouterr().err
    assert main(["wm-bench", str(path), "--players", "sensible"]) == 2


def test_a_baseline_needs_games_where_side_0_passes_and_a_world_model(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    ours = save_checkpoint(tmp_path / "ours", 1, {**worldmodel_state(), "step": 1})
    theirs = save_checkpoint(tmp_path / "theirs", 1, {**worldmodel_state(seed=1), "step": 1})
    assert main(["wm-bench", str(ours), "--games", "3", "--baseline", str(theirs)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "side 0 is 'sensible'" in err and "random,sensible" in err
    not_a_model = save_checkpoint(tmp_path / "ppo", 1, {"step": 1, "format": "trainctl.ppo/1"})
    assert main(["wm-bench", str(ours), "--baseline", str(not_a_model)]) == 2
    assert f"--baseline {not_a_model}" in capsys.readouterr().err
    run = RunDir.create(tmp_path / "runs", "20260101T000000_worldmodel_duel_balance", {"kind": "trainer"})
    save_checkpoint(run.path / "best", 1, {**worldmodel_state(), "step": 1})
    assert main(["wm-bench", str(ours), "--games", "4", "--seed", "3", "--players", "random,sensible",
                 "--baseline", run.run_id, "--runs-dir", str(tmp_path / "runs")]) == 1
    out = capsys.readouterr().out
    assert f"baseline {run.path / 'best'}" in out and "games with a pass" in out


def test_torch_and_onnx_backends_give_the_same_metrics_and_verdict(games: list[list[Turn]]) -> None:
    """The ONNX export run by onnxruntime replays the games as the torch model does: the same metrics (to
    float tolerance: a rounding of a predicted HP could differ only on a tie at 1e-6) and the same verdict."""
    state = worldmodel_state(hidden=(32, 32), seed=3)
    by_torch = replay(games, ModelPredictor(torch_network(model_from_checkpoint(state))))
    by_onnx = replay(games, ModelPredictor(onnx_network(to_onnx(exportable({**state, "step": 1})))))
    assert by_onnx == pytest.approx(by_torch, abs=1e-4)
    assert failing_gates(by_onnx) == failing_gates(by_torch)


def test_the_command_runs_the_onnx_backend_and_records_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = RunDir.create(tmp_path, "20260101T000000_worldmodel_duel_balance", {"kind": "trainer"})
    path = save_checkpoint(run.path / "best", 1, {**worldmodel_state(), "step": 1})
    verdicts = []
    for backend in ("torch", "onnx"):
        assert main(["wm-bench", str(path), "--games", "3", "--seed", "1", "--backend", backend]) == 1
        out = capsys.readouterr().out
        assert f"backend {backend}" in out
        assert ("parity vs onnxruntime on 1,000 inputs" in out) == (backend == "onnx")
        verdicts.append(next(line for line in out.splitlines() if line.startswith("NO-GO: ")))
    events = [json.loads(line) for line in run.events_path.read_text().splitlines()]
    assert [e["backend"] for e in events] == ["torch", "onnx"] and verdicts[0] == verdicts[1]
    assert events[1]["metrics"] == pytest.approx(events[0]["metrics"], abs=1e-4)
