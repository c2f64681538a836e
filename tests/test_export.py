"""`trainctl export --onnx` (engine/onnx_export.py, cli/export.py) on tiny untrained checkpoints made here:
every kind's ONNX graph agrees with the project's torch path in onnxruntime (max abs diff <= 1e-5, the
same masked argmax), a soccer policy's graph holds its VecNormalize scaling, a changed graph fails the
check, and bad input is one line with exit code 2 and nothing written."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cli.main import main
from engine import dqn, ppo, vec_normalize, wm_inputs, worldmodel
from engine.checkpoint import save_checkpoint
from engine.onnx_export import PARITY_TOLERANCE, Parity, check_parity, exportable, to_onnx
from envs.duel import rules

# game -> (observation size, actions) of the PPO checkpoints made here
PPO_GAMES = {"beastybar": (160, 33), "skirmish": (103, 14), "duel": (62, 7), "soccer": (18, 2)}


def common(fmt: str, env: str, obs_size: int, num_actions: int) -> dict[str, Any]:
    return {"format": fmt, "env": env, "net_arch": [16, 16], "obs_size": obs_size, "num_actions": num_actions,
            "step": 321, "optimizer": {}, "rng_torch": torch.get_rng_state()}


def ppo_state(env: str, stats: bool = False) -> dict[str, Any]:
    """A complete PPO checkpoint of an untrained [16, 16] policy (soccer's with a Box of actions)."""
    obs_size, num_actions = PPO_GAMES[env]
    box = env == "soccer"
    torch.manual_seed(len(env))
    policy = ppo.build_policy(obs_size, num_actions, [16, 16], continuous=box)
    state = {**common(ppo.STATE_FORMAT, env, obs_size, num_actions), "policy": policy.state_dict(),
             "action_space": "box" if box else "discrete", "num_timesteps": 321, "n_updates": 1,
             "total_steps": 1000, "progress_remaining": 0.5, "ent_coef": 0.0, "rng_numpy": {}}
    if stats:
        rng = np.random.default_rng(3)
        state[vec_normalize.STATE_KEY] = {
            "obs_mean": torch.from_numpy(rng.normal(0, 3, obs_size)),
            "obs_var": torch.from_numpy(rng.uniform(0.1, 9, obs_size)),
            "obs_count": 100.0, "ret_mean": 0.0, "ret_var": 1.0, "ret_count": 100.0}
    ppo.check_resume(state)
    return state


def dqn_state() -> dict[str, Any]:
    q_net = dqn.build_q_net(103, 14, [16, 16])
    state = {**common(dqn.STATE_FORMAT, "skirmish", 103, 14), "q_net": q_net.state_dict(),
             "q_net_target": q_net.state_dict(), "num_timesteps": 321, "n_updates": 1, "target_sync_calls": 1,
             "total_steps": 1000, "exploration_rate": 0.1, "beta": 0.4, "rng_actions": {}}
    dqn.check_resume(state)
    return state


def worldmodel_state() -> dict[str, Any]:
    model = worldmodel.WorldModel(rules.OBS_SIZE, rules.NUM_ACTIONS, [16, 16])
    state = {**common(worldmodel.STATE_FORMAT, "duel", rules.OBS_SIZE, rules.NUM_ACTIONS),
             "model": model.state_dict(), "scheduler": {}, "epoch": 1, "batch_in_epoch": 0, "samples": 321,
             "best_val_total": 1.0, "bad_epochs": 0, "data_sha256": "0" * 64}
    worldmodel.check_resume(state)
    return state


STATES: dict[str, Callable[[], dict[str, Any]]] = {
    "worldmodel": worldmodel_state, "dqn": dqn_state,
    **{f"ppo-{env}": functools.partial(ppo_state, env) for env in PPO_GAMES},
    "ppo-soccer-normalized": functools.partial(ppo_state, "soccer", stats=True),
}


@pytest.mark.parametrize("name", list(STATES))
def test_every_kind_matches_onnxruntime_on_a_thousand_inputs(name: str) -> None:
    target = exportable(STATES[name]())
    parity = check_parity(target, to_onnx(target))
    assert parity.inputs == 1000
    assert parity.max_abs_diff <= PARITY_TOLERANCE
    assert parity.argmax_agree == (1000 if target.masked else None)
    assert parity.passed


def test_the_soccer_graph_holds_the_normalisation_sb3_applies() -> None:
    """The scaling the graph holds is VecNormalize's own: the exported model on raw observations equals SB3's
    deterministic prediction on observations a frozen VecNormalize with the same statistics scaled."""
    import onnxruntime  # imported by the tests that use it: collection (every worker) skips onnx, ~0.7 s
    from stable_baselines3.common.vec_env import VecNormalize

    import envs

    state = ppo_state("soccer", stats=True)
    venv = envs.make_vec("soccer", 4, opponent="chaser", seed=5)
    norm = VecNormalize(venv, norm_obs=True, norm_reward=False)
    vec_normalize.restore(norm, state[vec_normalize.STATE_KEY], training=False)
    raw = np.random.default_rng(1).normal(0, 5, (50, 18)).astype(np.float32)
    scaled = np.asarray(norm.normalize_obs(raw))
    assert np.allclose(scaled, vec_normalize.normalize_observations(state[vec_normalize.STATE_KEY], raw))
    policy = ppo.policy_from_checkpoint(state)
    want, _ = policy.predict(scaled.astype(np.float32), deterministic=True)
    session = onnxruntime.InferenceSession(to_onnx(exportable(state)), providers=["CPUExecutionProvider"])
    (got,) = session.run(["action"], {"obs": raw})
    assert np.abs(got - want).max() <= PARITY_TOLERANCE
    unnormalized = ppo_state("soccer")
    plain = onnxruntime.InferenceSession(to_onnx(exportable(unnormalized)), providers=["CPUExecutionProvider"])
    assert not np.allclose(plain.run(["action"], {"obs": raw})[0], got, atol=1e-3)  # the scaling is not a no-op


def test_a_graph_that_differs_from_the_network_fails_the_check() -> None:
    target = exportable(ppo_state("duel"))
    model_bytes = to_onnx(target)
    with torch.no_grad():
        for p in target.module.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    parity = check_parity(target, model_bytes)
    assert parity.max_scaled_diff > PARITY_TOLERANCE and parity.argmax_agree is not None
    assert parity.argmax_agree < 1000 and not parity.passed
    assert "FAILED" in parity.line()


def test_the_command_writes_a_checked_model_with_a_dynamic_batch(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import onnx  # imported here, not at the top: as above
    import onnxruntime

    path = save_checkpoint(tmp_path / "run" / "checkpoints", 321, worldmodel_state())
    out = tmp_path / "wm.onnx"
    assert main(["export", str(path), "--onnx", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "parity vs onnxruntime on 1,000 inputs" in printed and "passed" in printed
    model = onnx.load(out)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["trainctl.format"] == worldmodel.STATE_FORMAT and meta["trainctl.step"] == "321"
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for batch in (1, 7):
        width = wm_inputs.input_width(rules.OBS_SIZE, rules.NUM_ACTIONS)
        outputs = session.run(None, {"features": np.zeros((batch, width), np.float32)})
        assert [o.shape for o in outputs] == [(batch, 6), (batch, 6), (batch,), (batch,)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "wm.onnx"]  # no temp file left


def test_a_run_exports_its_newest_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "runs" / "r1"
    (run / "run.json").parent.mkdir(parents=True)
    (run / "run.json").write_text("{}")
    save_checkpoint(run / "checkpoints", 100, dqn_state())
    save_checkpoint(run / "checkpoints", 321, dqn_state())
    out = tmp_path / "q.onnx"
    assert main(["export", "r1", "--runs-dir", str(tmp_path / "runs"), "--onnx", str(out)]) == 0
    assert "step_000000000321.pt" in capsys.readouterr().out and out.is_file()


def test_a_failed_parity_check_writes_nothing_and_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import engine.onnx_export

    monkeypatch.setattr(engine.onnx_export, "check_parity", lambda target, model: Parity(1000, 0.5, 0.5, 990))
    path = save_checkpoint(tmp_path, 321, dqn_state())
    out = tmp_path / "q.onnx"
    assert main(["export", str(path), "--onnx", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "FAILED" in printed and "nothing written" in printed
    assert not out.exists() and not list(tmp_path.glob(".q.onnx*"))


def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = save_checkpoint(tmp_path / "ok", 321, dqn_state())
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    foreign = save_checkpoint(tmp_path / "foreign", 1, {**dqn_state(), "format": "trainctl.tabular/9"})
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o500)
    cases = [
        ([str(text), "--onnx", str(tmp_path / "a.onnx")], "cannot be loaded"),
        ([str(tmp_path / "missing.pt"), "--onnx", str(tmp_path / "a.onnx")], "does not exist"),
        ([str(foreign), "--onnx", str(tmp_path / "a.onnx")], "cannot be exported"),
        ([str(good), "--onnx", str(tmp_path / "no" / "a.onnx")], "does not exist"),
        ([str(good), "--onnx", str(tmp_path)], "is a folder"),
        (["no-such-run", "--runs-dir", str(tmp_path), "--onnx", str(tmp_path / "a.onnx")], "no run"),
    ]
    if os.geteuid() != 0:  # root writes anywhere
        cases.append(([str(good), "--onnx", str(readonly / "a.onnx")], "not writable"))
    for args, message in cases:
        assert main(["export", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, (args, err)
    assert not list(tmp_path.rglob("*.onnx*"))
