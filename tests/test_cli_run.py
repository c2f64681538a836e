"""`trainctl run` end to end: a 4,096-step PPO run's complete folder, SIGINT through `trainctl stop`,
`--resume`, every bad input (one line, exit 2, nothing created or overwritten), and a headless path
that never imports Textual."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli import main as cli
from engine import launcher, ppo
from engine.checkpoint import latest_checkpoint, load_checkpoint
from engine.runstore import ACTIVE_STATES, RunDir, list_runs

PROJECT = Path(__file__).resolve().parent.parent
FAST = ["--set", "torch.threads=1", "--set", "log.every_steps=1024", "--set", "ppo.n_steps=16"]


def trainctl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=PROJECT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def read_events(run: RunDir) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run.events_path.read_text().splitlines()]


def wait_for(condition: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunDir, subprocess.CompletedProcess[str]]:
    runs = tmp_path_factory.mktemp("runs")
    done = trainctl("run", "--algo", "ppo", "--env", "beastybar", "--profile", "balance", "--steps", "4096",
                    "--runs-dir", str(runs), *FAST)
    (run,) = list_runs(runs)
    return run, done


@pytest.mark.slow
def test_4096_step_run_leaves_a_complete_folder(finished_run: tuple[RunDir, subprocess.CompletedProcess[str]]) -> None:
    run, done = finished_run
    assert done.returncode == 0, done.stdout + done.stderr
    info = run.read_config()
    assert info["algo"] == "ppo" and info["env"] == "beastybar" and info["total_steps"] == 4096
    assert info["config"]["ppo.n_steps"] == {"value": 16, "source": "--set"}
    assert info["config"]["env.num_envs"]["source"].startswith("profile:balance")
    status = run.read_status()
    assert status["state"] == "finished" and status["exit_code"] == 0 and status["step"] == 4096
    kinds = {e["kind"] for e in read_events(run)}
    assert {"perf", "metric", "status", "log"} <= kinds
    log = run.stdout_path.read_text()
    assert f"trainctl run {run.run_id}" in log and "versions" in log and "num_envs=64" in log
    assert log.count("[PERF] step=") == 4 and "[STATUS] step=4096/4096" in log
    ckpt = latest_checkpoint(run.checkpoints)
    assert ckpt is not None and ckpt.name == "step_000000004096.pt"
    ppo.check_resume(load_checkpoint(ckpt))
    assert any(p.name.startswith("events.out.tfevents") for p in run.tb.iterdir())
    assert "finished at step 4096" in done.stdout


@pytest.mark.slow
def test_stop_then_resume_continues_the_step_count(tmp_path: Path) -> None:
    started = trainctl("run", "--algo", "ppo", "--env", "beastybar", "--profile", "balance", "--steps", "1e8",
                       "--runs-dir", str(tmp_path), "--detach", *FAST, "--set", "checkpoint.every_steps=0")
    assert started.returncode == 0, started.stderr
    (run,) = list_runs(tmp_path)
    try:
        wait_for(lambda: run.read_status().get("step", 0) >= 2048)
        stopped = trainctl("stop", run.run_id, "--runs-dir", str(tmp_path))
        assert stopped.returncode == 0 and "SIGINT" in stopped.stdout
        wait_for(lambda: run.read_status()["state"] not in ACTIVE_STATES)
        status = run.read_status()
        assert status["state"] == "stopped" and status["exit_code"] == 130 and status["signal"] == "SIGINT"
        first_ckpt = latest_checkpoint(run.checkpoints)
        assert first_ckpt is not None
        state = load_checkpoint(first_ckpt)
        ppo.check_resume(state)
        stop_step = state["num_timesteps"]
        assert stop_step >= 2048 and state["step"] == stop_step == status["step"]
        events_before = len(read_events(run))

        resumed = trainctl("run", "--resume", run.run_id, "--runs-dir", str(tmp_path), "--detach")
        assert resumed.returncode == 0, resumed.stderr
        wait_for(lambda: run.read_status().get("step", 0) >= stop_step + 2048)
        assert trainctl("stop", run.run_id, "--runs-dir", str(tmp_path)).returncode == 0
        wait_for(lambda: run.read_status()["state"] not in ACTIVE_STATES)
        assert run.read_status()["state"] == "stopped"
        after = read_events(run)[events_before:]
        perf_steps = [e["step"] for e in after if e["kind"] == "perf"]
        assert perf_steps and perf_steps[0] > stop_step and perf_steps == sorted(perf_steps)
        assert any(e["kind"] == "log" and f"at step {stop_step}" in e["msg"] for e in after)
        last = load_checkpoint(latest_checkpoint(run.checkpoints))  # type: ignore[arg-type]
        assert last["num_timesteps"] > stop_step and last["n_updates"] > state["n_updates"]
    finally:
        if run.effective_state() in ACTIVE_STATES:
            launcher.stop(run, kill=True)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _corrupt_copy(finished: RunDir, runs: Path) -> str:
    copy = runs / finished.run_id
    shutil.copytree(finished.path, copy)
    ckpt = latest_checkpoint(copy / "checkpoints")
    assert ckpt is not None
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    return str(copy)


def _no_checkpoint_copy(finished: RunDir, runs: Path) -> str:
    copy = runs / finished.run_id
    shutil.copytree(finished.path, copy)
    for p in (copy / "checkpoints").iterdir():
        p.unlink()
    return str(copy)


def _not_a_run(_finished: RunDir, runs: Path) -> str:
    folder = runs / "just-a-folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a run")
    return str(folder)


BAD_RUNS: list[tuple[list[str], str]] = [
    (["--profile", "nosuch"], "unknown profile 'nosuch'; expected one of: balance, selfplay, speed"),
    (["--set", "ppo.nope=1"], "unknown key 'ppo.nope'"),
    (["--set", "ppo.n_steps=abc"], "ppo.n_steps = 'abc' has the wrong type; expected int"),
    (["--set", "ppo.n_steps=-1"], "ppo.n_steps = -1 is out of range; expected > 0"),
    (["--set", "ppo.n_steps"], "expected section.key=value"),
    (["--algo", "nosuch"], "run.algo = 'nosuch' is not allowed"),
    (["--env", "nosuch"], "run.env = 'nosuch' is not allowed"),
]


@pytest.mark.parametrize("args, message", BAD_RUNS)
def test_bad_input_is_one_line_exit_2_and_no_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    args: list[str], message: str) -> None:
    runs = tmp_path / "runs"
    code = cli.main(["run", "--steps", "4096", "--runs-dir", str(runs), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("trainctl: error: ") and message in err
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("make_target, message", [
    (_not_a_run, "is not a run folder: run.json is missing"),
    (_corrupt_copy, "cannot be loaded"),
    (_no_checkpoint_copy, "has no checkpoint"),
])
def test_bad_resume_is_one_line_exit_2_and_nothing_touched(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], finished_run: tuple[RunDir, Any],
        make_target: Callable[[RunDir, Path], str], message: str) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    target = make_target(finished_run[0], runs)
    before = _snapshot(runs)
    code = cli.main(["run", "--resume", target, "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err
    assert _snapshot(runs) == before


@pytest.mark.slow
def test_headless_path_never_imports_textual(tmp_path: Path) -> None:
    code = ("import sys, cli.main, cli.commands, engine.ppo\n"
            f"rc = cli.main.main(['status', '--runs-dir', {str(tmp_path)!r}])\n"
            "assert rc == 0, rc\n"
            "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
            "print('TEXTUAL', loaded)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "TEXTUAL []" in done.stdout
