"""Concurrent runs share the machine's cores (engine.cores): the split, the registry (dead entries and
reused pids ignored, a `torch.threads` override wins, runs joining in the same instant), the launcher's
thread variables, two real runs started together, and the system panel's sharing line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tui_fixtures import T0, fabricate_run, wait_for_text

from engine import cores
from engine.cores import Claim, CoreUse, Registry, fair_shares, share_of
from engine.runstore import RunDir, list_runs, process_start
from tui.app import TrainctlApp
from tui.system import SystemProbe, SystemSample

PROJECT = Path(__file__).resolve().parent.parent


def claim(pid: int, requested: int = 0, started: float = 0.0, threads: int = 1) -> Claim:
    return Claim(pid=pid, started=started or float(pid), run_id=f"run{pid}", requested=requested, threads=threads)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "cores")


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' machine has 2 cores, whatever this one has."""
    monkeypatch.setattr(cores, "core_count", lambda: 2)


@pytest.fixture
def other_process() -> Iterator[psutil.Process]:
    """A live process that is not this one, to hold a claim."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield psutil.Process(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def claim_of(proc: psutil.Process, requested: int = 0, threads: int = 1) -> Claim:
    return Claim(proc.pid, float(process_start(proc.pid) or 0.0), f"run{proc.pid}", requested, threads)


def write(registry: Registry, *claims: Claim) -> None:
    with registry.locked():
        for c in claims:
            registry.write(c)


# -- the split ---------------------------------------------------------------------------------------
def test_a_run_alone_gets_every_core_and_two_runs_split_them() -> None:
    assert fair_shares(2, [claim(10)]) == {10: 2}
    assert fair_shares(2, [claim(10), claim(11)]) == {10: 1, 11: 1}
    assert fair_shares(8, [claim(10), claim(11)]) == {10: 4, 11: 4}


def test_the_remainder_goes_to_the_earliest_started_and_every_run_gets_at_least_one() -> None:
    assert fair_shares(3, [claim(11, started=5.0), claim(10, started=9.0)]) == {11: 2, 10: 1}
    assert fair_shares(2, [claim(10), claim(11), claim(12)]) == {10: 1, 11: 1, 12: 1}


def test_a_torch_threads_override_wins_and_the_others_share_what_is_left() -> None:
    assert fair_shares(4, [claim(10, requested=3), claim(11)]) == {10: 3, 11: 1}
    assert fair_shares(2, [claim(10, requested=4), claim(11)]) == {10: 4, 11: 1}  # asked for, so given
    assert share_of(10, 4, [claim(10, requested=3), claim(11)]).reason == "torch.threads=3 in the config"
    assert share_of(11, 4, [claim(10, requested=3), claim(11)]).reason == \
        "2 runs share 4 cores (3 threads fixed by torch.threads)"
    assert share_of(10, 2, [claim(10), claim(11)]).reason == "2 runs share 2 cores"
    assert share_of(10, 2, [claim(10)]).reason == "1 run on 2 cores"


@given(cores_=st.integers(1, 64), requested=st.lists(st.integers(0, 8), min_size=1, max_size=12))
def test_shares_are_even_use_every_core_and_honour_overrides(cores_: int, requested: list[int]) -> None:
    claims = [claim(100 + i, requested=r, started=1000.0 - i) for i, r in enumerate(requested)]
    shares = fair_shares(cores_, claims)
    assert set(shares) == {c.pid for c in claims}
    assert all(shares[c.pid] == c.requested for c in claims if c.requested)
    flexible = [shares[c.pid] for c in claims if not c.requested]
    if flexible:
        assert min(flexible) >= 1 and max(flexible) - min(flexible) <= 1
        left = cores_ - sum(requested)
        if left >= len(flexible):
            assert sum(flexible) == left  # no core idle, none oversubscribed
        else:
            assert flexible == [1] * len(flexible)


# -- the registry ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_entries_of_dead_processes_are_ignored_and_pruned(registry: Registry) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    me = psutil.Process()
    write(registry, claim(finished.pid, started=time.time()), claim_of(me))
    assert [c.pid for c in registry.live()] == [me.pid]
    with registry.locked():
        assert [c.pid for c in registry.prune()] == [me.pid]
    assert sorted(p.name for p in registry.folder.glob("*.json")) == [f"{me.pid}.json"]


def test_an_entry_whose_pid_was_reused_is_ignored(registry: Registry) -> None:
    me = psutil.Process()
    write(registry, Claim(me.pid, float(process_start(me.pid) or 0.0) - 3600, "an earlier owner of this pid", 0, 2))
    assert registry.live() == []


def test_unreadable_entries_are_skipped(registry: Registry) -> None:
    registry.folder.mkdir(parents=True)
    (registry.folder / "123.json").write_text("{not json", encoding="utf-8")
    (registry.folder / "124.json").write_text(json.dumps({"pid": 124}), encoding="utf-8")
    assert registry.claims() == []


def test_a_folder_of_another_user_is_refused(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    registry.folder.mkdir(parents=True)
    monkeypatch.setattr(os, "getuid", lambda: os.stat(registry.folder).st_uid + 1)
    with pytest.raises(PermissionError, match="another user"), registry.locked():
        pass


@pytest.mark.slow
def test_a_run_follows_runs_that_come_and_go(registry: Registry, two_cores: None,
                                             other_process: psutil.Process) -> None:
    share = cores.join("mine", 0, registry)
    try:
        assert cores.joined() is share
        assert (share.threads, share.summary()) == (2, "torch threads 2: 1 run on 2 cores")
        assert share.poll() is None  # re-read at most every CHECK_EVERY_S, and nothing changed
        write(registry, claim_of(other_process, threads=1))
        change = share.refresh()
        assert change is not None and change.message == "torch threads 2 -> 1: 2 runs share 2 cores"
        assert [c.threads for c in registry.live() if c.pid == os.getpid()] == [1]  # others see it
        assert share.refresh() is None
        registry.remove(os.getpid())  # e.g. a cleaner of the temp folder
        assert share.refresh() is None and {c.pid for c in registry.live()} == {other_process.pid, os.getpid()}
        other_process.kill()
        other_process.wait()
        change = share.refresh()
        assert change is not None and change.message == "torch threads 1 -> 2: 1 run on 2 cores"
    finally:
        share.leave()
    assert cores.joined() is None and registry.live() == []


@pytest.mark.slow
def test_a_torch_threads_override_is_claimed_whatever_the_others_hold(registry: Registry, two_cores: None,
                                                                      other_process: psutil.Process) -> None:
    write(registry, claim_of(other_process, threads=2))
    share = cores.join("mine", 3, registry)
    try:
        assert (share.threads, share.summary()) == (3, "torch threads 3: torch.threads=3 in the config")
        assert cores.core_use(os.getpid(), registry) == CoreUse(cores=2, runs=2, claimed=5, threads=3)
        assert cores.core_use(os.getpid(), registry).oversubscribed
    finally:
        share.leave()


def test_an_unusable_folder_leaves_the_run_its_start_share(tmp_path: Path, two_cores: None) -> None:
    (tmp_path / "a file").write_text("", encoding="utf-8")
    share = cores.join("mine", 0, Registry(tmp_path / "a file" / "cores"))
    try:
        assert share.threads == 2 and share.summary().startswith("torch threads 2: core sharing is off (")
        assert share.refresh() is None
    finally:
        share.leave()


JOINER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from engine import cores

    folder, name = Path(sys.argv[1]), sys.argv[2]
    cores.core_count = lambda: 2
    registry = cores.Registry(folder / "registry")
    while not (folder / "go").exists():
        time.sleep(0.002)
    share = cores.join(name, 0, registry)
    at_join = share.threads
    while len(registry.live()) < 2:
        time.sleep(0.01)
    share.refresh()
    print(at_join, share.threads, flush=True)
    (folder / f"ready-{name}").touch()
    while len(list(folder.glob("ready-*"))) < 2:
        time.sleep(0.01)
    share.leave()
""")


@pytest.mark.slow
def test_two_runs_joining_in_the_same_instant_get_a_fair_share(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    procs = [subprocess.Popen([sys.executable, "-c", JOINER, str(tmp_path), name], stdout=subprocess.PIPE,
                              text=True, env=env) for name in ("a", "b")]
    time.sleep(0.5)  # both have imported and wait for the signal
    (tmp_path / "go").touch()
    outputs = [proc.communicate(timeout=60)[0].split() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    at_join = sorted(int(out[0]) for out in outputs)
    assert at_join[0] == 1  # the lock serialises the joins: the second joiner saw the first
    assert [int(out[1]) for out in outputs] == [1, 1]  # after both joined, an even split of 2 cores
    assert Registry(tmp_path / "registry").claims() == []  # both left


@pytest.mark.slow
def test_the_launcher_sizes_thread_pools_to_the_share_a_new_run_would_get(registry: Registry, two_cores: None,
                                                                         other_process: psutil.Process) -> None:
    assert cores.launch_env(0, registry) == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2",
                                             "OPENBLAS_NUM_THREADS": "2"}
    write(registry, claim_of(other_process, threads=2))
    assert set(cores.launch_env(0, registry).values()) == {"1"}
    assert set(cores.launch_env(3, registry).values()) == {"3"}  # torch.threads overrides


# -- two real runs ------------------------------------------------------------------------------------
def read_logs(run: RunDir) -> list[str]:
    events = [json.loads(line) for line in run.events_path.read_text(encoding="utf-8").splitlines()]
    return [e["msg"] for e in events if e.get("kind") == "log"]


def wait_for(condition: Callable[[], bool], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.slow
def test_two_runs_started_together_each_use_their_share(tmp_path: Path) -> None:
    runs_dir, folder = tmp_path / "runs", tmp_path / "registry"
    env = {**os.environ, "PYTHONPATH": str(PROJECT), cores.DIR_ENV: str(folder)}
    argv = [sys.executable, "-m", "cli.main", "run", "--algo", "ppo", "--env", "beastybar", "--profile", "balance",
            "--steps", "12288", "--runs-dir", str(runs_dir), "--detach", "--set", "ppo.n_steps=16",
            "--set", "log.every_steps=4096", "--set", "log.tensorboard=false", "--set", "checkpoint.every_steps=0"]
    starts = [subprocess.Popen([*argv, "--name", name], cwd=PROJECT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT) for name in ("a", "b")]
    for proc in starts:
        assert proc.wait(timeout=60) == 0, proc.stdout.read() if proc.stdout else ""
    runs = list_runs(runs_dir)
    assert len(runs) == 2
    wait_for(lambda: all(run.read_status().get("state") == "finished" for run in runs))
    expected = cores.fair_shares(cores.core_count(), [claim(1), claim(2)])
    fair = f"torch threads {expected[1]}: 2 runs share {cores.core_count()} cores"
    changed = f" -> {expected[1]}: 2 runs share {cores.core_count()} cores"
    for run in runs:
        logs = read_logs(run)
        # Each ran on its share while the other ran: set so at start, or moved to it within seconds.
        assert any(msg == fair or msg.endswith(changed) for msg in logs), logs
        assert f"threads {expected[1]}," in run.stdout_path.read_text(encoding="utf-8") or \
            any(msg.endswith(changed) for msg in logs)
    assert Registry(folder).claims() == []  # both runs left the registry when they ended


# -- the system panel ---------------------------------------------------------------------------------
class FixedProbe(SystemProbe):
    """A probe that always reports `sample`."""

    def __init__(self, sample: SystemSample) -> None:
        super().__init__()
        self.fixed = sample

    def sample(self, pid: int | None) -> SystemSample:
        return self.fixed


def sample_with(use: CoreUse, cpu: float = 50.0, load: float = 1.0) -> SystemSample:
    return SystemSample(pid=4242, processes=1, cpu_percent=99.0, rss_bytes=2**28, gpu=("no GPU",), cores=use,
                        machine_cpu_percent=cpu, load=load)


def test_competition_is_claims_beyond_the_cores_or_a_machine_busier_than_its_cores() -> None:
    assert sample_with(CoreUse(2, 2, 2, 1)).competition() is None
    assert sample_with(CoreUse(2, 2, 3, 1)).competition() == "runs claim 3 torch threads on 2 cores"
    assert sample_with(CoreUse(2, 1, 2, 2), cpu=100.0, load=3.5).competition() == \
        "the machine is busy: CPU 100%, load 3.5 on 2 cores"
    assert sample_with(CoreUse(2, 1, 2, 2), cpu=100.0, load=1.5).competition() is None  # busy, but by us


def test_the_probe_reads_the_registry(monkeypatch: pytest.MonkeyPatch, registry: Registry, two_cores: None) -> None:
    monkeypatch.setenv(cores.DIR_ENV, str(registry.folder))
    write(registry, claim_of(psutil.Process(), threads=1))
    got = SystemProbe().sample(os.getpid())
    assert got.cores == CoreUse(cores=2, runs=1, claimed=1, threads=1)
    assert got.machine_cpu_percent is not None and got.load is not None


async def show_system_tab(tmp_path: Path, sample: SystemSample, text: str) -> tuple[str, Any]:
    """The screen's text once the system tab of a running run shows `text`, and the panel's content."""
    fabricate_run(tmp_path, "20260101T000000_ppo_beastybar_balance", state="running", windows=3)
    app = TrainctlApp(tmp_path, clock=lambda: T0 + 60, poll_s=0.1, probe=FixedProbe(sample))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_text(app, pilot, "20260101T000000_ppo_beastybar_balance")
        await pilot.press("3")
        shown = await wait_for_text(app, pilot, text)
        panel: Any = app.screen.query_one("#system-panel")
        return shown, panel.render()


async def test_the_system_panel_shows_runs_sharing_the_cores(tmp_path: Path) -> None:
    shown, _ = await show_system_tab(tmp_path, sample_with(CoreUse(2, 2, 2, 1)),
                                     "cores    2 · runs sharing them 2 · this run 1 torch thread")
    assert "CPU 50% of all cores · load 1.0" in shown and "compete" not in shown


async def test_the_system_panel_warns_when_runs_compete_for_cores(tmp_path: Path) -> None:
    warning = "▲ runs compete for cores: runs claim 4 torch threads on 2 cores"
    shown, content = await show_system_tab(tmp_path, sample_with(CoreUse(2, 2, 4, 2)), warning)
    assert "this run 2 torch threads" in shown
    at = content.plain.index(warning)
    assert [span.style for span in content.spans if span.start <= at < span.end] == ["bold yellow"]
