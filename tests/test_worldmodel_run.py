"""World-model runs end to end on a tiny generated dataset: `trainctl run --algo worldmodel --data DIR`
writes its metrics, [PERF] phases, checkpoints, best/ and the cache state; a run stopped in the middle of
an epoch and resumed ends where an uninterrupted run ends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from engine import datasets, worldmodel
from engine.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from engine.context import RunContext
from engine.launcher import create_trainer_run
from engine.profiles import resolve
from engine.runstore import RunDir, StopRequest, list_runs

PROJECT = Path(__file__).resolve().parent.parent
TINY = ["worldmodel.batch_size=64", "worldmodel.hidden=[32]", "torch.threads=1", "log.tensorboard=false"]
METRICS = {"epoch", "time/epoch", "time/samples_per_s", "train/loss", "train/lr", "val/pass_hp_mae",
           "val/attack_hp_mae", "val/ko_miss_rate", "val/done_acc", "val/done_loss", "val/reward_mae", "val_total"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wm") / "data"
    datasets.generate(out, ("greedy", "random"), 800, seed=5, num_games=16)
    return out


def read_events(run: RunDir) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run.events_path.read_text().splitlines()]


@pytest.mark.slow
def test_a_tiny_run_writes_metrics_perf_checkpoints_best_and_resumes_for_more(data_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    sets = [x for a in [*TINY, "worldmodel.epochs=3"] for x in ("--set", a)]
    done = subprocess.run([sys.executable, "-m", "cli.main", "run", "--algo", "worldmodel", "--data", str(data_dir),
                           "--runs-dir", str(runs), *sets], cwd=PROJECT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = list_runs(runs)
    info = run.read_config()
    train_rows = info["data"]["train"]
    assert info["data"]["cache"] == "cache train=hit val=hit" and "cache train=hit val=hit" in done.stdout
    assert info["total_steps"] == 3 * train_rows and run.read_status()["state"] == "finished"
    assert "square-root rule" in done.stdout and "AMP off" in done.stdout

    events = read_events(run)
    metrics = [e for e in events if e["kind"] == "metric"]
    assert [e["step"] for e in metrics] == [train_rows, 2 * train_rows, 3 * train_rows]  # the step: samples seen
    assert all(set(e["values"]) == METRICS for e in metrics)
    assert [e["values"]["epoch"] for e in metrics] == [1, 2, 3]
    assert metrics[-1]["values"]["val_total"] < metrics[0]["values"]["val_total"]  # it learns
    phases = {p for e in events if e["kind"] == "perf" for p in e["ms"]}
    assert phases == {"data", "forward", "backward", "optimizer", "eval"}

    assert [p.name for p in list_checkpoints(run.checkpoints)][-1] == f"step_{3 * train_rows:012d}.pt"
    best = latest_checkpoint(run.path / "best")
    assert best is not None and len(list_checkpoints(run.path / "best")) == 1
    table = json.loads(best.with_suffix(".json").read_text())
    best_total = min(e["values"]["val_total"] for e in metrics)
    assert table["metrics"]["val_total"] == pytest.approx(best_total)
    state = load_checkpoint(best)
    worldmodel.check_resume(state)
    assert state["step"] == table["step"] and state["best_val_total"] == pytest.approx(best_total)
    model = worldmodel.model_from_checkpoint(state)
    assert model(torch.zeros(2, model.input_width))[0].shape == (2, 6)

    more = subprocess.run([sys.executable, "-m", "cli.main", "run", "--resume", run.run_id, "--steps",
                           str(4 * train_rows), "--runs-dir", str(runs)], cwd=PROJECT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert more.returncode == 0, more.stdout + more.stderr
    assert "4 epochs" in more.stdout and "(--steps on resume)" in more.stdout
    metrics = [e for e in read_events(run) if e["kind"] == "metric"]
    assert [e["values"]["epoch"] for e in metrics] == [1, 2, 3, 4] and metrics[-1]["step"] == 4 * train_rows
    assert run.read_config()["total_steps"] == 4 * train_rows


def make_ctx(runs: Path, data_dir: Path, stop: StopRequest | None = None) -> RunContext:
    cfg = resolve("balance", algo="worldmodel", env="duel", environ={},
                  assignments=[f"data.dir={json.dumps(str(data_dir))}", *TINY, "worldmodel.epochs=2",
                               "worldmodel.plateau_patience=0", "log.console=false"])
    return RunContext(create_trainer_run(cfg, runs, ["test"]), cfg, stop)


def final_state(ctx: RunContext, resume: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    try:
        state = worldmodel.train(ctx, resume)
    finally:
        ctx.close()
    found = latest_checkpoint(ctx.run.checkpoints)
    assert found is not None
    return state, load_checkpoint(found)


@pytest.mark.slow
def test_a_run_stopped_mid_epoch_and_resumed_ends_like_an_uninterrupted_one(
        data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.set_num_threads(1)
    _, whole = final_state(make_ctx(tmp_path / "a", data_dir))

    stop = StopRequest()
    step = worldmodel.Trainer._step
    calls = []
    stop_at = -(-len(datasets.load(data_dir).train) // 64) + 3  # the 3rd minibatch of the second epoch

    def step_then_stop(self: worldmodel.Trainer, index: torch.Tensor) -> float:
        calls.append(1)
        if len(calls) == stop_at:
            stop.set()
        return step(self, index)

    monkeypatch.setattr(worldmodel.Trainer, "_step", step_then_stop)
    ctx = make_ctx(tmp_path / "b", data_dir, stop)
    ended, stopped = final_state(ctx)
    assert ended == "stopped" and stopped["epoch"] == 1 and stopped["batch_in_epoch"] == 3
    monkeypatch.setattr(worldmodel.Trainer, "_step", step)

    again = RunContext(RunDir.open(ctx.run.path), ctx.cfg, StopRequest())
    ended, resumed = final_state(again, stopped)
    assert ended == "finished"
    assert resumed["samples"] == whole["samples"] and resumed["epoch"] == whole["epoch"] == 2
    for name, tensor in whole["model"].items():
        assert torch.allclose(resumed["model"][name], tensor, atol=1e-6), name
    assert resumed["best_val_total"] == pytest.approx(whole["best_val_total"], rel=1e-6)
    assert resumed["scheduler"]["num_bad_epochs"] == whole["scheduler"]["num_bad_epochs"]
