"""Groups of runs: the trials of a sweep or a bench, their folder, running them, and reading their figures
(docs/benchmarking-changes.md).

A group folder is a runs folder (each trial a normal run folder in it, so `trainctl status --runs-dir
GROUP` and the TUI read it as usual) plus `group.json`: the kind (sweep or bench), what was asked, and
the trials, each a name, a label and the job that runs it. A trial's runs are named `<trial>-a<attempt>`,
so a re-run of the same group finds them: a trial whose newest run finished is done and skipped, one
whose newest run is still alive (its launcher was killed) is waited for, any other is started again.

`TrialPool` runs trials through engine.launcher with at most `parallel` run processes at once; each run
takes its share of the cores through engine.cores (torch.threads 0, the default, is a fair share). A
trial that fails is started once more, then reported with its error. Ctrl-C asks the running trials to
stop (each saves a checkpoint) and raises KeyboardInterrupt.

Figures of a run (`run_figures`): throughput is env steps over the training time the run's own perf
windows measured (sum of window steps / sps: start-up, model building and the final checkpoint left
out, alike for every run), each phase the steps-weighted mean of its ms per env step, quality the
run's last reported win rate in points and where it came from: the mean win rate of the run's last
`eval` table (`trainctl eval` after training, or `eval.every_steps` during it: games against fixed
opponents, the figure with the least spread), else an `eval/win_rate` metric (a wrapped trainer's), else
the trainer's outcome window `rollout/win_rate`; and the mean episode reward. This module does no printing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import launcher
from engine.errors import UsageError
from engine.eval_scores import suite_score
from engine.events import EventTail
from engine.profiles import ALGO_SECTION, SCHEMA, ResolvedConfig
from engine.runstore import ACTIVE_STATES, RunDir, atomic_write_json, list_runs

GROUP_FILE = "group.json"
FIGURE_KEYS = ("sps", "win", "reward", "val")  # what `best` may be chosen by
LOWEST_BEST = frozenset({"val"})  # figures where less is better: a world model's validation loss
WORLD_MODEL = "worldmodel"  # a supervised trainer: samples, a validation loss and wm-bench, no games


def default_best_by(algo: str) -> str:
    """What marks the best trial unless `--best-by` says: the win rate, a world model's validation loss."""
    return "val" if algo == WORLD_MODEL else "win"


def step_unit(algo: str) -> str:
    """What a run's steps count: env steps, or a world model's training samples."""
    return "samples" if algo == WORLD_MODEL else "env steps"


# -- trials ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    """One run of a group: `name` (its run folders are `<time>_<name>-a<attempt>`), a label for people,
    and the job."""

    name: str
    label: str
    job: launcher.Job

    def to_json(self) -> dict[str, Any]:
        job = asdict(self.job)
        job["assignments"] = list(self.job.assignments)
        job["config_file"] = str(self.job.config_file) if self.job.config_file else None
        return {"name": self.name, "label": self.label, "job": job}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trial:
        job = dict(data["job"])
        job["assignments"] = tuple(job.get("assignments", ()))
        job["config_file"] = Path(job["config_file"]) if job.get("config_file") else None
        return cls(str(data["name"]), str(data["label"]), launcher.Job(**job))


def split_values(text: str) -> list[str]:
    """`a,b,[1,2]` -> ['a', 'b', '[1,2]']: commas inside brackets or quotes belong to a value."""
    values, depth, quote, current = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(current.strip())
            current = ""
            continue
        current += ch
    values.append(current.strip())
    return values


def parse_grid(spec: str) -> tuple[str, list[str]]:
    """`section.key=v1,v2` -> (key, ['section.key=v1', 'section.key=v2']). UsageError when the key is not
    a config key (or chooses the trainer or game), or a value is missing. Types are checked when each
    trial's config is resolved (`plan_trials`)."""
    key, sep, raw = spec.partition("=")
    key = key.strip()
    section, _, name = key.partition(".")
    if not sep or not raw.strip():
        raise UsageError(f"--grid {spec!r} has no values; expected section.key=v1,v2 (e.g. ppo.batch_size=512,1024)")
    if name not in SCHEMA.get(section, {}):
        raise UsageError(f"--grid {key!r} is not a config key; expected section.key such as ppo.batch_size "
                         "(`trainctl profiles show balance` lists them)")
    if key in ("run.algo", "run.env"):
        raise UsageError(f"--grid {key!r} cannot vary: a sweep has one --algo and one --env")
    values = split_values(raw)
    if any(not v for v in values):
        raise UsageError(f"--grid {spec!r} has an empty value; expected section.key=v1,v2")
    return key, [f"{key}={v}" for v in values]


def sqrt_lr(lr_base: float, batch_base: int, batch: int) -> float:
    """The square-root rule: the step size that keeps the gradient noise of a `batch` the same as
    `lr_base` had at `batch_base` (lr_base * sqrt(batch / batch_base))."""
    return lr_base * math.sqrt(batch / batch_base)


def ladder_assignments(cfg: ResolvedConfig, batch: int) -> tuple[tuple[str, ...], str]:
    """The `--set`s of one rung of a batch ladder on `cfg` (batch size and the step size by the square-root
    rule from cfg's own; PPO's end step size too, so its schedule keeps its shape) and a line saying so."""
    section = ALGO_SECTION[cfg["run.algo"]]
    base_batch, sets, said = int(cfg[f"{section}.batch_size"]), [f"{section}.batch_size={batch}"], []
    for key in (f"{section}.learning_rate", f"{section}.learning_rate_end"):
        if key.partition(".")[2] in SCHEMA[section]:
            lr = sqrt_lr(float(cfg[key]), base_batch, batch)
            sets.append(f"{key}={lr:.6g}")
            said.append(f"{key} {float(cfg[key]):.4g} x sqrt({batch}/{base_batch}) = {lr:.4g}")
    return tuple(sets), f"batch {batch}: " + "; ".join(said)


@dataclass(frozen=True)
class SweepAsk:
    """What a sweep was asked for: every combination of profiles x batch-ladder rungs x grid values, each
    trial with the `sets` every trial shares first."""

    algo: str
    env: str
    steps: int
    profiles: tuple[str, ...] = ("balance",)
    grid: tuple[str, ...] = ()
    ladder: tuple[int, ...] = ()
    seed: int | None = None
    sets: tuple[str, ...] = ()


def expand(ask: SweepAsk) -> tuple[list[Trial], list[str]]:
    """The trials of `ask`, in order, and the lines of the batch ladder's step sizes (to print)."""
    parsed = [parse_grid(spec) for spec in ask.grid]
    keys, axes = [key for key, _ in parsed], [values for _, values in parsed]
    if len(set(keys)) != len(keys):
        raise UsageError(f"--grid names a key twice ({', '.join(keys)}); expected each key once with all its values")
    if not (axes or ask.ladder or len(ask.profiles) > 1):
        raise UsageError("the sweep is empty; expected --grid key=v1,v2, --preset P1,P2 or --batch-ladder B1,B2")
    if any(b <= 0 for b in ask.ladder):
        raise UsageError(f"--batch-ladder {','.join(map(str, ask.ladder))}: batch sizes must be positive")
    trials: list[Trial] = []
    notes: list[str] = []
    for profile in ask.profiles:
        rungs: list[tuple[tuple[str, ...], str]] = [((), "")]
        if ask.ladder:
            cfg = launcher.plan(launcher.Job(ask.algo, ask.env, profile, ask.steps, ask.seed, ask.sets))
            rungs = [ladder_assignments(cfg, b) for b in ask.ladder]
            notes += [f"{profile}: {line}" if len(ask.profiles) > 1 else line for _, line in rungs]
        for rung, _ in rungs:
            for combo in _product(axes):
                sets = (*rung, *combo)
                label = " ".join([*([profile] if len(ask.profiles) > 1 else []), *sets]) or profile
                name = f"t{len(trials) + 1:02d}"
                trials.append(Trial(name, label, launcher.Job(ask.algo, ask.env, profile, ask.steps, ask.seed,
                                                              (*ask.sets, *sets), name=name)))
    return trials, notes


def _product(axes: Sequence[list[str]]) -> list[tuple[str, ...]]:
    combos: list[tuple[str, ...]] = [()]
    for axis in axes:
        combos = [(*c, v) for c in combos for v in axis]
    return combos


def plan_trials(trials: Sequence[Trial]) -> None:
    """Resolve and check every trial's config before anything starts (UsageError naming the trial)."""
    for trial in trials:
        try:
            launcher.plan(trial.job)
        except UsageError as exc:
            raise UsageError(f"trial {trial.name} ({trial.label}): {exc}") from None


# -- the group folder -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Group:
    """A group folder: `kind` (sweep or bench), `ask` (what was asked, as JSON) and its trials so far."""

    path: Path
    kind: str
    ask: dict[str, Any]
    trials: tuple[Trial, ...] = ()

    @property
    def file(self) -> Path:
        return self.path / GROUP_FILE

    def save(self) -> None:
        atomic_write_json(self.file, {"kind": self.kind, "ask": self.ask,
                                      "trials": [t.to_json() for t in self.trials]})

    def with_trials(self, trials: Sequence[Trial]) -> Group:
        known = {t.name for t in self.trials}
        return Group(self.path, self.kind, self.ask, (*self.trials, *(t for t in trials if t.name not in known)))


def default_folder(runs_dir: Path, kind: str, identity: dict[str, Any]) -> Path:
    """`<runs_dir>/<kind>-<algo>-<env>-<hash of identity>`: the same runs asked, the same folder, so a re-run
    resumes."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return runs_dir / f"{kind}-{identity.get('algo')}-{identity.get('env')}-{digest}"


def load_group(path: Path) -> Group:
    """The group in folder `path` (UsageError when it holds none)."""
    try:
        data = json.loads((path / GROUP_FILE).read_text(encoding="utf-8"))
        return Group(path, str(data["kind"]), dict(data["ask"]),
                     tuple(Trial.from_json(t) for t in data.get("trials", [])))
    except FileNotFoundError:
        raise UsageError(f"{path} is not a sweep or bench folder: {GROUP_FILE} is missing") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path / GROUP_FILE} is not a valid group file ({exc})") from None


def open_group(path: Path, kind: str, ask: dict[str, Any], identity: Sequence[str] | None = None) -> Group:
    """The group for `ask` in `path`: the one already there if it was asked the same runs (the `identity`
    keys of the ask, default all; a re-run resumes it, under the new ask), else a new one. UsageError when
    the folder holds another sweep or bench, or runs of its own. Writes nothing (the caller saves once
    everything is checked)."""
    keys = list(ask) if identity is None else list(identity)
    if (path / GROUP_FILE).exists():
        group = load_group(path)
        if group.kind != kind or any(group.ask.get(k) != ask.get(k) for k in keys):
            raise UsageError(f"{path} is the folder of another {group.kind} ({_describe(group.ask)}); expected a new "
                             f"folder, or this {kind}'s own to resume it")
        return Group(path, kind, ask, group.trials)
    if (path / "run.json").exists():
        raise UsageError(f"{path} is a run folder; expected a folder for the {kind}")
    if list_runs(path):
        raise UsageError(f"{path} already holds runs of no {kind}; expected a new folder")
    return Group(path, kind, ask)


def _describe(ask: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in ask.items() if v not in (None, [], ()))


# -- runs of a trial ------------------------------------------------------------------------------------
def attempts(folder: Path, trial: Trial) -> list[RunDir]:
    """The trial's runs in `folder`, oldest attempt first."""
    marker = f"_{trial.name}-a"
    found = [r for r in list_runs(folder) if marker in r.run_id and r.run_id.rsplit(marker, 1)[1].isdigit()]
    return sorted(found, key=lambda r: int(r.run_id.rsplit(marker, 1)[1]))


def latest_run(folder: Path, trial: Trial) -> RunDir | None:
    runs = attempts(folder, trial)
    return runs[-1] if runs else None


def run_error(run: RunDir) -> str:
    """What ended a run that did not finish, in one line: its last error event, else its state."""
    message = None
    for event in EventTail(run.events_path).poll():
        if event["kind"] == "log" and event.get("level") == "error":
            message = str(event.get("msg"))
    return message or f"{run.effective_state()} (see {run.stdout_path})"


@dataclass
class TrialOutcome:
    """How a trial ended in this sweep: `state` finished, failed (after its retry), stopped or skipped
    (finished before), its newest run, and the error of a failure."""

    trial: Trial
    state: str
    run: RunDir | None = None
    error: str | None = None


@dataclass
class _Live:
    trial: Trial
    run: RunDir
    proc: subprocess.Popen[bytes] | None  # None: a run of an earlier sweep process, waited for by its status
    attempt: int

    def ended(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is not None
        return self.run.effective_state() not in ACTIVE_STATES


@dataclass
class TrialPool:
    """Runs `trials` in `folder`, at most `parallel` at once, each failure retried `retries` times;
    `say(line)` hears each start and end."""

    folder: Path
    trials: Sequence[Trial]
    parallel: int = 1
    retries: int = 1
    say: Callable[[str], None] = lambda _line: None
    poll_s: float = 0.5
    outcomes: dict[str, TrialOutcome] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.parallel < 1:
            raise UsageError(f"--parallel {self.parallel}: at least one run must run at a time; expected 1 or more")

    def run(self) -> list[TrialOutcome]:
        pending: list[tuple[Trial, int]] = []
        live: list[_Live] = []
        for trial in self.trials:
            runs = attempts(self.folder, trial)
            newest = runs[-1] if runs else None
            state = newest.effective_state() if newest else None
            if newest is not None and state == "finished":
                self.outcomes[trial.name] = TrialOutcome(trial, "skipped", newest)
                self.say(f"{trial.name} {trial.label}: finished before ({newest.run_id}), skipped")
            elif newest is not None and state in ACTIVE_STATES:
                live.append(_Live(trial, newest, None, len(runs)))
                self.say(f"{trial.name} {trial.label}: still running from before ({newest.run_id}), waiting for it")
            else:
                pending.append((trial, len(runs) + 1))
        tries = {trial.name: 0 for trial in self.trials}
        try:
            while pending or live:
                while pending and len(live) < self.parallel:
                    trial, attempt = pending.pop(0)
                    live.append(self._start(trial, attempt))
                    tries[trial.name] += 1
                time.sleep(self.poll_s)
                for item in [x for x in live if x.ended()]:
                    live.remove(item)
                    retry = self._ended(item, tries[item.trial.name] <= self.retries)
                    if retry:
                        pending.insert(0, (item.trial, item.attempt + 1))
        except KeyboardInterrupt:
            for item in live:
                with contextlib.suppress(UsageError):
                    launcher.stop(item.run, by="Ctrl-C on the sweep")
            for item in live:
                launcher.wait_stopped(item.run, timeout_s=30)
            raise
        return [self.outcomes[t.name] for t in self.trials]

    def _start(self, trial: Trial, attempt: int) -> _Live:
        job = launcher.Job(**{**asdict(trial.job), "name": f"{trial.name}-a{attempt}"})
        run, proc = launcher.launch(job, self.folder)
        self.say(f"{trial.name} {trial.label}: started {run.run_id}" + (f" (attempt {attempt})" if attempt > 1 else ""))
        return _Live(trial, run, proc, attempt)

    def _ended(self, item: _Live, may_retry: bool) -> bool:
        """Record how `item` ended; True when it should be started again."""
        state = item.run.effective_state()
        if state == "finished":
            self.outcomes[item.trial.name] = TrialOutcome(item.trial, "finished", item.run)
            self.say(f"{item.trial.name} {item.trial.label}: finished")
            return False
        error = run_error(item.run)
        if may_retry and state != "stopped":
            self.say(f"{item.trial.name} {item.trial.label}: {state} ({error}); trying once more")
            return True
        self.outcomes[item.trial.name] = TrialOutcome(item.trial, state, item.run, error)
        self.say(f"{item.trial.name} {item.trial.label}: {state}: {error}")
        return False


# -- figures --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunFigures:
    """A run's figures (module docstring): `seconds` of training over `steps` env steps, `wall` seconds
    from launch to end, phase ms per env step, win rate in points and what it is (`win_from`: "eval",
    "eval/win_rate" or "rollout/win_rate"), mean episode reward."""

    state: str
    steps: int
    seconds: float
    wall: float | None
    ms: dict[str, float]
    win: float | None
    reward: float | None
    win_from: str | None = None
    val: float | None = None
    wm_verdict: str | None = None

    @property
    def sps(self) -> float | None:
        return self.steps / self.seconds if self.seconds > 0 else None

    def value(self, key: str) -> float | None:
        return {"sps": self.sps, "win": self.win, "reward": self.reward, "val": self.val}[key]


def run_figures(run: RunDir) -> RunFigures:
    steps, seconds, last = 0, 0.0, 0
    ms_sum: dict[str, float] = {}
    metrics: dict[str, float] = {}
    eval_rows: list[Any] = []
    val: float | None = None
    wm_verdict: str | None = None
    for event in EventTail(run.events_path).poll():
        if event["kind"] == "perf" and event.get("sps"):
            window = int(event.get("step", 0)) - last
            steps, seconds, last = steps + window, seconds + window / float(event["sps"]), int(event["step"])
            for phase, value in event.get("ms", {}).items():
                ms_sum[phase] = ms_sum.get(phase, 0.0) + float(value) * window
        elif event["kind"] == "metric":
            metrics.update(event.get("values", {}))
            if "val_total" in event.get("values", {}):
                val = min(float(event["values"]["val_total"]), val if val is not None else math.inf)
        elif event["kind"] == "wm_bench":
            wm_verdict = str(event.get("verdict"))
        elif event["kind"] == "eval" and event.get("rows") and all("win_rate" in r for r in event["rows"]):
            eval_rows = list(event["rows"])
    status = run.read_status()
    start, end = status.get("launched") or status.get("created"), status.get("ended")
    win_from = "eval" if eval_rows else next((k for k in ("eval/win_rate", "rollout/win_rate") if k in metrics), None)
    win = suite_score(eval_rows) if eval_rows else metrics.get(win_from) if win_from else None
    return RunFigures(run.effective_state(status), steps, seconds, end - start if start and end else None,
                      {p: v / steps for p, v in ms_sum.items()} if steps else {},
                      100.0 * win if win is not None else None, metrics.get("rollout/ep_rew_mean"), win_from,
                      val, wm_verdict)


# -- the comparison table -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    trial: Trial
    run: RunDir | None
    figures: RunFigures | None
    error: str | None = None


def group_rows(group: Group) -> list[Row]:
    """Each trial of the group with its newest run and that run's figures (read from the folder)."""
    rows = []
    for trial in group.trials:
        run = latest_run(group.path, trial)
        if run is None:
            rows.append(Row(trial, None, None))
            continue
        figures = run_figures(run)
        ended_badly = figures.state not in ("finished", *ACTIVE_STATES)
        rows.append(Row(trial, run, figures, run_error(run) if ended_badly else None))
    return rows


def best_row(rows: Sequence[Row], by: str) -> Row | None:
    """The finished row with the best `by` figure, the highest or for LOWEST_BEST the lowest (ties: the
    faster)."""
    scored = [r for r in rows if r.figures is not None and r.figures.state == "finished"
              and r.figures.value(by) is not None]
    if not scored:
        return None
    sign = -1.0 if by in LOWEST_BEST else 1.0
    return max(scored, key=lambda r: (sign * r.figures.value(by), r.figures.sps or 0.0))  # type: ignore[union-attr,operator]


HEADER = ("TRIAL", "CONFIG", "STATE", "TIME", "STEPS/S", "WIN %", "REWARD", "BEST")
# A world model's: samples/s, its lowest validation loss (val_total) and the latest wm-bench verdict.
WORLD_MODEL_HEADER = ("TRIAL", "CONFIG", "STATE", "TIME", "SAMPLES/S", "VAL LOSS", "WM-BENCH", "BEST")


def table_header(algo: str) -> tuple[str, ...]:
    return WORLD_MODEL_HEADER if algo == WORLD_MODEL else HEADER


def table_cells(rows: Sequence[Row], by: str, algo: str) -> list[tuple[str, ...]]:
    """Each row's cells under `table_header(algo)`."""
    best = best_row(rows, by)
    cells: list[tuple[str, ...]] = []
    for row in rows:
        f = row.figures
        if algo == WORLD_MODEL:
            quality = (cell(f.val if f else None, ".4f"), (f.wm_verdict if f else None) or "-")
        else:
            quality = (cell(f.win if f else None, ".1f"), cell(f.reward if f else None, ".3f"))
        cells.append((row.trial.name, row.trial.label, f.state if f else "not started",
                      cell(f.wall if f else None, ".0f", "s"), cell(f.sps if f else None, ",.0f"), *quality,
                      f"* best {by}" if row is best else ""))
    return cells


def cell(value: float | None, fmt: str, unit: str = "") -> str:
    """A table cell: `value` formatted with `fmt` and `unit`, or '-' when there is none."""
    return "-" if value is None else f"{value:{fmt}}{unit}"


def text_table(header: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    rows = [tuple(header), *map(tuple, cells)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def markdown_table(header: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in cells)])


def sweep_report(group: Group, by: str | None = None) -> tuple[str, str, dict[str, Any]]:
    """(text, markdown, JSON) of a sweep's comparison table, read from its folder; best by `by` (default:
    `default_best_by` of its trainer)."""
    rows = group_rows(group)
    algo = str(group.ask.get("algo"))
    by = by or default_best_by(algo)
    cells = table_cells(rows, by, algo)
    head = f"sweep {group.path.name}: {algo} on {group.ask.get('env')}, {len(rows)} trials, " \
           f"{group.ask.get('steps'):,} {step_unit(algo)} each; best by {by}"
    errors = [f"{r.trial.name}: {r.error}" for r in rows if r.error]
    header = table_header(algo)
    text = "\n".join([head, text_table(header, cells), *errors])
    markdown = "\n\n".join([f"# {head}", markdown_table(header, cells), *(f"- {e}" for e in errors)]) + "\n"
    data = {"kind": "sweep", "folder": str(group.path), "ask": group.ask, "best_by": by,
            "rows": [{"trial": r.trial.name, "label": r.trial.label, "run": r.run.run_id if r.run else None,
                      "figures": asdict(r.figures) if r.figures else None, "sps": r.figures.sps if r.figures else None,
                      "error": r.error, "best": c[-1] != ""} for r, c in zip(rows, cells, strict=True)]}
    return text, markdown, data


def save_report(group: Group, markdown: str, data: dict[str, Any]) -> None:
    """report.md and report.json in the group folder."""
    (group.path / "report.md").write_text(markdown, encoding="utf-8")
    atomic_write_json(group.path / "report.json", data)
