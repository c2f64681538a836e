"""CPU and RAM of a run's process tree (psutil), how the live runs share the machine's cores
(engine.cores' registry) with the machine's CPU use and load, and the GPU's use (nvidia-ml-py), for
the system panel.

Called from the TUI's watcher thread, never from the event loop. A run whose process is gone, a
machine without a GPU or without NVML: the sample says so in words instead of failing. No Textual.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

from engine.cores import CoreUse, core_use

# The machine is short of cores when its CPUs are this busy (percent of all) and its 1-minute load
# average (runnable processes) is above the core count.
BUSY_CPU_PERCENT = 95.0


@dataclass(frozen=True)
class SystemSample:
    """`cpu_percent` is summed over the tree (100 = one core); `rss_bytes` likewise; `gpu` is one line
    per device, or the reason there is none."""

    pid: int | None
    processes: int
    cpu_percent: float | None
    rss_bytes: int
    gpu: tuple[str, ...]
    note: str | None = None
    cores: CoreUse | None = None
    machine_cpu_percent: float | None = None  # every CPU of the machine, 100 = all busy
    load: float | None = None  # 1-minute load average

    def competition(self) -> str | None:
        """Why runs compete for cores now, or None: the live runs claim more torch threads than there
        are cores, or the whole machine is busy with more runnable processes than cores."""
        use = self.cores
        if use is None:
            return None
        if use.oversubscribed:
            return f"runs claim {use.claimed} torch threads on {use.cores} cores"
        cpu, load = self.machine_cpu_percent, self.load
        if cpu is not None and load is not None and cpu >= BUSY_CPU_PERCENT and load > use.cores:
            return f"the machine is busy: CPU {cpu:.0f}%, load {load:.1f} on {use.cores} cores"
        return None


class SystemProbe:
    """Samples a process tree; keeps psutil handles between calls so CPU shares are measured over the
    time since the previous sample (the first sample of a process reads 0 %)."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        psutil.cpu_percent(None)  # starts the machine's CPU measurement; each sample reads since the last
        self._gpu_reason: str | None = None
        self._nvml = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
        except Exception as exc:  # NVML raises its own error classes for "no library", "no driver", ...
            self._gpu_reason = f"no GPU ({type(exc).__name__})"

    def sample(self, pid: int | None) -> SystemSample:
        gpu = self._gpu_lines()
        machine = {"cores": core_use(pid), "machine_cpu_percent": psutil.cpu_percent(None),
                   "load": os.getloadavg()[0]}
        if not pid:
            return SystemSample(None, 0, None, 0, gpu, note="no process recorded for this run", **machine)
        try:
            root = self._proc(pid)
            tree = [root, *(self._proc(child.pid) for child in root.children(recursive=True))]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return SystemSample(pid, 0, None, 0, gpu, note=f"process {pid} is not running", **machine)
        cpu, rss, alive = 0.0, 0, 0
        for proc in tree:
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
                alive += 1
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        live = {p.pid for p in tree}
        self._procs = {k: v for k, v in self._procs.items() if k in live}
        return SystemSample(pid, alive, cpu, rss, gpu, **machine)

    def _proc(self, pid: int) -> psutil.Process:
        proc = self._procs.get(pid)
        if proc is None or not proc.is_running():
            proc = self._procs[pid] = psutil.Process(pid)
            proc.cpu_percent(None)
        return proc

    def _gpu_lines(self) -> tuple[str, ...]:
        nvml = self._nvml
        if nvml is None:
            return (self._gpu_reason or "no GPU",)
        lines = []
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                util = nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = nvml.nvmlDeviceGetMemoryInfo(handle)
                lines.append(f"GPU {index}: {util.gpu}% busy, {mem.used / 2**20:,.0f} / {mem.total / 2**20:,.0f} MiB")
        except Exception as exc:  # a driver that goes away mid-run
            return (f"GPU unavailable ({type(exc).__name__})",)
        return tuple(lines) or ("no GPU",)
