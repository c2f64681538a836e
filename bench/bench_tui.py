"""Bench of the TUI watching live runs: its CPU share and the latency from a key press to the screen.

A generator process appends events to 4 run folders at 100 events/s each (perf and metric events
alternating, status.json rewritten once a second, as trainers do) while the TUI watches them headless
(Textual Pilot, 120x40) in this process. CPU share = this process's CPU time (time.process_time: the
app, its watcher thread and the headless driver; the generator runs in its own process and is not
counted) over wall time, for a window without key presses. Latency = wall time from pressing a key
(up/down: the monitor switches to another run) until the composed screen shows that run's title
(Pilot's own settling after the key is not counted), median
and 95th percentile; and, apart, until that run's plots are drawn too (a newly selected run's plots are
drawn on the frame after the one that shows it). Also times opening a run with 1,000,000 events (until
its history is on screen).
Prints the figures, and last their ratios to the targets (<= 15 % of a core, <= 100 ms).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from tui_fixtures import T0, fabricate_run, metrics_at, perf_at, screen_text, write_big_events  # noqa: E402

from engine.events import EventWriter  # noqa: E402
from engine.runstore import RunDir  # noqa: E402
from tui.app import TrainctlApp  # noqa: E402
from tui.widgets.run_monitor import RunMonitor  # noqa: E402
from tui.widgets.step_plot import StepAxes  # noqa: E402

RUNS = 4
EVENTS_PER_S = 100
WARMUP_S = 3.0
CPU_WINDOW_S = 10.0
KEY_PRESSES = 40
CPU_TARGET = 15.0
LATENCY_TARGET_MS = 100.0


def generate(runs_dir: Path, seconds: float) -> None:
    """Append EVENTS_PER_S events a second to every run under runs_dir, in 20 ms batches."""
    runs = sorted(p for p in runs_dir.iterdir() if p.is_dir())
    writers = [EventWriter(RunDir(p).events_path) for p in runs]
    start = time.monotonic()
    written, last_status = 0, 0.0
    while (now := time.monotonic()) - start < seconds:
        due = int((now - start) * EVENTS_PER_S)
        for i in range(written, due):
            for writer in writers:
                writer.write(perf_at(i) if i % 2 == 0 else metrics_at(i))
        written = due
        if now - last_status >= 1.0:
            for p in runs:
                RunDir(p).write_status(step=4096 * (written + 1))
            last_status = now
        time.sleep(0.02)


async def watch(runs_dir: Path) -> tuple[float, list[float], list[float], list[float]]:
    app = TrainctlApp(runs_dir, clock=lambda: T0)
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.sleep(WARMUP_S)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.sleep(CPU_WINDOW_S)
        cpu_share = 100.0 * (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        latencies: list[float] = []
        cpu_ms: list[float] = []
        plotted: list[float] = []  # until the run's plots are drawn as well
        run_ids = sorted(p.name for p in runs_dir.iterdir())
        monitor = app.screen.query_one(RunMonitor)
        for press in range(KEY_PRESSES):
            key = "up" if press % 2 == 0 else "down"
            row = run_ids.index(app.screen.selected)  # type: ignore[attr-defined]
            target = run_ids[row - 1 if key == "up" else row + 1]
            start, cpu_start = time.perf_counter(), time.process_time()
            # The key goes in as a task, so the clock stops when the screen shows the other run, not when
            # Pilot has finished its own settling.
            pressing = asyncio.create_task(pilot.press(key))
            # Wait (cheaply, so the wait does not steal the loop) for the monitor to take the new run,
            # then compose the screen once: that frame is what the terminal would be sent.
            while (shown := monitor.shown_run) is None or shown.run_id != target:
                await asyncio.sleep(0.001)
            assert f"{target} ·" in screen_text(app)
            latencies.append(1000.0 * (time.perf_counter() - start))
            cpu_ms.append(1000.0 * (time.process_time() - cpu_start))
            while not all(axes.up_to_date for axes in app.screen.query(StepAxes)
                          if axes in app.screen._compositor.visible_widgets):
                await asyncio.sleep(0.001)
            plotted.append(1000.0 * (time.perf_counter() - start))
            await pressing
            await asyncio.sleep(0.3)
    return cpu_share, latencies, cpu_ms, plotted


async def open_big(runs_dir: Path) -> float:
    start = time.perf_counter()
    app = TrainctlApp(runs_dir, clock=lambda: T0)
    async with app.run_test(size=(120, 40)) as pilot:
        while "history sampled" not in screen_text(app):
            await pilot.pause(0.01)
        return time.perf_counter() - start


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--generate":
        generate(Path(sys.argv[2]), float(sys.argv[3]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "live"
        for i in range(RUNS):
            fabricate_run(runs_dir, f"20260101T00000{i}_live{i}", state="running", windows=5)
        seconds = WARMUP_S + CPU_WINDOW_S + KEY_PRESSES * 0.5 + 10
        generator = subprocess.Popen([sys.executable, __file__, "--generate", str(runs_dir), str(seconds)])
        try:
            cpu_share, latencies, cpu_ms, plotted = asyncio.run(watch(runs_dir))
        finally:
            generator.kill()
            generator.wait()

        big_dir = Path(tmp) / "big"
        run = fabricate_run(big_dir, "20260101T000000_big", state="running", windows=2)
        size = write_big_events(run.events_path, 1_000_000)
        open_s = asyncio.run(open_big(big_dir))

    p50 = statistics.median(latencies)
    p95 = sorted(latencies)[int(0.95 * (len(latencies) - 1))]
    print(f"generator: {RUNS} runs x {EVENTS_PER_S} events/s (separate process, not counted)")
    print(f"TUI CPU over {CPU_WINDOW_S:.0f} s: {cpu_share:.1f} % of one core")
    cpu_p95 = sorted(cpu_ms)[int(0.95 * (len(cpu_ms) - 1))]
    print(f"key -> screen over {len(latencies)} presses: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
          f"max {max(latencies):.1f} ms")
    print(f"  CPU time of this process in those spans: p50 {statistics.median(cpu_ms):.1f} ms, p95 {cpu_p95:.1f} ms "
          "(wall minus CPU = waiting for a core on a shared machine)")
    plotted_p95 = sorted(plotted)[int(0.95 * (len(plotted) - 1))]
    print(f"  until its plots are drawn too: p50 {statistics.median(plotted):.1f} ms, p95 {plotted_p95:.1f} ms")
    print(f"open a run of 1,000,000 events ({size / 2**20:.0f} MiB) until its history is on screen: {open_s:.2f} s "
          "(target < 2 s)")
    print(f"ratio cpu/target = {cpu_share / CPU_TARGET:.2f}x (target <= 1: {cpu_share:.1f} % vs {CPU_TARGET:.0f} %), "
          f"ratio latency p95/target = {p95 / LATENCY_TARGET_MS:.2f}x (target <= 1: {p95:.0f} ms vs "
          f"{LATENCY_TARGET_MS:.0f} ms)")


if __name__ == "__main__":
    main()
