"""The selected run's resolved configuration, each value with its source (or a wrapped command).

Only the sections the run's algorithm reads are listed: run and the algorithm's own first (ppo for
ppo; dqn and per for dqn-per), then env, torch, log and checkpoint. `action_toggle_all` (the runs
screen's `a` on this panel) lists every key and back. A run of an algorithm this build does not know, or
a wrapped command, shows whatever its run.json has.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape
from textual.widgets import DataTable, Static

from engine.profiles import ALGO_SECTIONS, read_by
from tui.model import RunSnapshot
from tui.widgets.table_fill import refill

COLUMNS = (("key", "key"), ("value", "value"), ("source", "source"))


def listing_order(key: str, algo: str) -> int:
    """Where a key goes in the list: run.*, then the algorithm's own sections (what a user of this run
    looks for first), then the sections every run reads, then those the algorithm does not read."""
    section = key.partition(".")[0]
    if section == "run":
        return 0
    if section in ALGO_SECTIONS.get(algo, ()):
        return 1
    return 2 if read_by(key, algo) else 3


class ConfigView(Vertical):
    """A line saying what is listed and how to list the rest, over a table of key, value, source."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.show_all = False
        self._hint = Static(classes="config-hint")
        self._table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True, id="config-table")
        self._shown: tuple[object, ...] | None = None
        self._last: RunSnapshot | None = None

    def compose(self) -> ComposeResult:
        yield self._hint
        yield self._table

    def show(self, s: RunSnapshot) -> None:
        self._last = s
        shown = (s.run_id, s.algo, s.config, s.command, self.show_all)
        if shown == self._shown:
            return
        self._shown = shown
        if not s.config:
            refill(self._table, COLUMNS, [(None, (Text("command"), Text(" ".join(s.command) or "?"), Text(s.kind)))])
            self._hint.update(f"{escape(s.kind)} run: no configuration of ours, only its command")
            return
        keys = sorted((k for k in s.config if self.show_all or read_by(k, s.algo)),
                      key=lambda k: listing_order(k, s.algo))
        # Text cells: a str cell would be read as markup
        refill(self._table, COLUMNS, [(None, (Text(key), Text(str(s.config[key][0])), Text(s.config[key][1])))
                                      for key in keys])
        # run.json's text goes into markup: escaped
        algo = escape(s.algo)
        unread = escape(", ".join(sorted({k.partition(".")[0] + ".*" for k in s.config if not read_by(k, s.algo)})))
        if not unread:
            self._hint.update(f"all {len(keys)} keys")
        elif self.show_all:
            self._hint.update(f"all {len(keys)} keys; a {algo} run does not read {unread} · "
                              "[b]a[/b]: only what it reads")
        else:
            self._hint.update(f"{len(keys)} keys a {algo} run reads; {unread} hidden · "
                              "[b]a[/b]: all keys")

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        if self._last is not None:
            self.show(self._last)
