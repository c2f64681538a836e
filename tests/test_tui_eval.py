"""The eval panel (tab 6) on fabricated `eval` events: the latest table with its intervals, each
opponent's trend over the evaluations, the best evaluation marked; at 80x24 and 120x40 (snapshots)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tui_fixtures import SNAPSHOT_SIZES, T0, fabricate_run, panel_snapshot, settle, wait_for_text

from engine.evaluate import wilson_interval
from tui.app import TrainctlApp
from tui.widgets.eval_panel import event_score, trend

RUN = "20260101T000000_ppo_beastybar_balance"
# (step, wins of 400 vs random, wins of 400 vs heuristic): the second evaluation is the best.
EVALS = ((8192, 300, 180), (16384, 380, 300), (24576, 370, 250))


def eval_event(step: int, wins: tuple[int, ...]) -> dict[str, Any]:
    rows = []
    for opponent, won in zip(("random", "heuristic"), wins, strict=True):
        low, high = wilson_interval(won, 400)
        rows.append({"opponent": opponent, "games": 400, "wins": won, "draws": 10, "losses": 390 - won,
                     "win_rate": won / 400, "win_low": low, "win_high": high, "margin": 2.5, "turns": 24.0,
                     "illegal_rate": 0.0125, "stopped": None})
    return {"t": T0 + step / 1000, "step": step, "kind": "eval", "checkpoint": f"step_{step}.pt", "games": 400,
            "seed": 10_000, "rows": rows}


def with_evals(runs_dir: Path, evals: tuple[tuple[int, int, int], ...] = EVALS) -> None:
    run = fabricate_run(runs_dir, RUN, windows=6)
    with open(run.events_path, "a", encoding="utf-8") as f:
        for step, *wins in evals:
            f.write(json.dumps(eval_event(step, tuple(wins))) + "\n")


def flat(text: str) -> str:
    return " ".join(text.split())


def test_trend_and_event_score() -> None:
    assert trend([0.0, 0.5, 1.0]) == "▁▅█"
    assert event_score("beastybar", eval_event(1, (300, 100))) == pytest.approx(0.5)
    assert event_score("beastybar", {"rows": [{"opponent": "x", "games": 0, "win_rate": None}]}) is None
    # Soccer's best/ is chosen by the mean goal difference, and so is its best evaluation here.
    soccer = {"rows": [{"opponent": "chaser", "games": 10, "win_rate": 0.1, "margin": 1.5},
                       {"opponent": "goalie", "games": 10, "win_rate": 0.3, "margin": -0.5}]}
    assert event_score("soccer", soccer) == pytest.approx(0.5)


async def test_the_latest_table_its_intervals_the_trends_and_the_best_are_shown(tmp_path: Path) -> None:
    with_evals(tmp_path)
    app = TrainctlApp(tmp_path, clock=lambda: T0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("6")
        shown = await wait_for_text(app, pilot, "eval at step 24,576")
        low, high = wilson_interval(250, 400)
        assert f"heuristic 400 250-10-140 62.5 {100 * low:.1f}-{100 * high:.1f} +2.5 24.0 1.2 %" in flat(shown)
        assert "★ best: step 16,384, mean win rate 85.0 % (step_16384.pt)" in shown
        assert f"random {trend([0.75, 0.95, 0.925])} 92.5 %" in flat(shown)
        assert trend([0.75, 0.95, 0.925]) == "▆█▇"
        assert "★ best so far" not in shown


async def test_the_latest_evaluation_marked_when_it_is_the_best(tmp_path: Path) -> None:
    with_evals(tmp_path, EVALS[:2])
    app = TrainctlApp(tmp_path, clock=lambda: T0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("6")
        shown = await wait_for_text(app, pilot, "eval at step 16,384")
        assert "★ best so far" in shown and "★ best:" not in shown


async def test_a_run_without_evaluations_says_how_to_get_them(tmp_path: Path) -> None:
    fabricate_run(tmp_path, RUN, windows=3)
    app = TrainctlApp(tmp_path, clock=lambda: T0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("6")
        await wait_for_text(app, pilot, "no evaluations yet")


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_eval_panel_snapshot(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             size: tuple[int, int]) -> None:
    monkeypatch.chdir(tmp_path)
    with_evals(Path("runs"))
    assert panel_snapshot(snap_compare, Path("runs"), size, "6", "eval at step 24,576")
