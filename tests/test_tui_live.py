"""Live runs under the TUI: a wrapped command (`trainctl run -- CMD`) and a real PPO run launched from
the launcher, watched, stopped. These start processes, so they take seconds, not milliseconds."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tui_fixtures import screen_text, wait_for_text

from engine import launcher
from engine.runstore import RunDir, list_runs
from tui.app import TrainctlApp

TRAINCTL = [sys.executable, "-m", "cli.main"]
PERF_SCRIPT = """
import sys
print("hello from a foreign trainer")
print("[PERF] step=4096 sps=2048.5 eps=12.5 env_step_ms=0.250 train_bwd_ms=0.500 custom=7", flush=True)
print("[PERF] step=8192 sps=oops", flush=True)
print("[METRIC] step=8192 reward/mean=0.75", flush=True)
sys.exit(int(sys.argv[1]))
"""
LOOP_SCRIPT = """
import time
for i in range(1, 100000):
    print(f"[PERF] step={i * 512} sps={1000 + i} eps=3.0 env_step_ms=0.3 action_ms=0.1", flush=True)
    time.sleep(0.05)
"""


def _events(run: RunDir) -> list[dict]:
    return [json.loads(line) for line in run.events_path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize(("exit_code", "state", "trainctl_code"), [(0, "finished", 0), (3, "failed", 1)])
def test_wrapped_command_perf_lines_become_perf_events(tmp_path: Path, exit_code: int, state: str,
                                                       trainctl_code: int) -> None:
    done = subprocess.run([*TRAINCTL, "run", "--runs-dir", str(tmp_path), "--name", "foreign", "--",
                           sys.executable, "-c", PERF_SCRIPT, str(exit_code)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == trainctl_code, done.stderr
    (run,) = list_runs(tmp_path)
    perf = [e for e in _events(run) if e["kind"] == "perf"]
    assert len(perf) == 1
    assert perf[0]["step"] == 4096 and perf[0]["sps"] == 2048.5 and perf[0]["eps"] == 12.5
    assert perf[0]["ms"] == {"env_step": 0.25, "train_bwd": 0.5} and perf[0]["custom"] == 7
    metrics = [e for e in _events(run) if e["kind"] == "metric"]
    assert metrics[0]["values"] == {"reward/mean": 0.75}
    status = run.read_status()
    assert status["state"] == state and status["exit_code"] == exit_code
    assert status["malformed_lines"] == 1  # `sps=oops` was counted and skipped
    assert "hello from a foreign trainer" in run.stdout_path.read_text(encoding="utf-8")


@contextmanager
def looping_run(runs_dir: Path) -> Iterator[tuple[RunDir, subprocess.Popen[bytes]]]:
    """A wrapped run of LOOP_SCRIPT started in `runs_dir`, killed afterwards if a test left it running."""
    run = launcher.create_wrapped_run([sys.executable, "-c", LOOP_SCRIPT], runs_dir, ["test"], "loop", "balance")
    proc = launcher.start(run)
    try:
        yield run, proc
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
async def test_stop_a_wrapped_run_from_the_tui(tmp_path: Path) -> None:
    with looping_run(tmp_path) as (_run, proc):
        app = TrainctlApp(tmp_path, poll_s=0.1)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await wait_for_text(app, pilot, "· running ·")
            await wait_for_text(app, pilot, "env_step")
            assert "steps/s 1," in screen_text(app)
            await pilot.press("s")
            await wait_for_text(app, pilot, "Stop 20")  # the confirmation names the run
            await pilot.press("y")
            shown = await wait_for_text(app, pilot, "· stopped ·", timeout_s=20)
            assert "stopped" in shown
        assert proc.wait(timeout=10) == 130


@pytest.mark.slow
async def test_launch_a_real_ppo_run_watch_it_and_stop_it(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    app = TrainctlApp(runs_dir, poll_s=0.2)
    try:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await pilot.press("n")
            await wait_for_text(app, pilot, "Launch a run")
            await pilot.click("#steps")
            await pilot.press(*"1e6")
            await pilot.click("#overrides")
            await pilot.press(*"log.every_steps=4096")
            await wait_for_text(app, pilot, "1,000,000 steps")
            await pilot.press("ctrl+s")
            await wait_for_text(app, pilot, "New run")
            (run_id,) = app.launched
            await wait_for_text(app, pilot, "[PERF] ms/step", timeout_s=60)
            # The first [PERF] line can come before the first update; the train phases come with the next
            shown = await wait_for_text(app, pilot, "train_bwd", timeout_s=60)
            assert run_id in shown and "steps/s" in shown and "env_step" in shown
            await pilot.press("q")  # it asks about the run it launched; stay
            await wait_for_text(app, pilot, "Leave running")
            await pilot.press("escape")
            await pilot.press("s")
            await wait_for_text(app, pilot, "SIGINT")
            await pilot.press("y")
            await wait_for_text(app, pilot, "· stopped ·", timeout_s=60)
            await pilot.press("q")  # nothing of ours is running now: quits at once
        assert RunDir(runs_dir / run_id).read_status()["state"] == "stopped"
        assert app.launched[run_id].wait(timeout=10) == 130
    finally:
        for proc in app.launched.values():
            if proc.poll() is None:
                proc.kill()


@pytest.mark.slow
async def test_kill_asks_first_then_kills_the_group(tmp_path: Path) -> None:
    with looping_run(tmp_path) as (_run, proc):
        app = TrainctlApp(tmp_path, poll_s=0.1)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await wait_for_text(app, pilot, "· running ·")
            await pilot.press("k")
            await wait_for_text(app, pilot, "no final checkpoint")
            await pilot.press("n")  # changed my mind: nothing happens
            await pilot.pause(0.3)
            assert proc.poll() is None
            await pilot.press("k", "y")
            await wait_for_text(app, pilot, "· stopped ·", timeout_s=20)
        assert proc.wait(timeout=10) == -9


@pytest.mark.slow
async def test_quit_offers_to_stop_the_runs_it_launched(tmp_path: Path) -> None:
    with looping_run(tmp_path) as (run, proc):
        app = TrainctlApp(tmp_path, poll_s=0.1)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            app.launched[run.run_id] = proc  # as if launched from this app's launcher
            await wait_for_text(app, pilot, "· running ·")
            await pilot.press("q")
            await wait_for_text(app, pilot, "1 run launched here is still running")
            await pilot.press("s")  # stop them
            await pilot.pause(1.0)
        assert proc.wait(timeout=20) == 130
        assert run.read_status()["state"] == "stopped"


@pytest.mark.slow
async def test_launch_default_starts_beasty_bar_ppo_balance(tmp_path: Path) -> None:
    app = TrainctlApp(tmp_path / "runs", launch_default=True, poll_s=0.1)
    try:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            (run_id,) = app.launched
            await wait_for_text(app, pilot, run_id)
            info = RunDir(tmp_path / "runs" / run_id).read_config()
            assert (info["algo"], info["env"], info["profile"]) == ("ppo", "beastybar", "balance")
            assert info["command"][:2] == ["trainctl", "run"]
    finally:
        for launched_id, proc in app.launched.items():
            if proc.poll() is None:
                launcher.stop(RunDir(tmp_path / "runs" / launched_id), kill=True)
            proc.wait(timeout=10)
