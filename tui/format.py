"""Short human forms of the numbers and times the TUI shows (plain strings, no Textual).

Column widths in the runs list depend on these staying short: `compact` is at most 6 characters for
any magnitude below 10^15, `age` at most 4.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RUN_ID = re.compile(r"^(\d{8}T\d{6})_(.+)$")


def compact(value: float | None, digits: int = 1) -> str:
    """5123 -> '5.1k', 81920 -> '81.9k', 2e6 -> '2.0M'; None -> '-'."""
    if value is None:
        return "-"
    magnitude = abs(value)
    for suffix, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if magnitude >= size:
            return f"{value / size:.{digits}f}{suffix}"
    return f"{value:.0f}" if magnitude >= 100 or value == int(value) else f"{value:.{digits}f}"


def number(value: float | None, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def age(seconds: float | None) -> str:
    """Seconds -> '42s', '7m', '3h', '12d'; None -> '-'."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s"


def run_label(run_id: str, algo: str, env: str, profile: str, width: int = 14) -> str:
    """What the runs list calls a run: its start time ('01-31 14:05:09') when the id is the default
    `<time>_<algo>_<env>_<profile>`, else the name the user gave it, cut to `width`."""
    match = _RUN_ID.match(run_id)
    if match is None:
        return run_id[:width]
    stamp, rest = match.groups()
    if rest != f"{algo}_{env}_{profile}":
        return rest[:width]
    when = datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return when.strftime("%m-%d %H:%M:%S")[:width]


def mebibytes(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def short_name(spec: str, width: int = 28) -> str:
    """A player spec cut to `width` characters, keeping its kind and its end (a checkpoint's file name):
    'ckpt:runs/x/best/step_15000000.pt' -> 'ckpt:…best/step_15000000.pt'."""
    if len(spec) <= width:
        return spec
    kind, sep, _ = spec.partition(":")
    head = f"{kind}:" if sep and len(kind) < 5 else ""
    return f"{head}…{spec[-(width - len(head) - 1):]}"
