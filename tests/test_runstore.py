"""The run store: run folders, atomic status, summaries from the events' tail, atomic checkpoints."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from engine.errors import UsageError
from engine.events import EventWriter, metric_event, perf_event
from engine.runstore import RunDir, list_runs, make_run_id, resolve_run, summarize


def _run(tmp_path: Path, run_id: str = "20260101T000000_ppo_beastybar_speed") -> RunDir:
    return RunDir.create(tmp_path, run_id, {"algo": "ppo", "env": "beastybar", "profile": "speed",
                                            "total_steps": 1000})


def test_run_id_is_time_algo_env_profile_and_safe() -> None:
    run_id = make_run_id("dqn-per", "sky rmish/../x", "speed", now=0)
    assert run_id == "19700101T000000_dqn-per_sky-rmish-..-x_speed"
    assert make_run_id("ppo", "b", "p", now=0, name="my run") == "19700101T000000_my-run"


def test_create_makes_the_contract_layout(tmp_path: Path) -> None:
    run = _run(tmp_path)
    for name in ("run.json", "status.json", "events.jsonl", "checkpoints", "tb"):
        assert (run.path / name).exists(), name
    assert not (run.path / "best").exists()  # nothing writes a best model yet: no empty promise
    assert run.read_status()["state"] == "starting"
    with pytest.raises(UsageError, match="already exists"):
        _run(tmp_path)
    with pytest.raises(UsageError, match="may only hold"):
        RunDir.create(tmp_path, "bad/id", {})


@pytest.mark.slow
def test_status_merges_and_dead_process_reads_lost(tmp_path: Path) -> None:
    run = _run(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run.write_status(state="running", pid=dead.pid)
    run.write_status(step=10)
    status = run.read_status()
    assert status["state"] == "running" and status["step"] == 10
    assert run.effective_state() == "lost"
    run.write_status(pid=os.getpid())
    assert run.effective_state() == "running"


def test_open_rejects_what_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        RunDir.open(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(UsageError, match=r"is not a run folder: run\.json is missing"):
        RunDir.open(tmp_path / "plain")
    run = _run(tmp_path)
    run.status_path.write_text("{torn")
    with pytest.raises(UsageError, match="not valid JSON"):
        run.read_status()


def test_resolve_run_by_path_id_prefix_and_suffix(tmp_path: Path) -> None:
    a = _run(tmp_path, "20260101T000000_ppo_beastybar_speed")
    b = _run(tmp_path, "20260102T000000_ppo_beastybar_balance")
    assert [r.run_id for r in list_runs(tmp_path)] == [a.run_id, b.run_id]
    assert resolve_run(str(a.path), tmp_path) == a
    assert resolve_run("20260102", tmp_path) == b
    assert resolve_run("balance", tmp_path) == b
    assert resolve_run("0102T", tmp_path) == b  # any part that names one run
    with pytest.raises(UsageError, match="ambiguous"):
        resolve_run("2026", tmp_path)
    with pytest.raises(UsageError, match="no run 'zzz'"):
        resolve_run("zzz", tmp_path)


def test_summary_reads_latest_perf_and_metrics_and_skips_a_torn_line(tmp_path: Path) -> None:
    run = _run(tmp_path)
    with EventWriter(run.events_path) as w:
        w.write(perf_event(100, 10.0, 1.0, {"env_step": 0.5}))
        w.write(metric_event(100, {"rollout/ep_rew_mean": 0.25, "rollout/win_rate": 0.6}))
        w.write(perf_event(200, 20.0, 2.0, {"env_step": 0.4, "action": 0.1}))
    with open(run.events_path, "a") as f:
        f.write('{"kind": "perf", "step": 3')
    s = summarize(run)
    assert (s.step, s.sps, s.reward, s.win_rate) == (200, 20.0, 0.25, 0.6)
    assert s.perf_ms == {"env_step": 0.4, "action": 0.1}
    assert (s.algo, s.env, s.profile, s.total_steps) == ("ppo", "beastybar", "speed", 1000)


def test_checkpoints_are_atomic_pruned_and_validated(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    for step in (10, 20, 30, 40):
        save_checkpoint(folder, step, {"step": step, "w": torch.ones(2) * step}, keep=3)
    assert [p.name for p in list_checkpoints(folder)] == [
        "step_000000000020.pt", "step_000000000030.pt", "step_000000000040.pt"]
    (folder / ".step_x.pt.tmp").write_bytes(b"torn")  # what a kill mid-write leaves
    latest = latest_checkpoint(folder)
    assert latest is not None and latest.name == "step_000000000040.pt"
    assert torch.equal(load_checkpoint(latest)["w"], torch.full((2,), 40.0))
    latest.write_bytes(latest.read_bytes()[:50])
    with pytest.raises(UsageError, match="cannot be loaded"):
        load_checkpoint(latest)
    torch.save({"no": "step"}, folder / "step_000000000050.pt")
    with pytest.raises(UsageError, match="not a trainctl checkpoint"):
        load_checkpoint(folder / "step_000000000050.pt")


def test_checkpoint_refuses_pickled_objects(tmp_path: Path) -> None:
    path = tmp_path / "step_000000000001.pt"
    torch.save({"step": 1, "obj": Path("x")}, path)
    with pytest.raises(UsageError, match="cannot be loaded"):
        load_checkpoint(path)
