"""The events a run writes to `events.jsonl`, and the `[PERF]` / `[METRIC]` stdout lines (docs/events.md).

One JSON object a line; `t` is unix seconds, `step` env steps so far. Kinds:
- `perf`:   {"sps": float, "eps": float, "ms": {phase: ms per env step}} (phases:
            action, enemy_turn, env_step, replay_sample, train_fwd, train_bwd, log)
- `metric`: {"values": {name: float}}
- `status`: {"state": "starting|running|finished|failed|stopped"}
- `log`:    {"level": "info|warning|error", "msg": str}
- `extra`:  {"tag": str, "values": {name: float or str}} (a foreign trainer's `[TAG][PERF]` line)

A `[PERF] step=40960 sps=5123 eps=41.2 action_ms=0.120 ...` line carries one perf event on stdout;
`parse_perf_line` reads such lines in any key order and keeps unknown keys, so a trainer we did not
write can be monitored. Reading never fails on a bad line: it is counted and skipped. This module does
no terminal output of its own and must stay importable without Textual.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

PERF_PHASES = ("action", "enemy_turn", "env_step", "replay_sample", "train_fwd", "train_bwd", "log")
PERF_PREFIX = "[PERF]"
METRIC_PREFIX = "[METRIC]"
STATUS_PREFIX = "[STATUS]"  # a human progress line: step, share, sps, elapsed, eta (not an event)
# A perf event's own keys; any other is an extra. `folded`: how many of a wrapped trainer's [PERF] lines
# the event stands for (docs/events.md), not something the trainer printed.
PERF_FIELDS = ("t", "step", "kind", "sps", "eps", "ms", "folded")
_COMPACT = json.JSONEncoder(separators=(",", ":"))  # json.dumps with options builds an encoder per call


def perf_event(step: int, sps: float, eps: float, ms: Mapping[str, float], **extra: Any) -> dict[str, Any]:
    """A perf event: `ms` maps phase -> milliseconds per env step averaged over the window."""
    return {"t": time.time(), "step": int(step), "kind": "perf", "sps": float(sps), "eps": float(eps),
            "ms": {k: float(v) for k, v in ms.items()}, **extra}


def metric_event(step: int, values: Mapping[str, float]) -> dict[str, Any]:
    return {"t": time.time(), "step": int(step), "kind": "metric",
            "values": {k: float(v) for k, v in values.items()}}


def extra_event(step: int, tag: str, values: Mapping[str, float | str]) -> dict[str, Any]:
    """An `extra` event: what a foreign trainer's `[TAG][PERF]` line reports beside the phases (queue
    depth, updates/s ...), values as printed (numbers as numbers, other text as text)."""
    return {"t": time.time(), "step": int(step), "kind": "extra", "tag": tag, "values": dict(values)}


def status_event(state: str, **extra: Any) -> dict[str, Any]:
    return {"t": time.time(), "kind": "status", "state": state, **extra}


def log_event(level: str, msg: str, step: int | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"t": time.time(), "kind": "log", "level": level, "msg": msg}
    if step is not None:
        event["step"] = int(step)
    return event


def format_perf_line(event: Mapping[str, Any]) -> str:
    """The one-line stdout form of a perf event: step, sps, eps, then `<phase>_ms` in event order."""
    parts = [PERF_PREFIX, f"step={event['step']}", f"sps={event['sps']:.0f}", f"eps={event['eps']:.1f}"]
    parts += [f"{phase}_ms={ms:.3f}" for phase, ms in event["ms"].items()]
    parts += [f"{k}={_format_scalar(v)}" for k, v in perf_extras(event).items()]
    return " ".join(parts)


def perf_extras(event: Mapping[str, Any]) -> dict[str, Any]:
    """What an event reports beside the phases, as printed: a perf event's keys other than its own
    (`custom=7`, `updates=64`), or an `extra` event's values named `<tag> <key>` (`DQN qsize`)."""
    if event.get("kind") == "extra":
        return {f"{event.get('tag', '?')} {k}": v for k, v in dict(event.get("values") or {}).items()}
    return {k: v for k, v in event.items() if k not in PERF_FIELDS}


def format_metric_line(event: Mapping[str, Any]) -> str:
    values = " ".join(f"{k}={_format_scalar(v)}" for k, v in event["values"].items())
    return f"{METRIC_PREFIX} step={event['step']} {values}"


def _format_scalar(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _parse_pairs(body: str) -> dict[str, float] | None:
    pairs: dict[str, float] = {}
    for token in body.split():
        key, sep, raw = token.partition("=")
        if not sep or not key:
            return None
        try:
            pairs[key] = float(raw)
        except ValueError:
            return None
    return pairs


def parse_perf_line(line: str) -> dict[str, Any] | None:
    """A perf event from a `[PERF] key=value ...` line, or None if the line is not a valid one.

    `*_ms` keys become phases (ms per step); `sps`, `eps` and `step` are read where present; any other
    numeric key is kept at the top level of the event. A value that is not a number makes the line
    invalid (the caller counts it as malformed)."""
    start = line.find(PERF_PREFIX)
    if start < 0:
        return None
    pairs = _parse_pairs(line[start + len(PERF_PREFIX):])
    if not pairs:
        return None
    ms = {k[:-3]: v for k, v in pairs.items() if k.endswith("_ms")}
    rest = {k: v for k, v in pairs.items() if not k.endswith("_ms") and k not in ("step", "sps", "eps")}
    return perf_event(int(pairs.get("step", 0)), pairs.get("sps", 0.0), pairs.get("eps", 0.0), ms, **rest)


def parse_metric_line(line: str) -> dict[str, Any] | None:
    """A metric event from a `[METRIC] step=N name=value ...` line, or None if it is not a valid one."""
    start = line.find(METRIC_PREFIX)
    if start < 0:
        return None
    pairs = _parse_pairs(line[start + len(METRIC_PREFIX):])
    if not pairs:
        return None
    step = int(pairs.pop("step", 0))
    return metric_event(step, pairs) if pairs else None


class EventWriter:
    """Appends events to `events.jsonl`, one line each, flushed per event so readers see whole lines.

    Lines are written with a single `write` of the complete line, so a reader tailing the file sees
    either nothing or a whole line, and a crash leaves at most one truncated last line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - owned for the run

    def write(self, event: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._file.flush()

    def write_many(self, events: list[dict[str, Any]]) -> None:
        """Several events in one write and one flush (a chatty trainer's batch of lines)."""
        encode = _COMPACT.encode
        self._file.write("".join(encode(event) + "\n" for event in events))
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DiscardedEvents(EventWriter):
    """An EventWriter that writes nothing: the events of a rank that does not write the run
    (engine.distributed)."""

    def __init__(self) -> None:  # no file: nothing is ever written
        pass

    def write(self, event: Mapping[str, Any]) -> None:
        pass

    def write_many(self, events: list[dict[str, Any]]) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class LineTail:
    """Incremental reader of the complete lines appended to a growing file (events.jsonl, stdout.log).

    `poll_lines()` returns the lines completed since the last call, without their newline; a last line
    without its newline is left for the next poll (the writer may be mid-write). A file that shrank
    (replaced) is read again from the start; a missing file reads as empty."""

    path: Path
    offset: int = 0
    _partial: bytes = field(default=b"", repr=False)

    def poll_lines(self, max_bytes: int | None = None) -> list[bytes]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:
            self.offset, self._partial = 0, b""
        if size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read(max_bytes if max_bytes is not None else size - self.offset)
        self.offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        return lines

    def skip_to_end(self) -> None:
        """Follow only what is appended from now on."""
        try:
            self.offset = self.path.stat().st_size
        except FileNotFoundError:
            self.offset = 0
        self._partial = b""

    @property
    def pending_bytes(self) -> int:
        """Bytes of a last line still waiting for its newline (a writer mid-write, or a torn line)."""
        return len(self._partial)


@dataclass
class EventTail(LineTail):
    """A `LineTail` of an append-only `events.jsonl` whose `poll()` parses the lines. Lines that are not
    JSON objects with a `kind` are counted in `malformed` and skipped."""

    malformed: int = 0

    def poll(self, max_bytes: int | None = None) -> list[dict[str, Any]]:
        events = []
        for raw in self.poll_lines(max_bytes):
            event = parse_event_line(raw)
            if event is not None:
                events.append(event)
            elif raw.strip():
                self.malformed += 1
        return events


def parse_event_line(raw: bytes) -> dict[str, Any] | None:
    """The event a line of events.jsonl holds, or None if it is not a JSON object with a `kind`."""
    try:
        event = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return event if isinstance(event, dict) and "kind" in event else None


def tail_offset(path: Path, max_bytes: int) -> int:
    """The offset of the first whole line in the last `max_bytes` of the file (0 for a smaller file),
    so that an `EventTail` started there reads the tail and then follows the file."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    start = max(0, size - max_bytes)
    if start == 0:
        return 0
    with open(path, "rb") as f:
        f.seek(start - 1)
        # Reading one byte before the window tells whether the window starts on a line boundary.
        head = f.read(min(size - start + 1, 64 * 1024))
    newline = head.find(b"\n")
    return size if newline < 0 else start + newline


def read_tail_events(path: Path, max_bytes: int = 256 * 1024) -> list[dict[str, Any]]:
    """The events in the last `max_bytes` of the file: a cheap way to get a run's latest state
    without reading its whole history. The line cut by the window's start is dropped."""
    return EventTail(path, offset=tail_offset(path, max_bytes)).poll()
