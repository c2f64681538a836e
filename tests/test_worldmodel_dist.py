"""The world-model trainer on many processes (`--nproc`, engine.distributed): the same global batch on one
and two CPU processes (gloo, through torch.distributed.run) gives the same loss curve; rank 0 alone writes
the run; a stop asked of the run stops every rank at the same minibatch with one checkpoint; a rank that
fails fails the run with its message in the run's status; --nproc beyond the cores is refused."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine import datasets, distributed
from engine.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from engine.cores import core_count
from engine.errors import UsageError
from engine.launcher import create_trainer_run, prepare_resume, start, worker_argv
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


def train_curve(runs: Path, data_dir: Path, *flags: str) -> tuple[RunDir, subprocess.CompletedProcess[str]]:
    """One `trainctl run` of the tiny world model with `flags`; its run (checked finished) and output."""
    done = trainctl(*run_args(runs, data_dir, *flags))
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = list_runs(runs)
    assert run.read_status()["state"] == "finished"
    return run, done


def run_args(runs: Path, data_dir: Path, *flags: str) -> list[str]:
    return ["run", "--algo", "worldmodel", "--data", str(data_dir), *flags, "--runs-dir", str(runs),
            *(x for a in TINY for x in ("--set", a))]


def curve(run: RunDir) -> list[float]:
    metrics = metric_events(run)
    assert [e["step"] for e in metrics] == [728, 1456, 2184]  # samples seen by all the ranks together
    return [e["values"][k] for e in metrics for k in CURVE]


@pytest.fixture(scope="module")
def one_process_curve(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[float]:
    run, _ = train_curve(tmp_path_factory.mktemp("one_process"), data_dir, "--nproc", "1")
    return curve(run)


def test_a_machine_after_the_first_resumes_without_a_checkpoint_and_machine_0_needs_one(
        data_dir: Path, tmp_path: Path) -> None:
    for node in (0, 1):
        cfg = resolve("balance", algo="worldmodel", env="duel", environ={},
                      assignments=[f"data.dir={json.dumps(str(data_dir))}", *TINY, "dist.nnodes=2",
                                   f"dist.node_rank={node}"])
        info = {"kind": "trainer", "algo": "worldmodel", "env": "duel", "profile": "balance", "config": cfg.to_json()}
        run = RunDir.create(tmp_path / f"machine{node}", "wm", info)
        run.write_status(state="stopped", step=64, exit_code=130)
        if node == 0:
            with pytest.raises(UsageError, match=r"has no checkpoint in .* to resume from"):
                prepare_resume(run.run_id, tmp_path / "machine0")
            continue
        plan = prepare_resume(run.run_id, tmp_path / "machine1")
        assert (plan.checkpoint, plan.step, plan.source) == (None, 64, "machine 0's checkpoint")
        with pytest.raises(UsageError, match="--steps 64 is not above step 64 of machine 0's checkpoint"):
            prepare_resume(run.run_id, tmp_path / "machine1", total_steps=64)


@pytest.mark.slow
def test_the_same_global_batch_on_one_and_two_processes_gives_the_same_loss_curve(
        data_dir: Path, tmp_path: Path, one_process_curve: list[float]) -> None:
    run, done = train_curve(tmp_path / "runs", data_dir, "--nproc", "2")
    assert "2 ranks through torchrun (gloo)" in done.stdout
    assert done.stdout.count("[METRIC]") == 3  # rank 0 alone writes the console lines
    perf = [json.loads(line) for line in run.events_path.read_text().splitlines() if '"perf"' in line]
    assert perf and all("sync" in e["ms"] for e in perf)
    assert [p.name for p in list_checkpoints(run.checkpoints)][-1] == "step_000000002184.pt"
    assert len(list_checkpoints(run.path / "best")) == 1
    assert curve(run) == pytest.approx(one_process_curve, rel=1e-4, abs=1e-6)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_two_machines_on_one_host_stop_together_and_resume_from_machine_0s_checkpoint(
        data_dir: Path, tmp_path: Path, one_process_curve: list[float]) -> None:
    """`--nnodes 2`: each "machine" is its own run folder and worker here, with its node rank and the static
    rendezvous at 127.0.0.1 (what two pods run, but for the address). A stop asked of machine 0 stops both;
    machine 1 then resumes without a checkpoint of its own, and the job ends on the one-process curve."""
    port = free_port()
    runs = []
    for node in (0, 1):
        cfg = resolve("balance", algo="worldmodel", env="duel", environ={},
                      assignments=[f"data.dir={json.dumps(str(data_dir))}", *TINY, "dist.nnodes=2",
                                   f"dist.node_rank={node}", 'dist.master_addr="127.0.0.1"',
                                   f"dist.master_port={port}"])
        runs.append(create_trainer_run(cfg, tmp_path / f"machine{node}", ["test"]))
    runs[0].request_stop("the test")  # machine 0 only: the step's all_reduce carries it to machine 1
    for proc in [start(run) for run in runs]:
        proc.wait(timeout=600)  # torchrun's own code: 1 for a worker's 130, so the statuses say how it ended
    assert [(r.read_status()["state"], r.read_status()["step"]) for r in runs] == [("stopped", 64)] * 2
    assert [len(list_checkpoints(r.checkpoints)) for r in runs] == [1, 0]  # machine 0 alone writes the run

    machines = [subprocess.Popen([sys.executable, "-m", "cli.main", "run", "--resume", run.run_id, "--runs-dir",
                                  str(run.path.parent)], cwd=PROJECT, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for run in runs]
    outputs = [machine.communicate(timeout=600)[0] for machine in machines]
    assert [m.returncode for m in machines] == [0, 0], "\n".join(outputs)
    assert "resumed at step 64 from step_000000000064.pt" in outputs[0]
    assert "resumed at step 64 from machine 0's checkpoint" in outputs[1]
    assert "2 ranks through torchrun (gloo)" in outputs[0] and "[METRIC]" not in outputs[1]
    assert [r.read_status()["state"] for r in runs] == ["finished"] * 2
    assert curve(runs[0]) == pytest.approx(one_process_curve, rel=1e-4, abs=1e-6)
    assert not list_checkpoints(runs[1].checkpoints) and not list_checkpoints(runs[1].path / "best")


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
