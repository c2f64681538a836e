"""What the TUI knows about the runs in a folder, kept up to date from their files — without Textual.

`RunsWatcher.poll()` is called from the TUI's watcher thread: it finds run folders (new ones appear),
reads each run's status.json/run.json when they change and the lines appended to events.jsonl since
the last poll (engine.events.EventTail), checks that the process of each active run is still its own
(engine.runstore: pid and start time), and returns immutable `RunSnapshot`s the screens render. It
never raises for what it finds on disk: a half-written folder, a truncated last line, malformed lines or
a folder deleted while shown become `notes` on the run's snapshot; a run.json or status.json that is
not valid JSON makes the run `unreadable`, and a run whose process is gone without recording an exit
is `lost`, with a note saying its last step, newest checkpoint and the line that resumes it.

Opening a long run is cheap: a small events file is read whole; a large one is read tail first (its
last `TAIL_BYTES`, full resolution) plus evenly spaced probes over the rest, so a run with a million
events opens in well under a second with its whole history drawn, downsampled. Histories are `Series`
of bounded size. Nothing here draws, imports Textual or touches a trainer's internals.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.checkpoint import latest_checkpoint
from engine.errors import UsageError
from engine.events import EventTail, parse_event_line, perf_extras, tail_offset
from engine.runstore import ACTIVE_STATES, RunDir, list_runs, profile_label
from tui.system import SystemProbe, SystemSample

HISTORY_POINTS = 1024  # points kept per series; beyond it a series halves its resolution
FULL_READ_BYTES = 4 * 1024 * 1024  # events files up to this size are read whole at open
TAIL_BYTES = 512 * 1024  # a larger file: its last TAIL_BYTES at full resolution ...
PROBES = 256  # ... plus this many evenly spaced probes over the rest
PROBE_BYTES = 4096
LOG_TAIL_BYTES = 32 * 1024
LOG_TAIL_LINES = 300
EVAL_HISTORY = 200  # eval events kept per run (the eval tables over a run)
STALLED_POLLS = 2  # polls an incomplete last line may wait before it is reported
SYSTEM_EVERY_S = 1.0  # seconds between samples of the selected run's process tree


class Series:
    """(step, value) points of one quantity over a whole run, in bounded memory.

    At most `capacity` points are kept; when full, every other point is dropped and from then on only
    every `stride`-th new point is kept (stride doubles each time), so the history stays evenly
    thinned. `last` is always the newest value, kept or not."""

    def __init__(self, capacity: int = HISTORY_POINTS) -> None:
        self.capacity = capacity
        self.points: list[tuple[float, float]] = []
        self.stride = 1
        self._since_kept = 0
        self.last: float | None = None

    def add(self, step: float, value: float) -> None:
        self.last = value
        self._since_kept += 1
        if self._since_kept < self.stride:
            return
        self._since_kept = 0
        self.points.append((step, value))
        if len(self.points) > self.capacity:
            del self.points[1::2]
            self.stride *= 2

    def values(self) -> tuple[float, ...]:
        return tuple(v for _, v in self.points)


def resample(points: Sequence[tuple[float, float]], width: int,
             span: tuple[float, float] | None = None) -> list[float]:
    """`width` values drawn from (step, value) points bucketed evenly by step (each bucket's mean; an
    empty bucket repeats the previous one), so a plot's x axis is env steps even where the history
    is denser (the full-resolution tail) or sparser (probes). Points all at one step are spread by index.
    `span` (first, last step) buckets several series alike (default: the points' own first and last)."""
    if not points or width <= 0:
        return []
    first, last = span if span is not None else (points[0][0], points[-1][0])
    if last <= first:
        points = [(float(i), v) for i, (_, v) in enumerate(points)]
        first, last = 0.0, float(len(points) - 1)
    if last <= first:
        return [points[0][1]] * width
    sums = [0.0] * width
    counts = [0] * width
    scale = width / (last - first)
    for step, value in points:
        bucket = min(width - 1, max(0, int((step - first) * scale)))
        sums[bucket] += value
        counts[bucket] += 1
    out: list[float] = []
    previous = points[0][1]
    for total, count in zip(sums, counts, strict=True):
        previous = total / count if count else previous
        out.append(previous)
    return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# The metrics plotted (and compared) until the user chooses: for each group (reward, win rate, loss, a world
# model's val_total, LR, entropy, gradient norm) the first key matching its patterns, tried in order.
DEFAULT_GROUPS = (("ep_rew_mean", "reward", "rew"), ("win_rate", "win"),
                  ("train/loss", "policy_loss", "value_loss", "loss"), ("val_total",),
                  ("learning_rate", "/lr", "lr"), ("entropy",), ("grad_norm",))


def default_metrics(keys: Sequence[str]) -> list[str]:
    chosen: list[str] = []
    for patterns in DEFAULT_GROUPS:
        match = next((k for p in patterns for k in keys if p in k.lower() and k not in chosen), None)
        if match is not None:
            chosen.append(match)
    return chosen


@dataclass(frozen=True)
class RunSnapshot:
    """One run as the screens show it. Series are (step, value) tuples; `perf_*_ms` map phase -> ms
    per env step; `config` maps `section.key` -> (value, source); `notes` say what is wrong on disk."""

    run_id: str
    path: Path
    state: str
    kind: str
    algo: str
    env: str
    profile: str
    step: int
    total_steps: int | None
    created: float | None
    pid: int | None
    exit_code: int | None
    sps: float | None
    eps: float | None
    sps_history: tuple[tuple[float, float], ...]
    eps_history: tuple[tuple[float, float], ...]
    perf_first_ms: Mapping[str, float]
    perf_latest_ms: Mapping[str, float]
    metrics_latest: Mapping[str, float]
    metric_history: Mapping[str, tuple[tuple[float, float], ...]]
    config: Mapping[str, tuple[Any, str]]
    command: tuple[str, ...]
    malformed_lines: int
    events_read: int
    recent_logs: tuple[str, ...]
    notes: tuple[str, ...]
    gone: bool = False
    evals: tuple[Mapping[str, Any], ...] = ()
    """The run's `eval` events (docs/events.md), oldest first, the last EVAL_HISTORY of them."""
    perf_extras: tuple[tuple[str, str], ...] = ()  # (name, value as printed): keys beside the phases
    wm_bench: Mapping[str, Any] | None = None
    """The run's latest `wm_bench` event (`trainctl wm-bench` of one of its checkpoints), if any."""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES and not self.gone

    @property
    def sps_median(self) -> float | None:
        values = [v for _, v in self.sps_history]
        return statistics.median(values) if values else None

    def metric_keys(self) -> list[str]:
        return sorted(self.metric_history)

    def grew_most(self) -> tuple[str, float] | None:
        """The phase whose ms per step grew most since the run's first perf event, and by how much."""
        growth = {p: ms - self.perf_first_ms.get(p, 0.0) for p, ms in self.perf_latest_ms.items()}
        if not growth:
            return None
        phase = max(growth, key=lambda p: growth[p])
        return (phase, growth[phase]) if growth[phase] > 0 else None


@dataclass
class _Files:
    """What a tracker last read of a run's JSON files, and when they last changed."""

    info: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    info_stamp: tuple[int, int] | None = None
    status_stamp: tuple[int, int] | None = None
    info_error: str | None = None
    status_error: str | None = None


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(mtime in ns, size in bytes) of `path`, None when it does not exist: a cheap "did it change"."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


class RunTracker:
    """Follows one run folder: its files, its events (history first, then appended lines)."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.files = _Files()
        self.tail: EventTail | None = None
        self.sampled = False
        self.gone = False
        self.changed = True
        self.step = 0
        self.events_read = 0
        self.bad_events = 0
        self.event_state: str | None = None
        self.sps: float | None = None
        self.eps: float | None = None
        self.sps_history = Series()
        self.eps_history = Series()
        self.perf_first_ms: dict[str, float] = {}
        self.perf_latest_ms: dict[str, float] = {}
        self.perf_extras: dict[str, str] = {}
        self.metrics: dict[str, Series] = {}
        self.recent_logs: list[str] = []
        self.evals: list[dict[str, Any]] = []
        self.wm_bench: dict[str, Any] | None = None
        self._pending_polls = 0
        self._alive: bool | None = None
        self._snapshot: RunSnapshot | None = None

    # -- reading ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read whatever changed on disk since the last call; sets `changed` when anything did."""
        if not self.run.path.is_dir():
            self.changed |= not self.gone
            self.gone = True
            return
        self._read_json_files()
        self._check_process()
        if self.tail is None:
            self._open_history()
        else:
            pending_before = self.tail.pending_bytes
            events = self.tail.poll()
            self._feed(events)
            self.changed |= bool(events)
            stalled = bool(self.tail.pending_bytes) and not events and self.tail.pending_bytes == pending_before
            pending_polls = self._pending_polls + 1 if stalled else 0
            self.changed |= (pending_polls >= STALLED_POLLS) != (self._pending_polls >= STALLED_POLLS)
            self._pending_polls = pending_polls

    def _read_json_files(self) -> None:
        files = self.files
        for name in ("info", "status"):
            path = self.run.config_path if name == "info" else self.run.status_path
            stamp = file_stamp(path)
            if stamp == getattr(files, f"{name}_stamp") and stamp is not None:
                continue
            setattr(files, f"{name}_stamp", stamp)
            self.changed = True
            try:
                data = self.run.read_config() if name == "info" else self.run.read_status()
            except UsageError as exc:  # its message names the file by its full path: the run is known here
                setattr(files, f"{name}_error", str(exc).replace(f"{self.run.path}{os.sep}", ""))
                continue
            setattr(files, name, data)
            setattr(files, f"{name}_error", None)

    def _check_process(self) -> None:
        """A run recorded as active whose process ends (or is replaced: pid reuse) changes no file of
        it: check the process itself, so that the run shows as `lost` at once."""
        status = self.files.status
        if status.get("state") not in ACTIVE_STATES or not status.get("pid"):
            self._alive = None
            return
        alive = self.run.alive(status)
        self.changed |= alive != self._alive
        self._alive = alive

    def _open_history(self) -> None:
        path = self.run.events_path
        stamp = file_stamp(path)
        size = stamp[1] if stamp else 0
        if size <= FULL_READ_BYTES:
            self.tail = EventTail(path)
            self._feed(self.tail.poll())
            return
        start = tail_offset(path, TAIL_BYTES)
        with open(path, "rb") as f:
            # The head holds the run's first perf event (the baseline of "grew most since start").
            self._feed(_parse_lines(f.read(PROBE_BYTES * 4).split(b"\n")[:-1]))
            span = start - PROBE_BYTES * 4
            for i in range(1, PROBES):
                f.seek(PROBE_BYTES * 4 + span * i // PROBES)
                # A probe lands mid-line: its first and last pieces are not whole lines.
                self._feed(_parse_lines(f.read(PROBE_BYTES).split(b"\n")[1:-1]))
        self.sampled = True
        self.tail = EventTail(path, offset=start)
        self._feed(self.tail.poll())

    def _feed(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            try:
                self._feed_one(event)
            except (TypeError, ValueError, AttributeError):
                self.bad_events += 1

    def _feed_one(self, event: dict[str, Any]) -> None:
        self.events_read += 1
        step = _number(event.get("step"))
        if step is not None:
            self.step = max(self.step, int(step))
        kind = event.get("kind")
        if kind == "perf":
            ms = {str(k): float(v) for k, v in dict(event.get("ms") or {}).items()}
            self.sps, self.eps = _number(event.get("sps")), _number(event.get("eps"))
            at = self.step if step is None else step
            if self.sps is not None:
                self.sps_history.add(at, self.sps)
            if self.eps is not None:
                self.eps_history.add(at, self.eps)
            if ms and not self.perf_first_ms:
                self.perf_first_ms = ms
            if ms:
                self.perf_latest_ms = ms
            self._keep_extras(event)
        elif kind == "extra":
            self._keep_extras(event)
        elif kind == "metric":
            at = self.step if step is None else step
            for key, raw in dict(event.get("values") or {}).items():
                value = _number(raw)
                if value is not None:
                    self.metrics.setdefault(str(key), Series()).add(at, value)
        elif kind == "status":
            self.event_state = str(event.get("state"))
        elif kind == "log" and event.get("level") in ("warning", "error"):
            self.recent_logs = [*self.recent_logs[-4:], f"{event.get('level')}: {event.get('msg')}"]
        elif kind == "eval" and isinstance(event.get("rows"), list):
            self.evals = [*self.evals[-(EVAL_HISTORY - 1):], event]
        elif kind == "wm_bench" and isinstance(event.get("metrics"), dict):
            self.wm_bench = event

    def _keep_extras(self, event: dict[str, Any]) -> None:
        for key, value in perf_extras(event).items():
            self.perf_extras[str(key)] = f"{value:.4g}" if isinstance(value, float) else str(value)

    # -- showing ---------------------------------------------------------------------------------
    def snapshot(self) -> RunSnapshot:
        """The run as of the last refresh (the same object while nothing changed)."""
        if self._snapshot is not None and not self.changed:
            return self._snapshot
        self.changed = False
        info, status = self.files.info, self.files.status
        state = self._state()
        step = max(self.step, int(_number(status.get("step")) or 0))
        config = {str(k): (v.get("value"), str(v.get("source"))) for k, v in dict(info.get("config") or {}).items()
                  if isinstance(v, dict)}
        wrapped = info.get("wrapped") if isinstance(info.get("wrapped"), list) else info.get("command")
        self._snapshot = RunSnapshot(
            run_id=self.run.run_id,
            path=self.run.path,
            state=state,
            kind=str(info.get("kind", "?")),
            algo=str(info.get("algo", "?")),
            env=str(info.get("env", "?")),
            profile=profile_label(info),
            step=step,
            total_steps=int(info["total_steps"]) if _number(info.get("total_steps")) else None,
            created=_number(status.get("created")) or _number(info.get("created")),
            pid=int(status["pid"]) if _number(status.get("pid")) else None,
            exit_code=int(status["exit_code"]) if _number(status.get("exit_code")) is not None else None,
            sps=self.sps,
            eps=self.eps,
            sps_history=tuple(self.sps_history.points),
            eps_history=tuple(self.eps_history.points),
            perf_first_ms=dict(self.perf_first_ms),
            perf_latest_ms=dict(self.perf_latest_ms),
            metrics_latest={k: s.last for k, s in self.metrics.items() if s.last is not None},
            metric_history={k: tuple(s.points) for k, s in self.metrics.items()},
            config=config,
            command=tuple(str(c) for c in wrapped) if isinstance(wrapped, list) else (),
            malformed_lines=self._malformed(),
            events_read=self.events_read,
            recent_logs=tuple(self.recent_logs),
            notes=tuple(self._notes(state, step)),
            gone=self.gone,
            evals=tuple(self.evals),
            perf_extras=tuple(self.perf_extras.items()),
            wm_bench=self.wm_bench,
        )
        return self._snapshot

    def _state(self) -> str:
        if self._unreadable():
            return "unreadable"
        status = self.files.status
        if not status:
            return self.event_state or "starting"
        return self.run.effective_state(status)

    def _unreadable(self) -> list[str]:
        """What makes the run unreadable: a run.json or status.json that exists but is not valid JSON (a
        missing status.json is a run being created)."""
        read = ((self.files.info_error, self.files.info_stamp), (self.files.status_error, self.files.status_stamp))
        return [error for error, stamp in read if error and stamp is not None]

    def _malformed(self) -> int:
        tail_bad = self.tail.malformed if self.tail else 0
        return tail_bad + self.bad_events + int(_number(self.files.status.get("malformed_lines")) or 0)

    def _notes(self, state: str, step: int) -> list[str]:
        notes = []
        if self.gone:
            notes.append("its folder was deleted; showing what was read before")
        unreadable = self._unreadable()
        notes += [f"unreadable: {error}" for error in unreadable]
        notes += [f"half-written run: {error}" for error in (self.files.info_error, self.files.status_error)
                  if error and error not in unreadable]
        if state == "lost":
            notes.append(f"lost: {self.run.lost_note(step, latest_checkpoint(self.run.checkpoints))}")
        if self._pending_polls >= STALLED_POLLS and self.tail is not None:
            notes.append(f"events.jsonl ends in an incomplete line ({self.tail.pending_bytes} bytes): "
                         "waiting for the rest")
        malformed = self._malformed()
        if malformed:
            notes.append(f"{malformed} malformed line{'s' if malformed != 1 else ''} skipped")
        if self.sampled:
            notes.append("long run: history sampled (tail at full resolution)")
        return notes

    def log_tail(self) -> tuple[str, ...]:
        """The last lines of the run's stdout.log (empty if it does not exist yet)."""
        return self.run.log_tail(LOG_TAIL_BYTES, LOG_TAIL_LINES)


def _parse_lines(lines: Iterable[bytes]) -> list[dict[str, Any]]:
    """Probed lines that parse as events (a probe's torn pieces are not counted as malformed)."""
    return [event for raw in lines if (event := parse_event_line(raw)) is not None]


@dataclass(frozen=True)
class PollResult:
    """Every known run (oldest first); the selected run's log tail and system sample (None when not
    sampled); a note on the runs folder."""

    runs: tuple[RunSnapshot, ...]
    selected: str | None
    log_tail: tuple[str, ...]
    system: SystemSample | None
    note: str | None


class RunsWatcher:
    """Keeps a `RunTracker` per run folder under `runs_dir`; `selected` (a run id, set by the UI)
    chooses whose log tail is read and whose process tree `probe` samples."""

    def __init__(self, runs_dir: Path, probe: SystemProbe | None = None) -> None:
        self.runs_dir = runs_dir
        self.probe = probe
        self._system: tuple[str | None, float, SystemSample | None] = (None, 0.0, None)
        self.trackers: dict[str, RunTracker] = {}
        self.selected: str | None = None
        self._log_stamp: tuple[str, tuple[int, int] | None] | None = None
        self._log_tail: tuple[str, ...] = ()
        self._note: str | None = None

    def poll(self) -> PollResult:
        note = None
        if not self.runs_dir.is_dir():
            note = f"runs folder {self.runs_dir} does not exist yet: waiting for runs"
        try:
            found = list_runs(self.runs_dir)
        except OSError as exc:  # unreadable, or removed between the check and the listing
            found, note = [], f"cannot list {self.runs_dir}: {exc.strerror or exc}"
        for run in found:
            known = self.trackers.get(run.run_id)
            if known is None or known.gone:  # new, or deleted and made again: read it afresh
                self.trackers[run.run_id] = RunTracker(run)
        for tracker in self.trackers.values():
            try:
                tracker.refresh()
            except OSError as exc:  # a folder removed between listing and reading, a permission change
                tracker.recent_logs = [*tracker.recent_logs[-4:], f"error: cannot read {tracker.run.path}: {exc}"]
                tracker.changed = True
        if note == self._note:
            note = self._note  # the same object while it reads the same: the monitor redraws on a new one
        self._note = note
        selected = self.selected
        return PollResult(runs=tuple(t.snapshot() for t in self.trackers.values()), selected=selected,
                          log_tail=self._selected_log(selected), system=self._selected_system(selected), note=note)

    def _selected_system(self, run_id: str | None) -> SystemSample | None:
        tracker = self.trackers.get(run_id) if run_id else None
        if tracker is None or self.probe is None:
            return None
        sampled_for, sampled_at, sample = self._system
        now = time.monotonic()
        if sampled_for != run_id or now - sampled_at >= SYSTEM_EVERY_S:
            pid = tracker.snapshot().pid if tracker.snapshot().active else None
            sample = self.probe.sample(pid)
            self._system = (run_id, now, sample)
        return sample

    def _selected_log(self, run_id: str | None) -> tuple[str, ...]:
        tracker = self.trackers.get(run_id) if run_id else None
        if tracker is None:
            return ()
        stamp = (tracker.run.run_id, file_stamp(tracker.run.stdout_path))
        if stamp != self._log_stamp:
            self._log_stamp, self._log_tail = stamp, tracker.log_tail()
        return self._log_tail
