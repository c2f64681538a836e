"""Ratings on the Elo scale from a round robin's results: a Bradley-Terry fit, not an incremental Elo.

Model: player i beats j with probability 1 / (1 + 10 ** ((R_j - R_i) / 400)), R on the Elo scale; a draw
counts as half a win each way. The ratings are the maximum of the likelihood of every game played
(scipy.optimize), so the order of the games does not matter, with the anchor player held at `ANCHOR`
(1500). Each pairing also gets one virtual draw, a weak prior that keeps the fit finite when a player
won every game (a plain maximum would put it at infinity). The uncertainty is the standard error from
the inverse of the likelihood's Hessian at the fit: how far a rating could move relative to the anchor
(whose own error is 0 by construction); rating +- 1.96 * error is a 95 % interval. Pure numbers in and
out: no games, no files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

ANCHOR = 1500.0
ELO = 400.0 / math.log(10.0)
"""Elo points per unit of the logistic model's log-odds."""
PRIOR_DRAWS = 1.0


@dataclass(frozen=True)
class PairScore:
    """Games between players `i` and `j` (indices): i's wins, the draws and j's wins."""

    i: int
    j: int
    wins_i: int
    draws: int
    wins_j: int


@dataclass(frozen=True)
class Rating:
    rating: float
    error: float


def fit_ratings(num_players: int, scores: Sequence[PairScore], anchor: int = 0) -> list[Rating]:
    """Bradley-Terry ratings (Elo scale, `anchor` at 1500) of `num_players` players from `scores`."""
    if not 0 <= anchor < num_players:
        raise ValueError(f"anchor {anchor} is not a player index (0-{num_players - 1})")
    pairs = np.array([(s.i, s.j) for s in scores], dtype=np.int64).reshape(-1, 2)
    n = np.array([s.wins_i + s.draws + s.wins_j + PRIOR_DRAWS for s in scores], dtype=np.float64)
    won = np.array([s.wins_i + (s.draws + PRIOR_DRAWS) / 2 for s in scores], dtype=np.float64)
    free = [k for k in range(num_players) if k != anchor]

    def full(x: np.ndarray) -> np.ndarray:
        beta = np.zeros(num_players)
        beta[free] = x
        return beta

    def loss_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        beta = full(x)
        d = beta[pairs[:, 0]] - beta[pairs[:, 1]]
        # -log-likelihood of `won` of `n` with p = sigmoid(d), written to stay finite for large |d|.
        loss = float(np.sum(n * np.logaddexp(0.0, d) - won * d))
        g_pair = n / (1.0 + np.exp(-d)) - won
        grad = np.zeros(num_players)
        np.add.at(grad, pairs[:, 0], g_pair)
        np.add.at(grad, pairs[:, 1], -g_pair)
        return loss, grad[free]

    fit = minimize(loss_and_gradient, np.zeros(len(free)), jac=True, method="BFGS", options={"gtol": 1e-9})
    beta = full(fit.x)
    errors = _standard_errors(beta, pairs, n, free, num_players)
    return [Rating(ANCHOR + ELO * float(beta[k]), ELO * float(errors[k])) for k in range(num_players)]


def _standard_errors(beta: np.ndarray, pairs: np.ndarray, n: np.ndarray, free: list[int],
                     num_players: int) -> np.ndarray:
    """sqrt of the diagonal of the inverse Hessian of the -log-likelihood over the free ratings."""
    p = 1.0 / (1.0 + np.exp(-(beta[pairs[:, 0]] - beta[pairs[:, 1]])))
    w = n * p * (1.0 - p)
    hessian = np.zeros((num_players, num_players))
    for (i, j), weight in zip(pairs.tolist(), w.tolist(), strict=True):
        hessian[i, i] += weight
        hessian[j, j] += weight
        hessian[i, j] -= weight
        hessian[j, i] -= weight
    errors = np.zeros(num_players)
    if free:
        reduced = hessian[np.ix_(free, free)]
        # A player with no games has a singular row: its rating is unknown (infinite error).
        errors[free] = np.sqrt(np.abs(np.diag(np.linalg.pinv(reduced))))
        errors[[k for k in free if reduced[free.index(k), free.index(k)] == 0]] = math.inf
    return errors
