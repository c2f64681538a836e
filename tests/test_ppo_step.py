"""ext.ppo_step's PpoEpochs: bad layouts and inputs are refused with a message naming them, and the KL rule
stops before a minibatch's step (the arithmetic itself is checked against SB3's train() in
tests/test_cpu_ppo.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ext.ppo_step import PpoEpochs

OBS, HIDDEN, ACT, ROWS, BATCH = 5, 8, 2, 24, 10


def _layout() -> tuple[list[tuple[int, int, int, int]], list[tuple[int, int, int, int]], int, int]:
    """A policy MLP 5 -> 8 -> 2 and a value MLP 5 -> 1 laid end to end, then log_std: (pi, vf, log_std, size)."""
    offset = 0

    def linear(n_out: int, n_in: int) -> tuple[int, int, int, int]:
        nonlocal offset
        weight, bias = offset, offset + n_out * n_in
        offset = bias + n_out
        return weight, bias, n_out, n_in

    pi = [linear(HIDDEN, OBS), linear(ACT, HIDDEN)]
    vf = [linear(1, OBS)]
    return pi, vf, offset, offset + ACT


def _epochs(pi: Any = None, vf: Any = None, **overrides: Any) -> tuple[PpoEpochs, np.ndarray]:
    default_pi, default_vf, log_std, size = _layout()
    params = np.random.default_rng(0).normal(scale=0.3, size=size).astype(np.float32)
    settings: dict[str, Any] = {"batch_size": BATCH, "lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-5, "ent_coef": 0.0,
                                "vf_coef": 0.5, "max_grad_norm": 0.5, "target_kl": None, "normalize_advantage": True}
    settings.update(overrides)
    vectors = [np.zeros_like(params) for _ in range(3)]
    layers = (default_pi if pi is None else pi, default_vf if vf is None else vf)
    return PpoEpochs(*layers, log_std, params, *vectors, 0, **settings), params


def _rollout(rows: int = ROWS) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.normal(size=(rows, OBS)).astype(np.float32), rng.normal(size=(rows, ACT)).astype(np.float32),
            *(rng.normal(size=rows).astype(np.float32) for _ in range(3))]


def test_an_epoch_takes_one_step_per_minibatch_and_reports_its_stats() -> None:
    epochs, params = _epochs()
    before = params.copy()
    stats = np.zeros((3, 7))
    done, stopped = epochs.epoch(*_rollout(), np.random.default_rng(2).permutation(ROWS), 0.2, stats)
    assert (done, stopped, epochs.adam_steps) == (3, False, 3)  # 24 rows in minibatches of 10, 10, 4
    assert not np.array_equal(params, before)
    assert np.all(stats[:, 5] > 0) and np.all(stats[:, 6] <= 0.5 + 1e-9)  # norms before / after clipping
    assert np.all(stats[:, 1] > 0) and np.all((stats[:, 3] >= 0) & (stats[:, 3] <= 1))


def test_the_kl_rule_stops_before_the_minibatchs_step() -> None:
    epochs, params = _epochs(target_kl=-1.0)  # any KL exceeds it
    before = params.copy()
    stats = np.zeros((3, 7))
    done, stopped = epochs.epoch(*_rollout(), np.arange(ROWS), 0.2, stats)
    assert (done, stopped, epochs.adam_steps) == (1, True, 0)
    assert np.array_equal(params, before)
    assert stats[0, 5] == stats[0, 6] == 0.0


@pytest.mark.parametrize(("change", "message"), [
    ({"pi": [(0, 40, 8, 5), (48, 64, 2, 7)]}, "pi_layers: layer 1 reads 7 values, the layer before gives 8"),
    ({"pi": [(0, 40, 8, 5), (48, 6000, 2, 8)]}, "pi_layers: a layer lies outside the parameter vector"),
    ({"vf": [(66, 91, 2, 5)]}, "the value head give one value"),
    ({"pi": []}, "pi_layers: 1 to 8 linear layers, got 0"),
    ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
])
def test_bad_layouts_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _epochs(**change)


def test_bad_epoch_inputs_are_refused() -> None:
    epochs, _ = _epochs()
    obs, actions, old_log_prob, advantages, returns = _rollout()
    stats = np.zeros((3, 7))
    with pytest.raises(ValueError, match="order must index the rollout's rows"):
        epochs.epoch(obs, actions, old_log_prob, advantages, returns, np.arange(ROWS) + 1, 0.2, stats)
    with pytest.raises(ValueError, match=r"stats must be \[>= 3, 7\]"):
        epochs.epoch(obs, actions, old_log_prob, advantages, returns, np.arange(ROWS), 0.2, np.zeros((2, 7)))
    with pytest.raises(ValueError, match="observations must have 5 columns, actions 2"):
        epochs.epoch(obs[:, :4].copy(), actions, old_log_prob, advantages, returns, np.arange(ROWS), 0.2, stats)
    with pytest.raises(ValueError, match="one row per transition"):
        epochs.epoch(obs, actions, old_log_prob[:-1], advantages, returns, np.arange(ROWS), 0.2, stats)
