"""Saved round robins: where `trainctl arena` puts its result, and how the TUI's arena screen reads it.

An arena folder holds `arena.txt` (the printed tables) and `arena.json` (engine.arena.Arena.to_json:
`format` "trainctl.arena/1", players, games, seed, anchor, reference, ratings, matrix, pairings,
verdicts), each written atomically, the JSON last, so a folder with an arena.json is complete. Without
`--out`, `trainctl arena` saves into `<runs-dir>/arenas/<UTC time>/` (a folder without run.json, so run
listings skip it), where the TUI finds it. This module reads and writes those files and nothing else;
it imports no numpy, scipy or torch, so the TUI can read a result without the engine's game code.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.runstore import atomic_write_bytes

ARENA_JSON = "arena.json"
ARENA_TEXT = "arena.txt"
ARENAS_FOLDER = "arenas"
FORMAT = "trainctl.arena/1"
REQUIRED = ("players", "games", "seed", "anchor", "ratings", "matrix", "verdicts")


def default_folder(runs_dir: Path, now: float | None = None) -> Path:
    """`<runs_dir>/arenas/<UTC time>`, a new name for each second (a suffix when taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    folder = runs_dir / ARENAS_FOLDER / stamp
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = runs_dir / ARENAS_FOLDER / f"{stamp}-{suffix}"
    return folder


def save_arena(folder: Path, text: str, figures: dict[str, Any]) -> None:
    """The tables and the figures into `folder` (made if needed): text first, JSON last, each atomic."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / ARENA_TEXT, (text + "\n").encode())
    atomic_write_bytes(folder / ARENA_JSON, json.dumps(figures, indent=1).encode())


def saved_arenas(runs_dir: Path) -> list[Path]:
    """The arena folders under `<runs_dir>/arenas` that hold an arena.json, oldest first (by name)."""
    root = runs_dir / ARENAS_FOLDER
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / ARENA_JSON).is_file())


def read_arena(path: Path) -> dict[str, Any]:
    """The figures of an arena folder (or its arena.json); UsageError of one line when there is none or
    it is not a trainctl arena result."""
    file = path / ARENA_JSON if path.is_dir() else path
    if not file.is_file():
        raise UsageError(f"{path} holds no {ARENA_JSON}; expected a folder saved by `trainctl arena`")
    try:
        figures = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{file} cannot be read as JSON ({type(exc).__name__})") from None
    if not isinstance(figures, dict) or figures.get("format") != FORMAT or any(k not in figures for k in REQUIRED):
        raise UsageError(f"{file} is not a trainctl arena result (format {FORMAT})")
    return figures
