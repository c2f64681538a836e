"""CPU and RAM of a run's process tree (psutil) and the GPU's use (nvidia-ml-py), for the system panel.

Called from the TUI's watcher thread, never from the event loop. A run whose process is gone, a
machine without a GPU or without NVML: the sample says so in words instead of failing. No Textual.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil


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


class SystemProbe:
    """Samples a process tree; keeps psutil handles between calls so CPU shares are measured over the
    time since the previous sample (the first sample of a process reads 0 %)."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
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
        if not pid:
            return SystemSample(None, 0, None, 0, gpu, note="no process recorded for this run")
        try:
            root = self._proc(pid)
            tree = [root, *(self._proc(child.pid) for child in root.children(recursive=True))]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return SystemSample(pid, 0, None, 0, gpu, note=f"process {pid} is not running")
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
        return SystemSample(pid, alive, cpu, rss, gpu)

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
