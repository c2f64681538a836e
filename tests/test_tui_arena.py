"""The arena screen on round robins saved by `trainctl arena` itself: opened with A from the runs
screen, the ratings, matrix and verdicts shown, [ and ] between saved arenas, a broken arena.json as
one line; `trainctl arena --show`; snapshots at 80x24 and 120x40."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tui_fixtures import SNAPSHOT_SIZES, T0, screen_text, settle, standard_runs, wait_for_text, wait_until

from cli.main import main
from engine.arena_file import ARENAS_FOLDER, read_arena, saved_arenas
from tui.app import TrainctlApp
from tui.format import short_name
from tui.screens.arena import ArenaScreen
from tui.screens.runs import RunsScreen
from tui.standalone import ScreenApp

PLAYERS = ("heuristic", "random", "aggressive", "defensive")


def save_arena(runs: Path, name: str, players: tuple[str, ...] = PLAYERS, games: int = 20) -> Path:
    """A round robin played and saved by the CLI into runs/arenas/<name>."""
    out = runs / ARENAS_FOLDER / name
    assert main(["arena", *players, "--games", str(games), "--reference", "random", "--seed", "3",
                 "--out", str(out), "--runs-dir", str(runs)]) == 0
    return out


@pytest.fixture(scope="module")
def arenas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs folder with two saved arenas: an older one of two players, a newer one of four."""
    runs = tmp_path_factory.mktemp("arena") / "runs"
    standard_runs(runs)
    save_arena(runs, "20260101-000000", ("heuristic", "random"), games=10)
    save_arena(runs, "20260102-000000")
    return runs


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_cli_saves_a_complete_arena_json_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arena", "heuristic", "random", "--games", "6", "--runs-dir", str(tmp_path / "runs")]) == 0
    [folder] = saved_arenas(tmp_path / "runs")
    figures = read_arena(folder)
    assert figures["players"] == ["heuristic", "random"] and figures["reference"] is None
    assert figures["matrix"][0][0] is None and figures["matrix"][0][1] + figures["matrix"][1][0] <= 1.0
    assert f"trainctl arena --show {folder}" in capsys.readouterr().out
    assert not list(folder.glob(".*.tmp"))  # atomic writes leave no temporary file behind


async def test_a_opens_the_newest_arena_with_ratings_matrix_and_verdicts(arenas: Path) -> None:
    app = TrainctlApp(arenas, clock=lambda: T0 + 86400, poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot, polls=1)
        await pilot.press("A")
        text = flat(await wait_for_text(app, pilot, "FALLBACK"))
        figures = read_arena(arenas / ARENAS_FOLDER / "20260102-000000")
        best = max(figures["ratings"], key=lambda r: r["rating"])
        assert f"1 {best['player']} {best['rating']:.0f}" in text
        assert "random 1500 anchor" in text
        assert "4 players · 20 games a pairing" in text
        heuristic_vs_random = figures["matrix"][0][1]
        assert f"P1 heuristic {100 * heuristic_vs_random:.0f}%" in text
        for verdict in figures["verdicts"]:
            assert f"{verdict['player']} vs random: {'GO' if verdict['go'] else 'NO-GO'}" in text
        await pilot.press("[")  # the older arena: two players
        text = flat(await wait_for_text(app, pilot, "2 players · 10 games"))
        assert "aggressive" not in text
        await pilot.press("]")
        await wait_for_text(app, pilot, "4 players")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)


async def test_the_groups_screen_offers_the_arenas_in_its_footer(arenas: Path) -> None:
    app = TrainctlApp(arenas, clock=lambda: T0 + 86400, poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot, polls=1)
        await pilot.press("g")
        await wait_until(app, pilot, lambda text: "A Arenas" in text.splitlines()[-1], "the groups footer")
        await pilot.press("A")
        await wait_for_text(app, pilot, "4 players · 20 games")
        assert isinstance(app.screen, ArenaScreen)


async def test_no_arena_and_a_broken_arena_each_say_so_in_one_line(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    standard_runs(runs)
    app = TrainctlApp(runs, clock=lambda: T0 + 86400, poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot, polls=1)
        await pilot.press("A")
        # The runs folder's path ends the line before, and where "arenas:" wraps depends on its length
        await wait_for_text(app, pilot, "`trainctl arena A B ...` saves one there")
        await pilot.press("escape")
        broken = runs / ARENAS_FOLDER / "20260103-000000"
        broken.mkdir(parents=True)
        (broken / "arena.json").write_text(json.dumps({"format": "something else"}))
        await pilot.press("A")
        await wait_for_text(app, pilot, "is not a trainctl arena result")
        assert "FALLBACK" not in screen_text(app)


def test_short_names_keep_the_kind_and_the_file_name() -> None:
    assert short_name("heuristic") == "heuristic"
    long = "ckpt:runs/20261202T101010_ppo_beastybar_selfplay/best/step_15000000.pt"
    short = short_name(long, 28)
    assert len(short) == 28 and short.startswith("ckpt:…") and short.endswith("step_15000000.pt")


@pytest.mark.parametrize(("argv", "said"), [
    (["arena", "--show", "--runs-dir", "{tmp}/runs"], "no saved arena in"),
    (["arena", "random", "--show", "{tmp}"], "name no players with it"),
    (["arena", "--show", "{tmp}"], "holds no arena.json"),
])
def test_show_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              argv: list[str], said: str) -> None:
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1


def test_show_without_a_terminal_prints_the_saved_tables(arenas: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = arenas / ARENAS_FOLDER / "20260102-000000"
    assert main(["arena", "--show", str(folder / "arena.json")]) == 0
    assert capsys.readouterr().out == (folder / "arena.txt").read_text()


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_arena_screen_snapshot(snap_compare: Any, arenas: Path, monkeypatch: pytest.MonkeyPatch,
                               size: tuple[int, int]) -> None:
    monkeypatch.chdir(arenas.parent)
    app = TrainctlApp(Path("runs"), clock=lambda: T0 + 86400, poll_s=0.1)

    async def run_before(pilot: Any) -> None:
        await settle(pilot.app, pilot, polls=1)
        await pilot.press("A")
        await wait_for_text(pilot.app, pilot, "FALLBACK")
        assert isinstance(pilot.app.screen, ArenaScreen)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def test_the_standalone_screen_of_arena_show_ends_on_escape(arenas: Path) -> None:
    folder = arenas / ARENAS_FOLDER / "20260101-000000"
    app = ScreenApp(lambda: ArenaScreen(folder=folder))
    async with app.run_test(size=(80, 24)) as pilot:
        text = flat(await wait_for_text(app, pilot, "2 players"))
        assert "[ Older" not in text  # one folder: nothing to step to
        await pilot.press("escape")
        await pilot.pause()
        assert app.return_code == 0 and not app.is_running
