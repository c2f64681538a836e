"""Following a trainer's TensorBoard event files: their scalars become metric events (docs/events.md).

`TbTail(folder).poll()` reads what was appended since the last poll to every `events.out.tfevents.*`
file under the folder (new files included), with TensorBoard's own `EventFileLoader`, and returns one
metric event per (file, step) with the scalars logged at that step, named by their tags. A file with a
torn last record is read again from that record at the next poll. Folders holding a run.json are run
folders of ours (a runs/ folder a trainer shares with trainctl): their tb/ is not the trainer's and is
skipped. TensorBoard is imported on first use only; nothing here writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.events import metric_event

EVENT_FILE_MARK = "tfevents"
TB_FOLDER_NAMES = ("runs", "tb")


def check_tb_folder(path: Path) -> Path:
    """`path` if it is a folder; UsageError otherwise (the `--tb` check, before anything starts)."""
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a folder"
        raise UsageError(f"--tb {path} {what}; expected the TensorBoard log folder the trainer writes")
    return path


def tb_folder_in(command: list[str]) -> Path | None:
    """The first `runs/` or `tb/` folder (a path with such a component, not a file) the command's
    arguments name, as `ARG` or `--flag=ARG`, whether or not it exists yet; None if none does."""
    for arg in command[1:]:
        value = arg.partition("=")[2] if arg.startswith("-") else arg
        path = Path(value)
        if value and any(part in TB_FOLDER_NAMES for part in path.parts) and not path.is_file():
            return path
    return None


class TbTail:
    """Incremental reader of the scalars in the event files under `folder`. `step` is the largest step
    seen; `files` the event files followed so far."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.step = 0
        self._loaders: dict[Path, Any] = {}

    @property
    def files(self) -> list[Path]:
        return sorted(self._loaders)

    def poll(self) -> list[dict[str, Any]]:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

        for path in self._event_files():
            if path not in self._loaders:
                self._loaders[path] = EventFileLoader(str(path))
        events = []
        for loader in self._loaders.values():
            events += self._scalars(loader)
        return events

    def _event_files(self) -> Iterator[Path]:
        for root, dirs, names in os.walk(self.folder):
            if "run.json" in names and Path(root) != self.folder:
                dirs.clear()  # one of our run folders
                continue
            dirs.sort()
            yield from (Path(root) / n for n in sorted(names) if EVENT_FILE_MARK in n)

    def _scalars(self, loader: Any) -> list[dict[str, Any]]:
        from tensorboard.util import tensor_util

        by_step: dict[int, dict[str, float]] = {}
        for event in loader.Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name != "scalars":
                    continue
                scalar = tensor_util.make_ndarray(value.tensor)
                if scalar.size == 1:
                    by_step.setdefault(int(event.step), {})[value.tag] = float(scalar.item())
        if by_step:
            self.step = max(self.step, *by_step)
        return [metric_event(step, values) for step, values in sorted(by_step.items())]
