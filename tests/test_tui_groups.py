"""Sweeps and benches in the TUI, on group folders the tests make in the formats `trainctl sweep` and
`trainctl bench` write (tui_fixtures.fabricate_bench / fabricate_sweep, through engine.sweep and
engine.abtest): the groups list on `g`, a bench's verdict and intervals, its runs opened with Enter, a
sweep's table sorted by keys, both updated while their runs move, `trainctl watch GROUP`, and snapshots
at 80x24 and 120x40."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable
from tui_fixtures import (
    SNAPSHOT_SIZES,
    T0,
    fabricate_bench,
    fabricate_run,
    fabricate_sweep,
    fabricate_world_model_sweep,
    screen_text,
    wait_for_text,
    wait_until,
)

from cli import main as cli
from engine.sweep import latest_run
from tui.app import TrainctlApp
from tui.groups import GroupReader, list_groups, read_group
from tui.screens.bench import BenchScreen, banner, bench_rows
from tui.screens.run import RunScreen
from tui.screens.sweep import SweepScreen

CLOCK = lambda: T0 + 86400  # noqa: E731 - a fixed "now" one day after the fabricated runs


def make_app(runs_dir: Path, **kwargs: Any) -> TrainctlApp:
    return TrainctlApp(runs_dir, clock=CLOCK, poll_s=0.1, **kwargs)


def table_rows(app: TrainctlApp) -> list[list[str]]:
    """The cells of the current screen's table, as plain text, row by row."""
    table: DataTable[Any] = app.screen.query_one(DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


# -- the model: reading group folders ------------------------------------------------------------------
@pytest.mark.parametrize(("win_shift", "verdict"), [(0.0, "PASS"), (-0.2, "FAIL"), (-0.04, "UNDECIDED")])
def test_bench_banner_says_the_verdict(tmp_path: Path, win_shift: float, verdict: str) -> None:
    fabricate_bench(tmp_path, 4, win_shift=win_shift)
    text, css = banner(read_group(tmp_path))
    assert text.startswith(f"[b]VERDICT: {verdict}[/b] · 4 paired seeds · 8 finished") and css == verdict.lower()
    assert "rule: throughput >= x1.10 and win-rate change >= -4 points, 95 % intervals" in text


def test_bench_rows_hold_the_intervals_phases_and_seeds(tmp_path: Path) -> None:
    fabricate_bench(tmp_path, 3, win_shift=-0.2)
    rows = {str(cells[0]): [str(c) for c in cells[1:]] for _, cells in bench_rows(read_group(tmp_path))}
    assert re.fullmatch(r"x1\.\d\d \[1\.\d\d,1\.\d\d\]", rows["steps/s"][2]) and rows["steps/s"][3] == ">=x1.10 PASS"
    assert rows["win %"][3] == ">=-4 FAIL" and rows["win %"][2].startswith("-20.")
    assert rows["quality"][2] == "eval/win_rate"  # which win rate the fabricated runs report
    assert rows["train_bwd"][2].startswith("x0.6")  # the candidate's phases take 1/1.5 of the time
    assert rows["seed 2"][0].endswith(" · 87.4") and rows["seed 2"][2].startswith("x1.5")
    assert "SPRT LLR" not in rows  # no sequential test without --until-decided


def test_a_bench_with_too_few_pairs_has_no_verdict_yet(tmp_path: Path) -> None:
    fabricate_bench(tmp_path, 1, seeds=3)
    text, css = banner(read_group(tmp_path))
    assert "VERDICT: none yet (fewer than 2 paired seeds finished)" in text and css == "none"


def test_reader_reads_again_only_when_the_folder_changed(tmp_path: Path) -> None:
    group = fabricate_sweep(tmp_path)
    reader = GroupReader(tmp_path)
    assert reader.read() is not None and reader.read() is None
    latest_run(tmp_path, group.trials[0]).write_status(state="failed")  # type: ignore[union-attr]
    view = reader.read()
    assert view is not None and view.rows[0].figures.state == "failed"  # type: ignore[union-attr]


def test_an_unreadable_group_file_is_shown_not_raised(tmp_path: Path) -> None:
    (tmp_path / "group.json").write_text('{"kind": ')
    view = read_group(tmp_path)
    assert view.error is not None and "not a valid group file" in view.error


def test_list_groups_finds_benches_and_sweeps(tmp_path: Path) -> None:
    fabricate_bench(tmp_path / "b", 2)
    fabricate_sweep(tmp_path / "s", running=True)
    fabricate_run(tmp_path, "20260101T000000_ppo_beastybar_balance")  # a run of no group
    found = {g.path.name: (g.kind, g.trials, g.finished, g.active) for g in list_groups(tmp_path)}
    assert found == {"b": ("bench", 4, 4, 0), "s": ("sweep", 4, 3, 1)}


# -- Pilot: keys pressed as a person would -------------------------------------------------------------
async def test_g_lists_the_groups_and_enter_opens_a_bench_and_its_runs(tmp_path: Path) -> None:
    fabricate_bench(tmp_path / "bench-x", 4)
    fabricate_sweep(tmp_path / "sweep-x")
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.press("g")
        shown = await wait_for_text(app, pilot, "bench-x bench dqn-per/skirmish 8/8")
        assert re.search(r"sweep-x +sweep +ppo/beastybar +4/4", shown)
        await pilot.press("enter")
        shown = await wait_for_text(app, pilot, "VERDICT: PASS · 4 paired seeds")
        assert isinstance(app.screen, BenchScreen) and "steps/s" in shown and ">=x1.10 PASS" in shown
        await pilot.press("enter")  # on the first row: no run there
        await wait_for_text(app, pilot, "move to a seed's baseline or")  # the toast wraps there
        await pilot.press("ctrl+end", "up", "right", "right", "enter")  # seed 2's candidate
        await wait_until(app, pilot, lambda _: isinstance(app.screen, RunScreen), "the run screen")
        shown = await wait_for_text(app, pilot, "_s2-candidate-a1 · finished · step 81,920")
        assert "steps/s" in shown and "[PERF]" in shown
        await pilot.press("2")
        await wait_for_text(app, pilot, "eval/win_rate")
        await pilot.press("escape")
        await wait_until(app, pilot, lambda _: isinstance(app.screen, BenchScreen), "back on the bench")
        await pilot.press("escape", "down", "enter")
        await wait_until(app, pilot, lambda _: isinstance(app.screen, SweepScreen), "the sweep screen")


async def test_a_running_bench_updates_until_decided(tmp_path: Path) -> None:
    group = fabricate_bench(tmp_path, 3, until_decided=True, running=True, seeds=20)
    app = make_app(tmp_path, open_group=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        shown = await wait_for_text(app, pilot, "VERDICT: PASS · 3 paired seeds · 6 finished, 1 running, 1 not started")
        assert "stop: SPRT, alpha = beta = 0.05, H1 at x1.15 / -2 points, at most 20 seeds" in shown
        rows = {r[0]: r[1:] for r in table_rows(app)}
        # Seed 3 runs the candidate first (ABBA order): it is running, the baseline not started.
        assert rows["throughput"][3] == "H1 pass" and rows["seed 3"][:2] == ["not started", "running"]
        # The pair's runs end: the screen reads them without a key pressed.
        latest_run(tmp_path, group.trials[-2]).write_status(state="finished")  # type: ignore[union-attr]
        fabricate_run(tmp_path, "20260101T011000_s3-baseline-a1", algo="dqn-per", env="skirmish", base_sps=5000.0)
        await wait_for_text(app, pilot, "VERDICT: PASS · 4 paired seeds · 8 finished")
        assert {r[0]: r[1:] for r in table_rows(app)}["seed 3"][2] == "x1.47 · +0.2"


async def test_sweep_sorts_by_any_column_and_opens_a_trial(tmp_path: Path) -> None:
    group = fabricate_sweep(tmp_path, running=True)
    app = make_app(tmp_path, open_group=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        shown = await wait_for_text(app, pilot, "sorted by TRIAL (lowest first)")
        assert "3 finished, 1 running · best by win" in shown
        assert [r[0] for r in table_rows(app)] == ["t01", "t02", "t03", "t04"]
        assert table_rows(app)[2][6] == "* best win"
        await pilot.press("o", "o", "o")
        await wait_for_text(app, pilot, "sorted by STEPS/S (highest first)")
        assert [r[0] for r in table_rows(app)] == ["t04", "t02", "t03", "t01"]
        await pilot.press("o")
        await wait_for_text(app, pilot, "sorted by WIN % (highest first)")
        assert [r[0] for r in table_rows(app)] == ["t03", "t01", "t04", "t02"]
        await pilot.press("r")
        await wait_for_text(app, pilot, "sorted by WIN % (lowest first)")
        assert [r[0] for r in table_rows(app)] == ["t02", "t04", "t01", "t03"]
        # The running trial ends: its row follows, the order by win rate holds.
        latest_run(tmp_path, group.trials[3]).write_status(state="finished")  # type: ignore[union-attr]
        await wait_for_text(app, pilot, "4 finished · best by win")
        await pilot.press("up", "enter")  # the cursor stayed on t01 through the sorts: up is t04
        shown = await wait_for_text(app, pilot, "_t04-a1 · finished")
        assert isinstance(app.screen, RunScreen)
        await pilot.press("escape", "escape")
        await wait_until(app, pilot, lambda _: "t04-a1" in screen_text(app) and "g Groups" in screen_text(app),
                         "the runs screen on the sweep's folder")


async def test_a_world_model_sweep_shows_samples_validation_loss_and_wm_bench(tmp_path: Path) -> None:
    fabricate_world_model_sweep(tmp_path)
    app = make_app(tmp_path, open_group=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(app, pilot, "3 trials of 4,096 samples")
        shown = await wait_for_text(app, pilot, "best by val · sorted by TRIAL (lowest first)")
        assert "SAMPLES/S" in shown and "VAL LOSS" in shown and "WM-BENCH" in shown and "STEPS/S" not in shown
        assert table_rows(app)[1][3:7] == ["12,000", "0.4500", "GO", "* best val"]
        await pilot.press("o", "o", "o", "o")
        await wait_for_text(app, pilot, "sorted by VAL LOSS (lowest first)")
        assert [r[0] for r in table_rows(app)] == ["t02", "t01", "t03"]


async def test_the_groups_list_says_when_there_are_none(tmp_path: Path) -> None:
    fabricate_run(tmp_path, "20260101T000000_ppo_beastybar_balance")
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("g")
        await wait_for_text(app, pilot, "no sweep or bench in")


# -- `trainctl watch GROUP` ----------------------------------------------------------------------------
def test_watch_a_group_without_a_terminal_prints_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fabricate_bench(tmp_path / "b", 3)
    assert cli.main(["watch", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().out.startswith("VERDICT: PASS\nbench b: dqn-per on skirmish")


def test_watch_a_group_on_a_terminal_opens_its_screen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tui.app

    fabricate_sweep(tmp_path / "s")
    opened: list[tuple[Path, Path | None]] = []
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(tui.app, "run_app", lambda runs_dir, focus_run=None, launch_default=False, open_group=None:
                        opened.append((runs_dir, open_group)) or 0)
    assert cli.main(["watch", str(tmp_path / "s")]) == 0
    assert cli.main(["watch", str(tmp_path)]) == 0  # a runs folder holding groups: the runs screen
    assert opened == [(tmp_path / "s", tmp_path / "s"), (tmp_path, None)]


def test_watch_a_broken_group_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "group.json").write_text("[")
    assert cli.main(["watch", str(tmp_path)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("trainctl: error:") and "not a valid group file" in err and err.count("\n") == 1


# -- snapshots ------------------------------------------------------------------------------------------
def _settled(*texts: str) -> Any:
    """Wait for each of `texts`: the banner, then cells of the table (its column widths are laid out after
    its rows are added, so a banner alone can be drawn above a table not yet sized)."""
    async def run_before(pilot: Any) -> None:
        for text in texts:
            await wait_for_text(pilot.app, pilot, text)

    return run_before


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_bench_snapshot(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        size: tuple[int, int]) -> None:
    monkeypatch.chdir(tmp_path)
    fabricate_bench(Path("bench"), 4, until_decided=True, running=True, seeds=20)
    app = make_app(Path("bench"), open_group=Path("bench"))
    assert snap_compare(app, terminal_size=size, run_before=_settled("VERDICT: PASS", "steps/s", "seed 0"))


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_sweep_snapshot(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        size: tuple[int, int]) -> None:
    monkeypatch.chdir(tmp_path)
    fabricate_sweep(Path("sweep"), running=True)
    app = make_app(Path("sweep"), open_group=Path("sweep"))
    assert snap_compare(app, terminal_size=size, run_before=_settled("sorted by TRIAL", "t04      running"))
