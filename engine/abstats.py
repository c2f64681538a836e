"""Statistics of an A/B comparison over paired seeds: the throughput ratio and the quality difference,
each with a Student-t confidence interval, the verdict rule, and the sequential test that decides when
to stop adding seeds (docs/benchmarking-changes.md).

Pairs: seed i trains the baseline and the candidate once each, so the two runs of a pair share their
games' deals and their network's initial weights and the per-seed noise largely cancels in the pair's
difference. Throughput is compared on log ratios d_i = ln(candidate_i / baseline_i): a ratio's interval
is exp of the t-interval of the mean log ratio (a geometric mean, so 2x faster and 2x slower balance).
Quality (a win rate in points, or a reward) is compared on differences candidate_i - baseline_i.

The verdict rule: the candidate must gain at least `min_gain` throughput (ratio >= 1 + min_gain) and
lose at most `max_loss` quality points. A criterion passes when its whole interval clears its bar, fails
when the whole interval misses it, and is undecided when the interval straddles it; the verdict is FAIL
if either fails, PASS if both pass, else UNDECIDED. One pair has no spread, hence no interval: refused.

The sequential test (a sequential probability ratio test, as chess-engine testing accepts or rejects a
patch): for each criterion, H0 puts the true mean at the bar (just failing) and H1 at the bar plus a
margin (passing). After each pair the log-likelihood ratio of H1 against H0 is
    LLR = sum_i [(x_i - mu0)^2 - (x_i - mu1)^2] / (2 s^2) = n (mu1 - mu0)(2 mean - mu0 - mu1) / (2 s^2),
the normal model's with the variance s^2 estimated from the pairs so far (sample variance; a
generalised SPRT). A criterion is decided the first time its LLR leaves [ln(beta / (1 - alpha)),
ln((1 - beta) / alpha)]: below, H0 (it fails); above, H1 (it passes). The comparison stops at a FAIL,
or when both have passed, or at the maximum number of pairs (UNDECIDED). No test starts before
`min_pairs` pairs: with two, the variance rests on one degree of freedom.

Pure numbers: no files, no runs, no numpy (it runs in the CLI process).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from engine.errors import UsageError

PASS, FAIL, UNDECIDED = "PASS", "FAIL", "UNDECIDED"


# -- Student's t ----------------------------------------------------------------------------------------
def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularised incomplete beta function (modified Lentz's method)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 400):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return result


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), for x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):  # where the fraction converges fast; else by symmetry
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p (0 < p < 1), by bisection on the CDF to about 1e-12."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability {p} is not in (0, 1)")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


# -- intervals ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """An estimate and its two-sided confidence interval [low, high], from `n` pairs."""

    estimate: float
    low: float
    high: float
    n: int

    def against(self, bar: float) -> str:
        """PASS when the whole interval is at or above `bar`, FAIL when it is wholly below, else UNDECIDED."""
        if self.low >= bar:
            return PASS
        if self.high < bar:
            return FAIL
        return UNDECIDED


def check_pairs(n: int) -> None:
    """UsageError when `n` pairs cannot give an interval (a spread needs two)."""
    if n < 2:
        raise UsageError(f"{n} paired seed gives no confidence interval (a spread needs at least 2 seeds), so no "
                         "verdict; expected --seeds 2 or more, or --no-verdict")


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The mean of `values` with its Student-t interval (n - 1 degrees of freedom)."""
    n = len(values)
    check_pairs(n)
    mean = math.fsum(values) / n
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * math.sqrt(variance / n)
    return Interval(mean, mean - half, mean + half, n)


def _paired(baseline: Sequence[float], candidate: Sequence[float]) -> None:
    if len(baseline) != len(candidate):
        raise ValueError(f"{len(baseline)} baseline values against {len(candidate)} candidate values: not paired")


def ratio_interval(baseline: Sequence[float], candidate: Sequence[float], confidence: float = 0.95) -> Interval:
    """candidate / baseline as the geometric mean of the paired ratios, with its interval (exp of the
    t-interval of the mean log ratio). Values must be positive (rates, milliseconds)."""
    _paired(baseline, candidate)
    if any(v <= 0 for v in (*baseline, *candidate)):
        raise ValueError("a ratio of rates needs positive values")
    logs = mean_interval([math.log(c / b) for b, c in zip(baseline, candidate, strict=True)], confidence)
    return Interval(math.exp(logs.estimate), math.exp(logs.low), math.exp(logs.high), logs.n)


def difference_interval(baseline: Sequence[float], candidate: Sequence[float],
                        confidence: float = 0.95) -> Interval:
    """The mean of candidate_i - baseline_i, with its t-interval."""
    _paired(baseline, candidate)
    return mean_interval([c - b for b, c in zip(baseline, candidate, strict=True)], confidence)


# -- the verdict ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """Keep the candidate only if it gains >= `min_gain` throughput (0.10: +10 %) and loses <= `max_loss`
    quality points; intervals at `confidence`."""

    min_gain: float = 0.10
    max_loss: float = 4.0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if not 0.0 < self.confidence < 1.0:
            raise UsageError(f"confidence {self.confidence} is not a probability; expected e.g. 0.95")
        if self.max_loss < 0:
            raise UsageError(f"--max-loss {self.max_loss} is negative; expected points of quality a change may lose")

    @property
    def ratio_bar(self) -> float:
        return 1.0 + self.min_gain

    def describe(self) -> str:
        return (f"throughput >= +{100 * self.min_gain:g} % and quality loss <= {self.max_loss:g} points, "
                f"{100 * self.confidence:g} % intervals over paired seeds")


@dataclass(frozen=True)
class Verdict:
    """The rule's verdict with both intervals (quality None when the runs report none) and why."""

    verdict: str
    throughput: Interval
    quality: Interval | None
    reason: str


def verdict(rule: Rule, sps: tuple[Sequence[float], Sequence[float]],
            quality: tuple[Sequence[float], Sequence[float]] | None) -> Verdict:
    """The verdict on (baseline, candidate) throughputs and, when given, quality figures in points."""
    ratio = ratio_interval(*sps, confidence=rule.confidence)
    diff = difference_interval(*quality, confidence=rule.confidence) if quality is not None else None
    parts = {"throughput": ratio.against(rule.ratio_bar)}
    reasons = [f"throughput x{ratio.estimate:.3f} [{ratio.low:.3f}, {ratio.high:.3f}] vs bar x{rule.ratio_bar:.3f}: "
               f"{_said(parts['throughput'])}"]
    if diff is not None:
        parts["quality"] = diff.against(-rule.max_loss)
        reasons.append(f"quality {diff.estimate:+.2f} [{diff.low:+.2f}, {diff.high:+.2f}] points vs bar "
                       f"{-rule.max_loss:+g}: {_said(parts['quality'])}")
    else:
        reasons.append("no quality figure in the runs: throughput alone")
    return Verdict(_combine(list(parts.values())), ratio, diff, "; ".join(reasons))


def _said(part: str) -> str:
    return {PASS: "clears it", FAIL: "misses it", UNDECIDED: "straddles it"}[part]


def _combine(parts: Sequence[str]) -> str:
    if FAIL in parts:
        return FAIL
    return PASS if all(p == PASS for p in parts) else UNDECIDED


# -- the sequential test --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sprt:
    """One sequential probability ratio test of a mean: H0 mean = mu0, H1 mean = mu1 (module docstring)."""

    mu0: float
    mu1: float
    alpha: float = 0.05
    beta: float = 0.05

    @property
    def bounds(self) -> tuple[float, float]:
        """(lower, upper): below accepts H0, above accepts H1."""
        return math.log(self.beta / (1.0 - self.alpha)), math.log((1.0 - self.beta) / self.alpha)

    def llr(self, values: Sequence[float]) -> float:
        """The log-likelihood ratio of H1 against H0 given `values` (at least two)."""
        n = len(values)
        mean = math.fsum(values) / n
        variance = max(math.fsum((v - mean) ** 2 for v in values) / (n - 1), 1e-300)
        return n * (self.mu1 - self.mu0) * (2.0 * mean - self.mu0 - self.mu1) / (2.0 * variance)

    def decide(self, values: Sequence[float]) -> str | None:
        """"H0", "H1", or None while the LLR stays within the bounds."""
        value, (lower, upper) = self.llr(values), self.bounds
        return "H0" if value <= lower else "H1" if value >= upper else None


@dataclass(frozen=True)
class SequentialRule:
    """`rule`'s bars tested sequentially: throughput on log ratios (H0 at ln(1 + min_gain), H1 at
    ln(1 + min_gain + gain_margin)), quality on differences (H0 at -max_loss, H1 at -max_loss +
    loss_margin); at least `min_pairs`, at most `max_pairs` pairs."""

    rule: Rule
    max_pairs: int
    gain_margin: float = 0.05
    loss_margin: float = 2.0
    alpha: float = 0.05
    beta: float = 0.05
    min_pairs: int = 3

    def __post_init__(self) -> None:
        if self.max_pairs < self.min_pairs:
            raise UsageError(f"--max-seeds {self.max_pairs} is below the {self.min_pairs} paired seeds the sequential "
                             f"test needs first; expected --max-seeds >= {self.min_pairs}")
        if self.gain_margin <= 0 or self.loss_margin <= 0:
            raise UsageError("the sequential test's margins must be positive; expected e.g. --gain-margin 0.05 "
                             "--loss-margin 2")

    def tests(self) -> dict[str, Sprt]:
        gain = self.rule.min_gain
        return {"throughput": Sprt(math.log1p(gain), math.log1p(gain + self.gain_margin), self.alpha, self.beta),
                "quality": Sprt(-self.rule.max_loss, -self.rule.max_loss + self.loss_margin, self.alpha, self.beta)}

    def describe(self) -> str:
        """The stopping rule, printed before the first run."""
        lower, upper = Sprt(0, 1, self.alpha, self.beta).bounds
        gain = self.rule.min_gain
        return (f"sequential test on paired seeds, alpha = {self.alpha:g}, beta = {self.beta:g}: throughput H0 "
                f"ratio x{1 + gain:.3f} vs H1 x{1 + gain + self.gain_margin:.3f} (log ratios); quality H0 "
                f"{-self.rule.max_loss:+g} vs H1 {-self.rule.max_loss + self.loss_margin:+g} points; each decided "
                f"when its LLR leaves [{lower:.3f}, {upper:.3f}]; stop at a FAIL, when both pass, or at "
                f"{self.max_pairs} seeds (UNDECIDED); first decision after {self.min_pairs} seeds")


@dataclass(frozen=True)
class SequentialState:
    """Where the sequential test stands after some pairs: each test's LLR and decision (None: open), and
    the verdict once it is reached (None: add a pair)."""

    llr: dict[str, float]
    decided: dict[str, str | None]
    verdict: str | None


def sequential_state(seq: SequentialRule, log_ratios: Sequence[float], quality_diffs: Sequence[float] | None,
                     previous: SequentialState | None = None) -> SequentialState:
    """The state after the pairs so far (`quality_diffs` None: throughput alone). A test decided in
    `previous` keeps its decision: each test stops at its first crossing."""
    n = len(log_ratios)
    samples = {"throughput": log_ratios, **({"quality": quality_diffs} if quality_diffs is not None else {})}
    llr: dict[str, float] = {}
    decided: dict[str, str | None] = {}
    for name, test in seq.tests().items():
        if name not in samples:
            continue
        llr[name] = test.llr(samples[name]) if n >= 2 else 0.0
        earlier = previous.decided.get(name) if previous is not None else None
        decided[name] = earlier or (test.decide(samples[name]) if n >= seq.min_pairs else None)
    outcome: str | None = None
    if "H0" in decided.values():
        outcome = FAIL
    elif all(d == "H1" for d in decided.values()):
        outcome = PASS
    elif n >= seq.max_pairs:
        outcome = UNDECIDED
    return SequentialState(llr, decided, outcome)


class SequentialTest:
    """The sequential test fed one pair at a time: `add` returns the state after it."""

    def __init__(self, seq: SequentialRule, with_quality: bool = True) -> None:
        self.seq = seq
        self.log_ratios: list[float] = []
        self.quality_diffs: list[float] | None = [] if with_quality else None
        self.state: SequentialState | None = None

    def add(self, sps: tuple[float, float], quality: tuple[float, float] | None = None) -> SequentialState:
        """Add one pair: (baseline, candidate) throughput and, when testing quality, (baseline, candidate)
        quality points."""
        self.log_ratios.append(math.log(sps[1] / sps[0]))
        if self.quality_diffs is not None:
            if quality is None:
                raise ValueError("this test compares quality: every pair needs its quality figures")
            self.quality_diffs.append(quality[1] - quality[0])
        self.state = sequential_state(self.seq, self.log_ratios, self.quality_diffs, self.state)
        return self.state
