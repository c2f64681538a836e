"""SVG snapshots of the main screens at 80x24 and 120x40 (pytest-textual-snapshot).

Deterministic: fabricated runs with fixed times, a fixed clock for ages, the runs folder given by a
relative path from a temporary working directory. Update with `pytest --snapshot-update` after a
deliberate change of the screens, and look at the new SVGs before committing them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input
from tui_fixtures import SNAPSHOT_SIZES, T0, settle, standard_runs

from tui.app import TrainctlApp


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TrainctlApp:
    monkeypatch.chdir(tmp_path)
    standard_runs(Path("runs"))
    return TrainctlApp(Path("runs"), clock=lambda: T0 + 86400, poll_s=0.1)


def _after(*keys: str) -> Any:
    async def run_before(pilot: Any) -> None:
        await settle(pilot.app, pilot)  # the torn-line note needs a few polls to appear
        for key in keys:
            await pilot.press(key)
        await settle(pilot.app, pilot, polls=1)

    return run_before


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_runs_and_monitor(snap_compare: Any, app: TrainctlApp, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=_after())


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_metrics_panel(snap_compare: Any, app: TrainctlApp, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=_after("up", "2"))


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_compare(snap_compare: Any, app: TrainctlApp, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=_after("up", "space", "up", "space", "c"))


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_launcher_with_an_invalid_override(snap_compare: Any, app: TrainctlApp, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await _after("n")(pilot)
        # Typing it key by key is test_tui_app's job; here only the screen with the error matters.
        pilot.app.screen.query_one("#overrides", Input).value = "ppo.gamma=2"
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
