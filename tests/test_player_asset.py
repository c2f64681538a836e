"""`trainctl export CKPT|RUN --player OUT` (engine/player_asset.py): a PPO or DQN checkpoint as a small
player file, float16 weights and no optimizer, that loads with weights_only, plays as the checkpoint does
and records the run that trained it; a format no one plays, a bad OUT or a failed check writes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from cli.main import main
from engine import vec_normalize
from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.matches import paired_deals, play_match
from engine.onnx_export import exportable
from engine.player_asset import ACTION_TOLERANCE, HalfParity, check_half
from engine.players import parse_player
from tests.test_export import dqn_state, ppo_state, worldmodel_state

STARTED = 1_796_000_000.0


def fake_run(folder: Path) -> Path:
    """A finished run folder with the run.json and status.json `trained_record` reads."""
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"command": ["trainctl", "run", "--profile", "strength"],
                                                 "created": STARTED}))
    (folder / "status.json").write_text(json.dumps({"state": "done", "started": STARTED, "ended": STARTED + 1800.5,
                                                    "step": 4_000_000}))
    return folder


def weight_bytes(weights: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in weights.values())


@pytest.mark.parametrize(("make", "weights"), [(lambda: ppo_state("beastybar"), ("policy",)),
                                               (dqn_state, ("q_net", "q_net_target"))])
def test_a_player_file_holds_half_the_weights_and_plays_as_the_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, weights: tuple[str, ...]) -> None:
    state = make()  # type: ignore[operator]
    run = fake_run(tmp_path / "runs" / "20261203T000000_strength")
    save_checkpoint(run / "best", 321, state)
    out = tmp_path / "agent.pt"
    assert main(["export", run.name, "--runs-dir", str(tmp_path / "runs"), "--player", str(out),
                 "--note", "alone on the machine"]) == 0
    printed = capsys.readouterr().out
    # An untrained network's scores lie close together, so a float16 rounding may flip a few of its choices.
    assert re.search(r"masked argmax the same in (99\d|1,000)/1,000 rows \(>= 99 %\): passed", printed)
    assert f"wrote {out}" in printed
    player = torch.load(out, map_location="cpu", weights_only=True)
    assert player["optimizer"] == {} and player["step"] == 321
    for key in weights:
        assert {t.dtype for t in player[key].values()} == {torch.float16}
        assert weight_bytes(player[key]) * 2 == weight_bytes(state[key])
    assert player["trained"] == {
        "checkpoint": "best/step_000000000321.pt", "note": "alone on the machine", "run": run.name,
        "command": "trainctl run --profile strength", "run_steps": 4_000_000, "wall_seconds": 1800.5,
        "date": "2026-11-30"}
    full, half = exportable(state), exportable(load_checkpoint(out))  # the trainer's checks pass on the file
    x = np.random.default_rng(0).normal(0, 2, (200, full.width)).astype(np.float32)
    assert np.abs(full.reference(x)[0] - half.reference(x)[0]).max() < 0.01
    assert half.module.state_dict()[next(iter(half.module.state_dict()))].dtype == torch.float32


def test_the_player_file_of_a_beastybar_policy_plays_its_games(tmp_path: Path) -> None:
    out = tmp_path / "agent.pt"
    assert main(["export", str(save_checkpoint(tmp_path, 321, ppo_state("beastybar"))), "--player", str(out)]) == 0
    agent = parse_player(f"ckpt:{out}", tmp_path)
    # On the rules reference every move goes through rules.play_turn, which refuses an illegal one.
    result = play_match(agent, parse_player("random", tmp_path), paired_deals(4, 0), use_core=False)
    assert result.stopped is None and result.games == 4


def test_a_soccer_policy_keeps_its_normalisation_and_moves_its_actions_by_little(tmp_path: Path) -> None:
    state = ppo_state("soccer", stats=True)
    out = tmp_path / "car.pt"
    assert main(["export", str(save_checkpoint(tmp_path, 321, state)), "--player", str(out)]) == 0
    player = load_checkpoint(out)
    assert player[vec_normalize.STATE_KEY].keys() == state[vec_normalize.STATE_KEY].keys()
    parity = check_half(state, player)
    assert parity.argmax_agree is None and parity.max_abs_diff <= ACTION_TOLERANCE and parity.passed
    assert not HalfParity(1000, 2 * ACTION_TOLERANCE, None).passed


def test_outside_a_run_folder_the_record_says_only_the_file_and_note(tmp_path: Path) -> None:
    out = tmp_path / "agent.pt"
    source = save_checkpoint(tmp_path / "loose", 321, ppo_state("duel"))
    assert main(["export", str(source), "--player", str(out)]) == 0
    assert load_checkpoint(out)["trained"] == {"checkpoint": "step_000000000321.pt", "note": ""}


def test_a_failed_check_writes_nothing_and_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import engine.player_asset

    monkeypatch.setattr(engine.player_asset, "check_half", lambda original, halved: HalfParity(1000, 3.0, 900))
    out = tmp_path / "agent.pt"
    assert main(["export", str(save_checkpoint(tmp_path, 321, dqn_state())), "--player", str(out)]) == 1
    assert "FAILED" in capsys.readouterr().out and not out.exists()


def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = save_checkpoint(tmp_path / "wm", 321, worldmodel_state())
    good = save_checkpoint(tmp_path / "ok", 321, ppo_state("beastybar"))
    damaged = {**ppo_state("beastybar")}
    damaged["policy"] = {k: v[..., :1] for k, v in damaged["policy"].items()}
    broken = save_checkpoint(tmp_path / "broken", 321, damaged)
    cases = [
        ([str(model), "--player", str(tmp_path / "a.pt")], "is not a player; expected one of trainctl.ppo/1"),
        ([str(broken), "--player", str(tmp_path / "a.pt")], "has shape"),
        ([str(good), "--player", str(tmp_path / "no" / "a.pt")], "does not exist; expected an existing folder"),
        ([str(good), "--player", str(tmp_path)], "is a folder; expected a file name such as"),
        ([str(good), "--player", str(tmp_path / "a.pt"), "--onnx", str(tmp_path / "a.onnx")], "not allowed with"),
    ]
    for args, message in cases:
        assert main(["export", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, (args, err)
    assert not list(tmp_path.glob("a.*")) and not list(tmp_path.glob(".a.*"))
