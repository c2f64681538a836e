"""Comparing world-model runs side by side (tui.comparison): `trainctl compare RUN RUN` and the TUI compare
screen show their config differences, time and epochs, and the wm-bench figures and verdict each run's
latest `wm_bench` event holds; a world-model run's default plots include val_total."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tui_fixtures import T0, fabricate_run, settle, wait_for_text

from cli.main import main
from engine import datasets
from engine.events import EventWriter, metric_event
from engine.runstore import RunDir
from tui.app import TrainctlApp
from tui.model import default_metrics

GO_FIGURES = {"hp_mae": 0.4, "pass_hp_mae": 0.2, "ko_miss_rate": 0.0, "done_f1": 0.99, "reward_mae": 0.01,
              "drift_per_game": 2.5}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cmp") / "data"
    datasets.generate(out, ("greedy", "random"), 200, seed=5, num_games=4)
    return out


def world_model_run(runs_dir: Path, run_id: str, data_dir: Path, batch: int, epoch_s: float,
                    bench: dict[str, float] | None, failed: list[str]) -> RunDir:
    run = fabricate_run(runs_dir, run_id, algo="worldmodel", env="duel", windows=2,
                        assignments=(f"data.dir={json.dumps(str(data_dir))}", f"worldmodel.batch_size={batch}"))
    with EventWriter(run.events_path) as writer:
        for epoch in (1, 2, 3):
            writer.write({**metric_event(1000 * epoch, {"epoch": epoch, "time/epoch": epoch_s,
                                                         "val_total": 1.0 / epoch, "train/loss": 1.5 / epoch}),
                          "t": T0 + 100 + epoch})
        if bench is not None:
            writer.write({"t": T0 + 200, "step": 3000, "kind": "wm_bench", "checkpoint": "step_000000003000.pt",
                          "games": 200, "seed": 10_000, "players": "sensible,random", "metrics": bench,
                          "failed": failed, "verdict": "NO-GO" if failed else "GO"})
    return run


def two_runs(runs_dir: Path, data_dir: Path) -> list[RunDir]:
    return [world_model_run(runs_dir, "20260101T000000_wm_big", data_dir, 4096, 2.0, GO_FIGURES, []),
            world_model_run(runs_dir, "20260101T010000_wm_small", data_dir, 1024, 5.0,
                            {**GO_FIGURES, "ko_miss_rate": 0.3}, ["KO miss rate"])]


def test_trainctl_compare_prints_config_time_and_wm_bench_side_by_side(
        tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    two_runs(tmp_path, data_dir)
    assert main(["compare", "20260101T000000_wm_big", "20260101T010000_wm_small", "--runs-dir", str(tmp_path)]) == 0
    lines = {line.split("  ")[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert lines["worldmodel.batch_size"][1:] == ["4096", "1024"]
    assert lines["training time s"][3:] == ["6.0", "15.0"] and lines["best val_total"][2:] == ["0.3333", "0.3333"]
    assert lines["ko_miss_rate"][1:] == ["0", "0.3"]
    assert lines["verdict"][1:] == ["GO", "NO-GO:", "KO", "miss", "rate"]


def test_trainctl_compare_needs_two_different_runs(tmp_path: Path, data_dir: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    two_runs(tmp_path, data_dir)
    assert main(["compare", "20260101T000000_wm_big", "--runs-dir", str(tmp_path)]) == 2
    assert main(["compare", "20260101T000000_wm_big", "20260101T000000_wm_big", "--runs-dir", str(tmp_path)]) == 2
    assert main(["compare", "20260101T000000_wm_big", "nope", "--runs-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().out == ""


def test_a_world_model_runs_default_plots_include_val_total() -> None:
    keys = ["epoch", "time/epoch", "train/loss", "train/lr", "val/attack_hp_mae", "val_total"]
    assert "val_total" in default_metrics(keys) and "train/loss" in default_metrics(keys)


async def test_the_compare_screen_shows_the_wm_bench_verdicts(tmp_path: Path, data_dir: Path) -> None:
    two_runs(tmp_path, data_dir)
    app = TrainctlApp(tmp_path, clock=lambda: T0 + 86400, poll_s=0.1)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(app, pilot)
        await pilot.press("space", "up", "space", "c")
        await wait_for_text(app, pilot, "config differences")
        for _ in range(40):  # down to the wm-bench rows, as a person scrolls
            await pilot.press("down")
        shown = await wait_for_text(app, pilot, "verdict")
        assert "GO" in shown and "NO-GO: KO miss rate" in shown and "ko_miss_rate" in shown
