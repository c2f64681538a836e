"""The table that compares runs side by side, shared by the TUI's compare screen and `trainctl compare`:
state, config differences, throughput, each [PERF] phase, key metrics, and for world-model runs their
training time and epochs, best val_total and the latest `trainctl wm-bench` of each (its figures and GO or
NO-GO, read from the run's `wm_bench` event). Rows are (field, value for each run); section rows are bold
Rich text. Nothing here imports Textual: the headless command prints the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text

from engine.profiles import read_by
from tui.format import number
from tui.model import RunSnapshot, default_metrics

Row = tuple[str | Text, ...]


def section_row(title: str, columns: int) -> Row:
    """A bold row that titles the rows below it, in a table of `columns` columns after the field's."""
    return (Text(title, style="bold underline"), *("" for _ in range(columns)))


def section(title: str, runs: Sequence[RunSnapshot]) -> Row:
    """A section row over a column per run."""
    return section_row(title, len(runs))


def compare_rows(runs: Sequence[RunSnapshot]) -> list[Row]:
    """The table's rows: (field, value for each run), with bold section rows between groups."""
    rows: list[Row] = [
        ("state", *(("deleted" if r.gone else r.state) for r in runs)),
        ("algo/env", *(f"{r.algo}/{r.env}" for r in runs)),
        ("profile", *(r.profile for r in runs)),
        ("steps", *(f"{r.step:,}" for r in runs)),
        section("config differences", runs),
    ]
    # Another algorithm's section (dqn.* between two PPO runs) differs by profile but means nothing here.
    # A wrapped command has no config of ours: the differences are among the runs that have one.
    configured = [r for r in runs if r.config]
    keys = sorted({k for r in configured for k in r.config if any(read_by(k, run.algo) for run in configured)})
    differing = [k for k in keys if len({repr(r.config.get(k, (None, ""))[0]) for r in configured}) > 1]
    rows += [(k, *(str(r.config[k][0]) if k in r.config else "-" for r in runs)) for k in differing]
    if not differing:
        rows.append(("(none)" if len(configured) == len(runs) else "(none; wrapped: no config)",
                     *("" for _ in runs)))
    rows += [
        section("throughput", runs),
        ("steps/s final", *(number(r.sps, ",.0f") for r in runs)),
        ("steps/s median", *(number(r.sps_median, ",.0f") for r in runs)),
        ("episodes/s final", *(number(r.eps, ",.1f") for r in runs)),
        section("[PERF] ms per step", runs),
    ]
    phases = sorted({p for r in runs for p in r.perf_latest_ms},
                    key=lambda p: -max(r.perf_latest_ms.get(p, 0.0) for r in runs))
    rows += [(p, *(number(r.perf_latest_ms.get(p), ".3f") for r in runs)) for p in phases]
    rows.append(section("metrics (latest)", runs))
    metric_keys = default_metrics(sorted({k for r in runs for k in r.metric_history}))
    rows += [(k, *(number(r.metrics_latest.get(k)) for r in runs)) for k in metric_keys]
    if any(r.algo == "worldmodel" for r in runs):
        rows += world_model_rows(runs)
    return rows


def world_model_rows(runs: Sequence[RunSnapshot]) -> list[Row]:
    """Time, epochs and best val_total of the world-model runs, then their latest wm-bench figures and
    verdict ("-" where a run has none)."""
    def series(run: RunSnapshot, key: str) -> list[float]:
        return [value for _, value in run.metric_history.get(key, ())]

    def total(values: list[float]) -> float | None:
        return sum(values) if values else None

    rows: list[Row] = [
        section("world model", runs),
        ("epochs", *(number(r.metrics_latest.get("epoch"), ".0f") for r in runs)),
        ("training time s", *(number(total(series(r, "time/epoch")), ",.1f") for r in runs)),
        ("time/epoch s", *(number(r.metrics_latest.get("time/epoch"), ".2f") for r in runs)),
        ("best val_total", *(number(min(series(r, "val_total"), default=None)) for r in runs)),
        section("wm-bench (latest)", runs),
    ]
    benches = [r.wm_bench or {} for r in runs]
    rows.append(("checkpoint", *(str(b.get("checkpoint", "-")) for b in benches)))
    rows.append(("games, seed", *(f"{b['games']}, {b['seed']}" if "games" in b else "-" for b in benches)))
    names = list(dict.fromkeys(k for b in benches for k in b.get("metrics", {})))
    rows += [(name, *(number(b.get("metrics", {}).get(name)) for b in benches)) for name in names]
    rows.append(("verdict", *(verdict(b) for b in benches)))
    return rows


def verdict(bench: Mapping[str, Any]) -> str:
    """GO, or NO-GO with the failing gates; "-" without a bench."""
    if not bench:
        return "-"
    failed = list(bench.get("failed") or [])
    return "GO" if not failed else f"NO-GO: {', '.join(map(str, failed))}"


def plain_table(header: Sequence[str], rows: Sequence[Row]) -> str:
    """The rows as plain text columns (`trainctl compare`)."""
    cells = [list(header), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)
