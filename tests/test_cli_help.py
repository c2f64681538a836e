"""`trainctl --help` and every subcommand's `--help` print their usage: argparse formats help strings
with %-formatting, so a bare `95% intervals` in one of them broke the top-level help of every command."""

from __future__ import annotations

import argparse

import pytest

from cli import main as cli


def subcommands() -> list[str]:
    parser = cli.build_parser()
    [choices] = [action.choices for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return sorted(choices)


def test_the_top_level_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in subcommands())


@pytest.mark.parametrize("command", subcommands())
def test_each_subcommand_prints_its_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert f"trainctl {command}" in capsys.readouterr().out
