"""The reward panel (tab 7) on fabricated `reward/<part>` metric events: offered only for runs that log
parts, the newest window's values and shares, the shares over steps stacked, a plot of each part; at
80x24 and 120x40 (snapshots)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from tui_fixtures import (
    SNAPSHOT_SIZES,
    T0,
    fabricate_run,
    panel_snapshot,
    screen_text,
    settle,
    wait_for_text,
    wait_until,
)

from engine.events import metric_event
from tui.app import TrainctlApp
from tui.widgets.reward_panel import part_style, reward_part_keys, shares, stacked_cells

RUN = "20260101T000000_ppo_soccer_balance"
OTHER = "20260101T010000_ppo_beastybar_balance"
PARTS = ("goal", "touch", "ball_to_goal", "ball_distance")
WINDOWS = 12


def parts_at(i: int) -> dict[str, float]:
    """Window i's parts: shaping (distance, touches) dominates early, goals late."""
    return {"reward/goal": round(0.004 * i / WINDOWS, 6), "reward/touch": 0.001,
            "reward/ball_to_goal": round(0.0005 * (1 + math.sin(i)), 6),
            "reward/ball_distance": round(-0.003 * (1 - i / (2 * WINDOWS)), 6)}


def with_parts(runs_dir: Path) -> None:
    run = fabricate_run(runs_dir, RUN, env="soccer", windows=WINDOWS)
    with open(run.events_path, "a", encoding="utf-8") as f:
        for i in range(WINDOWS):
            event = metric_event(4096 * (i + 1), {**parts_at(i), "rollout/win_rate": 0.05 * i})
            f.write(json.dumps({**event, "t": T0 + 10 * i + 6}) + "\n")


def flat(text: str) -> str:
    return " ".join(text.split())


def test_parts_shares_and_the_stacked_cells() -> None:
    assert reward_part_keys(["rollout/ep_rew_mean", "reward/goal", "reward/mean", "reward/touch"]) == \
        ["reward/goal", "reward/touch"]
    assert shares([0.3, -0.1, 0.0]) == pytest.approx([0.75, 0.25, 0.0])
    assert shares([0.0, 0.0]) == [0.0, 0.0]
    # Two columns over 4 rows: all part 1; then part 0 holds the bottom half, part 1 the top half.
    # A column whose parts are all zero is blank.
    assert stacked_cells([[0.0, 1.0], [0.5, 0.5], [0.0, 0.0]], 4) == [
        [1, 1, None], [1, 1, None], [1, 0, None], [1, 0, None]]


async def test_the_newest_window_its_shares_and_the_history_are_shown(tmp_path: Path) -> None:
    with_parts(tmp_path)
    app = TrainctlApp(tmp_path, clock=lambda: T0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("7")
        shown = await wait_for_text(app, pilot, "reward parts at step 49,152")
        latest = parts_at(WINDOWS - 1)
        total = sum(latest.values())
        assert f"sum {total:+.3g}" in shown
        for i, (key, share) in enumerate(zip(latest, shares(list(latest.values())), strict=True)):
            glyph, name, value, *_, percent = next(line for line in shown.splitlines()
                                                   if f" {key.removeprefix('reward/')} " in line).split()
            assert (glyph, name, value, percent) == (
                part_style(i)[0], key.removeprefix("reward/"), f"{latest[key]:+.3g}", f"{100 * share:.0f}")
        assert "7 Rewards" in shown
        chart = shown.split("shares over steps", 1)[1].splitlines()
        # Early on the distance penalty (░, the 4th part) fills the top of the column, late the goals (█,
        # the 1st) fill its bottom: the chart's first and last columns say so.
        top, bottom = next(line for line in chart if line.strip().startswith("100%")), \
            next(line for line in chart if line.strip().startswith("0%"))
        assert top.split("100%")[1].strip()[0] == "░" and bottom.split("0%")[1].strip()[-1] == "█"
        steps = next(line for line in chart if "steps" in line)
        assert steps.split() == ["4.1k", "49.2k", "steps"]


async def test_the_tab_is_offered_only_for_runs_with_parts(tmp_path: Path) -> None:
    with_parts(tmp_path)
    fabricate_run(tmp_path, OTHER, windows=3, created=T0 + 3600)
    app = TrainctlApp(tmp_path, clock=lambda: T0 + 7200, poll_s=0.1)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(app, pilot)  # the newest run (Beasty Bar, no parts) is selected
        shown = await wait_for_text(app, pilot, OTHER)
        assert "7 Rewards" not in shown
        await pilot.press("7")
        await pilot.pause()
        assert [n.message for n in app._notifications] == [
            "this run logs no reward parts (a soccer run does with --set log.reward_debug=true)"]
        assert "reward parts at step" not in screen_text(app)
        await pilot.press("up")  # the soccer run
        await wait_until(app, pilot, lambda text: "7 Rewards" in text, "the rewards tab")
        await pilot.press("7")
        await wait_for_text(app, pilot, "reward parts at step")
        await pilot.press("down")  # back to a run without parts: its tab goes, another panel shows
        shown = await wait_until(app, pilot, lambda text: "7 Rewards" not in text and OTHER in text, "no tab")
        assert "reward parts at step" not in shown


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_reward_panel_snapshot(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               size: tuple[int, int]) -> None:
    monkeypatch.chdir(tmp_path)
    with_parts(Path("runs"))
    assert panel_snapshot(snap_compare, Path("runs"), size, "7", "reward parts at step 49,152")
