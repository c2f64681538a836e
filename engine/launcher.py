"""Starting and stopping runs: the one launch path of `trainctl run` and the TUI alike. It resolves and
checks a job (config, trainer, and whether the games' arrays fit in memory), makes the run folder,
then starts its run process in a session of its own; nothing is created before every check has passed.

The run process (engine.worker for our trainers, engine.wrap for a foreign command) writes stdout.log
directly, never through a pipe to us, so closing the TUI or losing the SSH connection does not stop it.
A graceful stop is the run's stop.request file (durable: read by the run process at start-up and at
every update) plus SIGINT to its process group once the run process has recorded `running`; `--kill`
is SIGKILL to the group. `wait_stopped` then says how it ended.

Resuming continues a stopped, finished or lost trainer run from its newest checkpoint, with its own
config; only the total of env steps may change (`--steps`, above the checkpoint's step), recorded in
run.json with its source and in its `extensions` list.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from engine.checkpoint import latest_checkpoint, load_checkpoint
from engine.cores import core_count, launch_env
from engine.distributed import launch_argv
from engine.errors import UsageError
from engine.line_parsers import make_reader
from engine.profiles import ResolvedConfig, resolve
from engine.runstore import (
    ACTIVE_STATES,
    RunDir,
    atomic_write_json,
    check_runs_dir,
    make_run_id,
    process_identity,
    resolve_run,
)
from engine.tb_tail import check_tb_folder, tb_folder_in
from engine.trainers import check_available, trainer_module
from envs import GAMES

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
    check_memory(cfg)
    check_processes(cfg)
    return cfg


def check_processes(cfg: ResolvedConfig) -> None:
    """UsageError when `dist.nproc` asks for more processes than this machine has cores (or GPUs, for a run
    on CUDA): torchrun would start them, and they would only crowd each other."""
    nproc = int(cfg["dist.nproc"])
    if nproc == 1:
        return
    if cfg["torch.device"] != "cpu":
        import torch  # only for a run of many processes: is there CUDA, and how many GPUs

        if torch.cuda.is_available():
            gpus = torch.cuda.device_count()
            if nproc > gpus:
                raise UsageError(f"--nproc {nproc} is more than the {gpus} GPU(s) of this machine; expected at "
                                 f"most {gpus} (one process per GPU)")
            return
    cores = core_count()
    if nproc > cores:
        raise UsageError(f"--nproc {nproc} is more than the {cores} core(s) of this machine; expected at most "
                         f"{cores} (one process per core)")


# -- memory ---------------------------------------------------------------------------------------------
# Item sizes in bytes of float32, int64, float64 and bool arrays, and of a pointer (a list's slot). Written
# out rather than read from numpy: `trainctl status` and `--help` import this module and need no numpy.
F32, I64, F64, FLAG = 4, 8, 8, 1
POINTER = ctypes.sizeof(ctypes.c_void_p)


@dataclass(frozen=True)
class ArrayNeed:
    """`count` items of `item_bytes` bytes each (one game, one rollout step, one transition), sized by
    the config keys `keys`."""

    what: str
    keys: tuple[str, ...]
    count: int
    item_bytes: int

    @property
    def total(self) -> int:
        return self.count * self.item_bytes


def array_needs(cfg: ResolvedConfig) -> list[ArrayNeed]:
    """The large arrays a trainer run allocates, worked out from the game's observation and action sizes
    (no torch, nothing allocated). A lower bound of the run's memory: the networks, torch itself and a
    core's own per-game state come on top."""
    if cfg["run.algo"] == "worldmodel":  # a supervised trainer: no games, no rollout or replay buffer
        return [preloaded_data_need(cfg)]
    # Every game package holds a pure-Python `rules` module that names its sizes (envs/__init__.py).
    rules = importlib.import_module(f"{GAMES[cfg['run.env']]}.rules")
    obs, actions, games = int(rules.OBS_SIZE), int(rules.NUM_ACTIONS), int(cfg["env.num_envs"])
    # envs.batched_vec_env: CoreBuffers (obs and terminal_obs float32[D], reward, terminated, truncated,
    # mask bool[A]), the observation copy every step returns, and each game's info dict in its list.
    per_game = 3 * obs * F32 + F32 + 2 * FLAG + actions * FLAG + sys.getsizeof({}) + POINTER
    needs = [ArrayNeed("games", ("env.num_envs",), games, per_game)]
    if cfg["run.algo"] == "ppo":
        # sb3-contrib's MaskableRolloutBuffer, per step of a game: observation, float32 action mask, int64
        # action and six float32 scalars (reward, return, episode start, value, log-prob, advantage);
        # flattening a full rollout copies the observations once more.
        per_step = 2 * obs * F32 + actions * F32 + I64 + 6 * F32
        needs.append(ArrayNeed("rollout buffer", ("ppo.n_steps", "env.num_envs"), cfg["ppo.n_steps"] * games,
                               per_step))
    else:
        # engine.replay.PrioritizedReplayBuffer, per transition: observation and next observation, int64
        # action, four float32 scalars, next-state mask, and its share of the 8-ary float64 sum-tree: a
        # leaf, plus internal sums, mins and running sums (one internal node per 7 leaves each).
        capacity = max(cfg["dqn.buffer_size"] // games, 1) * games
        per_transition = 2 * obs * F32 + I64 + 4 * F32 + actions * FLAG + round(F64 * (1 + 3 / 7))
        needs.append(ArrayNeed("replay buffer", ("dqn.buffer_size",), capacity, per_transition))
    return needs


def preloaded_data_need(cfg: ResolvedConfig) -> ArrayNeed:
    """A world-model run's arrays: its dataset preloaded as tensors (engine.worldmodel.Tensors), per
    transition the model's input (observation, both actions one-hot, the draws' and the matchup's features,
    float32), HP deltas and KO flags (six float32 each), done and reward (float32) and the action (int64),
    counted twice: the training split's shuffled copy of each epoch comes on top (sized from the
    dataset's dataset.json). With `worldmodel.hp_noise` > 0 each also keeps what its HP features are rebuilt
    from (the observation, float32, and the opponent's action, int64; counted for both splits)."""
    from engine.datasets import read_meta  # numpy: only for a world-model run
    from engine.wm_inputs import input_width  # numpy (the duel rules): likewise

    meta = read_meta(Path(cfg["data.dir"]))
    per_transition = input_width(int(meta["obs_size"]), int(meta["num_actions"])) * F32 + (6 + 6 + 2) * F32 + I64
    if cfg["worldmodel.hp_noise"] > 0:
        per_transition += int(meta["obs_size"]) * F32 + I64
    return ArrayNeed("preloaded transitions and the epoch's shuffled copy", ("data.dir",),
                     2 * int(meta["transitions"]), per_transition)


def check_memory(cfg: ResolvedConfig, available: int | None = None) -> None:
    """UsageError naming the keys to lower when the run's arrays (`array_needs`) need more than the
    `available` bytes of memory (default: what the machine has available now)."""
    needs = array_needs(cfg)
    total = sum(need.total for need in needs)
    available = psutil.virtual_memory().available if available is None else available
    if total <= available:
        return
    biggest = max(needs, key=lambda need: need.total)
    keys = " x ".join(f"{key} = {cfg[key]}" for key in biggest.keys)
    parts = ", ".join(f"{need.what} {need.count:,} x {_size(need.item_bytes)}" for need in needs)
    raise UsageError(f"{keys} needs more memory than this machine has: the run's arrays need about {_size(total)} "
                     f"({parts}), {_size(available)} is available; expected smaller values")


def _size(nbytes: float) -> str:
    """A byte count in binary units: '873 B', '1.4 KiB', '8.6 TiB'."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    power = 0
    while nbytes >= 1024 and power < len(units) - 1:
        nbytes /= 1024
        power += 1
    return f"{nbytes:,.0f} B" if power == 0 else f"{nbytes:,.1f} {units[power]}"


def launch(job: Job, runs_dir: Path, command: Sequence[str] | None = None) -> tuple[RunDir, subprocess.Popen[bytes]]:
    """Check the job and the runs folder, make the run folder and start the trainer. `command` is what
    run.json records as the command (default: the job's own `trainctl run` line)."""
    cfg = plan(job)
    check_runs_dir(runs_dir)
    run = create_trainer_run(cfg, runs_dir, command or job.command(runs_dir), job.name)
    return run, start(run)


def launch_wrapped(wrapped: Sequence[str], runs_dir: Path, command: Sequence[str], name: str | None,
                   profile: str | None = None, parse: str = "auto", tb: Path | None = None,
                   seed: int | None = None) -> tuple[RunDir, subprocess.Popen[bytes]]:
    """Check and start a foreign trainer `wrapped` (argv, no shell) whose output is read with `parse`
    (engine.line_parsers) and whose TensorBoard folder `tb` (default: a runs/ or tb/ folder its
    arguments name) is followed. `profile` and `seed` only label the run, when given."""
    check_wrapped(profile, parse, tb)
    if wrapped:
        check_command(wrapped[0])
    check_runs_dir(runs_dir)
    tb = tb if tb is not None or not wrapped else tb_folder_in(list(wrapped))
    run = create_wrapped_run(wrapped, runs_dir, command, name, profile, parse=parse, tb=tb, seed=seed)
    return run, start(run)


def check_wrapped(profile: str | None, parse: str, tb: Path | None) -> None:
    """UsageError for an unknown profile, an unknown `--parse` or bad regex, a `--tb` that is no folder."""
    if profile is not None:
        resolve(profile, environ={})  # the profile must exist even when it only labels the run
    make_reader(parse)
    if tb is not None:
        check_tb_folder(tb)


def check_command(program: str) -> None:
    """UsageError unless `program` names an executable file (a path, or a name found on PATH)."""
    found = shutil.which(program)
    if found is None:
        where = "is not an executable file" if os.sep in program else "is not found on PATH"
        raise UsageError(f"cannot run {program!r}: it {where}; expected a trainer command after --")


@dataclass(frozen=True)
class Resume:
    """A checked resume: the run, its newest checkpoint (None on a machine after the first of a job of
    several machines: its ranks take machine 0's) and the env step it resumes at, and the new total of env
    steps (None: the run's own)."""

    run: RunDir
    checkpoint: Path | None
    step: int
    total_steps: int | None = None

    @property
    def source(self) -> str:
        return self.checkpoint.name if self.checkpoint is not None else "machine 0's checkpoint"


def prepare_resume(ref: str, runs_dir: Path, total_steps: int | None = None) -> Resume:
    """The resume of the run `ref` names, after checking that it is a trainer run that is not running,
    whose newest checkpoint loads and fits its config (a machine after the first of a job of several needs
    none: its ranks take machine 0's), and that `total_steps` (if given) is above that checkpoint's step.
    Writes nothing."""
    run = resolve_run(ref, runs_dir)
    info = run.read_config()
    if info.get("kind") != "trainer":
        raise UsageError(f"run {run.run_id} wraps a command; only trainctl trainers can resume")
    state = run.effective_state()
    if state in ACTIVE_STATES:
        raise UsageError(f"run {run.run_id} is still {state}; stop it before resuming")
    found = latest_checkpoint(run.checkpoints)
    config = ResolvedConfig.from_json(info["config"], str(info.get("profile")))
    if found is not None:
        checkpoint = load_checkpoint(found)
        check = getattr(trainer_module(str(info.get("algo"))), "check_resume", None)
        if check is not None:
            check(checkpoint, config)
        step = int(checkpoint["step"])
    elif config["dist.node_rank"] > 0:
        # Machine 0 alone writes checkpoints; the worker's ranks here take its state when the job starts.
        step = int(run.read_status().get("step") or 0)
    else:
        raise UsageError(f"run {run.run_id} has no checkpoint in {run.checkpoints} to resume from")
    plan = Resume(run, found, step, total_steps)
    if total_steps is not None and total_steps <= step:
        raise UsageError(f"--steps {total_steps} is not above step {step} of {plan.source}; expected a new total "
                         f"of env steps larger than {step}")
    return plan


def start_resume(plan: Resume) -> subprocess.Popen[bytes]:
    """Record the new total of env steps (if any) in run.json, then start the run from its checkpoint."""
    if plan.total_steps is not None:
        set_total_steps(plan)
    return start(plan.run, resume=True)


def set_total_steps(plan: Resume) -> None:
    """Make `plan.total_steps` the run's total in run.json: `run.total_steps` with the source
    `--steps on resume, was N`, the top-level `total_steps`, and an entry in `extensions` (when, from
    and to which total, at which checkpoint). The trainers' schedules follow the total they are given."""
    info = plan.run.read_config()
    old = int(info["config"]["run.total_steps"]["value"])
    if plan.total_steps is None or plan.total_steps == old:
        return
    info["config"]["run.total_steps"] = {"value": plan.total_steps, "source": f"--steps on resume, was {old:,}"}
    info["total_steps"] = plan.total_steps
    info["extensions"] = [*info.get("extensions", []), {"t": time.time(), "from_total": old,
                                                        "to_total": plan.total_steps, "at_step": plan.step,
                                                        "checkpoint": plan.source}]
    atomic_write_json(plan.run.config_path, info)


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
                       profile: str | None = None, parse: str = "auto", tb: Path | None = None,
                       seed: int | None = None) -> RunDir:
    """The folder of a wrapped command (or, with no command, of a TensorBoard folder followed alone):
    run.json records the command, the working folder, the parser and the TensorBoard folder; a profile
    and a seed only when given."""
    label = Path(wrapped[0]).name if wrapped else f"tb-{Path(tb or '.').absolute().name}"
    run_id = make_run_id("cmd", label, "", name=name or f"cmd_{label}")
    given = {k: v for k, v in (("profile", profile), ("seed", seed)) if v is not None}
    return RunDir.create(runs_dir, run_id, run_info(None, command, "wrapped", algo="cmd", env=label,
                                                    wrapped=list(wrapped), parse=parse,
                                                    tb=str(tb.absolute()) if tb else None, **given))


def start(run: RunDir, resume: bool = False) -> subprocess.Popen[bytes]:
    """Start the run process of `run` detached (new session), output appended to stdout.log, and record
    it (pid, start time, pgid) as `starting`.

    A resume first removes the stop.request of the run's previous process: it was for that process.
    While this happens the run's recorded state is final, so `stop` refuses it and writes no request;
    any request written once `starting` is recorded is for the new process and is kept."""
    if resume:
        run.clear_stop_request()
    info = run.read_config()
    if info.get("kind") == "wrapped":
        argv = [sys.executable, "-m", "engine.wrap", str(run.path), "--", *info["wrapped"]]
    else:
        argv = worker_argv(run, ResolvedConfig.from_json(info["config"], str(info.get("profile"))), resume)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": _pythonpath()}
    if info.get("kind") == "trainer":  # thread pools sized to the run's share of the cores from the start
        env.update(launch_env(ResolvedConfig.from_json(info["config"], str(info.get("profile")))["torch.threads"]))
    with open(run.stdout_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=os.getcwd(), env=env)
    run.write_status(state="starting", **process_identity(proc.pid), pgid=proc.pid, launched=time.time(),
                     exit_code=None, ended=None, signal=None, stop_request=None)
    return proc


def worker_argv(run: RunDir, cfg: ResolvedConfig, resume: bool) -> list[str]:
    """The run process of a trainer run: engine.worker, or torchrun starting `dist.nproc` of them (the
    `dist.*` keys, engine.distributed)."""
    worker = ["engine.worker", str(run.path), *(["--resume"] if resume else [])]
    if cfg["dist.nproc"] == 1 and cfg["dist.nnodes"] == 1:
        return [sys.executable, "-m", *worker]
    return launch_argv(sys.executable, worker, cfg["dist.nproc"], cfg["dist.nnodes"], cfg["dist.node_rank"],
                       cfg["dist.master_addr"], cfg["dist.master_port"])


def _pythonpath() -> str:
    # The run process imports our packages even when started from another working directory.
    existing = os.environ.get("PYTHONPATH")
    return f"{PROJECT_DIR}{os.pathsep}{existing}" if existing else str(PROJECT_DIR)


STOP_WAIT_S = 5.0  # how long `trainctl stop` and the TUI wait to say how a stop ended


def stop(run: RunDir, kill: bool = False, by: str = "trainctl stop") -> str:
    """Ask the run to stop, or kill it; returns what was done. UsageError when it is not running.

    Graceful: stop.request (from `by`) is written, and once the run process has recorded `running`
    (its handlers installed) its group gets SIGINT too; a run still starting gets the file alone (a
    signal then could kill it before it can save anything). Kill: SIGKILL to the group, recorded as
    `stopped`; no checkpoint."""
    status = run.read_status()
    state = run.effective_state(status)
    if state not in ACTIVE_STATES:
        raise UsageError(f"run {run.run_id} is not running: {ending(run, status, state)}")
    pgid = status.get("pgid")
    if kill:
        if not pgid:
            raise UsageError(f"run {run.run_id} has no process yet; nothing to kill (a stop waits for it)")
        _signal_group(pgid, signal.SIGKILL)
        run.write_status(state="stopped", exit_code=-int(signal.SIGKILL), ended=time.time(), signal="SIGKILL")
        return f"killed {run.run_id} (SIGKILL to group {pgid})"
    run.request_stop(by)
    if state == "running" and pgid:
        _signal_group(pgid, signal.SIGINT)
        return f"asked {run.run_id} to stop (stop.request and SIGINT to group {pgid}); it saves a checkpoint and exits"
    return f"asked {run.run_id} to stop (stop.request); it is starting and stops at its first step with a checkpoint"


def _signal_group(pgid: Any, sig: signal.Signals) -> None:
    # A group gone since its status was read is no error: the readers see how it ended, or that it is lost.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(int(pgid), sig)


class StopOutcome(NamedTuple):
    """How a stop ended: the run's state (still `starting`/`running` if it has not ended yet) and one
    line saying so."""

    state: str
    line: str


def wait_stopped(run: RunDir, timeout_s: float = STOP_WAIT_S, poll_s: float = 0.1,
                 cancelled: Callable[[], bool] = lambda: False) -> StopOutcome:
    """Poll status.json until the run has ended (at most `timeout_s` seconds, or until `cancelled()`)
    and say how (`ending`), or that it is still stopping."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = run.read_status()
        state = run.effective_state(status)
        if state not in ACTIVE_STATES:
            return StopOutcome(state, f"run {run.run_id} {ending(run, status, state)}")
        if time.monotonic() >= deadline or cancelled():
            starting = state == "starting" or status.get("phase") == "start-up"
            phase = "start-up in progress: it stops at its first step" if starting else "last update in progress"
            return StopOutcome(state, f"run {run.run_id} still stopping ({phase}); `trainctl status` shows when it has")
        time.sleep(poll_s)


def ending(run: RunDir, status: Mapping[str, Any], state: str) -> str:
    """How a run that is no longer active ended, in a phrase after its name: `stopped at step N;
    checkpoint step_….pt`, `failed at step N (exit code 1) ...`, `lost: ...` with the resume line."""
    step = int(status.get("step", 0) or 0)
    checkpoint = latest_checkpoint(run.checkpoints)
    if state == "lost":
        return f"lost: {run.lost_note(step, checkpoint)}"
    if state == "failed":
        error = f": {status['error']}" if status.get("error") else ""
        return f"failed at step {step} (exit code {status.get('exit_code')}){error}; its output is in {run.stdout_path}"
    return f"{state} at step {step}" + (f"; checkpoint {checkpoint.name}" if checkpoint else "")
