"""The registry of trainers: algorithm name -> the module that trains it.

A trainer module exposes
    train(ctx: engine.context.RunContext, resume: dict | None) -> str
which trains until `ctx.total_steps` env steps or `ctx.stop`, saves a final checkpoint, and returns
the final state ("finished" or "stopped"); `resume` is a loaded checkpoint to continue from. It may
also expose `check_resume(state: dict, cfg: ResolvedConfig | None) -> None` raising UsageError when a
checkpoint does not fit (given `cfg`: when it does not fit that run's game and networks either).
A new algorithm is a module here plus a line in `TRAINERS`; the CLI and the TUI need no change.
"""

from __future__ import annotations

import importlib
from importlib.util import find_spec
from types import ModuleType

from engine.errors import UsageError

TRAINERS: dict[str, str] = {
    "ppo": "engine.ppo",
    "dqn-per": "engine.dqn",
    "worldmodel": "engine.worldmodel",
}

# The games each trainer's env wiring and statistics support (checked when a config is resolved).
TRAINER_GAMES: dict[str, tuple[str, ...]] = {
    "ppo": ("beastybar", "duel", "soccer"),
    "dqn-per": ("skirmish",),
    "worldmodel": ("duel",),
}


def check_available(algo: str) -> None:
    """UsageError unless `algo` is registered and its module is present, found without importing it (a
    trainer imports torch: seconds that a launcher form or a CLI check should not spend)."""
    if algo not in TRAINERS:
        raise UsageError(f"unknown algo {algo!r}; expected one of: {', '.join(TRAINERS)}")
    if find_spec(TRAINERS[algo]) is None:
        raise UsageError(f"algo {algo!r} is not available in this build yet")


def trainer_module(algo: str) -> ModuleType:
    if algo not in TRAINERS:
        raise UsageError(f"unknown algo {algo!r}; expected one of: {', '.join(TRAINERS)}")
    try:
        return importlib.import_module(TRAINERS[algo])
    except ModuleNotFoundError as exc:
        if exc.name == TRAINERS[algo]:
            raise UsageError(f"algo {algo!r} is not available in this build yet") from None
        raise
