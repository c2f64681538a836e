"""CPU and RAM of the selected run's process tree and the GPU's use, or why they are not shown."""

from __future__ import annotations

from textual.widgets import Static

from tui.format import mebibytes
from tui.model import RunSnapshot
from tui.system import SystemSample


class SystemPanel(Static):
    def show(self, s: RunSnapshot, sample: SystemSample | None) -> None:
        lines = []
        if not s.active:
            lines.append(f"[b]process[/b]  run is {'deleted' if s.gone else s.state}: no process to measure")
        elif sample is None:
            lines.append("[b]process[/b]  sampling…")
        elif sample.note:
            lines.append(f"[b]process[/b]  {sample.note}")
        else:
            lines.append(f"[b]process[/b]  pid {sample.pid}, {sample.processes} process"
                         f"{'es' if sample.processes != 1 else ''} in the tree")
            lines.append(f"[b]CPU[/b]      {sample.cpu_percent or 0:.0f}% (100% = one core)")
            lines.append(f"[b]RAM[/b]      {mebibytes(sample.rss_bytes)} resident")
        gpu = sample.gpu if sample is not None else ("sampling…",)
        lines += [f"[b]GPU[/b]      {line}" for line in gpu]
        self.update("\n".join(lines))
