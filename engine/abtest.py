"""A bench: a baseline config against a candidate on paired seeds, and its verdict (docs/benchmarking-changes.md).

Seed s trains the baseline and the candidate once each, one run at a time so that neither competes with
the other for the cores, in ABBA order (baseline first on even pairs, candidate first on odd ones) so a
drift in the machine's load over the bench falls on both sides alike. Every run is a normal run folder
in the bench's group folder (engine.sweep), so a re-run of the same bench skips the runs it finished.

With a fixed number of seeds the verdict is engine.abstats' interval rule. With `until_decided` the
stopping rule is fixed before the first run: after each pair the sequential test is updated, and the
bench stops at its verdict or at `max_seeds`. The report (text, markdown, JSON) is rebuilt from the
folder alone, so `trainctl report BENCH` prints the same one later.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine import abstats, launcher
from engine.errors import UsageError
from engine.sweep import (
    GROUP_FILE,
    Group,
    Row,
    Trial,
    TrialPool,
    cell,
    group_rows,
    load_group,
    markdown_table,
    save_report,
    sweep_report,
    text_table,
)


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a profile and its `--set`s."""

    profile: str
    sets: tuple[str, ...] = ()

    def describe(self) -> str:
        return " ".join([self.profile, *self.sets])


@dataclass(frozen=True)
class BenchAsk:
    """What a bench was asked for. `seeds`: pairs to run (fixed), or the maximum with `until_decided`;
    the rule's bars in fractions (min_gain 0.10 = +10 %) and points; margins of the sequential test."""

    algo: str
    env: str
    steps: int
    baseline: Side
    candidate: Side
    seeds: int = 5
    until_decided: bool = False
    first_seed: int = 0
    verdict: bool = True
    min_gain: float = 0.10
    max_loss: float = 4.0
    confidence: float = 0.95
    gain_margin: float = 0.05
    loss_margin: float = 2.0
    sets: tuple[str, ...] = ()  # what both sides share, before each side's own

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise UsageError(f"--seeds {self.seeds}: expected 1 or more paired seeds")
        if self.verdict and not self.until_decided:
            abstats.check_pairs(self.seeds)
        self.rule()  # checks the rule's options
        self.sequential()  # and the sequential test's

    # What defines the runs: a bench asked again with these the same resumes in the same folder, even with
    # more seeds, other bars or margins (which only change how the runs are judged).
    IDENTITY = ("algo", "env", "steps", "baseline", "candidate", "sets", "first_seed")

    def identity(self) -> dict[str, Any]:
        data = self.to_json()
        return {k: data[k] for k in self.IDENTITY}

    def rule(self) -> abstats.Rule:
        return abstats.Rule(self.min_gain, self.max_loss, self.confidence)

    def sequential(self) -> abstats.SequentialRule | None:
        if not self.until_decided:
            return None
        return abstats.SequentialRule(self.rule(), self.seeds, self.gain_margin, self.loss_margin)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for side in ("baseline", "candidate"):
            data[side]["sets"] = list(data[side]["sets"])
        data["sets"] = list(self.sets)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchAsk:
        sides = {s: Side(data[s]["profile"], tuple(data[s]["sets"])) for s in ("baseline", "candidate")}
        return cls(**{**data, **sides, "sets": tuple(data.get("sets", ()))})

    def pair(self, index: int) -> list[Trial]:
        """The two trials of pair `index` (seed first_seed + index), in the order they run."""
        seed = self.first_seed + index
        trials = [Trial(f"s{seed}-{name}", f"{name} {side.describe()} seed {seed}",
                        launcher.Job(self.algo, self.env, side.profile, self.steps, seed, (*self.sets, *side.sets)))
                  for name, side in (("baseline", self.baseline), ("candidate", self.candidate))]
        return trials if index % 2 == 0 else trials[::-1]


def plan(ask: BenchAsk) -> None:
    """Check both sides' configs before anything starts (UsageError naming the side)."""
    for trial in ask.pair(0):
        try:
            launcher.plan(trial.job)
        except UsageError as exc:
            raise UsageError(f"{trial.label}: {exc}") from None


def run_bench(group: Group, ask: BenchAsk, say: Callable[[str], None]) -> Group:
    """Run the bench's pairs into `group` (saved as trials are added); the group with every trial run.
    Stops early at a failed run: a pair without both runs cannot be compared."""
    seq = ask.sequential()
    test = abstats.SequentialTest(seq) if seq is not None else None
    for index in range(ask.seeds):
        trials = ask.pair(index)
        group = group.with_trials(trials)
        group.save()
        outcomes = TrialPool(group.path, trials, parallel=1, say=say).run()
        failed = [o for o in outcomes if o.state not in ("finished", "skipped")]
        if failed:
            say(f"stopping the bench: {failed[0].trial.name} {failed[0].state}: {failed[0].error}")
            return group
        if test is not None:
            pairs = paired(group_rows(group))
            base, cand = pairs[-1]
            quality = (base.win, cand.win) if base.win is not None and cand.win is not None else None
            if test.quality_diffs is not None and quality is None:
                test.quality_diffs = None  # the runs report no win rate: throughput alone
            state = test.add((base.sps or math.nan, cand.sps or math.nan), quality)
            llr = ", ".join(f"{k} LLR {v:+.2f}" + (f" ({state.decided[k]})" if state.decided[k] else "")
                            for k, v in state.llr.items())
            verdict = f" -> {state.verdict}" if state.verdict else ""
            say(f"after {index + 1} seed{'s' if index else ''}: {llr}{verdict}")
            if state.verdict is not None:
                return group
    return group


def paired(rows: list[Row]) -> list[tuple[Any, Any]]:
    """(baseline figures, candidate figures) of each seed whose two runs finished, in seed order."""
    by_seed: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row.figures is None or row.figures.state != "finished" or row.figures.sps is None:
            continue
        seed, side = row.trial.name[1:].split("-", 1)
        by_seed.setdefault(int(seed), {})[side] = row.figures
    return [(s["baseline"], s["candidate"]) for _, s in sorted(by_seed.items()) if len(s) == 2]


RUN_HEADER = ("RUN", "CONFIG", "STATE", "STEPS/S", "WIN %", "REWARD")


def bench_report(group: Group, rows: list[Row] | None = None) -> tuple[str, str, dict[str, Any]]:
    """(text, markdown, JSON) of the bench in `group`, read from its folder (or from its `rows`, when the
    caller has read them already): the verdict first, then the intervals, the phases, and each run."""
    ask = BenchAsk.from_json(group.ask)
    rows = group_rows(group) if rows is None else rows
    pairs = paired(rows)
    rule, seq = ask.rule(), ask.sequential()
    head = [f"bench {group.path.name}: {ask.algo} on {ask.env}, {ask.steps:,} env steps a run; baseline "
            f"{ask.baseline.describe()}, candidate {ask.candidate.describe()}"
            + (f", both with {' '.join(ask.sets)}" if ask.sets else "") + f"; {len(pairs)} paired seeds",
            f"rule: {rule.describe()}"]
    if seq is not None:
        head.append(f"stopping rule: {seq.describe()}")
    sources = sorted({f.win_from for pair in pairs for f in pair if f.win_from})
    if sources:
        head.append(quality_line(sources))
    data: dict[str, Any] = {"kind": "bench", "folder": str(group.path), "ask": group.ask, "pairs": len(pairs),
                            "quality_from": sources}
    body: list[str] = []
    with_quality = all(b.win is not None and c.win is not None for b, c in pairs)
    sps = ([b.sps for b, _ in pairs], [c.sps for _, c in pairs])
    quality = ([b.win for b, _ in pairs], [c.win for _, c in pairs]) if with_quality else None
    if len(pairs) >= 2:
        judged = abstats.verdict(rule, sps, quality)
        data["interval_verdict"] = {"verdict": judged.verdict, "reason": judged.reason,
                                    "throughput": asdict(judged.throughput),
                                    "quality": asdict(judged.quality) if judged.quality else None}
        final = judged.verdict
        if seq is not None:
            state = replay(seq, sps, quality)
            final = state.verdict or "UNDECIDED (still running)"
            data["sequential"] = {"llr": state.llr, "decided": state.decided, "verdict": state.verdict}
            body.append("sequential: " + ", ".join(f"{k} LLR {v:+.2f} ({state.decided[k] or 'open'})"
                                                     for k, v in state.llr.items()))
        data["verdict"] = final if ask.verdict else None
        verdict_line = f"VERDICT: {final}" if ask.verdict else "no verdict asked (--no-verdict)"
        body.insert(0, f"intervals: {judged.reason}")
        body += phase_lines(pairs, rule.confidence, data)
    else:
        verdict_line = "VERDICT: none yet: fewer than 2 paired seeds finished" if ask.verdict else \
            "no verdict asked (--no-verdict)"
        data["verdict"] = None
    means = [f"mean baseline {_mean([b.sps for b, _ in pairs]):,.0f} steps/s, candidate "
             f"{_mean([c.sps for _, c in pairs]):,.0f} steps/s"] if pairs else []
    cells = [(r.trial.name, r.trial.label, r.figures.state if r.figures else "not started",
              *(cell(r.figures.value(k) if r.figures else None, f) for k, f in (("sps", ",.0f"), ("win", ".1f"),
                                                                                 ("reward", ".3f"))))
             for r in rows]
    errors = [f"{r.trial.name}: {r.error}" for r in rows if r.error]
    text = "\n".join([verdict_line, *head, *body, *means, text_table(RUN_HEADER, cells), *errors])
    markdown = "\n\n".join([f"# {verdict_line}", *head, *body, *means, markdown_table(RUN_HEADER, cells),
                            *(f"- {e}" for e in errors)]) + "\n"
    data["runs"] = [{"trial": r.trial.name, "label": r.trial.label, "run": r.run.run_id if r.run else None,
                     "figures": asdict(r.figures) if r.figures else None, "error": r.error} for r in rows]
    return text, markdown, data


QUALITY_SOURCES = {"eval": "the last eval table's mean win rate", "eval/win_rate": "the eval/win_rate metric",
                   "rollout/win_rate": "the trainer's outcome window (rollout/win_rate)"}


def quality_line(sources: list[str]) -> str:
    """Which win rate the pairs compare (engine.sweep.run_figures), and a warning when runs differ."""
    said = " and ".join(QUALITY_SOURCES.get(s, s) for s in sources)
    mixed = "; mixed: some pairs compare unlike figures (evaluate both sides alike)" if len(sources) > 1 else ""
    return f"quality: {said}{mixed}"


def replay(seq: abstats.SequentialRule, sps: tuple[list[Any], list[Any]],
           quality: tuple[list[Any], list[Any]] | None) -> abstats.SequentialState:
    """The sequential test's state after the pairs, fed in seed order as the bench fed them."""
    test = abstats.SequentialTest(seq, with_quality=quality is not None)
    state = None
    for i in range(len(sps[0])):
        state = test.add((sps[0][i], sps[1][i]), (quality[0][i], quality[1][i]) if quality else None)
        if state.verdict is not None:
            break
    assert state is not None
    return state


def phase_lines(pairs: list[tuple[Any, Any]], confidence: float, data: dict[str, Any]) -> list[str]:
    """Each [PERF] phase both sides report as a candidate / baseline ratio of ms per env step, with its interval."""
    phases = [p for p in pairs[0][0].ms if all(b.ms.get(p, 0) > 0 and c.ms.get(p, 0) > 0 for b, c in pairs)]
    data["phases"] = {}
    lines = []
    for phase in phases:
        got = abstats.ratio_interval([b.ms[phase] for b, _ in pairs], [c.ms[phase] for _, c in pairs], confidence)
        data["phases"][phase] = asdict(got)
        lines.append(f"  {phase:<14} ms x{got.estimate:.3f} [{got.low:.3f}, {got.high:.3f}]")
    return ["phases (candidate / baseline ms per env step, lower is faster):", *lines] if lines else []


def _mean(values: list[Any]) -> float:
    return math.fsum(values) / len(values)


def save_bench_report(group: Group) -> tuple[str, bool]:
    """Write report.md and report.json into the bench folder; the text, and whether every run finished."""
    text, markdown, data = bench_report(group)
    save_report(group, markdown, data)
    return text, not any(run["error"] for run in data["runs"])


def group_report(ref: str, runs_dir: Path) -> str | None:
    """The report text of the sweep or bench folder `ref` (a path, or a folder name in `runs_dir`), or None
    when `ref` names no such folder."""
    for path in (Path(ref), runs_dir / ref):
        if (path / GROUP_FILE).is_file():
            group = load_group(path)
            return bench_report(group)[0] if group.kind == "bench" else sweep_report(group)[0]
    return None
