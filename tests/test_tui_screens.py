"""The run monitor's plots and config panel, driven with keys as a person would (plain `async def`
tests: run with pytest-asyncio in auto mode), and the plot's tick and range rules as properties."""

from __future__ import annotations

import gc
import json
import re
import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from textual.app import App, ComposeResult
from textual.widgets import DataTable
from tui_fixtures import (
    T0,
    fabricate_run,
    metrics_at,
    perf_at,
    screen_text,
    settle,
    standard_runs,
    wait_for_text,
    wait_until,
)

from engine.launcher import create_wrapped_run
from engine.profiles import ALGO_SECTION, ALGO_SECTIONS, read_by
from tui import app as tui_app
from tui.app import TrainctlApp
from tui.widgets import step_plot
from tui.widgets.run_monitor import RunMonitor
from tui.widgets.step_plot import MIN_HALF_SPAN, StepAxes, StepPlot, nice_ticks, tick_label, y_range

SPEED_RUN = "20260101T010000_ppo_beastybar_speed"
WINDOWS = 20  # perf and metric events in each fabricated run: steps 4096 .. 81920
KEY_ROW = re.compile(r"^\s*(run|env|ppo|dqn|per|torch|log|checkpoint|worldmodel|data)\.\w+\s")


def make_app(runs_dir: Path) -> TrainctlApp:
    return TrainctlApp(runs_dir, clock=lambda: T0 + 86400, poll_s=0.1)


@asynccontextmanager
async def standard_app(runs_dir: Path, size: tuple[int, int]) -> AsyncIterator[tuple[TrainctlApp, Any]]:
    """The app on `standard_runs`, its first polls drawn: (app, pilot)."""
    standard_runs(runs_dir)
    app = make_app(runs_dir)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        yield app, pilot


def plot_lines(shown: str, title: str, columns: slice = slice(None)) -> list[str]:
    """The lines of the plot whose title starts with `title`: its title line, down to its x tick labels
    (the first line after it that starts with "steps"), cut to `columns`."""
    lines = [line[columns] for line in shown.splitlines()]
    top = next(i for i, line in enumerate(lines) if line.strip().startswith(title))
    bottom = next(i for i in range(top + 1, len(lines)) if lines[i].strip().startswith("steps"))
    return lines[top:bottom + 1]


def y_labels(plot: list[str]) -> list[str]:
    """The y tick labels of a plot's lines (left of its box; the median's row has a ┄ before the box)."""
    return [m.group(1) for line in plot if (m := re.match(r"^\s*([^\s┄]+)[ ┄][\u2500-\u257f]", line))]


def sections_listed(shown: str) -> set[str]:
    return {m.group(1) for line in shown.splitlines() if (m := KEY_ROW.match(line))}


# -- the throughput and metric plots --------------------------------------------------------------

async def test_throughput_plot_has_env_step_axis_and_marks_last_value_and_median(tmp_path: Path) -> None:
    sps = [perf_at(i, base_sps=7000)["sps"] for i in range(WINDOWS)]
    async with standard_app(tmp_path, (80, 24)) as (app, pilot):
        await pilot.press("up")
        title = f"steps/s {sps[-1]:,.0f} ● last  ┄ median {statistics.median(sps):,.0f}"
        shown = await wait_for_text(app, pilot, title)
        plot = plot_lines(shown, "steps/s", slice(0, 40))  # the [PERF] breakdown is on the right
        x_ticks = plot[-1].split()
        assert x_ticks[0] == "steps" and len(x_ticks) >= 3  # the x axis: env steps, compact labels
        assert set(x_ticks[1:]) <= {"20k", "40k", "60k", "80k"}
        box = plot[1:-1]
        assert any("●" in line for line in box)
        median_rows = [line for line in box if re.match(r"^[^┄]*┄[\u2500-\u257f]", line)]  # marked on the y axis
        assert len(median_rows) == 1
        assert y_labels(box)[-1] == "0" and y_labels(box[-1:]) == ["0"]  # drawn from zero, at the bottom
        eps = perf_at(WINDOWS - 1, base_sps=7000)["eps"]
        assert f"episodes/s {eps:,.1f} ● last" in shown


async def test_metric_plots_show_each_default_metric_over_env_steps(tmp_path: Path) -> None:
    reward = [metrics_at(i)["values"]["rollout/ep_rew_mean"] for i in range(WINDOWS)]
    async with standard_app(tmp_path, (120, 40)) as (app, pilot):
        await pilot.press("up", "2")
        title = f"rollout/ep_rew_mean {reward[-1]:.4g} ● last  ┄ median {statistics.median(reward):.4g}"
        shown = await wait_for_text(app, pilot, title)
        right_column = next(line.index("eval/win_rate") for line in shown.splitlines() if "eval/win_rate" in line)
        plot = plot_lines(shown, "rollout/ep_rew_mean", slice(0, right_column))
        assert plot[-1].split()[1:] == ["20k", "40k", "60k", "80k"]
        # The reward climbs from -1 to 0.36: its y axis shows where it started (-1.0) and the last
        # value is marked at the top right of the box.
        assert {"-1.0", "0"} <= set(y_labels(plot))
        assert re.search(r"●[┃┣]", plot[2])
        for key in ("eval/win_rate", "train/policy_loss", "train/learning_rate", "train/entropy_loss"):
            assert re.search(re.escape(key) + r" \S+ ● last  ┄ median \S+", shown), key
        assert len(re.findall(r"(?m)steps\s+20k\s+40k\s+60k\s+80k", shown)) == 6  # three rows of two


async def test_metric_plots_scroll_with_the_keyboard_at_80x24(tmp_path: Path) -> None:
    async with standard_app(tmp_path, (80, 24)) as (app, pilot):
        await pilot.press("up", "2")
        shown = await wait_for_text(app, pilot, "rollout/ep_rew_mean")
        assert "train/grad_norm" not in shown  # six plots do not fit 80x24: the last is below
        await pilot.press("tab", "tab")  # from the runs list to the tabs, then to the plots
        await pilot.press("end")
        await wait_for_text(app, pilot, "train/grad_norm")


async def test_a_plot_is_redrawn_only_when_its_series_changes(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    run = fabricate_run(tmp_path, "20260101T000000_ppo_beastybar_balance", state="running", windows=5)
    draws: dict[str, int] = {}
    original = StepAxes.draw

    def counting(self: StepAxes, *args: Any, **kwargs: Any) -> None:
        plot = str(self.parent.id if self.parent else None)
        draws[plot] = draws.get(plot, 0) + 1
        original(self, *args, **kwargs)

    monkeypatch.setattr(StepAxes, "draw", counting)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(app, pilot, "steps/s")
        await settle(app, pilot)
        before = dict(draws)
        assert before.get("sps-plot", 0) >= 1
        with open(run.events_path, "a", encoding="utf-8") as f:  # a metric event: new snapshot, same sps
            f.write(json.dumps(metrics_at(5)) + "\n")
        await settle(app, pilot)
        assert draws == before
        with open(run.events_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({**perf_at(5), "sps": 4321.0}) + "\n")
        await wait_for_text(app, pilot, "steps/s 4,321")
        assert draws["sps-plot"] == before["sps-plot"] + 1
        with open(run.events_path, "a", encoding="utf-8") as f:  # soon after: drawn when the plot may redraw
            f.write(json.dumps({**perf_at(6), "step": 204_800, "sps": 4444.0}) + "\n")
        await wait_for_text(app, pilot, "steps/s 4,444")
        await wait_until(app, pilot, lambda shown: plot_lines(shown, "steps/s", slice(0, 40))[-1].split()[-1] == "200k",
                         "the steps/s plot's x axis reaching the newest step, 200k")


async def test_another_run_is_drawn_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More points of one run wait for the plot's next redraw; the points of another run do not."""
    monkeypatch.setattr(step_plot, "REDRAW_EVERY_S", 1e9)  # no deferred redraw ever comes
    fabricate_run(tmp_path, "20260101T000000_ppo_beastybar_balance", windows=5)  # to 20,480 steps
    fabricate_run(tmp_path, "20260101T010000_ppo_beastybar_speed", profile="speed", created=T0 + 3600)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(app, pilot, "speed · finished")
        shown = await wait_for_text(app, pilot, "80k ")  # the plot draws on its first frame with a size
        assert plot_lines(shown, "steps/s", slice(0, 40))[-1].split()[-1] == "80k"
        await pilot.press("up")
        shown = await wait_for_text(app, pilot, "balance · finished")
        shown = await wait_for_text(app, pilot, "20k ")
        assert plot_lines(shown, "steps/s", slice(0, 40))[-1].split()[-1] == "20k"


async def test_another_run_is_shown_with_gc_held_and_resumed_after_the_frame(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run switch holds garbage collection off while the monitor shows the run, and the frame after
    turns it back on (the fallback timer is pushed out of reach, so only the frame can)."""
    monkeypatch.setattr(tui_app, "GC_HOLD_MAX_S", 1e9)
    held: list[bool] = []  # whether collection was off, each time the monitor was given the balance run
    original = RunMonitor.show

    def recording(self: RunMonitor, s: Any, *args: Any, **kwargs: Any) -> None:
        if s is not None and s.run_id.endswith("balance"):
            held.append(not gc.isenabled())
        original(self, s, *args, **kwargs)

    monkeypatch.setattr(RunMonitor, "show", recording)
    fabricate_run(tmp_path, "20260101T000000_ppo_beastybar_balance", windows=5)
    fabricate_run(tmp_path, "20260101T010000_ppo_beastybar_speed", profile="speed", created=T0 + 3600)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_text(app, pilot, "speed · finished")
        await pilot.press("up")
        await wait_for_text(app, pilot, "balance · finished")
        await settle(app, pilot)
        assert held and held[0], "the monitor showed the new run with garbage collection on"
        assert gc.isenabled()


async def test_another_sources_points_blank_the_plot_until_the_next_frame() -> None:
    """The frame that shows another run's points has a blank plot, never the old run's line under the
    new title; the next frame draws the new line."""
    class OnePlot(App[None]):
        def compose(self) -> ComposeResult:
            yield StepPlot("loss", classes="metric-plot")

    def has_line(shown: str) -> bool:
        return any("\u2800" < char <= "\u28ff" for char in shown)  # braille dots

    app = OnePlot()
    async with app.run_test(size=(60, 12)) as pilot:
        plot = app.query_one(StepPlot)
        plot.show([(0.0, 1.0), (4096.0, 0.5), (8192.0, 0.75)], source="a")
        await wait_until(app, pilot, lambda shown: has_line(shown) and app.query_one(StepAxes).up_to_date,
                         "run a's line")
        plot.show([(0.0, 2.0), (40960.0, 3.0), (81920.0, 2.5)], source="b")
        shown = screen_text(app)  # the frame composed now, before the next one
        assert "loss 2.5" in shown and not has_line(shown) and not app.query_one(StepAxes).up_to_date
        await wait_until(app, pilot, lambda shown: has_line(shown) and "3.00" in shown, "run b's line")


async def test_a_metric_name_is_shown_as_written() -> None:
    class OnePlot(App[None]):
        def compose(self) -> ComposeResult:
            yield StepPlot("loss[/policy] [b]", classes="metric-plot")

    app = OnePlot()
    async with app.run_test(size=(60, 12)) as pilot:
        app.query_one(StepPlot).show([(0.0, 1.0), (4096.0, 0.5)])
        await pilot.pause()
        assert "loss[/policy] [b] 0.5 ● last" in screen_text(app)


async def test_a_metric_that_turns_nan_is_shown_as_nan_and_the_rest_still_drawn(tmp_path: Path) -> None:
    run = fabricate_run(tmp_path, "20260101T000000_ppo_beastybar_balance", state="running", windows=5)
    with open(run.events_path, "a", encoding="utf-8") as f:  # Python's json writes a NaN loss this way
        f.write('{"t": 1, "step": 24576, "kind": "metric", "values": {"train/policy_loss": NaN}}\n')
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        shown = await wait_for_text(app, pilot, "train/policy_loss nan ● last")
        median = statistics.median(metrics_at(i)["values"]["train/policy_loss"] for i in range(5))
        assert f"median {median:.4g}" in shown
        assert "steps" in plot_lines(shown, "train/policy_loss", slice(0, 60))[-1]


# -- the config panel -----------------------------------------------------------------------------

async def test_config_of_a_ppo_run_hides_other_algos_keys_until_toggled(tmp_path: Path) -> None:
    async with standard_app(tmp_path, (80, 24)) as (app, pilot):
        await pilot.press("up", "5")
        shown = await wait_for_text(app, pilot, "ppo.batch_size")
        assert "dqn.*, per.*, worldmodel.* hidden" in shown
        assert sections_listed(shown) >= {"run", "ppo"} and not sections_listed(shown) & {"dqn", "per"}
        assert "a All keys" in shown  # offered from the runs list, on the config panel only
        await pilot.press("a")
        shown = await wait_for_text(app, pilot, "a ppo run does not read data.*, dist.*, dqn.*, per.*,")
        while not isinstance(app.focused, DataTable) or app.focused.id != "config-table":
            await pilot.press("tab")
        await pilot.press("ctrl+end")
        await wait_for_text(app, pilot, "data.dir")
        assert "data" in sections_listed(screen_text(app))  # the last of the sections a ppo run does not read
        await pilot.press("a")
        shown = await wait_for_text(app, pilot, "dqn.*, per.*, worldmodel.* hidden")
        await pilot.press("ctrl+end")
        assert not sections_listed(screen_text(app)) & {"dqn", "per", "worldmodel", "data", "dist"}
        await pilot.press("1")
        assert "a All keys" not in await wait_for_text(app, pilot, "steps/s")


async def test_config_of_a_dqn_per_run_lists_dqn_and_per_not_ppo(tmp_path: Path) -> None:
    fabricate_run(tmp_path, "20260101T000000_dqn-per_skirmish_balance", algo="dqn-per", env="skirmish")
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        shown = await wait_for_text(app, pilot, "ppo.*, worldmodel.* hidden")
        listed = sections_listed(shown)
        assert {"run", "dqn", "per"} <= listed and "ppo" not in listed


@pytest.mark.slow  # making a run folder asks git for the commit
async def test_config_of_a_wrapped_command_shows_the_command_as_written(tmp_path: Path) -> None:
    create_wrapped_run(["python3", "train.py", "--tag", "[/x]"], tmp_path, ["trainctl", "run", "--", "python3"],
                       None, "balance")
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        shown = await wait_for_text(app, pilot, "wrapped run: no configuration of ours, only its command")
        assert "python3 train.py --tag [/x]" in shown


def test_every_algo_has_its_own_sections() -> None:
    assert set(ALGO_SECTIONS) == set(ALGO_SECTION)
    assert all(ALGO_SECTION[algo] in sections for algo, sections in ALGO_SECTIONS.items())
    assert read_by("ppo.gamma", "ppo") and not read_by("per.alpha", "ppo") and not read_by("dqn.tau", "ppo")
    assert read_by("per.alpha", "dqn-per") and not read_by("ppo.gamma", "dqn-per")
    assert read_by("ppo.gamma", "some-foreign-trainer") and read_by("env.num_envs", "ppo")


# -- ticks and ranges -----------------------------------------------------------------------------

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(finite, st.floats(min_value=1e-6, max_value=1e9), st.integers(min_value=1, max_value=12))
def test_ticks_are_round_evenly_spaced_and_inside_the_range(lo: float, span: float, count: int) -> None:
    assume(span > abs(lo) * 1e-6)  # a range far wider than float resolution (y_range makes them so)
    hi = lo + span
    ticks = nice_ticks(lo, hi, count)
    assert 1 <= len(ticks) <= count
    if len(ticks) > 1:
        assert all(lo - span * 1e-6 <= t <= hi + span * 1e-6 for t in ticks)
        steps = [b - a for a, b in pairwise(ticks)]
        assert max(steps) - min(steps) <= steps[0] * 1e-6 + abs(hi) * 1e-12  # float rounding at large values
        assert len(set(tick_label(t, steps[0]) for t in ticks)) == len(ticks)  # labels tell them apart


def test_tick_labels_are_compact() -> None:
    assert [tick_label(t, 500_000) for t in (0, 500_000, 1_000_000, 1_500_000)] == ["0", "500k", "1.0M", "1.5M"]
    assert [tick_label(t, 0.25) for t in (-0.5, 0.25)] == ["-0.50", "0.25"]
    assert tick_label(2.75e-4, 2.5e-5) == "2.75e-4"


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).filter(lambda m: abs(m) > 1e-3),
       st.lists(st.floats(min_value=-0.01, max_value=0.01), min_size=1, max_size=50))
def test_noise_around_a_steady_value_stays_small(median: float, noise: list[float]) -> None:
    """Values within ±1% of their median take at most a tenth of the height (the range spans at least
    ±MIN_HALF_SPAN of the median), so they draw as a line, not as cliffs."""
    values = [median * (1 + n) for n in noise]
    lo, hi = y_range(values, median, zero_based=False)
    assert lo <= min(values) and max(values) <= hi
    assert max(values) - min(values) <= (hi - lo) * 0.02 / (2 * MIN_HALF_SPAN)


@given(st.lists(st.floats(min_value=0, max_value=1e7), min_size=1, max_size=50))
def test_throughput_is_drawn_from_zero(values: list[float]) -> None:
    lo, hi = y_range(values, statistics.median(values), zero_based=True)
    assert lo == 0 and hi >= max(values) and hi > 0
