"""The TUI's model of runs (no Textual): bounded histories, plots by step, incremental reading."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from tui_fixtures import fabricate_run, perf_at, torn_line

from engine.events import EventWriter, metric_event
from tui.model import RunsWatcher, Series, resample


def test_series_stays_bounded_and_spans_the_whole_history() -> None:
    series = Series(capacity=64)
    for step in range(10_000):
        series.add(step, float(step))
    assert len(series.points) <= 64
    assert series.points[0] == (0, 0.0) and series.points[-1][0] >= 10_000 - series.stride
    steps = [s for s, _ in series.points]
    gaps = {b - a for a, b in itertools.pairwise(steps)}
    assert gaps == {series.stride}  # evenly thinned
    assert series.last == 9999.0


def test_resample_buckets_by_step_not_by_index() -> None:
    # Dense points late in the run must not take more of the plot than the sparse early ones.
    points = [(0.0, 0.0), (50.0, 0.0)] + [(90.0 + i / 10, 1.0) for i in range(100)]
    plot = resample(points, 10)
    assert len(plot) == 10
    assert plot[:9] == [0.0] * 9 and plot[9] == 1.0
    assert resample([(5.0, 1.0), (5.0, 3.0)], 2) == [1.0, 3.0]  # one step: spread by index
    assert resample([], 5) == []


def test_watcher_follows_appended_events_and_counts_bad_lines(tmp_path: Path) -> None:
    run = fabricate_run(tmp_path, "20260101T000000_ppo_beastybar_balance", state="running", windows=2)
    watcher = RunsWatcher(tmp_path)
    (first,) = watcher.poll().runs
    assert first.step == 8192 and first.malformed_lines == 0 and len(first.sps_history) == 2
    assert watcher.poll().runs[0] is first  # nothing changed: the same snapshot
    with EventWriter(run.events_path) as writer:
        writer.write(perf_at(5))
        writer.write(metric_event(30_000, {"custom/thing": 2.5}))
    with open(run.events_path, "a", encoding="utf-8") as f:
        f.write("][\n" + '{"kind": "perf", "ms": "not a dict"}\n' + torn_line(perf_at(6)))
    (later,) = watcher.poll().runs
    assert later.step == 30_000 and len(later.sps_history) == 3
    assert later.metrics_latest["custom/thing"] == 2.5
    assert later.malformed_lines == 2  # one line not JSON, one event of the wrong shape
    assert "custom/thing" in later.metric_keys()


def test_a_run_folder_deleted_and_made_again_is_read_afresh(tmp_path: Path) -> None:
    import shutil

    run = fabricate_run(tmp_path, "20260101T000000_ppo_beastybar_balance")
    watcher = RunsWatcher(tmp_path)
    watcher.poll()
    shutil.rmtree(run.path)
    (gone,) = watcher.poll().runs
    assert gone.gone and gone.step == 81920
    fabricate_run(tmp_path, "20260101T000000_ppo_beastybar_balance", windows=1)
    (again,) = watcher.poll().runs
    assert not again.gone and again.step == 4096


@pytest.mark.slow
def test_the_model_and_system_probe_do_not_import_textual() -> None:
    import subprocess
    import sys

    code = "import sys, tui.model, tui.system, tui.format, cli.main; print('textual' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"


def test_a_poll_keeps_the_same_note_object_while_the_note_reads_the_same(tmp_path: Path) -> None:
    # The run monitor redraws when a poll brings a new object (it compares by identity): a runs folder
    # that does not exist yet must not redraw it on every poll.
    watcher = RunsWatcher(tmp_path / "runs")
    first, second = watcher.poll(), watcher.poll()
    assert first.note is not None and "does not exist yet" in first.note
    assert second.note is first.note
    (tmp_path / "runs").mkdir()
    assert watcher.poll().note is None
