"""What every test runs under.

The `slow` marker is kept honest: `make test-fast` runs `pytest -m "not slow"` for the edit loop, so the
marker must be on every test that trains (an SB3 `learn()`, directly or through a trainer) or starts a
subprocess, and on nothing else. While a test that is not marked slow runs (set-up, call, tear-down, so
its fixtures count too):
- `subprocess.Popen`'s child start fails the test, which covers `subprocess.run`, asyncio's subprocesses
  and the launcher's runs;
- SB3's `learn()` set-up fails it, if SB3 has been imported by then (the test modules that train import
  it when collected; importing it here would cost every TUI-only run the seconds torch takes to load);
- `os.fsync` does nothing.
The failure is `pytest.fail`, which `except Exception` in the code under test does not swallow.

And the suite's own memory: what collection imported is frozen out of garbage collection, and after each
test a closed Pilot session's widgets are let go (Textual's StylesCache leak).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest


def _refusal(item: pytest.Item, what: str) -> Callable[..., Any]:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        pytest.fail(f"{item.nodeid} {what} but is not marked slow (@pytest.mark.slow)", pytrace=False)

    return refuse


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if item.get_closest_marker("slow") is not None:
        return (yield)
    with pytest.MonkeyPatch.context() as patch:
        # Files are still written to temporary names and renamed (what keeps a run readable when its writer
        # dies), but not flushed to the disk: no test can cut the power, and each fsync here costs ~5 ms of
        # waiting (a fabricated bench folder of 40 runs waits ~0.6 s).
        patch.setattr(os, "fsync", lambda _fd: None)
        # Where every Popen starts its child (POSIX and Windows alike).
        patch.setattr(subprocess.Popen, "_execute_child", _refusal(item, "starts a subprocess"))
        base_class = sys.modules.get("stable_baselines3.common.base_class")
        if base_class is not None:
            # Every SB3 learn() (on- and off-policy, MaskablePPO, our PerDQN) begins with this call.
            patch.setattr(base_class.BaseAlgorithm, "_setup_learn", _refusal(item, "trains (SB3 learn())"))
        return (yield)


def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Let the widgets of a finished Pilot session go. Textual keeps up to 1,024 widgets' style caches (with
    their rendered lines) in an lru_cache on a StylesCache method (Textualize/textual#6665; the app empties
    it past a size, tui/style_cache.py), so ~80 a session stayed alive after the app closed: after a dozen
    sessions an xdist worker carried ~250k dead objects through every garbage collection of every later
    test (~15 % of a session's CPU). Emptied here unconditionally, without importing Textual."""
    styles_cache = sys.modules.get("textual._styles_cache")
    if styles_cache is not None:
        styles_cache.StylesCache.get_inner_outer.cache_clear()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Leave what collection built (every test module and what it imports: torch, SB3, Textual, ~1M
    objects) out of garbage collection: it lives as long as the process, and each full collection of a
    test walked all of it, which showed as slow allocations anywhere (a Pilot session's key presses most)."""
    gc.collect()
    gc.freeze()
    _sample_pilot_idleness_finer()


def _sample_pilot_idleness_finer() -> None:
    """If the Pilot tests were collected: Pilot's press() waits until the app looks idle, sampling its CPU
    over sleeps of 20 ms (~40 ms a key, ~11 s over the fast suite's Pilot tests). Every test then waits for
    what it asserts on (tests/tui_fixtures.py), so the idle wait only needs to let the key's own frame
    finish: 5 ms samples with the same idle rule (under 5 % CPU over a sample). Set here, not where the
    fixtures are imported, so that bench/bench_tui.py keeps Textual's own waits."""
    idle: Any = sys.modules.get("textual._wait")
    if idle is not None:
        idle.SLEEP_GRANULARITY = 0.005
        idle.SLEEP_IDLE = idle.SLEEP_GRANULARITY / 20
