"""`trainctl replay`'s renderer and command: a fixed game's frame drawn exactly (a text snapshot), frames
that fit 80 x 24 and follow the game, the scripted-vs-scripted replay without a checkpoint, and the bad
input refused in one line with exit code 2 before a frame is drawn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cli.main import main
from engine.runstore import RunDir
from engine.soccer_replay import RENDER_HEIGHT, RENDER_WIDTH, ReplayGame, render, result_line, scripted_driver
from envs.soccer import rules

NAMES = ("chaser", "goalie")
# Frame 120 (12 s in) of game seed 3: the chaser drives the agent's car (right, A, two goals up),
# heading up and to the right; the goalie (B) heads up from near its goal; the ball high on the left.
SEED_3_FRAME_120 = """\
 A chaser (right) 2 - 0 goalie B              00:12.0 / 01:00.0
 +------------------------------------------------------------+
 |                              :                             |
 |              o               :                             |
 |                              :                             |
 |            ↗                 :                             |
 |           A                  :                             |
 |                              :                             |
 |                              :                             |
#                               :                              #
#    ↑                          :                              #
#    B                          +                              #
#                               :                              #
#                               :                              #
 |                              :                             |
 |                              :                             |
 |                              :                             |
 |                              :                             |
 |                              :                             |
 |                              :                             |
 |                              :                             |
 +------------------------------------------------------------+
 A chaser  B goalie  o ball  arrow: heading  # goal"""


def frames(seed: int, agent: str = "chaser", opponent: str = "goalie") -> list[str]:
    return [render(frame, (agent, opponent)) for frame in ReplayGame(scripted_driver(agent), opponent, seed).frames()]


def test_frame_120_of_seed_3_is_exactly_this_text() -> None:
    assert frames(3)[120] == SEED_3_FRAME_120


def test_a_game_is_its_kick_off_and_a_frame_a_step_each_within_80_by_24() -> None:
    drawn = frames(5, "goalie", "chaser")
    assert len(drawn) == rules.MAX_STEPS + 1 and drawn == frames(5, "goalie", "chaser")
    for text in drawn[::37]:
        lines = text.splitlines()
        assert len(lines) == RENDER_HEIGHT <= 24 and max(map(len, lines)) <= RENDER_WIDTH <= 80
        assert sum(line.count("A") for line in lines[2:-1]) == 1 and sum(line.count("B") for line in lines[2:-1]) == 1
    assert "00:00.0 / 01:00.0" in drawn[0] and "01:00.0 / 01:00.0" in drawn[-1]


def test_the_score_line_follows_the_game_and_the_result_is_the_agent_s() -> None:
    game = rules.SoccerGame(3, "goalie")
    *_played, last = ReplayGame(scripted_driver("chaser"), "goalie", 3).frames()
    assert last.step == rules.MAX_STEPS
    ours, theirs = last.goals[last.agent], last.goals[1 - last.agent]
    assert f"{ours} - {theirs}" in render(last, NAMES).splitlines()[0]
    assert result_line(last, NAMES).startswith(f"final: chaser {ours} - {theirs} goalie (")
    assert game.agent == last.agent  # the side is the seed's, as in the rules


def test_replay_prints_frames_without_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--agent", "chaser", "--vs", "goalie", "--seed", "3", "--frames", "121"]) == 0
    printed = capsys.readouterr().out.split("\n\n")
    assert len(printed) == 122 and printed[120] == SEED_3_FRAME_120 and "\x1b" not in printed[0]


def test_replay_of_whole_games_ends_each_with_its_result(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--agent", "goalie", "--games", "2", "--seed", "8"]) == 0
    out = capsys.readouterr().out
    assert out.count("final: goalie ") == 2 and out.count("01:00.0 / 01:00.0") == 2


def other_game_run(runs: Path) -> RunDir:
    return RunDir.create(runs, "bb", {"config": {"run.env": {"value": "beastybar", "source": "cli"}}})


@pytest.mark.parametrize(("argv", "message"), [
    (["--agent", "chaser", "--games", "0"], "--games must be at least 1, got 0"),
    (["--agent", "chaser", "--speed", "0"], "--speed must be above 0"),
    (["--agent", "striker"], "--agent 'striker' is not a scripted car; expected one of chaser, goalie"),
    (["--agent", "chaser", "--vs", "heuristic"], "--vs 'heuristic' is not a scripted car"),
    ([], "replay needs a soccer run or checkpoint, or --agent"),
    (["bb", "--agent", "chaser"], "replay needs a soccer run or checkpoint, or --agent"),
    (["bb"], "run bb plays 'beastybar'; expected a soccer run"),
    (["other.pt"], "trained on 'beastybar'; expected a soccer checkpoint"),
    (["missing.pt"], "missing.pt does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    other_game_run(tmp_path / "runs")
    torch.save({"step": 1, "env": "beastybar", "format": "trainctl.ppo/1"}, tmp_path / "other.pt")
    assert main(["replay", *argv, "--runs-dir", str(tmp_path / "runs")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and len(captured.err.strip().splitlines()) == 1
    assert json.loads((tmp_path / "runs" / "bb" / "run.json").read_text())["config"]["run.env"]["value"] == "beastybar"


def test_a_wrapped_run_is_not_a_soccer_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    RunDir.create(tmp_path, "cmd", {"kind": "wrapped", "wrapped": ["python", "train.py"]})
    assert main(["replay", "cmd", "--runs-dir", str(tmp_path)]) == 2
    assert "run cmd is not a trainer run (a wrapped command); expected a soccer run" in capsys.readouterr().err
