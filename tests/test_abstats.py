"""engine.abstats: the t quantile, the paired intervals against hand-computed cases, the verdict rule on
planted data, and the sequential test's stopping rule."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from engine.abstats import (
    FAIL,
    PASS,
    UNDECIDED,
    Interval,
    Rule,
    SequentialRule,
    SequentialTest,
    Sprt,
    check_pairs,
    difference_interval,
    mean_interval,
    ratio_interval,
    t_quantile,
    verdict,
)
from engine.errors import UsageError


@pytest.mark.parametrize("df", [1, 2, 3, 7, 29, 200])
@pytest.mark.parametrize("p", [0.6, 0.95, 0.975, 0.995, 0.025])
def test_t_quantile_matches_scipy(df: int, p: float) -> None:
    assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9, abs=1e-12)


def test_t_quantile_table_values() -> None:
    # Printed t tables, 97.5 % one-sided: df 1 12.706, df 2 4.303, df 10 2.228.
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=5e-4)
    assert t_quantile(0.975, 2) == pytest.approx(4.303, abs=5e-4)
    assert t_quantile(0.975, 10) == pytest.approx(2.228, abs=5e-4)


def test_mean_interval_by_hand() -> None:
    # 1, 2, 3: mean 2, sample sd 1, standard error 1/sqrt(3); t(0.975, 2) = 4.302653.
    got = mean_interval([1.0, 2.0, 3.0])
    half = 4.302652729749464 / math.sqrt(3)
    assert (got.estimate, got.n) == (2.0, 3)
    assert got.low == pytest.approx(2 - half, rel=1e-9)
    assert got.high == pytest.approx(2 + half, rel=1e-9)


def test_ratio_interval_by_hand() -> None:
    # Ratios 1.1 and 1.21: log ratios ln 1.1 and 2 ln 1.1, mean 1.5 ln 1.1 (geometric mean 1.1^1.5);
    # their sample sd is ln(1.1)/sqrt(2), the standard error ln(1.1)/2; t(0.975, 1) = 12.706205.
    got = ratio_interval([100.0, 200.0], [110.0, 242.0])
    ln = math.log(1.1)
    assert got.estimate == pytest.approx(1.1**1.5, rel=1e-12)
    assert got.low == pytest.approx(math.exp(1.5 * ln - 12.706204736174707 * ln / 2), rel=1e-9)
    assert got.high == pytest.approx(math.exp(1.5 * ln + 12.706204736174707 * ln / 2), rel=1e-9)


def test_difference_interval_by_hand() -> None:
    # Differences -2, 0, +2, +4: mean 1, sample sd sqrt(20/3), se sqrt(5/3); t(0.975, 3) = 3.182446.
    got = difference_interval([50.0, 50.0, 50.0, 50.0], [48.0, 50.0, 52.0, 54.0])
    half = 3.182446305284263 * math.sqrt(5 / 3)
    assert got.estimate == pytest.approx(1.0)
    assert (got.low, got.high) == (pytest.approx(1 - half), pytest.approx(1 + half))


@given(st.lists(st.floats(1.0, 1e4), min_size=2, max_size=12), st.floats(0.5, 2.0), st.floats(0.1, 10.0))
def test_ratio_interval_properties(base: list[float], factor: float, scale: float) -> None:
    rnd = random.Random(len(base))
    cand = [b * factor * rnd.uniform(0.9, 1.1) for b in base]
    got = ratio_interval(base, cand)
    assert got.low <= got.estimate <= got.high
    # Units cancel: the same figures in other units give the same ratio.
    scaled = ratio_interval([b * scale for b in base], [c * scale for c in cand])
    assert scaled.estimate == pytest.approx(got.estimate, rel=1e-9)
    # Swapping the sides inverts the ratio and its interval.
    swapped = ratio_interval(cand, base)
    assert swapped.estimate == pytest.approx(1 / got.estimate, rel=1e-9)
    assert swapped.low == pytest.approx(1 / got.high, rel=1e-9)


def test_interval_against_a_bar() -> None:
    assert Interval(1.3, 1.2, 1.4, 5).against(1.1) == PASS
    assert Interval(1.0, 0.95, 1.05, 5).against(1.1) == FAIL
    assert Interval(1.1, 1.0, 1.2, 5).against(1.1) == UNDECIDED


def test_one_seed_is_refused() -> None:
    with pytest.raises(UsageError, match="at least 2 seeds"):
        check_pairs(1)
    with pytest.raises(UsageError, match="no confidence interval"):
        verdict(Rule(), ([100.0], [120.0]), None)


SEEDS = 8


def planted(ratio: float, quality_diff: float, ratio_noise: float, quality_noise: float, seed: int = 1,
            pairs: int = SEEDS) -> tuple[tuple[list[float], list[float]], tuple[list[float], list[float]]]:
    """Pairs of (sps, win-rate points) whose candidate is `ratio` faster and `quality_diff` points better,
    each pair with multiplicative and additive noise of the given sizes."""
    rnd = random.Random(seed)
    base_sps = [rnd.uniform(800, 1200) for _ in range(pairs)]
    cand_sps = [b * ratio * math.exp(rnd.gauss(0, ratio_noise)) for b in base_sps]
    base_q = [rnd.uniform(40, 60) for _ in range(pairs)]
    cand_q = [q + quality_diff + rnd.gauss(0, quality_noise) for q in base_q]
    return (base_sps, cand_sps), (base_q, cand_q)


def test_verdict_clear_pass() -> None:
    sps, quality = planted(1.40, 0.0, 0.02, 1.0)
    got = verdict(Rule(min_gain=0.10, max_loss=4), sps, quality)
    assert got.verdict == PASS, got.reason
    assert got.throughput.low > 1.1 and got.quality is not None and got.quality.low > -4


def test_verdict_clear_fail_on_throughput() -> None:
    sps, quality = planted(1.00, 0.0, 0.02, 1.0)
    assert verdict(Rule(), sps, quality).verdict == FAIL


def test_verdict_clear_fail_on_quality() -> None:
    sps, quality = planted(1.40, -15.0, 0.02, 1.0)
    got = verdict(Rule(max_loss=4), sps, quality)
    assert got.verdict == FAIL and "quality" in got.reason and "misses it" in got.reason


def test_verdict_undecided_when_an_interval_straddles() -> None:
    sps, quality = planted(1.40, -3.0, 0.02, 20.0)  # fast for sure, quality too noisy to place against -4
    got = verdict(Rule(max_loss=4), sps, quality)
    assert got.verdict == UNDECIDED
    assert got.quality is not None and got.quality.low < -4 < got.quality.high


def test_verdict_on_throughput_alone() -> None:
    sps, _ = planted(1.40, 0.0, 0.02, 1.0)
    got = verdict(Rule(), sps, None)
    assert got.verdict == PASS and got.quality is None and "throughput alone" in got.reason


def test_sprt_llr_and_bounds_by_hand() -> None:
    test = Sprt(0.0, 1.0)
    assert test.bounds == (pytest.approx(math.log(0.05 / 0.95)), pytest.approx(math.log(19.0)))
    # 0.9, 1.1: n 2, mean 1, sample variance 0.02: LLR = 2 * 1 * (2 - 1) / (2 * 0.02) = 50.
    assert test.llr([0.9, 1.1]) == pytest.approx(50.0)
    assert test.decide([0.9, 1.1]) == "H1"
    assert test.decide([-0.1, 0.1]) == "H0"  # mean 0: LLR = 2 * 1 * (0 - 1) / (2 * 0.02) = -50
    assert test.decide([-2.0, 3.0]) is None  # mean 0.5 (the midpoint): LLR 0


def run_sequential(seq: SequentialRule, ratio: float, quality_diff: float, ratio_noise: float,
                   quality_noise: float, seed: int) -> tuple[str, int, SequentialTest]:
    """Feed planted pairs to a sequential test until it stops; (verdict, pairs used, test)."""
    sps, quality = planted(ratio, quality_diff, ratio_noise, quality_noise, seed, pairs=seq.max_pairs)
    test = SequentialTest(seq)
    for i in range(seq.max_pairs):
        state = test.add((sps[0][i], sps[1][i]), (quality[0][i], quality[1][i]))
        if state.verdict is not None:
            return state.verdict, i + 1, test
    raise AssertionError("the sequential test ran past its maximum")


def first_crossing(test: Sprt, values: list[float], min_pairs: int) -> tuple[int, str]:
    """Independently: the first n >= min_pairs at which the LLR of values[:n] leaves the bounds."""
    lower, upper = test.bounds
    for n in range(min_pairs, len(values) + 1):
        llr = test.llr(values[:n])
        if llr <= lower or llr >= upper:
            return n, "H0" if llr <= lower else "H1"
    return len(values) + 1, "open"


def test_until_decided_stops_by_its_rule_on_a_clear_pass() -> None:
    seq = SequentialRule(Rule(min_gain=0.10, max_loss=4), max_pairs=20)
    result, used, test = run_sequential(seq, 1.40, 2.0, 0.03, 1.0, seed=3)
    assert result == PASS
    tests = seq.tests()
    assert test.quality_diffs is not None
    crossings = [first_crossing(tests["throughput"], test.log_ratios, seq.min_pairs),
                 first_crossing(tests["quality"], test.quality_diffs, seq.min_pairs)]
    assert all(side == "H1" for _, side in crossings)
    assert used == max(n for n, _ in crossings)  # it stopped when the later of the two passed, not before


def test_until_decided_stops_at_the_first_fail() -> None:
    seq = SequentialRule(Rule(min_gain=0.10, max_loss=4), max_pairs=20)
    result, used, test = run_sequential(seq, 0.95, 0.0, 0.03, 1.0, seed=4)
    assert result == FAIL
    assert (used, "H0") == first_crossing(seq.tests()["throughput"], test.log_ratios, seq.min_pairs)
    assert used >= seq.min_pairs


def test_until_decided_reports_undecided_at_the_maximum() -> None:
    # Right between H0 and H1 on quality, with noise far above the margin: no decision within 6 pairs.
    seq = SequentialRule(Rule(min_gain=0.10, max_loss=4), max_pairs=6)
    result, used, test = run_sequential(seq, 1.40, -3.0, 0.03, 25.0, seed=5)
    assert (result, used) == (UNDECIDED, 6)
    assert test.state is not None and test.state.decided["quality"] is None


def test_sequential_rule_checks_its_options() -> None:
    with pytest.raises(UsageError, match="--max-seeds 2"):
        SequentialRule(Rule(), max_pairs=2)
    with pytest.raises(UsageError, match="margins"):
        SequentialRule(Rule(), max_pairs=10, gain_margin=0)
    assert "[-2.944, 2.944]" in SequentialRule(Rule(), max_pairs=10).describe()
