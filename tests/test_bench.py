"""engine.abtest and `trainctl bench` without training: the pairs and their order, the verdict in the report
on planted run folders (clear pass, clear fail, undecided), `--until-decided` stopping by its rule with a
pool that plants runs instead of training, and the bad input refused before anything is written."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from engine import abstats, abtest, sweep
from engine.errors import UsageError
from tests.test_sweep import append_eval, assert_refused, planted_run

SIDES = (abtest.Side("balance"), abtest.Side("speed", ("dqn.updates_per_step=10",)))


def ask(**kw: object) -> abtest.BenchAsk:
    return abtest.BenchAsk(**{"algo": "dqn-per", "env": "skirmish", "steps": 4096, "baseline": SIDES[0],
                              "candidate": SIDES[1], "sets": ("torch.threads=1",), **kw})  # type: ignore[arg-type]


def test_pairs_share_a_seed_and_alternate_their_order() -> None:
    first, second = ask(first_seed=7).pair(0), ask(first_seed=7).pair(1)
    assert [t.name for t in first] == ["s7-baseline", "s7-candidate"]
    assert [t.name for t in second] == ["s8-candidate", "s8-baseline"]
    assert {t.job.seed for t in first} == {7} and first[1].job.profile == "speed"
    assert first[0].job.assignments == ("torch.threads=1",)
    assert first[1].job.assignments == ("torch.threads=1", "dqn.updates_per_step=10")
    assert first[1].label == "candidate speed dqn.updates_per_step=10 seed 7"


def test_ask_round_trips_through_json() -> None:
    original = ask(until_decided=True, seeds=12, min_gain=0.2)
    assert abtest.BenchAsk.from_json(original.to_json()) == original


def plant_pair(folder: Path, seed: int, sps: tuple[float, float], win: tuple[float, float]) -> None:
    for side, s, w in zip(("baseline", "candidate"), sps, win, strict=True):
        planted_run(folder, f"s{seed}-{side}-a1", sps=s, win=w)


def planted_bench(folder: Path, ratio: float, win_diff: float, noise: float, pairs: int = 6,
                  **kw: object) -> sweep.Group:
    """A bench folder whose pairs have the candidate `ratio` faster and `win_diff` (a share) better."""
    bench = ask(seeds=pairs, **kw)
    rnd = random.Random(11)
    trials = [t for i in range(pairs) for t in bench.pair(i)]
    group = sweep.Group(folder, "bench", bench.to_json(), tuple(trials))
    for i in range(pairs):
        base_sps, base_win = rnd.uniform(200, 260), rnd.uniform(0.3, 0.6)
        plant_pair(folder, i, (base_sps, base_sps * ratio * rnd.uniform(0.98, 1.02)),
                   (base_win, base_win + win_diff + rnd.gauss(0, noise)))
    return group


def test_report_clear_pass(tmp_path: Path) -> None:
    text, markdown, data = abtest.bench_report(planted_bench(tmp_path, 1.5, 0.0, 0.01))
    assert text.startswith("VERDICT: PASS\n") and markdown.startswith("# VERDICT: PASS")
    assert data["verdict"] == "PASS" and data["pairs"] == 6
    assert data["interval_verdict"]["throughput"]["low"] > 1.1
    # planted runs split their time evenly over two phases, so each phase's ratio is 1 / throughput's
    assert data["phases"]["action"]["estimate"] == pytest.approx(1 / data["interval_verdict"]["throughput"]["estimate"])
    assert "phases (candidate / baseline ms per env step" in text


def test_report_clear_fail(tmp_path: Path) -> None:
    _, _, data = abtest.bench_report(planted_bench(tmp_path, 1.5, -0.20, 0.01))
    assert data["verdict"] == "FAIL" and "quality" in data["interval_verdict"]["reason"]


def test_report_undecided(tmp_path: Path) -> None:
    _, _, data = abtest.bench_report(planted_bench(tmp_path, 1.5, -0.03, 0.25))
    assert data["verdict"] == "UNDECIDED"


def test_report_says_which_win_rate_it_compares_and_warns_when_runs_differ(tmp_path: Path) -> None:
    group = planted_bench(tmp_path, 1.5, 0.0, 0.01, pairs=3)
    text, _, data = abtest.bench_report(group)
    assert data["quality_from"] == ["rollout/win_rate"] and "quality: the trainer's outcome window" in text
    append_eval(sweep.latest_run(tmp_path, group.trials[0]), (0.5,))  # type: ignore[arg-type]
    text, _, data = abtest.bench_report(group)
    assert data["quality_from"] == ["eval", "rollout/win_rate"] and "mixed: some pairs compare unlike" in text


def test_report_with_one_pair_gives_no_verdict_yet(tmp_path: Path) -> None:
    text, _, data = abtest.bench_report(planted_bench(tmp_path, 1.5, 0.0, 0.01, pairs=1, verdict=False))
    assert data["verdict"] is None and text.startswith("no verdict asked")


class PlantingPool:
    """Stands in for engine.sweep.TrialPool: plants each trial's finished run from `figures[seed]` instead of
    training, and counts the trials run."""

    figures: ClassVar[dict[int, tuple[tuple[float, float], tuple[float, float]]]] = {}
    ran: ClassVar[list[str]] = []

    def __init__(self, folder: Path, trials: Sequence[sweep.Trial], parallel: int = 1, **_kw: object) -> None:
        self.folder, self.trials = folder, trials

    def run(self) -> list[sweep.TrialOutcome]:
        for trial in self.trials:
            seed, side = trial.name[1:].split("-")
            sps, win = self.figures[int(seed)]
            index = 0 if side == "baseline" else 1
            run = planted_run(self.folder, f"{trial.name}-a1", sps=sps[index], win=win[index])
            self.ran.append(trial.name)
        return [sweep.TrialOutcome(t, "finished", run) for t in self.trials]


@pytest.mark.parametrize(("ratio", "win_diff", "expected"), [(1.5, 0.0, "PASS"), (0.9, 0.0, "FAIL")])
def test_until_decided_stops_by_its_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ratio: float,
                                         win_diff: float, expected: str) -> None:
    rnd = random.Random(5)
    figures = {}
    for seed in range(20):
        base_sps, base_win = rnd.uniform(200, 260), rnd.uniform(0.3, 0.6)
        figures[seed] = ((base_sps, base_sps * ratio * math.exp(rnd.gauss(0, 0.05))),
                         (base_win, base_win + win_diff + rnd.gauss(0, 0.01)))
    monkeypatch.setattr(PlantingPool, "figures", figures)
    monkeypatch.setattr(PlantingPool, "ran", [])
    monkeypatch.setattr(abtest, "TrialPool", PlantingPool)
    bench = ask(until_decided=True, seeds=20)
    group = sweep.Group(tmp_path, "bench", bench.to_json())
    said: list[str] = []
    group = abtest.run_bench(group, bench, said.append)
    # Independently: the first number of pairs at which the sequential test reaches a verdict.
    seq = bench.sequential()
    assert seq is not None
    test = abstats.SequentialTest(seq)
    for used in range(1, 21):
        (b_sps, c_sps), (b_win, c_win) = figures[used - 1]
        if test.add((b_sps, c_sps), (100 * b_win, 100 * c_win)).verdict is not None:
            break
    assert test.state is not None and test.state.verdict == expected
    assert len(PlantingPool.ran) == 2 * used and 3 <= used < 20
    assert said[-1].startswith(f"after {used} seeds:") and said[-1].endswith(f"-> {expected}")
    text, _, data = abtest.bench_report(group)
    assert data["verdict"] == expected and data["sequential"]["verdict"] == expected
    assert "stopping rule: sequential test on paired seeds" in text


# -- bad input --------------------------------------------------------------------------------------------
BASE = ["bench", "--algo", "dqn-per", "--env", "skirmish", "--steps", "4096", "--baseline", "balance",
        "--candidate", "speed"]


@pytest.mark.parametrize(("args", "message"), [
    (["--seeds", "1"], "1 paired seed gives no confidence interval"),
    (["--seeds", "0"], "--seeds 0"),
    (["--until-decided", "--seeds", "4"], "exclude each other"),
    (["--max-seeds", "4"], "--max-seeds goes with --until-decided"),
    (["--until-decided", "--max-seeds", "2"], "--max-seeds 2 is below"),
    (["--until-decided", "--no-verdict"], "drop --no-verdict"),
    (["--set", "torch.threads=1", "--candidate-set", "dqn.nope=1"],
     "candidate speed dqn.nope=1 seed 0: --set: unknown key 'dqn.nope'"),
    (["--confidence", "95"], "confidence 95.0 is not a probability"),
])
def test_bench_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert_refused([*BASE, *args], message, tmp_path / "runs", capsys)


def test_one_seed_without_a_verdict_is_allowed() -> None:
    assert ask(seeds=1, verdict=False).seeds == 1
    with pytest.raises(UsageError, match="no confidence interval"):
        ask(seeds=1)


def test_a_bench_resumes_with_more_seeds_or_other_bars_but_not_other_runs(tmp_path: Path) -> None:
    first = ask(seeds=2)
    folder = sweep.default_folder(tmp_path, "bench", first.identity())
    group = sweep.open_group(folder, "bench", first.to_json(), abtest.BenchAsk.IDENTITY).with_trials(first.pair(0))
    folder.mkdir()
    group.save()
    more = ask(seeds=6, max_loss=2.0, until_decided=False)
    assert sweep.default_folder(tmp_path, "bench", more.identity()) == folder
    reopened = sweep.open_group(folder, "bench", more.to_json(), abtest.BenchAsk.IDENTITY)
    assert reopened.ask["seeds"] == 6 and reopened.trials == group.trials
    longer = ask(seeds=2, steps=8192)
    assert sweep.default_folder(tmp_path, "bench", longer.identity()) != folder
    with pytest.raises(UsageError, match="is the folder of another bench"):
        sweep.open_group(folder, "bench", longer.to_json(), abtest.BenchAsk.IDENTITY)
