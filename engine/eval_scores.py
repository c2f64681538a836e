"""How an evaluation table scores: the one number per table that best/ keeps the highest of, by game.

Pure Python (no numpy, torch or SB3), so that the TUI ranks a run's evaluations exactly as its trainer
did. A table is an `eval` event's rows (docs/events.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Rows = Sequence[Mapping[str, Any]]


def suite_score(rows: Rows) -> float:
    """The mean win rate over a suite's rows (0 for none)."""
    return sum(float(row["win_rate"]) for row in rows) / len(rows) if rows else 0.0


def suite_margin(rows: Rows) -> float:
    """The mean goal difference over a suite's rows (each row's mean weighs alike; 0 for none)."""
    return sum(float(row["margin"]) for row in rows) / len(rows) if rows else 0.0


@dataclass(frozen=True)
class TableScore:
    """A game's table score: its name in logs and panels, how it is computed, and whether it is a rate."""

    name: str
    of: Callable[[Rows], float]
    rate: bool


WIN_RATE = TableScore("mean win rate", suite_score, rate=True)
TABLE_SCORES: dict[str, TableScore] = {"soccer": TableScore("mean goal difference", suite_margin, rate=False)}


def table_score(game: str) -> TableScore:
    """The score `game`'s evaluations are ranked by (the mean win rate unless the game says otherwise)."""
    return TABLE_SCORES.get(game, WIN_RATE)
