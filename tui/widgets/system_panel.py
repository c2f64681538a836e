"""CPU and RAM of the selected run's process tree, how the live runs share the machine's cores (in a
warning style when they compete for them), and the GPU's use, or why they are not shown."""

from __future__ import annotations

from textual.widgets import Static

from tui.format import mebibytes
from tui.model import RunSnapshot
from tui.system import SystemSample


def core_lines(s: RunSnapshot, sample: SystemSample) -> list[str]:
    """`cores 2 · runs sharing them 2 · this run 1 torch thread`, the machine's CPU use and load, and a
    warning line when runs compete for cores; none when the sample has no core reading."""
    use = sample.cores
    if use is None:
        return []
    line = f"[b]cores[/b]    {use.cores} · runs sharing them {use.runs}"
    if s.active and use.threads is not None:
        line += f" · this run {use.threads} torch thread{'s' if use.threads != 1 else ''}"
    elif s.active:
        line += " · this run: no claim on the cores (a wrapped command or an older run)"
    lines = [line]
    if sample.machine_cpu_percent is not None and sample.load is not None:
        lines.append(f"[b]machine[/b]  CPU {sample.machine_cpu_percent:.0f}% of all cores · load {sample.load:.1f}")
    competition = sample.competition()
    if competition is not None:
        lines.append(f"[bold yellow]▲ runs compete for cores: {competition}[/]")
    return lines


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
        if sample is not None:
            lines += core_lines(s, sample)
        gpu = sample.gpu if sample is not None else ("sampling…",)
        lines += [f"[b]GPU[/b]      {line}" for line in gpu]
        self.update("\n".join(lines))
