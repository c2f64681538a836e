"""Fabricated run folders for the TUI's tests and bench: fixed contents, fixed times, no trainer.

Written through engine.runstore and engine.events, the way a run process writes them, so the TUI
reads them like any other run. Deterministic: the same arguments give the same files (times included).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.events import EventWriter, metric_event, perf_event, status_event
from engine.profiles import resolve
from engine.runstore import RunDir, atomic_write_json
from tui.widgets.step_plot import StepAxes

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: every fabricated time counts from here

# The sizes every screen snapshot is taken at. 120x40 draws the same screen larger, so it is `heavy`: `make
# test` compares both, `make test-fast` the 80x24 one (the size a screen must fit). Ids stay size0/size1,
# which name the stored snapshots.
SNAPSHOT_SIZES = [(80, 24), pytest.param((120, 40), marks=pytest.mark.heavy)]
PHASES_MS = {"action": 0.12, "enemy_turn": 0.05, "env_step": 0.30, "replay_sample": 0.0,
             "train_fwd": 0.40, "train_bwd": 0.55, "log": 0.01}
METRICS = ("rollout/ep_rew_mean", "eval/win_rate", "train/policy_loss", "train/value_loss",
           "train/learning_rate", "train/entropy_loss", "train/grad_norm")


def perf_at(i: int, growth: str = "env_step", base_sps: float = 5000.0, ms_scale: float = 1.0) -> dict[str, Any]:
    """The i-th perf event of a fabricated run: `growth`'s ms rises over the run, the others wobble
    (all times `ms_scale`)."""
    ms = {p: round(v * ms_scale * (1 + 0.02 * math.sin(i)), 4) for p, v in PHASES_MS.items()}
    ms[growth] = round(PHASES_MS[growth] * ms_scale * (1 + 0.05 * i), 4)
    event = perf_event(4096 * (i + 1), base_sps * (1 + 0.1 * math.sin(i / 3)), 40 + i % 7, ms)
    event["t"] = T0 + 10 * i
    return event


def metrics_at(i: int, win_shift: float = 0.0) -> dict[str, Any]:
    values = {"rollout/ep_rew_mean": -1 + 1.5 * (1 - math.exp(-i / 8)),
              "eval/win_rate": min(0.95, 0.3 + 0.03 * i) + win_shift,
              "train/policy_loss": 0.05 * math.exp(-i / 10), "train/value_loss": 0.8 * math.exp(-i / 6),
              "train/learning_rate": 3e-4 * (1 - i / 100), "train/entropy_loss": -1.6 + 0.01 * i,
              "train/grad_norm": 0.4 + 0.1 * math.cos(i)}
    event = metric_event(4096 * (i + 1), {k: round(v, 5) for k, v in values.items()})
    event["t"] = T0 + 10 * i + 5
    return event


def fabricate_run(runs_dir: Path, run_id: str, *, state: str = "finished", profile: str = "balance",
                  algo: str = "ppo", env: str = "beastybar", windows: int = 20, growth: str = "env_step",
                  base_sps: float = 5000.0, created: float = T0, raw_tail: str = "",
                  exit_code: int | None = None, assignments: tuple[str, ...] = (), win_shift: float = 0.0,
                  ms_scale: float = 1.0) -> RunDir:
    """A trainer run with `windows` perf+metric events, ending in `state`; `raw_tail` is appended to
    events.jsonl verbatim afterwards (corrupt lines, a torn last line); `win_shift` moves its win rates,
    `ms_scale` scales its [PERF] phases."""
    cfg = resolve(profile, algo=algo, env=env, environ={}, cli={"run.total_steps": 4096 * windows},
                  assignments=assignments)
    info = {"kind": "trainer", "command": ["trainctl", "run", "--profile", profile], "created": created,
            "algo": algo, "env": env, "profile": profile, "total_steps": 4096 * windows, "seed": 0,
            "config": cfg.to_json()}
    run = RunDir.create(runs_dir, run_id, info)
    with EventWriter(run.events_path) as writer:
        writer.write({**status_event("running"), "t": created})
        for i in range(windows):
            writer.write(perf_at(i, growth, base_sps, ms_scale))
            writer.write(metrics_at(i, win_shift))
        if state != "running":
            writer.write({**status_event(state, exit_code=exit_code), "t": created + 10 * windows})
    with open(run.events_path, "a", encoding="utf-8") as f:
        f.write(raw_tail)
    status = {"state": state, "created": created, "started": created, "step": 4096 * windows,
              "exit_code": exit_code, "updated": created + 10 * windows}
    if state in ("finished", "failed", "stopped"):
        status["ended"] = created + 10 * windows
    atomic_write_json(run.status_path, status)
    run.stdout_path.write_text("".join(f"[PERF] step={4096 * (i + 1)} sps=5000\n" for i in range(windows))
                               + f"run {state}\n", encoding="utf-8")
    return run


def write_big_events(path: Path, events: int) -> int:
    """Append `events` short perf/metric lines (9 perf : 1 metric) quickly; returns the file size."""
    template_perf = ('{"t":%d,"step":%d,"kind":"perf","sps":%d,"eps":40.0,"ms":{"action":0.12,'
                     '"env_step":%.3f,"train_fwd":0.4,"train_bwd":0.55,"log":0.01}}\n')
    template_metric = '{"t":%d,"step":%d,"kind":"metric","values":{"rollout/ep_rew_mean":%.4f}}\n'
    chunk: list[str] = []
    with open(path, "a", encoding="utf-8") as f:
        for i in range(events):
            if i % 10 == 9:
                chunk.append(template_metric % (T0 + i, 64 * i, math.tanh(i / 300_000)))
            else:
                chunk.append(template_perf % (T0 + i, 64 * i, 5000 + i % 500, 0.3 + i / 5_000_000))
            if len(chunk) >= 50_000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))
    return path.stat().st_size


def torn_line(event: dict[str, Any]) -> str:
    """The first half of an event's line, without its newline (a writer killed mid-write)."""
    text = json.dumps(event)
    return text[: len(text) // 2]


def standard_runs(runs_dir: Path) -> list[RunDir]:
    """Three runs: finished (balance), failed (speed, exit 1), and a running one whose events hold a
    corrupt line and end in a torn line."""
    return [
        fabricate_run(runs_dir, "20260101T000000_ppo_beastybar_balance"),
        fabricate_run(runs_dir, "20260101T010000_ppo_beastybar_speed", profile="speed", state="failed",
                      exit_code=1, growth="train_bwd", base_sps=7000, created=T0 + 3600),
        fabricate_run(runs_dir, "20260101T020000_corrupt", state="running", created=T0 + 7200,
                      raw_tail='{"kind": "perf", this is not json\n' + torn_line(perf_at(30))),
    ]


def screen_text(app: Any) -> str:
    """What the app's current screen shows, as plain text lines (tests read it as a person would)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def settle(app: Any, pilot: Any, polls: int = 3, timeout_s: float = 10.0) -> None:
    """Wait until the watcher has posted `polls` more results and the screen has drawn them."""
    target = app.polls + polls
    waited = 0.0
    while app.polls < target and waited < timeout_s:
        app.wake()  # poll now rather than at the end of the poll interval
        await pilot.pause(0.02)
        waited += 0.02
    assert app.polls >= target, f"watcher stalled at {app.polls} polls"
    await pilot.pause()
    await plots_drawn(app, pilot, timeout_s)


def _plots_behind(app: Any) -> tuple[list[str], list[Any]]:
    """The plots on screen whose newest points are not drawn yet (a plot draws on a later frame than the
    one that shows its title, and again once its canvases have their new size), and the plots' sizes."""
    screen_text(app)  # composing the screen renders what is due
    visible = [axes for axes in app.screen.query(StepAxes) if axes in app.screen._compositor.visible_widgets]
    behind = [str(axes.parent.id if axes.parent else axes.id) for axes in visible if not axes.up_to_date]
    return behind, [axes.size for axes in visible]


async def plots_drawn(app: Any, pilot: Any, timeout_s: float = 10.0) -> None:
    """Wait until every plot on screen shows the points it was last given, at a size that held for two
    looks in a row (a panel lays its plots out again once it knows its own height)."""
    waited, sizes = 0.0, None
    while waited < timeout_s:
        behind, now = _plots_behind(app)
        if not behind and now == sizes:
            return
        sizes = now
        await pilot.pause(0.02)
        waited += 0.02
    raise AssertionError(f"plots not drawn after {timeout_s} s: {behind}")


def _flat(text: str) -> str:
    return " ".join(text.split())


async def wait_until(app: Any, pilot: Any, shows: Any, what: str, timeout_s: float = 10.0) -> str:
    """Wait until `shows(screen text)` is true (an exception counts as false: the screen may be between
    two states); returns the screen's text."""
    waited = 0.0
    while waited < timeout_s:
        shown = screen_text(app)
        try:
            if shows(shown):
                return shown
        except (StopIteration, IndexError, ValueError):
            pass
        await pilot.pause(0.05)
        waited += 0.05
    raise AssertionError(f"never shown: {what}; screen:\n{screen_text(app)}")


async def wait_for_text(app: Any, pilot: Any, text: str, timeout_s: float = 10.0) -> str:
    """Wait until `text` is on screen, read as a person reads it: a phrase may wrap onto the next line
    (where it wraps depends on the lengths of paths and numbers around it), so runs of spaces and line
    ends count as one space. Returns the screen's text."""
    waited = 0.0
    while waited < timeout_s:
        shown = screen_text(app)
        if _flat(text) in _flat(shown):
            await plots_drawn(app, pilot, timeout_s)
            return screen_text(app)
        await pilot.pause(0.05)
        waited += 0.05
    raise AssertionError(f"{text!r} never appeared; screen:\n{screen_text(app)}")



# -- sweep and bench folders, in the formats engine.sweep and engine.abtest write ------------------------
def fabricate_bench(folder: Path, pairs: int, *, ratio: float = 1.5, win_shift: float = 0.0,
                    until_decided: bool = False, running: bool = False, seeds: int | None = None) -> Any:
    """A bench folder of `pairs` finished seeds (the candidate `ratio` faster, its win rate `win_shift`
    higher, both with a small per-seed wobble), written as `trainctl bench` writes it: group.json through
    engine.sweep.Group, each run folder named by its trial. With `running`, one more pair whose first
    run is still running. Returns the group."""
    from engine import abtest, sweep  # the TUI's tests of runs alone need none of it

    ask = abtest.BenchAsk("dqn-per", "skirmish", 4096 * 20, abtest.Side("balance"), abtest.Side("speed"),
                          seeds=seeds or max(pairs + running, 3), until_decided=until_decided,
                          sets=("torch.threads=1",))
    trials = [t for i in range(pairs + running) for t in ask.pair(i)]
    group = sweep.Group(folder, "bench", ask.to_json(), tuple(trials))
    folder.mkdir(parents=True, exist_ok=True)
    group.save()
    for index, trial in enumerate(trials):
        if running and index == len(trials) - 1:
            break  # the running pair's second run has not started
        created = T0 + 600 * index
        stamp = datetime.fromtimestamp(created, UTC).strftime("%Y%m%dT%H%M%S")
        candidate = trial.name.endswith("candidate")
        wobble = 1 + 0.03 * math.sin(3 * index)
        fabricate_run(folder, f"{stamp}_{trial.name}-a1", profile=trial.job.profile, algo="dqn-per", env="skirmish",
                      state="running" if running and index == len(trials) - 2 else "finished", created=created,
                      base_sps=5000.0 * wobble * (ratio if candidate else 1.0),
                      win_shift=(win_shift if candidate else 0.0) + 0.01 * math.cos(5 * index),
                      ms_scale=(1 / ratio if candidate else 1.0) / wobble)
    return group


def fabricate_sweep(folder: Path, *, running: bool = False) -> Any:
    """A sweep of a 2 x 2 grid (ppo.n_epochs x ppo.batch_size) as `trainctl sweep` writes it: trials from
    engine.sweep.expand, group.json through engine.sweep.Group, a run folder per trial (the last one
    still running with `running`), their speeds and win rates all different. Returns the group."""
    from engine import sweep

    ask = sweep.SweepAsk("ppo", "beastybar", 4096 * 20, grid=("ppo.n_epochs=2,4", "ppo.batch_size=512,1024"))
    trials, _ = sweep.expand(ask)
    group = sweep.Group(folder, "sweep", {k: list(v) if isinstance(v, tuple) else v for k, v in vars(ask).items()},
                        tuple(trials))
    folder.mkdir(parents=True, exist_ok=True)
    group.save()
    for index, trial in enumerate(trials):
        created = T0 + 900 * index
        stamp = datetime.fromtimestamp(created, UTC).strftime("%Y%m%dT%H%M%S")
        fabricate_run(folder, f"{stamp}_{trial.name}-a1", assignments=trial.job.assignments, created=created,
                      state="running" if running and index == len(trials) - 1 else "finished",
                      base_sps=(3000.0, 5000.0, 4000.0, 6000.0)[index], win_shift=(0.0, -0.2, 0.05, -0.1)[index])
    return group

def fabricate_world_model_sweep(folder: Path) -> Any:
    """A sweep of three world-model trials (worldmodel.batch_size 1024, 2048, 4096), all finished: 9,000,
    12,000 and 15,000 samples/s; validation losses (0.9, 0.5, 0.7), (0.8, 0.45) and (0.6,) epoch by epoch;
    wm-bench NO-GO, GO and none. Returns the group."""
    from engine import launcher, sweep

    trials = tuple(sweep.Trial(f"t0{i}", f"worldmodel.batch_size={batch}",
                               launcher.Job("worldmodel", "duel", steps=4096))
                   for i, batch in ((1, 1024), (2, 2048), (3, 4096)))
    group = sweep.Group(folder, "sweep", {"algo": "worldmodel", "env": "duel", "steps": 4096}, trials)
    folder.mkdir(parents=True, exist_ok=True)
    group.save()
    val_totals_by_trial = ((0.9, 0.5, 0.7), (0.8, 0.45), (0.6,))
    for trial, sps, val_totals, verdict in zip(trials, (9000.0, 12000.0, 15000.0), val_totals_by_trial,
                                               ("NO-GO", "GO", None), strict=True):
        run = RunDir.create(folder, f"20260101T000000_{trial.name}-a1",
                            {"kind": "trainer", "algo": "worldmodel", "env": "duel", "profile": "balance",
                             "total_steps": 4096})
        events = [perf_event(4096, sps, 1.0, {"train_fwd": 0.1}),
                  *(metric_event(4096 * (i + 1), {"val_total": v}) for i, v in enumerate(val_totals))]
        if verdict is not None:
            events.append({"t": 0.0, "step": 4096, "kind": "wm_bench", "verdict": verdict, "failed": []})
        run.events_path.write_text("".join(json.dumps(e) + "\n" for e in events))
        run.write_status(state="finished", step=4096, launched=1000.0, ended=1042.0)
    return group


async def notified(app: Any, pilot: Any, timeout_s: float = 10.0) -> list[str]:
    """Wait until the app has posted a notification (a key's handler may run a frame or two after
    `press` returns, later still on a loaded machine); returns every notification's message."""
    waited = 0.0
    while not app._notifications and waited < timeout_s:
        await pilot.pause(0.05)
        waited += 0.05
    return [n.message for n in app._notifications]


def panel_snapshot(snap_compare: Any, runs_dir: Path, size: tuple[int, int], key: str, text: str) -> bool:
    """Compare the app on `runs_dir` (relative: the test chdirs, so that paths on screen are stable) after
    pressing the panel `key` and seeing `text` with its snapshot at `size`."""
    from tui.app import TrainctlApp

    app = TrainctlApp(runs_dir, clock=lambda: T0 + 86400, poll_s=0.1)

    async def run_before(pilot: Any) -> None:
        await settle(pilot.app, pilot)
        await pilot.press(key)
        await wait_for_text(pilot.app, pilot, text)

    return bool(snap_compare(app, terminal_size=size, run_before=run_before))
