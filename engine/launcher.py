"""Starting runs: the one launch path of `trainctl run` and the TUI alike. It resolves and checks a job,
makes the run folder, then starts its run process in a session of its own; nothing is created before
every check has passed.

The run process (engine.worker for our
trainers, engine.wrap for a foreign command) writes stdout.log directly, never through a pipe to us, so
closing the TUI or losing the SSH connection does not stop it. Stopping is a signal to its process
group: SIGINT for a graceful stop (final checkpoint), SIGKILL for `--kill`.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.checkpoint import latest_checkpoint, load_checkpoint
from engine.cores import launch_env
from engine.errors import UsageError
from engine.profiles import ResolvedConfig, resolve
from engine.runstore import ACTIVE_STATES, RunDir, check_runs_dir, make_run_id, pid_alive, resolve_run
from engine.trainers import check_available, trainer_module

PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Job:
    """What to train: algo, game and profile (None: the profile's), and the overrides a user may give."""

    algo: str | None
    env: str | None
    profile: str = "balance"
    steps: int | None = None
    seed: int | None = None
    assignments: tuple[str, ...] = ()
    config_file: Path | None = None
    name: str | None = None

    def command(self, runs_dir: Path) -> list[str]:
        """The `trainctl run` command line that starts this job."""
        return ["trainctl", "run", *(["--algo", self.algo] if self.algo else []),
                *(["--env", self.env] if self.env else []), "--profile", self.profile,
                *(["--steps", str(self.steps)] if self.steps else []),
                *(["--seed", str(self.seed)] if self.seed is not None else []),
                *(x for a in self.assignments for x in ("--set", a)),
                *(["--config", str(self.config_file)] if self.config_file else []),
                *(["--name", self.name] if self.name else []), "--runs-dir", str(runs_dir)]


# `make run`'s job: long enough (about a minute here) for a newcomer to watch it learn in the TUI.
DEFAULT_JOB = Job(algo="ppo", env="beastybar", profile="balance", steps=2_000_000)


def parse_steps(text: str) -> int:
    """A step count written as 2e6, 200_000 or 4096; UsageError for anything else."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise UsageError(f"{text!r} is not a number of steps (e.g. 2e6 or 200000)") from None
    if not 1 <= value < 2**63 or value != int(value):
        raise UsageError(f"{text!r} should be a positive whole number of steps")
    return int(value)


def plan(job: Job) -> ResolvedConfig:
    """The job's resolved config, after every check that needs no run folder (UsageError otherwise)."""
    cli: dict[str, object] = {}
    if job.steps is not None:
        cli["run.total_steps"] = job.steps
    if job.seed is not None:
        cli["run.seed"] = job.seed
    cfg = resolve(job.profile, algo=job.algo, env=job.env, config_file=job.config_file, cli=cli,
                  assignments=job.assignments)
    check_available(cfg["run.algo"])
    return cfg


def launch(job: Job, runs_dir: Path, command: Sequence[str] | None = None) -> tuple[RunDir, subprocess.Popen[bytes]]:
    """Check the job and the runs folder, make the run folder and start the trainer. `command` is what
    run.json records as the command (default: the job's own `trainctl run` line)."""
    cfg = plan(job)
    check_runs_dir(runs_dir)
    run = create_trainer_run(cfg, runs_dir, command or job.command(runs_dir), job.name)
    return run, start(run)


def launch_wrapped(wrapped: Sequence[str], runs_dir: Path, command: Sequence[str], name: str | None,
                   profile: str) -> tuple[RunDir, subprocess.Popen[bytes]]:
    """Check and start a foreign trainer `wrapped` (argv, no shell) as a run labelled with `profile`."""
    resolve(profile, environ={})  # the profile must exist even when it only labels the run
    check_command(wrapped[0])
    check_runs_dir(runs_dir)
    run = create_wrapped_run(wrapped, runs_dir, command, name, profile)
    return run, start(run)


def check_command(program: str) -> None:
    """UsageError unless `program` names an executable file (a path, or a name found on PATH)."""
    found = shutil.which(program)
    if found is None:
        where = "is not an executable file" if os.sep in program else "is not found on PATH"
        raise UsageError(f"cannot run {program!r}: it {where}; expected a trainer command after --")


def prepare_resume(ref: str, runs_dir: Path) -> RunDir:
    """The run `ref` names, after checking that it is a stopped trainer run whose latest checkpoint loads
    and fits its config."""
    run = resolve_run(ref, runs_dir)
    info = run.read_config()
    if info.get("kind") != "trainer":
        raise UsageError(f"run {run.run_id} wraps a command; only trainctl trainers can resume")
    state = run.effective_state()
    if state in ACTIVE_STATES:
        raise UsageError(f"run {run.run_id} is still {state}; stop it before resuming")
    found = latest_checkpoint(run.checkpoints)
    if found is None:
        raise UsageError(f"run {run.run_id} has no checkpoint in {run.checkpoints} to resume from")
    checkpoint = load_checkpoint(found)
    check = getattr(trainer_module(str(info.get("algo"))), "check_resume", None)
    if check is not None:
        check(checkpoint, ResolvedConfig.from_json(info["config"], str(info.get("profile"))))
    return run


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
    if info.get("kind") == "trainer":  # thread pools sized to the run's share of the cores from the start
        env.update(launch_env(ResolvedConfig.from_json(info["config"], str(info.get("profile")))["torch.threads"]))
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
