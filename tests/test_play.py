"""trainctl play: a person against an agent on the rules reference. The game logic (engine.play), whole
games played by pressing keys against a tiny checkpoint made here, the agent's move and its top-3
probabilities on screen, `p` from the runs screen, bad input as one line and exit 2; a snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tui_fixtures import T0, fabricate_run, screen_text, settle, wait_for_text, wait_until

from cli.main import main
from engine.play import AGENT, HUMAN, SEATS, HumanGame, masked_softmax
from engine.players import NeuralPlayer, parse_player
from envs.beastybar import rules
from envs.rng import Rng
from tests.eval_fixtures import write_ppo_checkpoint
from tui.app import TrainctlApp
from tui.screens.play import PlayScreen
from tui.standalone import ScreenApp

RUNS = Path("no-runs-here")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ppo_checkpoint(tmp_path_factory.mktemp("ckpt"))


def flat(text: str) -> str:
    return " ".join(text.split())


# -- the game ---------------------------------------------------------------------------------------
def test_masked_softmax_is_a_distribution_over_the_legal_actions() -> None:
    scores = np.array([3.0, 1.0, 50.0, 0.0])
    mask = np.array([True, True, False, True])
    p = masked_softmax(scores, mask)
    assert p[2] == 0.0 and p.sum() == pytest.approx(1.0)
    assert p[0] / p[1] == pytest.approx(np.exp(2.0))


def test_the_agents_move_is_its_most_probable_legal_action(checkpoint: Path) -> None:
    agent = parse_player(f"ckpt:{checkpoint}", RUNS)
    game = HumanGame(agent, seed=11, first="opponent")  # the agent moves first
    assert game.state.first == AGENT and not game.human_to_move
    for _ in range(rules.CARDS_PER_PLAYER):
        legal = set(game.state.legal_actions())
        move = game.play_agent()
        assert move.action == move.top[0][0] and {a for a, _ in move.top} <= legal
        probabilities = [p for _, p in move.top]
        assert probabilities == sorted(probabilities, reverse=True) and len(move.top) == min(3, len(legal))
        if not game.over:
            game.play_human(game.legal_actions()[-1])
    assert game.over and len(game.moves) == 24 and game.result() in (-1, 0, 1)


def test_a_game_against_a_scripted_player_is_the_rules_game() -> None:
    """The same seed and choices through engine.play and through the rules by hand: the same game."""
    game = HumanGame(parse_player("heuristic", RUNS), seed=4, first="agent")
    rng = Rng(4)
    state = rules.deal(rng, first="agent")
    while not game.over:
        if game.human_to_move:
            action = game.legal_actions()[0]
            game.play_human(action)
        else:
            action = game.play_agent().action
            assert game.moves[-1].top == ()  # a scripted player has no probabilities
            assert action == rules.heuristic_opponent(state, rng)
        rules.play_turn(state, action)
    assert rules.bar_points(state) == list(game.points())
    with pytest.raises(ValueError):
        game.play_human(0)


def test_seats_map_to_the_rules_first_option() -> None:
    assert {SEATS[s] for s in ("first", "second", "random")} <= set(rules.FIRSTS)
    assert HumanGame(parse_player("random", RUNS), 3, SEATS["first"]).state.first == HUMAN
    assert HumanGame(parse_player("random", RUNS), 3, SEATS["second"]).state.first == AGENT


# -- the screen -------------------------------------------------------------------------------------
async def test_a_whole_game_played_with_number_keys_then_another(checkpoint: Path) -> None:
    agent = parse_player(f"ckpt:{checkpoint}", RUNS)
    assert isinstance(agent, NeuralPlayer)
    screen = PlayScreen(agent, first="opponent", seed=21)
    app = ScreenApp(lambda: screen)
    async with app.run_test(size=(80, 24)) as pilot:
        text = flat(await wait_for_text(app, pilot, "top-3:"))
        first_move = screen.game.moves[0]
        assert first_move.seat == AGENT
        assert f"Agent played {rules.action_name(first_move.action)}" in text
        name, p = first_move.top[0]
        assert f"top-3: {rules.action_name(name)} {100 * p:.0f}%" in text
        assert "the agent started" in text and "4 cards in hand" in text
        for k, action in enumerate(screen.game.legal_actions()[:9]):
            assert f"{k + 1} {rules.action_name(action)}" in text
        turns = 0
        while not screen.game.over:
            legal = screen.game.legal_actions()
            key = str(min(len(legal), 2))  # the second play when there is one
            await pilot.press(key)
            await pilot.pause()
            assert screen.game.moves[-2].action == legal[int(key) - 1] or screen.game.over
            turns += 1
        assert turns == rules.CARDS_PER_PLAYER
        mine, theirs = screen.game.points()
        verdict = {1: "You win", -1: "The agent wins", 0: "A draw"}[screen.game.result()]
        text = flat(await wait_for_text(app, pilot, f"{verdict}, {mine}-{theirs}. n: another game"))
        await pilot.press("1")  # the game is over: a number key plays nothing
        assert len(screen.game.moves) == 24
        await pilot.press("n")
        text = flat(await wait_for_text(app, pilot, "game 2 · seed 22"))
        won, drawn, lost = screen.score
        assert won + drawn + lost == 1 and f"you won {won}, drew {drawn}, lost {lost}" in text


async def test_enter_on_a_highlighted_play_plays_it() -> None:
    screen = PlayScreen(parse_player("heuristic", RUNS), first="agent", seed=2)
    app = ScreenApp(lambda: screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(app, pilot, "the agent has not played yet")
        third = screen.game.legal_actions()[2]
        await pilot.press("down", "down", "enter")
        await wait_until(app, pilot, lambda text: "Agent played" in text, "the agent's answer")
        assert screen.game.moves[0].action == third and screen.game.moves[1].seat == AGENT


async def test_p_on_a_beastybar_run_opens_a_game_against_its_checkpoint(tmp_path: Path) -> None:
    run = fabricate_run(tmp_path, "20260101T010000_ppo_beastybar_balance")
    write_ppo_checkpoint(run.checkpoints)
    app = TrainctlApp(tmp_path, clock=lambda: T0 + 86400, poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert "p Play" in screen_text(app).splitlines()[-1]
        await pilot.press("p")
        await wait_until(app, pilot, lambda _: isinstance(app.screen, PlayScreen), "the play screen")
        await wait_for_text(app, pilot, "you (A) vs run:")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, PlayScreen)


async def test_p_on_a_beastybar_run_without_a_checkpoint_says_so(tmp_path: Path) -> None:
    fabricate_run(tmp_path, "20260101T010000_ppo_beastybar_balance")
    app = TrainctlApp(tmp_path, clock=lambda: T0 + 86400, poll_s=0.1)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await wait_until(app, pilot, lambda _: bool(app._notifications), "a notification")
        [note] = [n.message for n in app._notifications]
        assert "has no checkpoint yet" in note and not isinstance(app.screen, PlayScreen)


# -- the command ------------------------------------------------------------------------------------
def test_play_bad_input_is_one_line_and_exit_2(tmp_path: Path, checkpoint: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    soccer = fabricate_run(tmp_path / "runs", "20260101T010000_ppo_soccer_balance", env="soccer")
    write_ppo_checkpoint(soccer.checkpoints, env="soccer")
    skirmish = write_ppo_checkpoint(tmp_path / "skirmish", env="skirmish")
    runs = str(tmp_path / "runs")
    cases = [
        (["play", str(tmp_path / "nope.pt")], "does not exist"),
        (["play", str(skirmish)], "trained on 'skirmish'"),
        (["play", "20260101T010000_ppo_soccer", "--runs-dir", runs], "trained on 'soccer'"),
        (["play", "alphazero", "--runs-dir", runs], "no run 'alphazero'"),
        (["play", str(checkpoint), "--seat", "middle"], "invalid choice: 'middle'"),
        (["play", str(checkpoint), "--seed", "-1"], "--seed must be in 0 to 2**63 - 1"),
        (["play", str(checkpoint)], "needs a terminal"),  # pytest's stdin is no terminal
    ]
    for argv, said in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1, (argv, err)


@pytest.mark.parametrize("size", [(80, 24)])
def test_play_screen_snapshot(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              size: tuple[int, int]) -> None:
    monkeypatch.chdir(tmp_path)
    checkpoint = write_ppo_checkpoint(Path("ckpt"))
    agent = parse_player(f"ckpt:{checkpoint}", RUNS)
    app = ScreenApp(lambda: PlayScreen(agent, first="opponent", seed=7))

    async def run_before(pilot: Any) -> None:
        await wait_for_text(pilot.app, pilot, "top-3:")
        await pilot.press("1")
        await wait_for_text(pilot.app, pilot, "turn 4/24")

    assert snap_compare(app, terminal_size=size, run_before=run_before)
