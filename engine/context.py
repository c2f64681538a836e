"""What every trainer shares inside a run process: the run folder, events, perf windows, console
lines, checkpoints, the stop request, and the torch set-up with its honest CUDA fallbacks (and
`torch.compile` with an eager fallback).

A trainer (engine/ppo.py, engine/dqn.py) receives a `RunContext` and reports through it; it never
writes run files by itself. Console output goes to stdout, which the launcher points at stdout.log.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine import cores
from engine.checkpoint import checkpoint_name, save_checkpoint
from engine.distributed import Ranks
from engine.events import (
    STATUS_PREFIX,
    DiscardedEvents,
    EventWriter,
    format_metric_line,
    format_perf_line,
    log_event,
    metric_event,
    perf_event,
    status_event,
)
from engine.perf import PerfTimer, PerfWindow
from engine.profiles import ResolvedConfig
from engine.runstore import RunDir, StopRequest


@dataclass
class TorchSetup:
    device: torch.device
    amp: bool
    compile: bool
    notes: list[str] = field(default_factory=list)


def setup_torch(cfg: ResolvedConfig) -> TorchSetup:
    """Set torch's CPU threads to the run's share of the cores (engine.cores; `torch.threads` > 0 wins),
    pick the device and apply the CUDA switches of the profile; on CPU each is off, and says why."""
    t = cfg.section("torch")
    notes = []
    share = cores.joined()
    if share is not None:  # a run process: re-read now, since runs started with this one have joined
        share.refresh()
        torch.set_num_threads(share.threads)
        notes.append(share.summary())
    elif t["threads"]:
        torch.set_num_threads(t["threads"])
    cuda = torch.cuda.is_available()
    if t["device"] == "cuda" and not cuda:
        notes.append("torch.device=cuda asked but CUDA is not available: running on CPU")
    use_cuda = cuda and t["device"] != "cpu"
    device = torch.device("cuda" if use_cuda else "cpu")
    why_off = "no CUDA device" if not cuda else "device is cpu"
    if use_cuda:
        torch.backends.cuda.matmul.allow_tf32 = t["tf32"]
        torch.backends.cudnn.allow_tf32 = t["tf32"]
        torch.backends.cudnn.benchmark = t["cudnn_benchmark"]
        notes.append(f"CUDA {torch.cuda.get_device_name(0)}: amp={t['amp']} tf32={t['tf32']} "
                     f"cudnn_benchmark={t['cudnn_benchmark']} compile={t['compile']} pin_memory={t['pin_memory']}")
    else:
        for key in ("amp", "tf32", "cudnn_benchmark", "compile", "pin_memory"):
            if t[key]:
                notes.append(f"torch.{key} is on in the profile but off for this run: {why_off}")
    return TorchSetup(device=device, amp=use_cuda and t["amp"], compile=use_cuda and t["compile"], notes=notes)


def versions() -> dict[str, str]:
    import gymnasium
    import numpy
    import sb3_contrib
    import stable_baselines3

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "gymnasium": gymnasium.__version__, "stable_baselines3": stable_baselines3.__version__,
            "sb3_contrib": sb3_contrib.__version__}


def compile_modules(modules: Iterable[torch.nn.Module], trial: Callable[[], object], ctx: RunContext,
                    what: str) -> bool:
    """`torch.compile` `modules` in place (state_dict keys unchanged) and run `trial()`; if it fails,
    undo the compilation, log why and run eagerly. Returns whether compiled modules are in use."""
    networks = list(modules)
    for net in networks:
        net.compile()
    try:
        with torch.no_grad():
            trial()
    except Exception as exc:  # any backend failure means the same: fall back to eager
        for net in networks:
            net._compiled_call_impl = None  # nn.Module.compile's hook; None restores eager calls
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        ctx.log("warning", f"torch.compile failed ({why}); running the {what} eagerly")
        return False
    ctx.log("info", f"torch.compile: {what} compiled")
    return True


class RunContext:
    """The run-side reporting API. Steps are env steps; times are wall-clock.

    In a run of many processes (engine.distributed) only global rank 0 writes events, console lines and
    checkpoints, and only each machine's first process its status; the others' calls write nothing."""

    def __init__(self, run: RunDir, cfg: ResolvedConfig, stop: StopRequest | None = None,
                 ranks: Ranks | None = None) -> None:
        self.run = run
        self.cfg = cfg
        self.stop = stop if stop is not None else StopRequest()  # StopRequest is falsy until set
        self.ranks = ranks if ranks is not None else Ranks()
        self.events = EventWriter(run.events_path) if self.ranks.writes_run else DiscardedEvents()
        self.timer = PerfTimer(enabled=cfg["log.timing"])
        self.console = cfg["log.console"]
        self.total_steps = cfg["run.total_steps"]
        self._started = time.time()
        self._last_status_write = 0.0

    # -- lines and events -----------------------------------------------------------------------
    def say(self, msg: str) -> None:
        if self.ranks.writes_run:
            print(msg, flush=True)

    def log(self, level: str, msg: str, step: int | None = None) -> None:
        """A log event, echoed to stdout (warnings and errors always; info when console is on)."""
        self.events.write(log_event(level, msg, step))
        if self.console or level != "info":
            self.say(f"[{level.upper()}] {msg}")

    def banner(self, lines: Mapping[str, Any]) -> None:
        self.say(f"trainctl run {self.run.run_id}")
        for key, value in lines.items():
            self.say(f"  {key:<12} {value}")

    def set_state(self, state: str, **extra: Any) -> None:
        self.events.write(status_event(state, **extra))
        if self.ranks.records_status:
            self.run.write_status(state=state, **extra)

    def perf(self, step: int, **extra: Any) -> PerfWindow:
        """Close the perf window at `step`: a perf event, a [PERF] line if console is on, a status line."""
        window = self.timer.window(step)
        event = perf_event(step, window.sps, window.eps, window.ms, **extra)
        self.events.write(event)
        if self.console:
            self.say(format_perf_line(event))
        self.say(self._status_line(step, window.sps))
        self.progress(step, force=True)
        return window

    def metrics(self, step: int, values: Mapping[str, float]) -> None:
        if not self.cfg["log.enabled"] or not values:
            return
        event = metric_event(step, values)
        self.events.write(event)
        if self.console:
            self.say(format_metric_line(event))

    def progress(self, step: int, force: bool = False) -> None:
        """Record the step in status.json (at most once a second unless forced) and, at most every
        engine.cores.CHECK_EVERY_S, follow a change of the run's share of the cores."""
        now = time.time()
        if force or now - self._last_status_write >= 1.0:
            if self.ranks.records_status:
                self.run.write_status(step=int(step))
            self._last_status_write = now
            share = cores.joined()
            change = share.poll() if share is not None else None
            if change is not None:
                torch.set_num_threads(change.new)
                self.log("info", change.message, step)

    def _status_line(self, step: int, sps: float) -> str:
        share = 100.0 * step / self.total_steps if self.total_steps else 0.0
        elapsed = time.time() - self._started
        eta = (self.total_steps - step) / sps if sps > 0 and step < self.total_steps else 0.0
        return (f"{STATUS_PREFIX} step={step}/{self.total_steps} ({share:.0f}%) sps={sps:.0f} "
                f"elapsed={elapsed:.0f}s eta={eta:.0f}s")

    # -- checkpoints ----------------------------------------------------------------------------
    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Write a checkpoint (rank 0 alone: another rank returns the path rank 0 writes)."""
        if not self.ranks.writes_run:
            return self.run.checkpoints / checkpoint_name(step)
        path = save_checkpoint(self.run.checkpoints, step, {**state, "step": int(step)},
                               keep=self.cfg["checkpoint.keep"])
        self.events.write(log_event("info", f"checkpoint {path.name}", step))
        return path

    def close(self) -> None:
        self.events.close()

