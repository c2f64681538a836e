"""`trainctl` with no command and `trainctl watch`: the TUI on a terminal, plain text without one
(never importing Textual then), and what `watch` opens for a folder, a run folder or a run id."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tui_fixtures import standard_runs

from cli import commands
from cli import main as cli
from engine.errors import UsageError


@pytest.mark.slow
def test_trainctl_without_a_terminal_prints_the_status_table_without_textual(tmp_path: Path) -> None:
    standard_runs(tmp_path)
    code = ("import sys; from cli.main import main; rc = main(sys.argv[1:]); "
            "print('TEXTUAL', 'textual' in sys.modules); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, "--runs-dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=60, check=True)  # stdout is a pipe: no terminal
    assert done.stdout.startswith("RUN ") and re.search(r"20260101T010000_ppo_beastybar_speed +failed", done.stdout)
    assert "TEXTUAL False" in done.stdout


def test_watch_without_a_terminal_prints_the_status_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = standard_runs(tmp_path)
    assert cli.main(["watch", str(runs[0].path)]) == 0  # under pytest, stdout is not a terminal
    assert re.search(r"20260101T000000_ppo_beastybar_balance +finished", capsys.readouterr().out)


def test_watch_opens_a_folder_a_run_folder_or_a_run_id(tmp_path: Path) -> None:
    runs = standard_runs(tmp_path)
    assert cli.watch_target(None, tmp_path) == (tmp_path, None)
    assert cli.watch_target(str(tmp_path), Path("elsewhere")) == (tmp_path, None)
    assert cli.watch_target(str(runs[1].path), Path("elsewhere")) == (tmp_path, runs[1].run_id)
    assert cli.watch_target("20260101T01", tmp_path) == (tmp_path, runs[1].run_id)
    with pytest.raises(UsageError, match="no run 'nope'"):
        cli.watch_target("nope", tmp_path)


def test_launch_default_without_a_terminal_runs_the_default_job_headless(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(commands, "run_command", lambda args, wrapped: seen.append(args) or 0)
    assert cli.main(["--launch-default", "--runs-dir", str(tmp_path)]) == 0
    (args,) = seen
    assert (args.algo, args.env, args.profile, args.runs_dir) == ("ppo", "beastybar", "balance", tmp_path)


def test_a_runs_dir_that_is_a_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    assert cli.main(["--runs-dir", str(tmp_path / "file")]) == cli.EXIT_USAGE
    assert "is a file; expected a folder of run folders" in capsys.readouterr().err
