"""`trainctl sweep` for real, with tiny runs: four trials two at a time, killed and resumed; and the Ray
backend against a single-node Ray head this test starts on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.runstore import RunDir, list_runs

PROJECT = Path(__file__).resolve().parent.parent
TINY = ["--steps", "2048", "--set", "ppo.n_steps=16", "--set", "log.every_steps=1024", "--set",
        "log.tensorboard=false", "--set", "checkpoint.every_steps=0"]
SWEEP = [sys.executable, "-m", "cli.main", "sweep", "--algo", "ppo", "--env", "beastybar", *TINY]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT)}


def finished(folder: Path) -> list[RunDir]:
    return [r for r in list_runs(folder) if r.effective_state() == "finished"]


def most_at_once(runs: list[RunDir]) -> int:
    """The most runs whose [launched, ended] spans overlap at one moment."""
    spans = [(s["launched"], s["ended"]) for s in (r.read_status() for r in runs)]
    return max(sum(1 for a, b in spans if a <= t < b) for t, _ in spans)


@pytest.mark.slow
def test_local_sweep_of_four_two_at_a_time_resumes_after_a_kill(tmp_path: Path) -> None:
    folder = tmp_path / "sweep"
    command = [*SWEEP, "--grid", "ppo.n_epochs=1,2", "--grid", "ppo.gamma=0.99,0.995", "--parallel", "2",
               "--dir", str(folder)]
    first = subprocess.Popen(command, cwd=PROJECT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not finished(folder) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert finished(folder), "no trial finished within 4 minutes"
    finally:
        first.kill()  # the sweep process alone: its trials' runs live in sessions of their own
        first.wait()
    done_before = {r.run_id for r in finished(folder)}
    assert len(done_before) < 4

    again = subprocess.run(command, cwd=PROJECT, env=env(), capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("finished before") >= len(done_before)
    runs = list_runs(folder)
    # Every trial ran exactly once: the finished ones were skipped, one left running was waited for.
    assert sorted(r.run_id.split("_", 1)[1] for r in runs) == ["t01-a1", "t02-a1", "t03-a1", "t04-a1"]
    assert all(r.effective_state() == "finished" for r in runs)
    assert most_at_once(runs) <= 2
    report = json.loads((folder / "report.json").read_text())
    assert [row["figures"]["state"] for row in report["rows"]] == ["finished"] * 4
    assert sum(row["best"] for row in report["rows"]) == 1
    assert (folder / "report.md").read_text().startswith("# sweep sweep: ppo on beastybar, 4 trials")
    assert "ppo.n_epochs=2 ppo.gamma=0.995" in again.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_ray_backend_on_a_local_head(tmp_path: Path) -> None:
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401

        from engine import sweep_ray
    except ImportError as exc:
        pytest.skip(f"ray[tune] cannot be imported ({exc}); it is the optional extra trainctl[ray]")
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    assert ray_cli is not None, "ray imports but its command is missing"
    port = free_port()
    temp = Path(f"/tmp/ray-abt-{os.getpid()}")  # short: Ray's socket paths must fit in 107 bytes
    head = subprocess.Popen([ray_cli, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                             "--num-cpus", "2", "--include-dashboard", "false", "--object-store-memory", "100000000",
                             "--temp-dir", str(temp), "--block", "--disable-usage-stats"],
                            env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        folder = tmp_path / "sweep"
        command = [*SWEEP, "--grid", "ppo.n_epochs=1,2", "--parallel", "2", "--backend", "ray", "--address",
                   f"127.0.0.1:{port}", "--dir", str(folder)]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        done = subprocess.run(command, cwd=PROJECT, env=env(), capture_output=True, text=True, timeout=900,
                              check=False)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        runs = list_runs(folder)
        assert sorted(r.run_id.split("_", 1)[1] for r in runs) == ["t01-a1", "t02-a1"]
        assert all(r.effective_state() == "finished" for r in runs)
        assert "2 trials to Ray Tune at 127.0.0.1" in done.stdout
        assert not list(folder.rglob("*.pkl")), "Tune's pickles stay out of the sweep folder"
        assert "copied back" in done.stdout
        assert not sweep_ray.stage_folder("t01", sweep_ray.sweep_id(folder)).exists(), "the node's copy is removed"
        assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)
