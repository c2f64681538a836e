"""bench/bench_soccer_ppo.py's quality arithmetic without training: the intervals over seeds or over
games, the difference ours - SB3 paired by seed or by game, and the pass rule in words."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_soccer_ppo.py"
T_975_ONE_DF = 12.706204736  # Student's t, 97.5 % quantile, 1 degree of freedom


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_soccer_ppo", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


bench = load_bench()


def test_two_seeds_give_intervals_over_the_seed_means() -> None:
    ours = [np.array([0, 2]), np.array([2, 4])]  # seed means 1 and 3
    sb3 = [np.array([-1, -1]), np.array([0, 0])]  # seed means -1 and 0
    goals = bench.compare_goals(ours, sb3)
    assert goals.over == "seeds"
    # mean 2, sample sd sqrt(2), standard error 1: half width t(0.975, 1)
    assert goals.ours.estimate == pytest.approx(2.0)
    assert goals.ours.high - goals.ours.estimate == pytest.approx(T_975_ONE_DF, rel=1e-6)
    assert goals.baseline.estimate == pytest.approx(-0.5)
    # paired by seed: differences 2 and 3, mean 2.5, standard error 0.5
    assert goals.difference.estimate == pytest.approx(2.5)
    assert goals.difference.low == pytest.approx(2.5 - 0.5 * T_975_ONE_DF, rel=1e-6)
    assert not goals.significant


def test_one_seed_is_compared_game_by_game() -> None:
    ours = [np.array([1, 2, 1, 2])]
    sb3 = [np.array([0, 1, 0, 1])]  # one goal behind in every game: no spread in the difference
    goals = bench.compare_goals(ours, sb3)
    assert goals.over == "games"
    assert goals.ours.n == 4
    assert (goals.difference.estimate, goals.difference.low, goals.difference.high) == pytest.approx((1, 1, 1))
    assert goals.significant


def test_sides_must_have_the_same_seeds() -> None:
    with pytest.raises(ValueError, match="2 seeds of ours against 1"):
        bench.compare_goals([np.array([0, 1]), np.array([1, 1])], [np.array([0, 0])])


def test_verdict_needs_the_speed_and_goals_not_worse_than_sb3s_beyond_the_margin() -> None:
    ahead = bench.compare_goals([np.array([1, 2, 1, 2])], [np.array([0, 1, 0, 1])])
    behind = bench.compare_goals([np.array([0, 1, 0, 1])], [np.array([1, 2, 1, 2])])
    level = bench.compare_goals([np.array([1, 2, 1, 2, 1, 2])], [np.array([1, 2, 1, 2, 2, 1])])  # -1 or +1 by game
    close = bench.compare_goals([np.array([1, 2, 2, 2])], [np.array([1, 2, 2, 2.1])])  # 0.025 behind, tightly
    assert bench.verdict(ahead, 6.0).startswith("PASS: speed ratio 6.0x >= 5x, and our goal difference is not worse")
    assert "the difference is significant" in bench.verdict(ahead, 6.0)
    assert bench.verdict(ahead, 4.9).startswith("FAIL: speed ratio 4.9x < 5x")
    assert bench.verdict(behind, 9.0).startswith("FAIL") and "possibly worse" in bench.verdict(behind, 9.0)
    assert level.difference.estimate == 0 and level.difference.low < -bench.QUALITY_MARGIN
    assert bench.verdict(level, 9.0).startswith("FAIL")  # level on average, but the data allow much worse
    assert close.difference.estimate < 0 <= close.difference.low + bench.QUALITY_MARGIN
    assert bench.verdict(close, 9.0).startswith("PASS")  # a little behind, surely within the margin
