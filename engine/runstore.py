"""The run directory (docs/run-folder.md), the one place everything a run says is written and read.

```
runs/<run_id>/   run.json (resolved config + provenance, seed, versions, commit, host, command,
                           `extensions`: each `--steps` given on resume)
                 status.json (state, pid, pid_start, pgid, times, exit code, last step, stop_request)
                 stop.request (who asked the run to stop, and when; see below)
                 events.jsonl (engine.events), stdout.log, checkpoints/, tb/
```

Writers: the launcher (creates the folder), the run process (status, events, checkpoints), `trainctl
stop` and the TUI (stop.request). Readers: `trainctl status/report`, the TUI, tests; they read only
through this module and engine.events, so a TUI on a laptop and a `status --watch` over SSH see the
same truth. JSON files are replaced atomically (temp file + rename), so a reader never sees half of
one. No Textual and no torch here: the run process imports this module before its heavy imports.

States: `starting` (launched, no trainer yet), `running`, then `finished`, `stopped` or `failed` as
the run process records them; two more are a reader's conclusion, never written: `lost` (status.json
says starting/running but that process is gone: killed with SIGKILL, out of memory, a reboot) and
`unreadable` (run.json or status.json is not valid JSON). A process is the run's only when both its
pid and its start time match those recorded (`process_alive`), so a pid reused after a reboot or by
a later process is never taken for the run.

Stopping: a stop request is a file, `stop.request`, so that it is never lost: a signal sent while the
run process is still importing torch is ignored or kills it, while the file waits until the run
process reads it (`StopRequest`, at start-up and then every `StopRequest.CHECK_EVERY_S` seconds). A
resumed run starts with no request: the launcher removes the old one before the new process exists
(engine.launcher.start), so a request written after that is for the new process.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from engine.errors import UsageError
from engine.events import read_tail_events

ACTIVE_STATES = ("starting", "running")
# How a run process exits in each final state (the worker, the wrapper and `trainctl run` alike). A
# `lost` run has no entry: nobody saw how it ended, so a follower of one exits 1.
EXIT_CODES = {"finished": 0, "stopped": 130, "failed": 1}
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
DEFAULT_RUNS_DIR = Path("runs")


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write `data` to `path` so that readers and crashes see the old file or the new one, never a mix."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def _sanitize(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", part).strip("-") or "x"


def make_run_id(algo: str, env: str, profile: str, now: float | None = None, name: str | None = None) -> str:
    """`<UTC time>_<algo>_<env>_<profile>` (or `<UTC time>_<name>`), restricted to [A-Za-z0-9._-]."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC).strftime("%Y%m%dT%H%M%S")
    parts = [name] if name else [algo, env, profile]
    return "_".join([stamp, *(_sanitize(p) for p in parts)])


def check_runs_dir(runs_dir: Path, writable: bool = True) -> None:
    """UsageError unless `runs_dir` is a folder of runs or nothing yet; with `writable`, also unless runs
    can be made in it (it, or its nearest existing ancestor, is a writable folder). Creates nothing."""
    if runs_dir.exists():
        if not runs_dir.is_dir():
            raise UsageError(f"runs folder {runs_dir} is a file; expected a folder of run folders")
        if writable and not os.access(runs_dir, os.W_OK | os.X_OK):
            raise UsageError(f"runs folder {runs_dir} is not writable; expected a folder you can write to")
        return
    if not writable:
        return
    ancestor = runs_dir.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"runs folder {runs_dir} cannot be made: {ancestor} is a file; expected a folder path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"runs folder {runs_dir} cannot be made: {ancestor} is not writable")


def _process_facts(pid: int) -> tuple[bool, float] | None:
    """(is a zombie, start time) of process `pid`, or None when there is no such process.

    The start time is a number fixed for the life of a process: on Linux its start in clock ticks after
    boot (/proc/<pid>/stat field 22), exact and unaffected by clock changes (psutil's create_time adds
    the boot time, which moves when the clock is adjusted); elsewhere psutil's create time."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()  # the name, in parentheses, may hold spaces
        except FileNotFoundError:
            return None
        return fields[0] == b"Z", float(fields[19])  # fields[0] is field 3 (state), fields[19] field 22
    try:
        proc = psutil.Process(pid)
        return proc.status() == psutil.STATUS_ZOMBIE, proc.create_time()
    except psutil.NoSuchProcess:
        return None


def process_start(pid: int) -> float | None:
    """The start time of process `pid` (see `_process_facts`), or None when there is none: recorded
    beside a run's pid so that `process_alive` can tell the run's process from a later one."""
    facts = _process_facts(pid)
    return None if facts is None else facts[1]


def process_identity(pid: int) -> dict[str, Any]:
    """The status.json fields that identify process `pid`: pid and pid_start."""
    return {"pid": pid, "pid_start": process_start(pid)}


def process_alive(pid: Any, start: Any = None) -> bool:
    """Whether a live process (not a zombie: exited, not yet reaped) has `pid` and, when `start` is
    given, started at `start` (`process_start`). Checked on this machine only."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    facts = _process_facts(pid)
    if facts is None or facts[0]:
        return False
    return start is None or float(start) == facts[1]


class StopRequest:
    """Whether the run process should stop: set by SIGINT/SIGTERM (after `install()`), by the run's
    stop.request file (after `watch(run)`) or by a time budget running out (after `limit(seconds)`).
    Trainers test it (`if ctx.stop`) at every env step, then finish the current update, save a
    checkpoint and return.

    A test costs a clock read; at most every `CHECK_EVERY_S` seconds it also stats stop.request (a
    missing file is the common case: one failed stat) and compares the clock with the budget's end. A
    budget is ended early enough for the run to finish within it: once the time left is less than the
    longest pause between two tests seen so far (an update, an evaluation) plus `CHECK_EVERY_S`, since the
    trainer sees the stop only at its next test. `signal_name` says which signal set it, `request` holds
    the file's contents when the file did, `out_of_time` whether the budget (`budget_s`) did."""

    CHECK_EVERY_S = 0.25

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """`clock` gives seconds for the spacing of file checks (tests step it by hand)."""
        self._event = threading.Event()
        self.signal_name: str | None = None
        self.request: dict[str, Any] | None = None
        self._run: RunDir | None = None
        self._clock = clock
        self._next_check = 0.0
        self._deadline: float | None = None
        self.budget_s: float | None = None
        self.out_of_time = False
        self._last_test: float | None = None  # clock of the previous test, while a budget is set
        self._longest_pause = 0.0  # seconds between two tests at most, while a budget is set

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def watch(self, run: RunDir) -> None:
        """Also stop when `run`'s stop.request appears; a request already there is read at once."""
        self._run = run
        self._next_check = 0.0
        self.__bool__()

    def limit(self, seconds: float, since: float | None = None) -> None:
        """Also stop once `seconds` of `clock` time have passed since `since` (a `clock` reading; default
        now): a run's `run.max_minutes`, counted from its process's start."""
        self.budget_s = seconds
        self._deadline = (self._clock() if since is None else since) + seconds

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    def set(self) -> None:
        self._event.set()

    def __bool__(self) -> bool:
        if self._event.is_set():
            return True
        if self._run is None and self._deadline is None:
            return False
        now = self._clock()
        if self._deadline is not None:
            if self._last_test is not None:
                self._longest_pause = max(self._longest_pause, now - self._last_test)
            self._last_test = now
        if now < self._next_check:
            return False
        self._next_check = now + self.CHECK_EVERY_S
        if self._deadline is not None and now + self._longest_pause + self.CHECK_EVERY_S >= self._deadline:
            self.out_of_time = True
            self._event.set()
            return True
        request = self._run.read_stop_request() if self._run is not None else None
        if request is None:
            return False
        self.request = request
        self._event.set()
        return True

    @property
    def reason(self) -> str:
        """Who or what asked, for a log line."""
        if self.signal_name:
            return self.signal_name
        if self.request is not None:
            return f"stop.request from {self.request.get('by', '?')}"
        if self.out_of_time and self.budget_s is not None:
            return f"the time budget (run.max_minutes = {self.budget_s / 60:g})"
        return "nothing"


@dataclass(frozen=True)
class RunDir:
    """Paths and readers/writers of one run folder."""

    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "run.json"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def events_path(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def stdout_path(self) -> Path:
        return self.path / "stdout.log"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def stop_request_path(self) -> Path:
        return self.path / "stop.request"

    @property
    def tb(self) -> Path:
        return self.path / "tb"

    # -- creation -------------------------------------------------------------------------------
    @classmethod
    def create(cls, runs_dir: Path, run_id: str, run_info: Mapping[str, Any]) -> RunDir:
        """Make the folder (failing if it exists), write a `starting` status and run.json."""
        if not RUN_ID_PATTERN.match(run_id):
            raise UsageError(f"run id {run_id!r} may only hold letters, digits, '.', '_' and '-'")
        runs_dir.mkdir(parents=True, exist_ok=True)
        path = runs_dir / run_id
        try:
            path.mkdir()
        except FileExistsError:
            raise UsageError(f"run folder {path} already exists; pick another --name") from None
        run = cls(path)
        for sub in (run.checkpoints, run.tb):
            sub.mkdir()
        run.events_path.touch()
        run.write_status(state="starting", created=time.time(), host=socket.gethostname())
        # run.json last: a folder is listed as a run once it holds run.json, so a lister never finds a
        # run without its status.
        atomic_write_json(run.config_path, dict(run_info))
        return run

    # -- reading --------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path | str) -> RunDir:
        """The run at `path`; a folder without run.json is not a run (UsageError)."""
        p = Path(path)
        if not p.is_dir():
            raise UsageError(f"run folder {p} does not exist; expected a folder made by `trainctl run`")
        if not (p / "run.json").is_file():
            raise UsageError(f"{p} is not a run folder: run.json is missing")
        return cls(p)

    def read_config(self) -> dict[str, Any]:
        return _read_json(self.config_path)

    def read_status(self) -> dict[str, Any]:
        return _read_json(self.status_path)

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into status.json (atomically) and return the new status."""
        try:
            status = self.read_status()
        except UsageError:
            status = {}
        status.update(fields)
        status["updated"] = time.time()
        atomic_write_json(self.status_path, status)
        return status

    def log_tail(self, max_bytes: int, max_lines: int) -> tuple[str, ...]:
        """The last whole lines (at most `max_lines`) in the last `max_bytes` of stdout.log; () if none."""
        try:
            with open(self.stdout_path, "rb") as f:
                size = f.seek(0, 2)
                f.seek(max(0, size - max_bytes))
                data = f.read()
        except OSError:
            return ()
        lines = data.decode("utf-8", errors="replace").splitlines()
        if size > max_bytes:
            lines = lines[1:]  # cut by the window's start
        return tuple(lines[-max_lines:])

    def effective_state(self, status: Mapping[str, Any] | None = None) -> str:
        """The recorded state, except that an active run whose process is gone is `lost` (a run
        launched a moment ago has no pid yet: it stays `starting`)."""
        status = self.read_status() if status is None else status
        state = str(status.get("state", "starting"))
        if state in ACTIVE_STATES and status.get("pid") and not self.alive(status):
            return "lost"
        return state

    def alive(self, status: Mapping[str, Any]) -> bool:
        """Whether the process `status` records (pid and start time) is still running."""
        return process_alive(status.get("pid"), status.get("pid_start"))

    # -- stop requests ----------------------------------------------------------------------------
    def request_stop(self, by: str) -> dict[str, Any]:
        """Write stop.request (atomically): who asked (`by`, host, pid) and when (unix seconds)."""
        request = {"requested": time.time(), "by": by, "host": socket.gethostname(), "pid": os.getpid()}
        atomic_write_json(self.stop_request_path, request)
        return request

    def read_stop_request(self) -> dict[str, Any] | None:
        """The stop request, or None when there is none. A file that is not a JSON object (written by
        hand) still asks the run to stop."""
        try:
            return _read_json(self.stop_request_path)
        except UsageError:
            return {"by": "unknown"} if self.stop_request_path.exists() else None

    def clear_stop_request(self) -> None:
        self.stop_request_path.unlink(missing_ok=True)

    def resume_command(self) -> str:
        """The command line that continues this run from its newest checkpoint."""
        return shlex.join(["trainctl", "run", "--resume", str(self.path)])

    def lost_note(self, step: int, checkpoint: Path | None) -> str:
        """One line on a lost run: what is known, and how to continue it (`checkpoint`: its newest)."""
        try:
            wrapped = self.read_config().get("kind") == "wrapped"
        except UsageError:
            wrapped = False
        known = f"process gone without recording an exit (killed, out of memory or rebooted) at step {step}"
        if wrapped:
            return f"{known}; a wrapped command cannot resume: run it again"
        if checkpoint is None:
            return f"{known}; no checkpoint to resume from: start it again"
        return f"{known}; newest checkpoint {checkpoint.name}; continue with: {self.resume_command()}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UsageError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} should hold a JSON object")
    return data


def list_runs(runs_dir: Path) -> list[RunDir]:
    """Every run folder directly under `runs_dir`, oldest first (run ids start with their UTC time)."""
    if not runs_dir.is_dir():
        return []
    return [RunDir(p) for p in sorted(runs_dir.iterdir()) if (p / "run.json").is_file()]


def resolve_run(ref: str, runs_dir: Path = DEFAULT_RUNS_DIR) -> RunDir:
    """A run named by a path, a run id under `runs_dir`, or a part of one that names a single run."""
    direct = Path(ref)
    if direct.is_dir():
        return RunDir.open(direct)
    runs = list_runs(runs_dir)
    exact = [r for r in runs if r.run_id == ref]
    candidates = exact or [r for r in runs if ref in r.run_id]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UsageError(f"no run {ref!r} in {runs_dir}; expected a run folder or a run id from `trainctl status`")
    names = ", ".join(r.run_id for r in candidates[:5])
    raise UsageError(f"run {ref!r} is ambiguous in {runs_dir}: {names}")


@dataclass(frozen=True)
class RunSummary:
    """What a list of runs shows of each: read from status.json, run.json and the events' tail.
    `problem` names the file that makes the run `unreadable` and why."""

    run_id: str
    state: str
    algo: str
    env: str
    profile: str
    step: int
    total_steps: int | None
    sps: float | None
    eps: float | None
    reward: float | None
    win_rate: float | None
    created: float | None
    updated: float | None
    perf_ms: dict[str, float]
    malformed_lines: int
    problem: str | None = None


def profile_label(info: Mapping[str, Any]) -> str:
    """The profile a list shows for a run: `-` for a wrapped command without one, `?` if unknown."""
    return str(info.get("profile") or ("-" if info.get("kind") == "wrapped" else "?"))


def summarize(run: RunDir, tail_bytes: int = 128 * 1024) -> RunSummary:
    """The latest state of a run, cheap enough to call for every run on every refresh."""
    problem = None
    try:
        info = run.read_config()
    except UsageError as exc:
        info, problem = {}, str(exc)
    try:
        status = run.read_status()
    except UsageError as exc:
        status = {}
        if run.status_path.exists():  # a missing one is a run being created: it is starting
            problem = problem or str(exc)
    step = int(status.get("step", 0) or 0)
    sps = eps = reward = win_rate = None
    perf_ms: dict[str, float] = {}
    for event in read_tail_events(run.events_path, tail_bytes):
        step = max(step, int(event.get("step", 0) or 0))
        if event["kind"] == "perf":
            sps, eps, perf_ms = event.get("sps"), event.get("eps"), dict(event.get("ms", {}))
        elif event["kind"] == "metric":
            values = event.get("values", {})
            reward = values.get("rollout/ep_rew_mean", values.get("reward/mean", reward))
            win_rate = values.get("eval/win_rate", values.get("rollout/win_rate", win_rate))
    return RunSummary(
        run_id=run.run_id,
        state="unreadable" if problem else run.effective_state(status) if status else "starting",
        algo=str(info.get("algo", "?")),
        env=str(info.get("env", "?")),
        profile=profile_label(info),
        step=step,
        total_steps=info.get("total_steps"),
        sps=sps,
        eps=eps,
        reward=reward,
        win_rate=win_rate,
        created=status.get("created"),
        updated=status.get("updated"),
        perf_ms=perf_ms,
        malformed_lines=int(status.get("malformed_lines", 0) or 0),
        problem=problem,
    )
