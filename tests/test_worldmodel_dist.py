"""The world-model trainer on many processes (`--nproc`, engine.distributed): the same global batch on one
and two CPU processes (gloo, through torch.distributed.run) gives the same loss curve; rank 0 alone writes
the run; a stop asked of the run stops every rank at the same minibatch with one checkpoint; a rank that
fails fails the run with its message in the run's status; --nproc beyond the cores is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine import datasets, distributed
from engine.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from engine.cores import core_count
from engine.launcher import create_trainer_run, start, worker_argv
from engine.profiles import resolve
from engine.runstore import RunDir, list_runs

PROJECT = Path(__file__).resolve().parent.parent
TINY = ["worldmodel.batch_size=64", "worldmodel.hidden=[32]", "torch.threads=1", "log.tensorboard=false",
        "worldmodel.epochs=3", "worldmodel.plateau_patience=0"]
CURVE = ("train/loss", "val_total", "val/attack_hp_mae", "val/done_loss", "train/lr")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wmdist") / "data"
    # 810 rows: the last minibatch of an epoch is short (and odd), so the ranks' shares differ in size
    datasets.generate(out, ("greedy", "random"), 800, seed=5, num_games=16)
    return out


def trainctl(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=PROJECT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def metric_events(run: RunDir) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in run.events_path.read_text().splitlines()]
    return [e for e in events if e["kind"] == "metric"]


def test_ranks_come_from_torchruns_environment_and_shards_cover_a_minibatch_once() -> None:
    alone = distributed.Ranks.from_env({})
    assert (alone.rank, alone.world, alone.distributed, alone.writes_run) == (0, 1, False, True)
    second = distributed.Ranks.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (second.writes_run, second.records_status, second.distributed) == (False, False, True)
    shares = [distributed.shard(slice(20, 31), distributed.Ranks(r, 3, r)) for r in range(3)]
    assert [i for part in shares for i in range(part.start, part.stop)] == list(range(20, 31))
    assert {part.stop - part.start for part in shares} == {3, 4}


def test_a_run_of_many_processes_starts_torchrun_as_an_argv_list(tmp_path: Path, data_dir: Path) -> None:
    def argv(*sets: str) -> list[str]:
        cfg = resolve("balance", algo="worldmodel", env="duel", environ={},
                      assignments=[f"data.dir={json.dumps(str(data_dir))}", *sets])
        return worker_argv(RunDir(tmp_path / "run"), cfg, resume=False)

    assert argv()[1:] == ["-m", "engine.worker", str(tmp_path / "run")]
    assert argv("dist.nproc=2")[1:] == ["-m", "torch.distributed.run", "--nproc-per-node=2", "--standalone",
                                        "--max-restarts=0", "-m", "engine.worker", str(tmp_path / "run")]
    two_nodes = argv("dist.nproc=2", "dist.nnodes=2", "dist.node_rank=1", 'dist.master_addr="10.0.0.1"')
    assert {"--nnodes=2", "--node-rank=1", "--master-addr=10.0.0.1", "--master-port=29500"} <= set(two_nodes)


@pytest.mark.parametrize(("args", "expected"), [
    (["--nproc", str(core_count() + 1)], f"more than the {core_count()} core(s)"),
    (["--nproc", "2", "--algo", "ppo", "--env", "beastybar"], "runs in one process"),
    (["--nproc", "1", "--nnodes", "2", "--node-rank", "2"], "dist.node_rank = 2 is not below dist.nnodes = 2"),
])
def test_bad_process_counts_are_one_line_and_exit_2_with_nothing_written(
        tmp_path: Path, data_dir: Path, args: list[str], expected: str) -> None:
    from cli.main import main

    runs = tmp_path / "runs"
    data = [] if "--algo" in args else ["--algo", "worldmodel", "--data", str(data_dir)]
    assert main(["run", *data, *args, "--set", "torch.device=cpu", "--runs-dir", str(runs)]) == 2
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.slow
def test_the_same_global_batch_on_one_and_two_processes_gives_the_same_loss_curve(
        data_dir: Path, tmp_path: Path) -> None:
    curves = {}
    for nproc in (1, 2):
        runs = tmp_path / f"runs{nproc}"
        sets = [x for a in TINY for x in ("--set", a)]
        done = trainctl("run", "--algo", "worldmodel", "--data", str(data_dir), "--nproc", str(nproc),
                        "--runs-dir", str(runs), *sets)
        assert done.returncode == 0, done.stdout + done.stderr
        (run,) = list_runs(runs)
        assert run.read_status()["state"] == "finished"
        metrics = metric_events(run)
        curves[nproc] = [e["values"][k] for e in metrics for k in CURVE]
        assert [e["step"] for e in metrics] == [728, 1456, 2184]  # samples seen by all the ranks together
        if nproc == 2:
            assert "2 ranks through torchrun (gloo)" in done.stdout
            assert done.stdout.count("[METRIC]") == 3  # rank 0 alone writes the console lines
            perf = [json.loads(line) for line in run.events_path.read_text().splitlines() if '"perf"' in line]
            assert perf and all("sync" in e["ms"] for e in perf)
            assert [p.name for p in list_checkpoints(run.checkpoints)][-1] == "step_000000002184.pt"
            assert len(list_checkpoints(run.path / "best")) == 1
    assert curves[1] == pytest.approx(curves[2], rel=1e-4, abs=1e-6)


@pytest.mark.slow
def test_a_stop_stops_every_rank_at_the_same_minibatch_and_the_run_resumes_on_them(
        data_dir: Path, tmp_path: Path) -> None:
    cfg = resolve("balance", algo="worldmodel", env="duel", environ={},
                  assignments=[f"data.dir={json.dumps(str(data_dir))}", *TINY, "dist.nproc=2"])
    run = create_trainer_run(cfg, tmp_path / "runs", ["test"])
    run.request_stop("the test")  # read by both ranks at start-up: they stop after their first step
    start(run).wait(timeout=600)
    assert run.read_status()["state"] == "stopped" and run.read_status()["step"] == 64  # the checkpoint's step
    found = latest_checkpoint(run.checkpoints)
    assert found is not None and found.name == "step_000000000064.pt"
    state = load_checkpoint(found)
    assert (state["epoch"], state["batch_in_epoch"], state["samples"]) == (0, 1, 64)

    done = trainctl("run", "--resume", run.run_id, "--runs-dir", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming at epoch 0 minibatch 1" in done.stdout and "2 ranks through torchrun" in done.stdout
    assert run.read_status()["state"] == "finished"
    assert [e["step"] for e in metric_events(run)] == [728, 1456, 2184]


@pytest.mark.slow
def test_a_rank_that_fails_fails_the_run_with_its_message(data_dir: Path, tmp_path: Path) -> None:
    from tests.dist_failing_rank import FAILURE

    cfg = resolve("balance", algo="worldmodel", env="duel", environ={},
                  assignments=[f"data.dir={json.dumps(str(data_dir))}", *TINY, "dist.nproc=2"])
    run = create_trainer_run(cfg, tmp_path / "runs", ["test"])
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           "--max-restarts=0", str(PROJECT / "tests" / "dist_failing_rank.py"), str(run.path)],
                          cwd=PROJECT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode != 0
    status = run.read_status()
    assert status["state"] == "failed" and status["exit_code"] == 1
    assert status["error"].startswith(f"rank 1: ValueError: {FAILURE}")
    from engine.launcher import ending

    assert FAILURE in ending(run, status, "failed")
