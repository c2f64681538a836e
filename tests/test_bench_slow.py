"""`trainctl bench` for real, with tiny runs: two paired seeds of balance against speed, one run at a time
in ABBA order, the report saved; the same command again skips every finished run."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.runstore import list_runs

PROJECT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_two_seeds_then_resume(tmp_path: Path) -> None:
    folder = tmp_path / "bench"
    command = [sys.executable, "-m", "cli.main", "bench", "--algo", "ppo", "--env", "beastybar", "--steps", "4096",
               "--baseline", "balance", "--candidate", "speed", "--seeds", "2", "--set", "ppo.n_steps=16",
               "--set", "log.every_steps=1024", "--set", "log.tensorboard=false", "--set", "checkpoint.every_steps=0",
               "--dir", str(folder)]
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    done = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.splitlines()[1].startswith("rule: throughput >= +10 % and quality loss <= 4 points")
    runs = list_runs(folder)
    order = sorted(runs, key=lambda r: r.read_status()["launched"])
    assert [r.run_id.split("_", 1)[1] for r in order] == ["s0-baseline-a1", "s0-candidate-a1", "s1-candidate-a1",
                                                          "s1-baseline-a1"]
    spans = [(r.read_status()["launched"], r.read_status()["ended"]) for r in order]
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))  # one at a time
    assert [r.read_config()["seed"] for r in order] == [0, 0, 1, 1]
    assert [r.read_config()["profile"] for r in order] == ["balance", "speed", "speed", "balance"]
    report = json.loads((folder / "report.json").read_text())
    assert report["verdict"] in ("PASS", "FAIL", "UNDECIDED") and report["pairs"] == 2
    assert f"VERDICT: {report['verdict']}" in done.stdout
    assert (folder / "report.md").read_text().startswith(f"# VERDICT: {report['verdict']}")

    again = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0 and again.stdout.count("finished before") == 4
    assert len(list_runs(folder)) == 4
