"""Parsers of what trainers print, turning their lines into perf and metric events (docs/events.md).

`trainctl run -- CMD` reads the command's stdout and stderr line by line and hands each line to a
`LineReader` made by `make_reader(spec)`; spec is `auto` (every known format tried, cheapest test first),
one format's name (`trainctl`, `sb3`, `cleanrl`, `kv`) or `regex:PATTERN`. Formats:

- `trainctl`: our `[PERF] key=value ...` and `[METRIC] ...` lines, plus the variants other trainers
  print: window counts (`steps=`, `updates=`) that add up to the step, and tagged lines such as
  `[DQN][PERF] ...` whose keys become an `extra` event (they are not per-env-step phases).
- `sb3`: Stable-Baselines3 / rl-zoo3 logger tables (a block of `| key | value |` rows between dash lines,
  sections `rollout/`, `time/`, `train/` ...); `time/total_timesteps` is the step, `time/fps` the steps/s.
- `cleanrl`: `global_step=N, episodic_return=[R]` lines and `SPS: N` lines.
- `kv`: `key=value` lines separated by `|`, `,` or spaces, with an optional `[Step N]` prefix or a
  `step=N` pair.
- `regex:PATTERN`: named groups become metrics; a group named `step` is the step.

A parser's `feed(line, t)` returns None when the line is not in its format, else the events it makes
(possibly none: a row inside a table). The reader is handed every line of one read of the trainer's
output at once (`LineReader.feed_lines`): the untagged `[PERF]` lines among them fold into one perf
event (docs/events.md says what it holds), so a trainer printing thousands of them a second costs a few
events a second, and a run of such lines printing the same keys is read by one compiled pattern. A line
that looks like a format but does not parse (a `[PERF]` line with `sps=oops`) is claimed and counted as
malformed. Steps/s is derived from how the step advances between lines' arrival times `t` (unix seconds)
when a format carries none. Nothing here reads files, writes output or fails on a line: bad input only
ever costs a count.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from itertools import repeat
from typing import Any, ClassVar

from engine.errors import UsageError
from engine.events import METRIC_PREFIX, PERF_PREFIX, extra_event, metric_event, perf_event

Event = dict[str, Any]
_TAG = re.compile(r"\[([A-Za-z0-9_.-]+)\]\s*\[PERF\]")


def _number(text: str) -> float | None:
    """A float from a printed number, `[12.5]` (a numpy array of one) included; None if not one."""
    text = text.strip().strip("[]").strip()
    try:
        return float(text)
    except ValueError:
        return None


class StepClock:
    """The wrapped run's env step (the largest seen, or the sum of window counts) and the steps/s
    derived from how it advanced since the previous `rate` call, per the lines' arrival times."""

    def __init__(self, t0: float | None = None) -> None:
        self.step = 0
        self._mark = (0, time.time() if t0 is None else t0)
        self._last_rate: float | None = None

    def see(self, step: float) -> None:
        if math.isfinite(step):  # `step=nan` printed by a trainer never moves (or breaks) the clock
            self.step = max(self.step, int(step))

    def add(self, count: float) -> None:
        if math.isfinite(count):
            self.step += int(count)

    def rate(self, t: float) -> float | None:
        """Steps/s since the previous call, which starts a new window. Lines that arrive together (no
        time between them) get the previous window's rate (None before the first)."""
        step0, t0 = self._mark
        if t <= t0:
            return self._last_rate
        self._mark = (self.step, t)
        self._last_rate = (self.step - step0) / (t - t0)
        return self._last_rate


class LineParser:
    """One format. `count` is how many units (lines, or tables for sb3) it understood, `malformed`
    how many lines it claimed but could not read. Subclasses implement `feed`."""

    name: ClassVar[str]
    unit: ClassVar[str] = "lines"
    label: ClassVar[str] = ""  # how the report names what was read, e.g. "sb3 tables"

    def __init__(self, clock: StepClock) -> None:
        self.clock = clock
        self.count = 0
        self.malformed = 0

    def feed(self, line: str, t: float) -> list[Event] | None:
        raise NotImplementedError

    def _derived_perf(self, t: float) -> list[Event]:
        """A perf event whose steps/s comes from the step's progress, for formats that print none."""
        sps = self.clock.rate(t)
        return [] if sps is None else [perf_event(self.clock.step, sps, 0.0, {})]


def _pairs(tokens: list[str]) -> dict[str, str] | None:
    """`key=value` tokens as a dict of strings; None if any token is not one."""
    pairs = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not key or not value:
            return None
        pairs[key] = value
    return pairs


class PerfFold:
    """The untagged `[PERF]` lines read since the last perf event, to become one perf event: phases, sps
    and eps are means over the lines that print them, `updates` the sum, other keys as the last line
    printed them, the step the clock's after the last line."""

    def __init__(self) -> None:
        self.lines = 0
        self.step = 0
        self.ms_sums: dict[str, float] = {}
        self.ms_lines: dict[str, int] = {}
        self.sps_sum = self.eps_sum = 0.0
        self.sps_lines = self.eps_lines = 0
        self.updates: float | None = None
        self.rest: dict[str, Any] = {}

    def add(self, lines: int, step: int, ms: dict[str, float], sps: float | None, eps: float | None,
            updates: float | None, rest: dict[str, Any]) -> None:
        """`lines` more lines, every one printing each of `ms`, `sps`, `eps`, `updates` given (their sums)."""
        self.lines += lines
        self.step = step
        for phase, total in ms.items():
            self.ms_sums[phase] = self.ms_sums.get(phase, 0.0) + total
            self.ms_lines[phase] = self.ms_lines.get(phase, 0) + lines
        if sps is not None:
            self.sps_sum += sps
            self.sps_lines += lines
        if eps is not None:
            self.eps_sum += eps
            self.eps_lines += lines
        if updates is not None:
            self.updates = (self.updates or 0.0) + updates
        self.rest.update(rest)


def _perf_template(keys: tuple[str, ...]) -> re.Pattern[str] | None:
    """A pattern matching a whole `[PERF]` line that prints `keys` in this order, their values its groups;
    None when such lines are read one by one: no key, an empty one, one printed twice, or both `step`
    and `steps` (the order they move the clock in matters)."""
    if not keys or "" in keys or len(set(keys)) < len(keys) or {"step", "steps"} <= set(keys):
        return None
    body = r"[ \t]+".join(f"{re.escape(key)}=(\\S+)" for key in keys)
    return re.compile(rf"^{re.escape(PERF_PREFIX)}[ \t]*{body}[ \t]*$", re.MULTILINE)


def _plain_count_sum(column: tuple[str, ...]) -> int | None:
    """The sum of window counts all printed as plain digits (`steps=256`), when it is below 2**53: each
    count and every partial sum is then exact in a float, so it is what reading them one by one gives
    (`int(float(text))` each, their floats summed), for one int() a line instead of a float() and an
    int(). None for any other column."""
    if not "".join(column).isdecimal():
        return None
    total = sum(map(int, column))
    return total if total < 2**53 else None


class TrainctlLines(LineParser):
    """`[PERF]`/`[METRIC]` lines (docs/events.md), window counts, and `[TAG][PERF]` lines.

    `step`, `steps`, `updates`, `sps`, `eps` and `*_ms` must be numbers (the counts finite ones), else
    the line is malformed; other keys are kept as they are printed (numbers as numbers, `qsize=unknown`
    as text). Untagged `[PERF]` lines are folded (`PerfFold`) until `flush` makes their perf event."""

    name = "trainctl"
    label = "trainctl [PERF]/[METRIC] lines"
    NUMERIC = ("step", "steps", "updates", "sps", "eps")
    COUNTS = ("step", "steps", "updates")  # become ints: inf or nan makes the line malformed
    TEMPLATES_KEPT = 16  # key orders whose pattern is kept; a trainer prints one or two

    def __init__(self, clock: StepClock) -> None:
        super().__init__(clock)
        self.updates = 0
        self._fold = PerfFold()
        self._templates: dict[tuple[str, ...], re.Pattern[str] | None] = {}

    def feed(self, line: str, t: float) -> list[Event] | None:
        perf = line.find(PERF_PREFIX)
        if perf < 0:
            metric = line.find(METRIC_PREFIX)
            if metric < 0:
                return None
            values = self._values(line[metric + len(METRIC_PREFIX):], strict=True)
            return None if values is None else self._metric(values)
        tagged = perf and line[:perf].rstrip().endswith("]")
        tag = _TAG.search(line, 0, perf + len(PERF_PREFIX)) if tagged else None
        values = self._values(line[perf + len(PERF_PREFIX):], strict=False)
        if values is None:
            return []
        if tag is not None:
            return [extra_event(self.clock.step, tag.group(1), values)]
        self._perf(values)
        return []

    def _values(self, body: str, strict: bool) -> dict[str, Any] | None:
        """The line's `key=value` pairs, numbers as floats; None (counted as malformed) if a token is
        not a pair, or a value that must be a number (every one when `strict`) is not."""
        values: dict[str, Any] = {}
        for token in body.split():
            key, sep, text = token.partition("=")
            if not sep or not key or not text:
                values = {}
                break
            try:
                values[key] = float(text)
            except ValueError:
                number = _number(text)
                if number is None and (strict or key in self.NUMERIC or key.endswith("_ms")):
                    values = {}
                    break
                values[key] = text if number is None else number
            if key in self.COUNTS and not math.isfinite(values[key]):
                values = {}
                break
        if not values:
            self.malformed += 1
            return None
        self.count += 1
        return values

    def _metric(self, values: dict[str, Any]) -> list[Event]:
        if "step" in values:
            self.clock.see(values.pop("step"))
        return [metric_event(self.clock.step, values)] if values else []

    def _perf(self, values: dict[str, Any]) -> None:
        clock = self.clock
        ms, rest = {}, {}
        sps = eps = None
        for key, value in values.items():
            if key.endswith("_ms"):
                ms[key[:-3]] = value
            elif key == "steps":
                clock.add(value)
            elif key == "step":
                clock.see(value)
            elif key == "sps":
                sps = value
            elif key == "eps":
                eps = value
            else:
                rest[key] = value
        updates = rest.get("updates")
        if updates is not None:
            self.updates += int(updates)
        self._fold.add(1, clock.step, ms, sps, eps, updates, rest)

    def fold_same_keys(self, lines: list[str]) -> bool:
        """Read `lines` (each starting with `[PERF]`, none holding a newline) in one go when they all print
        the first one's keys in its order, with a number wherever one must be: one compiled pattern over
        the joined lines and per-key sums in C, the common case of a chatty trainer. Exactly what reading
        them one by one would give; False, having read nothing, when any line differs (they are then
        read one by one)."""
        keys = tuple(token.partition("=")[0] for token in lines[0][len(PERF_PREFIX):].split())
        if keys not in self._templates:
            if len(self._templates) >= self.TEMPLATES_KEPT:
                self._templates.clear()
            self._templates[keys] = _perf_template(keys)
        pattern = self._templates[keys]
        joined = "\n".join(lines)
        if pattern is None or joined.count("\n") != len(lines) - 1:
            return False
        matches = pattern.findall(joined)
        if len(matches) != len(lines):
            return False
        columns = list(zip(*matches, strict=True)) if len(keys) > 1 else [tuple(matches)]
        ms: dict[str, float] = {}
        rest: dict[str, Any] = {}
        sps = eps = updates = None
        added = seen = counted = None
        try:  # int() of nan or inf raises too: such a line is malformed, which the one-by-one reading counts
            for key, column in zip(keys, columns, strict=True):
                if key.endswith("_ms"):
                    ms[key[:-3]] = sum(map(float, column))
                elif key == "steps":
                    added = _plain_count_sum(column)
                    if added is None:
                        added = sum(map(int, map(float, column)))
                elif key == "step":
                    seen = max(map(int, map(float, column)))
                elif key == "sps":
                    sps = sum(map(float, column))
                elif key == "eps":
                    eps = sum(map(float, column))
                elif key == "updates":
                    counted = _plain_count_sum(column)
                    if counted is None:
                        numbers = list(map(float, column))
                        updates, counted = sum(numbers), sum(map(int, numbers))
                    else:
                        updates = float(counted)
                    rest[key] = updates
                else:
                    number = _number(column[-1])
                    rest[key] = column[-1] if number is None else number
        except (ValueError, OverflowError):
            return False
        if added is not None:
            self.clock.add(added)
        if seen is not None:
            self.clock.see(seen)
        if counted is not None:
            self.updates += counted
        self.count += len(lines)
        self._fold.add(len(lines), self.clock.step, ms, sps, eps, updates, rest)
        return True

    def flush(self, t: float) -> list[Event]:
        """The perf event of the lines folded since the last one (none if there are none). Without an
        `sps` printed, steps/s is the step's progress since the previous perf event over the time between."""
        fold = self._fold
        if not fold.lines:
            return []
        self._fold = PerfFold()
        derived = self.clock.rate(t)
        sps = fold.sps_sum / fold.sps_lines if fold.sps_lines else derived or 0.0
        eps = fold.eps_sum / fold.eps_lines if fold.eps_lines else 0.0
        rest = fold.rest
        if fold.updates is not None:
            rest["updates"], rest["updates_total"] = fold.updates, self.updates
        if fold.lines > 1:
            rest["folded"] = fold.lines
        ms = {phase: total / fold.ms_lines[phase] for phase, total in fold.ms_sums.items()}
        # perf_event's shape, built directly: the values are floats already.
        return [{"t": t, "step": fold.step, "kind": "perf", "sps": sps, "eps": eps, "ms": ms, **rest}]


class Sb3Tables(LineParser):
    """SB3's logger tables: a dash line, `| section/ |` and `|    key | value |` rows, a dash line.

    One table makes one metric event (`section/key` names as SB3 logs them, numbers only) and, when it
    has `time/fps`, one perf event. A dash line opens a table or closes the open one."""

    name = "sb3"
    unit = "blocks"
    label = "sb3 tables"

    def __init__(self, clock: StepClock) -> None:
        super().__init__(clock)
        self._rows: dict[str, float] | None = None
        self._section = ""

    def feed(self, line: str, t: float) -> list[Event] | None:
        text = line.strip()
        if text.startswith("---") and not text.strip("-"):
            if self._rows:
                return self._close()
            self._rows, self._section = {}, ""
            return []
        if self._rows is None or not (text.startswith("|") and text.endswith("|")):
            return None
        cells = text[1:-1].split("|")
        if len(cells) != 2:
            return None
        key, value = cells[0].strip(), cells[1].strip()
        if not value and key.endswith("/"):
            self._section = key
        else:
            number = _number(value)
            if number is not None:
                self._rows[f"{self._section}{key}"] = number
        return []

    def _close(self) -> list[Event]:
        rows, self._rows = self._rows or {}, None
        self.count += 1
        if "time/total_timesteps" in rows:
            self.clock.see(rows["time/total_timesteps"])
        events = [metric_event(self.clock.step, rows)]
        if "time/fps" in rows:
            events.append(perf_event(self.clock.step, rows["time/fps"], 0.0, {}))
        return events


class CleanRLLines(LineParser):
    """CleanRL's `global_step=N, episodic_return=[R]` (metrics at step N) and `SPS: N` (a perf event)."""

    name = "cleanrl"
    label = "cleanrl lines"

    def feed(self, line: str, t: float) -> list[Event] | None:
        text = line.strip()
        if text.startswith("SPS:"):
            sps = _number(text[4:])
            if sps is None:
                return None
            self.count += 1
            return [perf_event(self.clock.step, sps, 0.0, {})]
        if not text.startswith("global_step="):
            return None
        raw = _pairs([part.strip() for part in text.split(",")])
        numbers = {k: _number(v) for k, v in (raw or {}).items()}
        if not numbers or any(v is None for v in numbers.values()):
            return None
        self.count += 1
        self.clock.see(numbers.pop("global_step") or 0)
        return [metric_event(self.clock.step, {k: v for k, v in numbers.items() if v is not None})]


class KeyValueLines(LineParser):
    """`[Step N] a=1 | b=2`, `step=N, a=1, b=2`, `a=1 b=2`: every token a `key=number` pair; the step
    from the prefix or a `step` pair (else the step so far). Makes a metric event, and a perf event
    with steps/s derived from the step's progress when the step moved."""

    name = "kv"
    label = "key=value lines"
    _PREFIX = re.compile(r"\s*\[\s*step\s+(\d+)\s*\]", re.IGNORECASE)
    _SEPARATORS = re.compile(r"[|,\s]+")

    def feed(self, line: str, t: float) -> list[Event] | None:
        if "=" not in line:
            return None
        prefix = self._PREFIX.match(line)
        body = line[prefix.end():] if prefix else line
        raw = _pairs([tok for tok in self._SEPARATORS.split(body) if tok])
        numbers = {k: _number(v) for k, v in (raw or {}).items()}
        if not numbers or any(v is None for v in numbers.values()):
            return None
        values = {k: v for k, v in numbers.items() if v is not None}
        step = int(prefix.group(1)) if prefix else values.pop("step", None)
        self.count += 1
        before = self.clock.step
        if step is not None:
            self.clock.see(step)
        events = [metric_event(self.clock.step, values)] if values else []
        return events + (self._derived_perf(t) if self.clock.step > before else [])


class RegexLines(LineParser):
    """Lines a user's regular expression matches (`search`): named groups are metrics (numbers), a group
    named `step` the step. A match whose groups are not numbers is not understood."""

    name = "regex"
    label = "regex lines"

    def __init__(self, clock: StepClock, pattern: str) -> None:
        super().__init__(clock)
        self.pattern = compile_regex(pattern)

    def feed(self, line: str, t: float) -> list[Event] | None:
        match = self.pattern.search(line)
        if match is None:
            return None
        numbers = {k: _number(v) for k, v in match.groupdict().items() if v is not None}
        if not numbers or any(v is None for v in numbers.values()):
            return None
        values = {k: v for k, v in numbers.items() if v is not None}
        self.count += 1
        before = self.clock.step
        if "step" in values:
            self.clock.see(values.pop("step"))
        events = [metric_event(self.clock.step, values)] if values else []
        return events + (self._derived_perf(t) if self.clock.step > before else [])


def compile_regex(pattern: str) -> re.Pattern[str]:
    """The compiled `regex:` pattern; UsageError if it does not compile or has no named group."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--parse regex:{pattern} does not compile ({exc}); expected a Python regular "
                         "expression with named groups, e.g. regex:loss=(?P<loss>\\S+)") from None
    if not compiled.groupindex:
        raise UsageError(f"--parse regex:{pattern} has no named group; expected groups like (?P<loss>...), "
                         "and (?P<step>...) for the step")
    return compiled


# Tried in this order under `auto`: each rejects a line that is not its own with a cheap test first.
PARSERS: dict[str, type[LineParser]] = {p.name: p for p in (TrainctlLines, Sb3Tables, CleanRLLines, KeyValueLines)}
PARSE_CHOICES = ("auto", *PARSERS, "regex:PATTERN")


class LineReader:
    """Feeds each line to its parsers (the first that claims it wins) and counts the outcome.

    `feed_lines(lines, t)` returns the events of lines that arrived together (one read of the trainer's
    output), `feed(line, t)` those of one line. Blank lines are ignored; a line no parser claims counts
    in `not_understood`."""

    def __init__(self, spec: str, parsers: list[LineParser], clock: StepClock) -> None:
        self.spec = spec
        self.parsers = parsers
        self.clock = clock
        self.not_understood = 0
        self._feeds: list[Callable[[str, float], list[Event] | None]] = [p.feed for p in parsers]
        # Tried first on every line (PARSERS' order), so a `[PERF]` line is always its own.
        self._perf = next((p for p in parsers if isinstance(p, TrainctlLines)), None)

    def feed(self, line: str, t: float | None = None) -> list[Event]:
        return self.feed_lines([line], t)

    def feed_lines(self, lines: list[str], t: float | None = None) -> list[Event]:
        """The events of `lines`, which arrived together at `t` (default now), in their order; their
        untagged `[PERF]` lines fold into one perf event, written before the first other event that
        follows them or last. A run of lines starting with `[PERF]` is read in one go when it can be."""
        t = time.time() if t is None else t
        perf = self._perf
        events: list[Event] = []
        # Runs of lines that start with [PERF] and runs of lines that do not, found in C.
        starts = list(map(str.startswith, lines, repeat(PERF_PREFIX))) if perf is not None else [False] * len(lines)
        start, count = 0, len(lines)
        while start < count:
            end = _next_index(starts, not starts[start], start, count)
            if perf is not None and starts[start] and perf.fold_same_keys(lines[start:end]):
                start = end
                continue
            for line in lines[start:end]:
                self._feed_one(line, t, events)
            start = end
        if perf is not None:
            events += perf.flush(t)
        return events

    def _feed_one(self, line: str, t: float, events: list[Event]) -> None:
        if not line or line.isspace():
            return
        for feed in self._feeds:
            made = feed(line, t)
            if made is not None:
                if made and self._perf is not None:
                    events += self._perf.flush(t)  # the perf lines folded so far come before this line's events
                events += made
                return
        self.not_understood += 1

    @property
    def malformed(self) -> int:
        return sum(p.malformed for p in self.parsers)

    def counts(self) -> dict[str, int]:
        """Units understood per parser name, for status.json (parsers that understood nothing left out)."""
        return {p.name: p.count for p in self.parsers if p.count}

    def summary(self) -> str:
        """`read as sb3 tables (412 blocks), 3 lines not understood`."""
        return read_summary(self.counts(), self.not_understood)


def _next_index(items: list[bool], value: bool, start: int, end: int) -> int:
    """The index of the first `value` in `items[start:end]`, else `end`."""
    try:
        return items.index(value, start, end)
    except ValueError:
        return end


def read_summary(counts: dict[str, int], not_understood: int) -> str:
    """How a wrapped run's output was read, from the counts status.json holds."""
    labels = {**{name: (p.label, p.unit) for name, p in PARSERS.items()}, "regex": (RegexLines.label, "lines")}
    read = [f"{labels.get(n, (n, 'lines'))[0]} ({c:,} {labels.get(n, (n, 'lines'))[1]})" for n, c in counts.items()]
    head = f"read as {', '.join(read)}" if read else "nothing read as events"
    return f"{head}, {not_understood:,} lines not understood"


def make_reader(spec: str, t0: float | None = None) -> LineReader:
    """The reader `--parse spec` asks for; UsageError for an unknown name or a bad regex."""
    clock = StepClock(t0)
    if spec.startswith("regex:"):
        return LineReader(spec, [RegexLines(clock, spec[len("regex:"):])], clock)
    if spec == "auto":
        return LineReader(spec, [cls(clock) for cls in PARSERS.values()], clock)
    if spec in PARSERS:
        return LineReader(spec, [PARSERS[spec](clock)], clock)
    raise UsageError(f"--parse {spec!r} is not a known format; expected one of {', '.join(PARSE_CHOICES)}")
