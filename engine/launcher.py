"""Starting runs: make the run folder, then start its run process in a session of its own.

Used by `trainctl run` and by the TUI's launcher alike. The run process (engine.worker for our
trainers, engine.wrap for a foreign command) writes stdout.log directly, never through a pipe to us, so
closing the TUI or losing the SSH connection does not stop it. Stopping is a signal to its process
group: SIGINT for a graceful stop (final checkpoint), SIGKILL for `--kill`.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from engine.errors import UsageError
from engine.profiles import ResolvedConfig
from engine.runstore import ACTIVE_STATES, RunDir, make_run_id, pid_alive

PROJECT_DIR = Path(__file__).resolve().parent.parent


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def run_info(cfg: ResolvedConfig | None, command: Sequence[str], kind: str, **extra: object) -> dict[str, object]:
    """What run.json records: the resolved config with sources, seed, versions, commit, host, command."""
    info: dict[str, object] = {
        "kind": kind,
        "command": list(command),
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "created": time.time(),
        **extra,
    }
    if cfg is not None:
        info.update(algo=cfg["run.algo"], env=cfg["run.env"], profile=cfg.profile,
                    total_steps=cfg["run.total_steps"], seed=cfg["run.seed"], config=cfg.to_json())
    return info


def create_trainer_run(cfg: ResolvedConfig, runs_dir: Path, command: Sequence[str], name: str | None = None) -> RunDir:
    run_id = make_run_id(cfg["run.algo"], cfg["run.env"], cfg.profile, name=name)
    return RunDir.create(runs_dir, run_id, run_info(cfg, command, "trainer"))


def create_wrapped_run(wrapped: Sequence[str], runs_dir: Path, command: Sequence[str], name: str | None,
                       profile: str) -> RunDir:
    label = name or Path(wrapped[0]).name
    run_id = make_run_id("cmd", label, profile, name=name)
    return RunDir.create(runs_dir, run_id, run_info(None, command, "wrapped", algo="cmd", env=label,
                                                    profile=profile, wrapped=list(wrapped)))


def start(run: RunDir, resume: bool = False) -> subprocess.Popen[bytes]:
    """Start the run process of `run` detached (new session), output appended to stdout.log."""
    info = run.read_config()
    if info.get("kind") == "wrapped":
        argv = [sys.executable, "-m", "engine.wrap", str(run.path), "--", *info["wrapped"]]
    else:
        argv = [sys.executable, "-m", "engine.worker", str(run.path), *(["--resume"] if resume else [])]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": _pythonpath()}
    with open(run.stdout_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=os.getcwd(), env=env)
    run.write_status(state="starting", pid=proc.pid, pgid=proc.pid, launched=time.time())
    return proc


def _pythonpath() -> str:
    # The run process imports our packages even when started from another working directory.
    existing = os.environ.get("PYTHONPATH")
    return f"{PROJECT_DIR}{os.pathsep}{existing}" if existing else str(PROJECT_DIR)


def stop(run: RunDir, kill: bool = False) -> str:
    """Signal the run's process group: SIGINT (graceful) or SIGKILL. Returns what was done."""
    status = run.read_status()
    pgid = status.get("pgid")
    if status.get("state") not in ACTIVE_STATES or not pgid or not pid_alive(status.get("pid")):
        raise UsageError(f"run {run.run_id} is not running (state {run.effective_state(status)})")
    sig = signal.SIGKILL if kill else signal.SIGINT
    try:
        os.killpg(int(pgid), sig)
    except ProcessLookupError:
        raise UsageError(f"run {run.run_id}: its process group {pgid} is gone") from None
    if kill:
        run.write_status(state="stopped", exit_code=-int(signal.SIGKILL), ended=time.time(), signal="SIGKILL")
        return f"killed {run.run_id} (SIGKILL to group {pgid})"
    return f"asked {run.run_id} to stop (SIGINT to group {pgid}); it saves a checkpoint and exits"
