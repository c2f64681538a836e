"""Fair shares of the machine's cores for concurrent trainctl runs: how many torch (OpenMP/MKL) threads
each run process uses.

Why: torch starts one thread per core in every process. Two runs on a 2-core machine then keep four
busy threads on two cores, and OpenMP's workers spin at every barrier waiting for a thread the other
run has pushed off its core. Measured on this project's 2-core machine (bench/bench_concurrency.py,
balance profile): two PPO runs started together each ran at 25 % of one run alone (together half the
work of one), and a dqn-per run beside a PPO run fell from 232 to 7 steps/s. With the shares below:
73 % and 74 % of one run alone, and the dqn-per run kept 92 steps/s beside PPO.

How:
- A host-wide registry of live runs: one small JSON file per run process, `<pid>.json` (`Claim`: pid,
  the process's start time, run id, the threads it asked for, the threads it uses now), in a per-user
  folder: $TRAINCTL_CORES_DIR, else $XDG_RUNTIME_DIR/trainctl-cores, else <tempdir>/trainctl-cores-<uid>.
  Every write (join, change, leave, pruning) holds an fcntl lock on the folder's lock file, so two runs
  joining in the same instant are serialised and the second sees the first; files are replaced
  atomically, so readers (runs re-checking, the TUI) take no lock.
- An entry counts only while its pid is alive and was started at the recorded time: a run killed with
  SIGKILL leaves a file whose pid is dead (ignored, and deleted by the next writer), and a process that
  got that pid later has another start time (ignored too).
- Every run computes the same split from the same entries (`fair_shares`): `torch.threads` > 0 in a
  run's config is a fixed claim of that many threads, whatever the others do; the cores left are divided
  evenly among the other runs, each at least 1, the remainder to the earliest started (3 cores, 2 runs:
  2 and 1), so the split uses every core and does not flip between runs.
- A reading of "cores free" at start races: runs started together both see an empty machine, and a run
  started later leaves an earlier one holding every core. So a run re-reads the registry when it sets
  torch up (engine.context.setup_torch: seconds after it joined, by which time a run started with it
  has joined too), then at most every CHECK_EVERY_S from its main thread (RunContext.progress, on its
  once-a-second status write, so a step costs no more than the time check already there), and applies
  a changed share with torch.set_num_threads. From the main thread because OpenMP's thread count belongs
  to the calling thread, and the trainers' network work runs on the main thread. A run that ends leaves
  the registry, and the others take its cores back at their next re-check.
- The launcher starts a run process with OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS set
  to the share it would get if it joined now (`launch_env`), so that no library sizes a pool from the
  core count when it loads; torch.set_num_threads then follows the run's share. NumPy's and scipy's
  OpenBLAS pools keep their launch size (they have no switch at run time); the runs' BLAS work is small
  (ext/ppo_step's products of minibatches of 64, much the same speed on one thread or two).

Not done: taking the cores busy with other (non-trainctl) processes off the share. On a shared machine
that load comes in bursts (test suites, builds), a reading over a few seconds cannot tell a burst from a
steady neighbour, and our own runs' spinning threads would have to be told apart from it process by
process; a share that followed it would change at most re-checks. The system panel shows the machine's
CPU use and load instead, so a person sees that competition.

"Cores" is the number of physical cores this process may run on (torch's own default thread count,
limited to the CPU affinity mask). No torch here: the TUI reads the registry through this module.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import psutil

from engine.runstore import atomic_write_json, process_alive, process_start

CHECK_EVERY_S = 2.0  # seconds between a run's re-readings of the registry
DIR_ENV = "TRAINCTL_CORES_DIR"
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@functools.cache
def core_count() -> int:
    """Physical cores this process may run on (at least 1)."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity call on this platform
        allowed = os.cpu_count() or 1
    return max(1, min(allowed, psutil.cpu_count(logical=False) or allowed))


@dataclass(frozen=True)
class Claim:
    """One run process's entry. `started`: its process start time (engine.runstore.process_start, fixed for
    the life of a process, in start order); `requested`: its
    `torch.threads` (0 = a fair share); `threads`: the torch threads it uses now."""

    pid: int
    started: float
    run_id: str
    requested: int
    threads: int


def is_live(claim: Claim) -> bool:
    """True while the claim's process runs and is the one that wrote it (not a later owner of the pid)."""
    return process_alive(claim.pid, claim.started)


@dataclass(frozen=True)
class Share:
    """A run's torch threads and why (`reason` completes "torch threads N: ...")."""

    threads: int
    reason: str


def fair_shares(cores: int, claims: Sequence[Claim]) -> dict[int, int]:
    """pid -> torch threads for each claim: fixed claims get what they asked; the cores left go evenly
    to the others (each at least 1), the remainder one each to the earliest started."""
    shares = {c.pid: c.requested for c in claims if c.requested}
    flexible = sorted((c for c in claims if not c.requested), key=lambda c: (c.started, c.pid))
    if flexible:
        each, extra = divmod(max(0, cores - sum(shares.values())), len(flexible))
        for rank, claim in enumerate(flexible):
            shares[claim.pid] = max(1, each + (rank < extra))
    return shares


def share_of(pid: int, cores: int, claims: Sequence[Claim]) -> Share:
    """The share of the claim of `pid` among `claims` (which hold it), with its reason."""
    mine = next(c for c in claims if c.pid == pid)
    threads = fair_shares(cores, claims)[pid]
    if mine.requested:
        return Share(threads, f"torch.threads={mine.requested} in the config")
    if len(claims) == 1:
        return Share(threads, f"1 run on {cores} cores")
    fixed = sum(c.requested for c in claims)
    return Share(threads, f"{len(claims)} runs share {cores} cores"
                 + (f" ({fixed} threads fixed by torch.threads)" if fixed else ""))


class Registry:
    """The folder of claims, one `<pid>.json` each. Writers hold the folder's lock; readers need none."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def default(cls) -> Registry:
        chosen = os.environ.get(DIR_ENV)
        if chosen:
            return cls(Path(chosen))
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        if runtime and os.path.isdir(runtime):
            return cls(Path(runtime) / "trainctl-cores")
        return cls(Path(tempfile.gettempdir()) / f"trainctl-cores-{os.getuid()}")

    def claims(self) -> list[Claim]:
        """Every entry that parses, live or not (a folder not made yet holds none)."""
        try:
            paths = sorted(self.folder.glob("*.json"))
        except OSError:
            return []
        found = []
        for path in paths:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                found.append(Claim(int(data["pid"]), float(data["started"]), str(data["run_id"]),
                                   int(data["requested"]), int(data["threads"])))
            except (OSError, ValueError, KeyError, TypeError):  # removed while listed, or not ours
                continue
        return found

    def live(self) -> list[Claim]:
        return [c for c in self.claims() if is_live(c)]

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's write lock (made, private to this user, on first use)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.folder.stat().st_uid != os.getuid():
            raise PermissionError(f"{self.folder} belongs to another user (set {DIR_ENV} to a folder of yours)")
        with open(self.folder / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def write(self, claim: Claim) -> None:
        """Write `claim` (the caller holds the lock)."""
        atomic_write_json(self._path(claim.pid), asdict(claim))

    def remove(self, pid: int) -> None:
        """Remove the entry of `pid` (the caller holds the lock)."""
        self._path(pid).unlink(missing_ok=True)

    def prune(self) -> list[Claim]:
        """Remove the entries of dead processes and return the live ones (the caller holds the lock)."""
        live = []
        for claim in self.claims():
            if is_live(claim):
                live.append(claim)
            else:
                self.remove(claim.pid)
        return live

    def _path(self, pid: int) -> Path:
        return self.folder / f"{pid}.json"


@dataclass(frozen=True)
class Change:
    """A run's share moved from `old` to `new` threads."""

    old: int
    new: int
    reason: str

    @property
    def message(self) -> str:
        return f"torch threads {self.old} -> {self.new}: {self.reason}"


class ThreadShare:
    """This run process's claim: made by `join`, re-read by `refresh`/`poll`, given back by `leave`.
    Without a registry (its folder unusable) the run keeps the share it started with."""

    def __init__(self, registry: Registry | None, claim: Claim, reason: str, cores: int) -> None:
        self.registry = registry
        self.claim = claim
        self.reason = reason
        self.cores = cores
        self._next_check = 0.0

    @property
    def threads(self) -> int:
        return self.claim.threads

    def summary(self) -> str:
        return f"torch threads {self.threads}: {self.reason}"

    def refresh(self) -> Change | None:
        """Re-read the registry; when this run's share differs from the threads it uses, record the new
        share and return the change."""
        self._next_check = time.monotonic() + CHECK_EVERY_S
        if self.registry is None:
            return None
        live = self.registry.live()
        others = [c for c in live if c.pid != self.claim.pid]
        share = share_of(self.claim.pid, self.cores, [*others, self.claim])
        self.reason = share.reason
        change = None
        if share.threads != self.claim.threads:
            change = Change(self.claim.threads, share.threads, share.reason)
            self.claim = replace(self.claim, threads=share.threads)
        if change is not None or len(others) == len(live):  # changed, or our entry was removed (a /tmp cleaner)
            with contextlib.suppress(OSError), self.registry.locked():  # on failure others see us at the next write
                self.registry.write(self.claim)
        return change

    def poll(self) -> Change | None:
        """`refresh` if CHECK_EVERY_S have passed since the last reading."""
        return self.refresh() if time.monotonic() >= self._next_check else None

    def leave(self) -> None:
        global _joined
        if self.registry is not None:
            with contextlib.suppress(OSError), self.registry.locked():
                self.registry.remove(self.claim.pid)
        if _joined is self:
            _joined = None


_joined: ThreadShare | None = None


def join(run_id: str, requested: int, registry: Registry | None = None) -> ThreadShare:
    """Claim this process's share of the cores for run `run_id` (`requested`: its `torch.threads`, 0 for
    a fair share). Called once by the run process before torch is set up; `joined()` returns it after."""
    global _joined
    registry = registry if registry is not None else Registry.default()
    cores = core_count()
    pid = os.getpid()
    started = process_start(pid)
    assert started is not None, "this very process is alive"
    claim = Claim(pid, started, run_id, requested, requested or cores)
    try:
        with registry.locked():
            claims = [*(c for c in registry.prune() if c.pid != pid), claim]
            share = share_of(pid, cores, claims)
            claim = replace(claim, threads=share.threads)
            registry.write(claim)
        _joined = ThreadShare(registry, claim, share.reason, cores)
    except OSError as exc:
        _joined = ThreadShare(None, claim, f"core sharing is off ({exc})", cores)
    return _joined


def joined() -> ThreadShare | None:
    """This process's share, if it joined (a run process does; tests calling a trainer directly do not)."""
    return _joined


def launch_env(requested: int, registry: Registry | None = None) -> dict[str, str]:
    """The thread-count variables for a run process about to start: its `requested` threads, else the
    share it would get beside the live runs (a run starting at the same moment is not seen; both correct
    their torch threads when they set torch up)."""
    threads = requested
    if not threads:
        newcomer = Claim(0, math.inf, "", 0, 0)
        claims = (registry if registry is not None else Registry.default()).live()
        threads = fair_shares(core_count(), [*claims, newcomer])[0]
    return {name: str(threads) for name in THREAD_ENV}


@dataclass(frozen=True)
class CoreUse:
    """The machine's cores and the live runs' claims on them; `threads`: the torch threads of the run
    asked about (None: it holds no claim, e.g. a wrapped command or a run started before core sharing)."""

    cores: int
    runs: int
    claimed: int
    threads: int | None

    @property
    def oversubscribed(self) -> bool:
        return self.claimed > self.cores


def core_use(pid: int | None, registry: Registry | None = None) -> CoreUse:
    """How the live runs share the cores, and the share of the run whose process is `pid`."""
    claims = (registry if registry is not None else Registry.default()).live()
    mine = next((c.threads for c in claims if c.pid == pid), None) if pid else None
    return CoreUse(core_count(), len(claims), sum(c.threads for c in claims), mine)
