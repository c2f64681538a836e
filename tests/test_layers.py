"""The import layers of pyproject.toml's [tool.importlinter] hold: cli > tui > engine > envs > ext, no
Textual below the TUI or in the headless commands, the TUI never importing a trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.cli import EXIT_STATUS_SUCCESS, lint_imports

PROJECT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_are_kept(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(PROJECT)
    code = lint_imports(config_filename=str(PROJECT / "pyproject.toml"), no_cache=True)
    out = capsys.readouterr().out
    assert code == EXIT_STATUS_SUCCESS, out[-3000:]
    assert "Contracts: 4 kept, 0 broken." in out
