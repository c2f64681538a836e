"""The trainctl Textual app: runs list and run monitor, launcher, compare — on a runs folder.

State lives here as reactive attributes: `runs_poll` (the newest `tui.model.PollResult`, which the
screens watch), `chosen_metrics`, `marked` runs, and the runs this app `launched` (asked about on quit).
One thread worker polls the folder (`tui.model.RunsWatcher`) and posts `RunsPolled`; the event loop
never reads run files. Runs are started with engine.launcher in their own session, so quitting the app
or losing the terminal never stops them; the app reads their folders like any other run's.
"""

from __future__ import annotations

import gc
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message_pump import MessagePump
from textual.reactive import var
from textual.worker import get_current_worker

from engine import launcher
from engine.errors import UsageError
from engine.runstore import ACTIVE_STATES, RunDir
from engine.sweep import load_group
from tui.messages import RunsPolled
from tui.model import PollResult, RunsWatcher
from tui.screens.groups import group_screen
from tui.screens.quit import QuitScreen
from tui.screens.runs import RunsScreen
from tui.style_cache import release_dropped_widgets
from tui.system import SystemProbe

POLL_S = 0.5  # seconds between reads of the runs folder
CANCEL_CHECK_S = 0.05  # how often the sleeping watcher checks whether the app is closing
SELECT_POLL_DELAY_S = 0.05  # after a new run is selected, its log and processes are read this much later
GC_HOLD_MAX_S = 1.0  # the longest a key's frame holds garbage collection off (`hold_gc_for_frame`)
STOP_FOLLOW_S = 120.0  # after `still stopping`, how long the TUI keeps following a stop to say how it ended


class TrainctlApp(App[None]):
    CSS_PATH = "trainctl.tcss"
    TITLE = "trainctl"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit_app", "Quit", priority=False)]

    runs_poll: var[PollResult | None] = var(None, always_update=True)
    chosen_metrics: var[tuple[str, ...] | None] = var(None)
    marked: var[frozenset[str]] = var(frozenset())

    def __init__(self, runs_dir: Path, *, focus_run: str | None = None, launch_default: bool = False,
                 clock: Callable[[], float] = time.time, poll_s: float = POLL_S,
                 probe: SystemProbe | None = None, open_group: Path | None = None) -> None:
        """`clock` gives unix seconds for ages (tests fix it); `probe` samples process trees (None: a
        real psutil/NVML probe); `launch_default` starts Beasty Bar PPO (balance) on opening;
        `open_group` (a sweep or bench folder) opens its screen over the runs screen."""
        super().__init__()
        self.runs_dir = runs_dir
        self.focus_run = focus_run
        self.launch_default = launch_default
        self.clock = clock
        self.poll_s = poll_s
        self.probe = probe
        self.open_group = open_group
        self.watcher: RunsWatcher | None = None
        self.polls = 0
        self.launched: dict[str, subprocess.Popen[bytes]] = {}
        self._wake = threading.Event()
        self.sub_title = str(runs_dir)
        # No animations unless asked for (TEXTUAL_ANIMATIONS=full): over SSH every frame of a tab's
        # sliding underline is bytes on the wire and CPU taken from the trainers (~18 frames a switch).
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            self.animation_level = "none"

    def on_mount(self) -> None:
        self.push_screen(RunsScreen(focus_run=self.focus_run))
        if self.open_group is not None:
            self.push_screen(group_screen(self.open_group, load_group(self.open_group).kind))
        self._watch_runs()
        if self.launch_default:
            try:
                self.launch_run(launcher.DEFAULT_JOB)
            except UsageError as exc:
                self.notify(f"default run not launched: {exc}", severity="error", timeout=30)

    # -- the watcher ------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="watch", exit_on_error=True)
    def _watch_runs(self) -> None:
        """Poll the runs folder until the app closes; a `wake()` polls at once."""
        worker = get_current_worker()
        watcher = RunsWatcher(self.runs_dir, self.probe if self.probe is not None else SystemProbe())
        self.watcher = watcher
        while not worker.is_cancelled:
            self.post_message(RunsPolled(watcher.poll()))
            deadline = time.monotonic() + self.poll_s
            # Short waits, so that the app's exit (which cancels this worker) is not held up by a poll.
            while not worker.is_cancelled and (left := deadline - time.monotonic()) > 0:
                if self._wake.wait(min(left, CANCEL_CHECK_S)):
                    break
            self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def select(self, run_id: str | None) -> None:
        """The run whose log and process tree the watcher reads, polled right after the next frame (a
        poll at once would hold the GIL while the key's frame is drawn)."""
        if self.watcher is not None and self.watcher.selected != run_id:
            self.watcher.selected = run_id
            self.set_timer(SELECT_POLL_DELAY_S, self.wake)

    def hold_gc_for_frame(self, screen: MessagePump) -> None:
        """No garbage collection until `screen` has drawn its next frame (at most `GC_HOLD_MAX_S`): a full
        collection walks the whole heap (80-180 ms of CPU on a loaded machine), and when one fell between
        a key and the frame answering it, that key was among the slowest. It runs after the frame instead."""
        if not gc.isenabled():
            return
        gc.disable()
        fallback = self.set_timer(GC_HOLD_MAX_S, gc.enable)

        def resume() -> None:
            fallback.stop()
            gc.enable()

        screen.call_after_refresh(resume)

    def on_runs_polled(self, message: RunsPolled) -> None:
        self.polls += 1
        for proc in self.launched.values():
            proc.poll()  # reap launched runs that ended, so they are no zombies of ours
        release_dropped_widgets()
        self.runs_poll = message.result

    # -- launching and stopping -------------------------------------------------------------------
    def launch_run(self, job: launcher.Job) -> str:
        """Start `job` through the launch path `trainctl run` uses (UsageError as it would raise);
        run.json records the equivalent `trainctl run` command."""
        run, proc = launcher.launch(job, self.runs_dir)
        self.launched[run.run_id] = proc
        self.focus_run = run.run_id
        if isinstance(self.screen, RunsScreen):
            self.screen.focus_run = run.run_id
        self.wake()
        return run.run_id

    @work(thread=True, group="signal")
    def signal_run(self, run_path: Path, kill: bool, wait: bool = True) -> None:
        """Stop (or kill) a run as `trainctl stop` does; with `wait`, a graceful stop is followed for a
        few seconds (`launcher.wait_stopped`) and how it ended is notified."""
        run = RunDir(run_path)
        try:
            note = launcher.stop(run, kill=kill, by="trainctl TUI")
        except UsageError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.notify(note)
        self.wake()
        if wait and not kill:
            worker = get_current_worker()
            outcome = launcher.wait_stopped(run, timeout_s=launcher.STOP_WAIT_S, cancelled=lambda: worker.is_cancelled)
            if outcome.state in ACTIVE_STATES and not worker.is_cancelled:
                # A busy machine or a long last update: say so now, and say how it ended when it has.
                self.notify(outcome.line)
                outcome = launcher.wait_stopped(run, timeout_s=STOP_FOLLOW_S, poll_s=0.5,
                                                cancelled=lambda: worker.is_cancelled)
            if not worker.is_cancelled:
                ended_badly = outcome.state in ("failed", "lost")
                self.notify(outcome.line, severity="warning" if ended_badly else "information", timeout=10)
                self.wake()

    def active_launched(self) -> list[str]:
        """Runs this app launched that are still starting or running."""
        runs = {s.run_id: s for s in self.runs_poll.runs} if self.runs_poll else {}
        return [r for r, proc in self.launched.items()
                if (r in runs and runs[r].active) or (r not in runs and proc.poll() is None)]

    def action_quit_app(self) -> None:
        active = self.active_launched()
        if not active:
            self.exit()
            return

        def answer(choice: str | None) -> None:
            if choice == "stop":
                for run_id in active:  # the requests are durable: no need to wait for the runs to take them
                    self.signal_run(self.runs_dir / run_id, False, wait=False)
                self.set_timer(0.3, self.exit)
            elif choice == "leave":
                self.exit()

        self.push_screen(QuitScreen(len(active)), answer)


def run_app(runs_dir: Path, focus_run: str | None = None, launch_default: bool = False,
            open_group: Path | None = None) -> int:
    app = TrainctlApp(runs_dir, focus_run=focus_run, launch_default=launch_default, open_group=open_group)
    app.run()
    return 0
