"""The Beasty Bar agent shipped in assets/ (assets/README.md): a small player file that loads without
unpickling, records its training, plays only legal moves and beats the random player in most games."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.errors import UsageError
from engine.matches import paired_deals, play_match
from engine.players import NeuralPlayer, parse_player, parse_subject

ASSET = Path(__file__).resolve().parents[1] / "assets" / "beastybar_agent.pt"
RUNS = Path("runs")


def test_asset_is_a_small_player_file_loaded_with_weights_only() -> None:
    state = torch.load(ASSET, map_location="cpu", weights_only=True)
    assert state["format"] == "trainctl.ppo/1" and state["env"] == "beastybar"
    assert state["optimizer"] == {}  # only what playing needs: no Adam moments
    assert {t.dtype for t in state["policy"].values()} == {torch.float16}  # `trainctl export --player`
    assert ASSET.stat().st_size < 500_000
    trained = load_checkpoint(ASSET)["trained"]
    assert trained["command"].startswith("trainctl run --algo ppo --env beastybar --profile strength")
    assert trained["checkpoint"].startswith("best/") and trained["date"] and trained["note"]
    assert state["step"] <= trained["run_steps"] and trained["wall_seconds"] <= 3600  # issue 10's budget


def test_asset_plays_legal_games_and_beats_random() -> None:
    agent = parse_subject(str(ASSET), RUNS)  # as `trainctl eval assets/beastybar_agent.pt` names it
    assert isinstance(agent, NeuralPlayer)
    # On the rules reference every move goes through rules.play_turn, which refuses an illegal one.
    result = play_match(agent, parse_player("random", RUNS), paired_deals(20, 0), use_core=False)
    assert result.stopped is None and result.games == 20
    assert result.turns.tolist() == [24] * 20
    assert result.outcomes.wins >= 17
    assert parse_player(f"ckpt:{ASSET}", RUNS).step == agent.step


def test_a_bare_checkpoint_path_is_a_player_as_in_the_arena() -> None:
    assert isinstance(parse_player(str(ASSET), RUNS), NeuralPlayer)
    with pytest.raises(UsageError, match=r"checkpoint missing\.pt does not exist"):
        parse_player("missing.pt", RUNS)
    with pytest.raises(UsageError, match="unknown player 'heuristc'"):
        parse_player("heuristc", RUNS)
