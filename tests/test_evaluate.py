"""The Wilson interval and the comparison of two policies' outcomes by it (engine.evaluate)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest, norm

from engine.evaluate import Outcomes, wilson_interval

Z95 = float(norm.ppf(0.975))  # 1.95996..., what scipy's 95 % interval uses


@pytest.mark.parametrize("successes, trials, low, high", [
    (0, 10, 0.0, 0.27753),  # z^2 / (n + z^2): not the empty interval the normal approximation gives
    (5, 10, 0.23659, 0.76341),
    (10, 10, 0.72247, 1.0),
    (81, 263, 0.25529, 0.36621),
])
def test_wilson_interval_at_known_values(successes: int, trials: int, low: float, high: float) -> None:
    assert wilson_interval(successes, trials, Z95) == pytest.approx((low, high), abs=1e-5)


def test_no_trials_is_the_whole_range() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


@given(st.integers(1, 100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_matches_scipy(case: tuple[int, int]) -> None:
    successes, trials = case
    ci = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(successes, trials, Z95)
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-9)
    assert 0.0 <= low <= successes / trials <= high <= 1.0


def test_beats_needs_the_intervals_apart() -> None:
    trained, random = Outcomes(wins=1324, draws=180, losses=496), Outcomes(wins=891, draws=219, losses=890)
    assert trained.beats(random) and not random.beats(trained)
    # 55 % against 50 % over 400 games each: the intervals overlap, so neither beats the other.
    a, b = Outcomes(wins=220, draws=0, losses=180), Outcomes(wins=200, draws=0, losses=200)
    assert a.win_rate_interval()[0] < b.win_rate_interval()[1]
    assert not a.beats(b) and not b.beats(a)
    assert not a.beats(a)
