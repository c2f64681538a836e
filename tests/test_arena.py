"""trainctl arena and the CLI of eval/arena: ratings, verdicts, saved files, bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.commands import report_text
from cli.main import main
from engine.arena import Arena, round_robin
from engine.matches import MatchResult
from engine.players import parse_player
from engine.ratings import ANCHOR, ELO, PRIOR_DRAWS, PairScore, Rating, fit_ratings
from engine.runstore import RunDir
from tests.eval_fixtures import write_bots, write_ppo_checkpoint
from tests.tui_fixtures import fabricate_run
from tui.model import RunTracker

RUNS = Path("no-runs-here")


@pytest.fixture()
def bots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.syspath_prepend(str(tmp_path))
    # Importing the bots must not leave Python's __pycache__ in tmp_path, whose files the bad-input test
    # compares before and after (it passed only where PYTHONDONTWRITEBYTECODE was set).
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    return write_bots(tmp_path)


# -- ratings ----------------------------------------------------------------------------------------
def test_two_players_rating_gap_is_the_log_odds_of_the_score() -> None:
    # 70 wins, 20 draws, 10 losses, plus the one virtual draw: score 80.5 of 101.
    [a, b] = fit_ratings(2, [PairScore(0, 1, 70, 20, 10)], anchor=1)
    won = 70 + (20 + PRIOR_DRAWS) / 2
    assert b == Rating(ANCHOR, 0.0)
    assert a.rating - ANCHOR == pytest.approx(ELO * math.log(won / (101 - won)), abs=0.01)
    # The error of a two-player fit: 1 / sqrt(n p (1 - p)) in log-odds.
    p = won / 101
    assert a.error == pytest.approx(ELO / math.sqrt(101 * p * (1 - p)), rel=1e-4)


def test_a_clean_sweep_stays_finite() -> None:
    [a, b] = fit_ratings(2, [PairScore(0, 1, 50, 0, 0)])  # a (the anchor) won every game
    assert a.rating == ANCHOR and math.isfinite(b.rating) and b.rating < ANCHOR - 400 and math.isfinite(b.error)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 10), st.integers(0, 30)), min_size=3, max_size=3),
       st.permutations([0, 1, 2]))
def test_ratings_do_not_depend_on_the_order_of_the_pairings(counts: list[tuple[int, int, int]],
                                                             order: list[int]) -> None:
    pairs = [(0, 1), (0, 2), (1, 2)]
    scores = [PairScore(i, j, *c) for (i, j), c in zip(pairs, counts, strict=True)]
    first = fit_ratings(3, scores)
    again = fit_ratings(3, [scores[k] for k in order])
    assert [r.rating for r in first] == pytest.approx([r.rating for r in again], abs=1e-3)


def test_a_transitive_planted_order_is_recovered() -> None:
    scores = [PairScore(0, 1, 30, 0, 70), PairScore(0, 2, 10, 0, 90), PairScore(1, 2, 25, 0, 75)]
    ratings = fit_ratings(3, scores)
    assert ratings[2].rating > ratings[1].rating > ratings[0].rating == ANCHOR


def test_arena_orders_a_planted_strong_and_weak_pair(bots: str) -> None:
    players = [parse_player(s, RUNS) for s in ("random", "heuristic", f"py:{bots}:first_legal")]
    arena = round_robin(players, games=60, seed=5)
    ratings = [r.rating for r in arena.ratings]
    assert ratings[1] > ratings[0]  # heuristic above random
    assert ratings[1] > ratings[2]  # heuristic above always-the-first-legal-play
    assert arena.result(1, 0).outcomes.wins == arena.result(0, 1).outcomes.losses
    go, reasons = arena.verdict(candidate=0, reference=1)
    assert not go and any("head to head" in r for r in reasons)
    assert arena.verdict(candidate=1, reference=0)[0]


RECORDER = """
SEEN = []

def first_legal(state, rng):
    if state.turn <= 1:  # this player's first decision: who started, and the hand it was dealt
        SEEN.append((state.first, state.current_player, sorted(state.hands[state.current_player])))
    return state.legal_actions()[0]
"""


def test_arena_plays_each_deal_from_both_seats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pairing's games: each deal twice with the same hands, once with each player moving first."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "arena_test_recorder.py").write_text(RECORDER)
    players = [parse_player(s, RUNS) for s in ("py:arena_test_recorder:first_legal", "random")]
    arena = round_robin(players, games=10, seed=7)
    seen = __import__("arena_test_recorder").SEEN
    assert arena.result(0, 1).games == 10 and len(seen) == 10 and all(seat == 0 for _, seat, _ in seen)
    # Lockstep: the games A starts ask for their first move on step one, those B starts on step two.
    assert [first for first, _, _ in seen] == [0] * 5 + [1] * 5
    assert [hand for *_, hand in seen[:5]] == [hand for *_, hand in seen[5:]]
    assert len({tuple(hand) for *_, hand in seen[:5]}) == 5  # five different deals


def fake_result(first: str, second: str, wins: int, losses: int, illegal: tuple[int, int] = (0, 0)) -> MatchResult:
    outcome = np.array([1] * wins + [-1] * losses, np.int8)
    return MatchResult(first, second, outcome, outcome.astype(np.int64), np.full(len(outcome), 24),
                       (12 * len(outcome), 12 * len(outcome)), illegal, None, (True, False))


def fake_arena(cand_vs_other: int, illegal: tuple[int, int] = (0, 0)) -> Arena:
    """Candidate 0, reference 1, a third player 2; the reference wins 80 of 100 against player 2."""
    results = {(0, 1): fake_result("cand", "ref", 50, 50), (0, 2): fake_result("cand", "x", cand_vs_other,
                                                                               100 - cand_vs_other),
               (1, 2): fake_result("ref", "x", 80, 20)}
    return Arena(("cand", "ref", "x"), 100, 0, results, tuple(Rating(1500, 0) for _ in range(3)), 1,
                 (illegal, (10, 1200), (0, 0)))


def test_verdict_go_and_no_go_by_the_intervals() -> None:
    assert fake_arena(75).verdict(0, 1) == (True, [])  # 75 % vs 80 %: the intervals overlap
    go, reasons = fake_arena(50).verdict(0, 1)
    assert not go and reasons == ["vs x: 50.0% < 80.0% for the reference"]
    go, reasons = fake_arena(80, illegal=(120, 1200)).verdict(0, 1)
    assert not go and reasons[0].startswith("fallback rate rose: 10.00% vs 0.83%")
    assert fake_arena(80, illegal=(12, 1200)).verdict(0, 1)[0]


# -- the commands ----------------------------------------------------------------------------------
def test_arena_command_saves_its_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["arena", "heuristic", "random", "--games", "20", "--reference", "random", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "verdict  heuristic vs reference random:" in printed and "head to head" in printed
    saved = json.loads((out / "arena.json").read_text())
    assert saved["players"] == ["heuristic", "random"] and saved["anchor"] == "random"
    assert saved["reference"] == "random" and saved["verdicts"][0]["player"] == "heuristic"
    assert saved["matrix"][0][1] == saved["pairings"][0]["win_rate"]
    assert saved["pairings"][0]["games"] == 20
    assert (out / "arena.txt").read_text().startswith("arena: 2 players")


def test_eval_of_a_run_saves_an_eval_event_for_report_and_tui(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    run = fabricate_run(tmp_path, "r1", windows=2)
    write_ppo_checkpoint(run.checkpoints, step=4096)
    assert main(["eval", "r1", "--runs-dir", str(tmp_path), "--vs", "random,heuristic", "--games", "10"]) == 0
    printed = capsys.readouterr().out
    assert "eval of run:r1" in printed and "saved as an eval event" in printed
    events = [json.loads(line) for line in run.events_path.read_text().splitlines()]
    [event] = [e for e in events if e["kind"] == "eval"]
    assert event["step"] == 4096 and event["checkpoint"] == "step_000000004096.pt" and event["games"] == 10
    assert [row["opponent"] for row in event["rows"]] == ["random", "heuristic"]
    assert "eval     step_000000004096.pt (step 4096), 10 games" in report_text(RunDir(run.path))
    tracker = RunTracker(RunDir(run.path))
    tracker.refresh()
    assert tracker.snapshot().evals[-1]["rows"][1]["opponent"] == "heuristic"


def test_run_player_prefers_best(tmp_path: Path) -> None:
    run = fabricate_run(tmp_path, "r2", windows=1)
    write_ppo_checkpoint(run.checkpoints, step=500)
    assert parse_player("run:r2", tmp_path).spec == "run:r2"
    best = write_ppo_checkpoint(run.path / "best", step=300)
    player = parse_player("run:r2", tmp_path)
    assert getattr(player, "path", None) == best


@pytest.mark.parametrize(("argv", "said"), [
    (["eval", "heuristic", "--vs", "random,alphago"], "unknown player 'alphago'"),
    (["eval", "{ckpt}", "--vs", "random", "--games", "0"], "--games must be at least 1, got 0"),
    (["eval", "{tmp}/missing.pt"], "does not exist"),
    (["eval", "heuristic", "--seed", "-3"], "--seed must be in 0 to 2**63 - 1, got -3"),
    (["eval", "{skirmish}"], "trained on 'skirmish'"),
    (["eval", "{junk}"], "cannot be loaded"),
    (["eval", "run:nobody", "--runs-dir", "{tmp}"], "no run 'nobody'"),
    (["eval", "{ckpt}", "--vs", "py:eval_test_broken:play"], "does not import"),
    (["eval", "{ckpt}", "--vs", ","], "--vs names no player"),
    (["arena", "heuristic", "--games", "4"], "at least two players"),
    (["arena", "random", "random"], "named twice"),
    (["arena", "random", "heuristic", "--reference", "x"], "--reference 'x' is not one of the players"),
    (["arena", "random", "heuristic", "--games", "0", "--out", "{tmp}/out"], "--games must be at least 1"),
    (["arena", "random", "ckpt:{skirmish}", "--out", "{tmp}/out"], "trained on 'skirmish'"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, bots: str, argv: list[str], said: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = write_ppo_checkpoint(tmp_path / "ck")
    skirmish = write_ppo_checkpoint(tmp_path / "sk", env="skirmish")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    before = sorted(p for p in tmp_path.rglob("*"))
    args = [a.format(ckpt=ckpt, skirmish=skirmish, junk=tmp_path / "junk.pt", tmp=tmp_path) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_a_stopped_pairing_is_reported_and_the_rest_played(bots: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "heuristic", "--vs", f"py:{bots}:illegal,random", "--games", "6"]) == 1
    captured = capsys.readouterr()
    assert "returned 99" in captured.err and "random" in captured.out
    assert "stopped  py:" in captured.out


def test_an_arena_leaves_a_stopped_pairing_out_of_the_ratings(bots: str, capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    assert main(["arena", "heuristic", "random", f"py:{bots}:raises", "--games", "6", "--runs-dir",
                 str(tmp_path / "runs")]) == 1
    printed = capsys.readouterr().out
    assert "stopped  random vs py:" in printed and "raised RuntimeError: my bot broke" in printed
    players = [parse_player(s, RUNS) for s in ("heuristic", "random", f"py:{bots}:raises")]
    arena = round_robin(players, games=6, seed=0)
    assert math.isinf(arena.ratings[2].error) and arena.ratings[2].rating == ANCHOR
    assert math.isfinite(arena.ratings[1].error)


@pytest.mark.slow
def test_the_entry_point_loads_no_numpy_scipy_or_torch_for_eval_and_arena() -> None:
    code = ("import sys, cli.main; cli.main.build_parser().parse_args(['eval', 'x']); "
            "sys.exit(sorted(m for m in ('numpy', 'scipy', 'torch') if m in sys.modules) or 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
