"""Runs that cannot be lost: a stop asked for at any moment (even while the run is still starting, even
from a shell that ignores SIGINT) ends the run `stopped` with a checkpoint; a killed run is `lost`, not
`failed`, with the line that resumes it; a pid given to another process is not taken for the run;
`--resume --steps` extends a finished run and its schedules; a corrupt run file is `unreadable`; a
config that cannot fit in memory is refused before anything exists."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sb3_contrib.common.maskable.buffers import MaskableRolloutBuffer
from test_cli_run import FAST, PROJECT, read_events, trainctl, wait_for
from tui_fixtures import fabricate_run, wait_for_text

from cli import main as cli
from engine import launcher
from engine.checkpoint import latest_checkpoint
from engine.errors import UsageError
from engine.profiles import resolve
from engine.replay import PrioritizedReplayBuffer
from engine.runstore import (
    ACTIVE_STATES,
    RunDir,
    StopRequest,
    list_runs,
    process_alive,
    process_identity,
    process_start,
    summarize,
)
from envs.beastybar.vec_env import BeastyBarVecEnv
from envs.skirmish.vec_env import SkirmishVecEnv
from tui.app import TrainctlApp
from tui.model import RunsWatcher

LONG = ["--steps", "1e8", "--set", "checkpoint.every_steps=0"]
RUN_ID = "20260101T000000_ppo_beastybar_balance"


def _run(runs: Path, state: str = "finished", **status: Any) -> RunDir:
    run = fabricate_run(runs, RUN_ID, state=state, windows=2)
    run.write_status(**status)
    return run


def _dead_pid() -> tuple[int, float | None]:
    """The pid and start time of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    start = process_start(proc.pid)
    proc.wait()
    return proc.pid, start


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("trainctl: error: "), err
    for fragment in fragments:
        assert fragment in err, err
    return err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- process identity ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_pid_given_to_another_process_is_not_the_run(tmp_path: Path) -> None:
    run = _run(tmp_path, state="running", **process_identity(os.getpid()))
    assert run.effective_state() == "running"
    # The same pid with another start time: the run's process ended and a later one got its pid.
    run.write_status(pid_start=float(process_start(os.getpid()) or 0) + 1)
    assert run.effective_state() == "lost"
    pid, start = _dead_pid()
    run.write_status(pid=pid, pid_start=start)
    assert run.effective_state() == "lost"


@pytest.mark.slow
def test_an_exited_process_not_yet_reaped_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    start = process_start(proc.pid)
    assert process_alive(proc.pid, start)
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # it has exited; it stays a zombie
    try:
        assert not process_alive(proc.pid, start)
    finally:
        proc.wait()
    assert not process_alive(None) and not process_alive(0) and not process_alive(True)


# -- the stop request ---------------------------------------------------------------------------------
def test_a_stop_request_is_read_at_once_then_at_most_every_check_interval(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(tmp_path, state="running")
    reads: list[None] = []
    original = RunDir.read_stop_request

    def counting(self: RunDir) -> dict[str, Any] | None:
        reads.append(None)
        return original(self)

    monkeypatch.setattr(RunDir, "read_stop_request", counting)
    now = [100.0]
    stop = StopRequest(clock=lambda: now[0])
    stop.watch(run)
    assert len(reads) == 1 and not stop
    run.request_stop("a test")
    for _ in range(1000):  # a trainer tests it at every env step: that must not mean a stat each time
        assert not stop
    assert len(reads) == 1
    now[0] += StopRequest.CHECK_EVERY_S
    assert stop and len(reads) == 2
    assert stop.request is not None and stop.request["by"] == "a test" and stop.reason == "stop.request from a test"
    assert stop.signal_name is None
    early = StopRequest(clock=lambda: now[0])
    early.watch(run)  # a request written before the run process started is read at once
    assert early and len(reads) == 3


def test_a_time_budget_ends_early_by_the_longest_pause_so_the_run_finishes_within_it(tmp_path: Path) -> None:
    now = [100.0]
    stop = StopRequest(clock=lambda: now[0])
    stop.watch(_run(tmp_path, state="running"))
    stop.limit(90.0)  # ends at 190
    for _ in range(40):  # env steps, tested every 0.5 s
        now[0] += 0.5
        assert not stop
    now[0] += 20.0  # an update of 20 s between two env steps, now at 140
    assert not stop and not stop.out_of_time
    while now[0] < 169.5:  # 20.5 s left at 169.5: more than the 20 s pause and the 0.25 s between checks
        now[0] += 0.5
        assert not stop
    now[0] += 0.5  # 20 s left: a pause like the longest would end past 190
    assert stop and stop.out_of_time and stop.reason == "the time budget (run.max_minutes = 1.5)"
    assert stop.request is None and stop.signal_name is None
    counted_from_the_start = StopRequest(clock=lambda: now[0])
    counted_from_the_start.limit(90.0, since=now[0] - 89.0)  # the start-up's seconds count too
    assert not counted_from_the_start
    now[0] += 0.8
    assert counted_from_the_start  # 0.2 s left: less than the 0.8 s pause and the check interval


@pytest.mark.slow
def test_a_run_with_a_time_budget_stops_with_a_checkpoint_when_it_runs_out(tmp_path: Path) -> None:
    done = trainctl("run", "--algo", "ppo", "--env", "beastybar", "--runs-dir", str(tmp_path), *FAST, *LONG,
                    "--set", "run.max_minutes=0.02")
    (run,) = list_runs(tmp_path)
    status = run.read_status()
    assert status["state"] == "stopped" and done.returncode == 130, done.stdout + done.stderr
    assert 0 < status["step"] < 1e8 and status["stop_request"] is None and status["signal"] is None
    checkpoint = latest_checkpoint(run.checkpoints)
    assert checkpoint is not None and checkpoint.name == f"step_{status['step']:012d}.pt"
    logs = [e["msg"] for e in read_events(run) if e["kind"] == "log"]
    assert "stopped: asked by the time budget (run.max_minutes = 0.02)" in logs


def test_a_stop_request_written_by_hand_still_stops(tmp_path: Path) -> None:
    run = _run(tmp_path, state="running")
    run.stop_request_path.write_text("please stop\n", encoding="utf-8")
    stop = StopRequest()
    stop.watch(run)
    assert stop and stop.request == {"by": "unknown"}


def test_stop_of_a_starting_run_leaves_the_request_for_it(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "20260101T000000_x", {"kind": "trainer"})  # launched, no process yet
    note = launcher.stop(run, by="a test")
    assert "(stop.request)" in note and "SIGINT" not in note
    request = run.read_stop_request()
    assert request is not None and request["by"] == "a test" and request["pid"] == os.getpid()


@pytest.mark.slow
@pytest.mark.parametrize("lost", [False, True])
def test_stop_of_a_run_that_is_not_running_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               lost: bool) -> None:
    run = _run(tmp_path, "running", pid=_dead_pid()[0]) if lost else _run(tmp_path)
    before = _snapshot(tmp_path)
    message = "lost: process gone without recording an exit" if lost else "finished at step 8192"
    err = _one_line_error(capsys, cli.main(["stop", run.run_id, "--runs-dir", str(tmp_path)]),
                          f"run {run.run_id} is not running: {message}")
    assert ("no checkpoint to resume from: start it again" in err) == lost
    assert _snapshot(tmp_path) == before  # no stop.request left behind


def test_stop_of_what_is_not_a_run_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "plain").mkdir()
    _one_line_error(capsys, cli.main(["stop", str(tmp_path / "plain")]), "is not a run folder")
    _one_line_error(capsys, cli.main(["stop", "nosuch", "--runs-dir", str(tmp_path)]), "no run 'nosuch'")


# -- what the readers show ----------------------------------------------------------------------------
@pytest.mark.slow
def test_a_lost_run_shows_its_step_checkpoint_and_resume_line(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    pid, start = _dead_pid()
    run = _run(tmp_path, state="running", pid=pid, pid_start=start)
    (run.checkpoints / "step_000000004096.pt").write_bytes(b"listed, not loaded")
    resume = f"trainctl run --resume {run.path}"
    assert summarize(run).state == "lost"
    assert cli.main(["status", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{RUN_ID}  lost" in out
    assert "at step 8192; newest checkpoint step_000000004096.pt; continue with: " + resume in out
    assert cli.main(["report", RUN_ID, "--runs-dir", str(tmp_path)]) == 0
    report = capsys.readouterr().out
    assert "state    lost\n" in report and f"continue with: {resume}\n" in report
    (snapshot,) = RunsWatcher(tmp_path).poll().runs
    assert snapshot.state == "lost" and not snapshot.active
    assert any(resume in note and "step 8192" in note for note in snapshot.notes)


def test_a_corrupt_run_json_is_unreadable_not_starting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path)
    run.config_path.write_text('{"kind": "trainer", "algo"', encoding="utf-8")
    summary = summarize(run)
    assert summary.state == "unreadable" and summary.problem is not None and "run.json" in summary.problem
    assert cli.main(["status", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{RUN_ID}  unreadable" in out and f"{run.config_path} is not valid JSON" in out
    (snapshot,) = RunsWatcher(tmp_path).poll().runs
    assert snapshot.state == "unreadable" and any(n.startswith("unreadable: run.json") for n in snapshot.notes)
    run.config_path.write_text(json.dumps({"kind": "trainer"}), encoding="utf-8")
    run.status_path.unlink()  # a run folder being created: starting, not unreadable
    assert summarize(run).state == "starting"


# -- memory ---------------------------------------------------------------------------------------------
def test_games_that_cannot_fit_in_memory_are_one_line_exit_2_and_no_folder(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    code = cli.main(["run", "--steps", "4096", "--runs-dir", str(runs), "--set", "env.num_envs=100000000"])
    _one_line_error(capsys, code, "env.num_envs = 100000000", "needs more memory than this machine has")
    assert not runs.exists()


def test_the_memory_check_names_the_largest_array() -> None:
    cfg = resolve("balance", algo="dqn-per", env="skirmish", environ={})
    needs = launcher.array_needs(cfg)
    total = sum(need.total for need in needs)
    launcher.check_memory(cfg, available=total)
    with pytest.raises(UsageError, match=r"^dqn\.buffer_size = 200000 needs more memory .* replay buffer 200,000 x"):
        launcher.check_memory(cfg, available=total - 1)


def _nbytes(*arrays: np.ndarray) -> int:
    return sum(int(a.nbytes) for a in arrays)


def test_the_memory_estimate_is_what_the_games_and_buffers_allocate() -> None:
    # The estimate is worked out from the games' sizes; here the real arrays are measured. Items the
    # estimate adds on top of the stored arrays: one observation copy per game step (each VecEnv step,
    # and the flattening of a rollout), each game's info dict, and a transition's share of the sum-tree.
    ppo = resolve("balance", algo="ppo", env="beastybar", environ={},
                  assignments=["env.num_envs=8", "ppo.batch_size=64"])
    games, rollout = launcher.array_needs(ppo)
    venv = BeastyBarVecEnv(8)
    obs_row = venv.buffers.obs[0].nbytes
    stored = _nbytes(*(getattr(venv.buffers, f) for f in ("obs", "rewards", "terminated", "truncated", "masks",
                                                            "terminal_obs")))
    assert games.count == 8 and games.total == stored + 8 * (obs_row + sys.getsizeof({}) + np.dtype(np.intp).itemsize)
    buffer = MaskableRolloutBuffer(ppo["ppo.n_steps"], venv.observation_space, venv.action_space, n_envs=8)
    stored = _nbytes(buffer.observations, buffer.actions, buffer.rewards, buffer.returns, buffer.episode_starts,
                     buffer.values, buffer.log_probs, buffer.advantages, buffer.action_masks)
    assert rollout.count == ppo["ppo.n_steps"] * 8 and rollout.total == stored + rollout.count * obs_row

    dqn = resolve("balance", algo="dqn-per", env="skirmish", environ={}, assignments=["dqn.buffer_size=4096"])
    _, replay = launcher.array_needs(dqn)
    skirmish = SkirmishVecEnv(8)
    per = PrioritizedReplayBuffer(4096, skirmish.observation_space, skirmish.action_space, "cpu", n_envs=8,
                                  n_actions=skirmish.buffers.masks.shape[1])
    assert per.next_action_masks is not None
    stored = _nbytes(per.observations, per.next_observations, per.actions, per._scalars, per.next_action_masks)
    tree_share = replay.total - stored
    assert replay.count == per.capacity and 8 * per.capacity <= tree_share <= 2 * 8 * per.capacity


# -- processes ------------------------------------------------------------------------------------------
def _ignore_sigint() -> None:
    # What a shell gives a job started in the background: SIGINT ignored, inherited by its children.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _final(run: RunDir) -> dict[str, Any]:
    wait_for(lambda: run.effective_state() not in ACTIVE_STATES, timeout=180)
    return run.read_status()


@pytest.mark.slow
def test_a_stop_in_the_first_second_of_a_run_and_of_a_resume_ends_stopped_with_a_checkpoint(tmp_path: Path) -> None:
    started = subprocess.run([sys.executable, "-m", "cli.main", "run", "--algo", "ppo", "--env", "beastybar",
                              "--runs-dir", str(tmp_path), "--detach", *FAST, *LONG], cwd=PROJECT,
                             capture_output=True, text=True, timeout=120, check=False, preexec_fn=_ignore_sigint)
    assert started.returncode == 0, started.stderr
    (run,) = list_runs(tmp_path)
    try:
        stopped = trainctl("stop", run.run_id, "--runs-dir", str(tmp_path))
        assert stopped.returncode == 0, stopped.stderr
        asked, outcome = stopped.stdout.splitlines()
        assert asked.startswith(f"asked {run.run_id} to stop")
        assert " stopped at step " in outcome or " still stopping (" in outcome, outcome
        status = _final(run)
        assert status["state"] == "stopped" and status["exit_code"] == 130
        checkpoint = latest_checkpoint(run.checkpoints)
        assert checkpoint is not None and checkpoint.name == f"step_{status['step']:012d}.pt"

        # The resume, followed in the foreground; Ctrl-C as soon as it says it has started.
        follower = subprocess.Popen([sys.executable, "-m", "cli.main", "run", "--resume", run.run_id, "--runs-dir",
                                     str(tmp_path), *LONG[:2]], cwd=PROJECT, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        assert follower.stdout is not None
        first = follower.stdout.readline()
        assert first.startswith(f"run {run.run_id} resumed at step {status['step']} from {checkpoint.name}"), first
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=180)
        assert follower.returncode == 130, out + err
        assert "asked" in err and f"run {run.run_id} stopped at step" in out
        assert out.count(f"trainctl run {run.run_id}\n") == 1  # its own banner; the first run's is not re-printed
        resumed = run.read_status()
        assert resumed["state"] == "stopped" and resumed["step"] > status["step"]
        newest = latest_checkpoint(run.checkpoints)
        assert newest is not None and newest.name == f"step_{resumed['step']:012d}.pt"
    finally:
        if run.effective_state() in ACTIVE_STATES:
            launcher.stop(run, kill=True)


@pytest.mark.slow
def test_a_wrapped_run_stopped_while_starting_gets_sigint(tmp_path: Path) -> None:
    loop = "import time\nwhile True:\n    print('[PERF] step=1 sps=1', flush=True)\n    time.sleep(0.05)\n"
    run = launcher.create_wrapped_run([sys.executable, "-c", loop], tmp_path, ["test"], "loop", "balance")
    proc = launcher.start(run)
    try:
        assert "(stop.request)" in launcher.stop(run, by="a test")  # the wrapper has not recorded `running` yet
        assert proc.wait(timeout=60) == 130
        status = run.read_status()
        assert status["state"] == "stopped" and status["stop_request"]["by"] == "a test"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_kill_9_makes_a_followed_run_lost_with_the_line_that_resumes_it(tmp_path: Path) -> None:
    follower = subprocess.Popen([sys.executable, "-m", "cli.main", "run", "--algo", "ppo", "--env", "beastybar",
                                 "--runs-dir", str(tmp_path), *FAST, "--steps", "1e8",
                                 "--set", "checkpoint.every_steps=1024"], cwd=PROJECT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(list_runs(tmp_path)) == 1)
        (run,) = list_runs(tmp_path)
        wait_for(lambda: latest_checkpoint(run.checkpoints) is not None, timeout=180)
        os.kill(run.read_status()["pid"], signal.SIGKILL)
        out, _ = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 1
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"run {run.run_id} lost: process gone without recording an exit"), last
    assert run.read_status()["state"] == "running" and run.effective_state() == "lost"
    checkpoint = latest_checkpoint(run.checkpoints)
    assert checkpoint is not None and f"newest checkpoint {checkpoint.name}" in last
    resume_line = last.split("continue with: ")[1].split("; folder ")[0]

    report = trainctl("report", run.run_id, "--runs-dir", str(tmp_path))
    assert report.returncode == 0 and f"continue with: {resume_line}\n" in report.stdout
    stop = trainctl("stop", run.run_id, "--runs-dir", str(tmp_path))
    assert stop.returncode == 2 and "is not running: lost" in stop.stderr
    # The line works as printed (here with a total just past the checkpoint, so that it ends soon).
    argv = shlex.split(resume_line)
    assert argv[:3] == ["trainctl", "run", "--resume"]
    step = int(checkpoint.name[5:-3])
    resumed = trainctl(*argv[1:], "--steps", str(step + 1024))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert run.read_status()["state"] == "finished" and run.read_status()["step"] >= step + 1024


def _metric_values(events: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    return [(e["step"], e["values"][key]) for e in events if e["kind"] == "metric" and key in e["values"]]


@pytest.mark.slow
def test_resume_with_more_steps_extends_a_finished_ppo_run_and_its_schedules(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = trainctl("run", "--algo", "ppo", "--env", "beastybar", "--steps", "2048", "--runs-dir", str(tmp_path),
                    *FAST)
    assert done.returncode == 0, done.stderr
    (run,) = list_runs(tmp_path)
    run.request_stop("a stop that came after the run had finished")  # belongs to the old process

    before = _snapshot(tmp_path)
    for total in ("2048", "1000"):
        code = cli.main(["run", "--resume", run.run_id, "--runs-dir", str(tmp_path), "--steps", total])
        _one_line_error(capsys, code, f"--steps {total} is not above step 2048 of step_000000002048.pt")
    code = cli.main(["run", "--resume", run.run_id, "--runs-dir", str(tmp_path), "--set", "ppo.n_epochs=1"])
    _one_line_error(capsys, code, "only --steps (a new, larger total) may change")
    assert _snapshot(tmp_path) == before

    events_before = len(read_events(run))
    extended = trainctl("run", "--resume", run.run_id, "--runs-dir", str(tmp_path), "--steps", "8192")
    assert extended.returncode == 0, extended.stdout + extended.stderr
    assert extended.stdout.startswith(f"run {run.run_id} resumed at step 2048 from step_000000002048.pt; "
                                      "total 8192 env steps")
    assert "steps        8,192 (resuming at 2,048; total from --steps on resume, was 2,048)" in extended.stdout
    info = run.read_config()
    assert info["total_steps"] == 8192
    assert info["config"]["run.total_steps"] == {"value": 8192, "source": "--steps on resume, was 2,048"}
    (extension,) = info["extensions"]
    assert (extension["from_total"], extension["to_total"], extension["at_step"]) == (2048, 8192, 2048)
    assert extension["checkpoint"] == "step_000000002048.pt"
    status = run.read_status()
    assert status["state"] == "finished" and status["step"] >= 8192  # the old request was cleared

    # Schedules over the new total: the first update after the resume (after the rollout ending at step
    # 3072) uses progress 1 - 3072/8192; over the old total it would be at its end value.
    after = read_events(run)[events_before:]
    remaining = 1 - 3072 / 8192
    lr = max(v for _, v in _metric_values(after, "train/lr"))
    assert lr == pytest.approx(1e-4 + (3e-4 - 1e-4) * remaining)
    ent_coef = max(v for _, v in _metric_values(after, "train/ent_coef"))
    assert ent_coef == pytest.approx(0.005 + (0.02 - 0.005) * remaining)


@pytest.mark.slow
def test_resume_with_more_steps_moves_dqn_epsilon_and_beta_to_the_new_total(tmp_path: Path) -> None:
    small = ["--set", "torch.threads=1", "--set", "log.every_steps=256", "--set", "dqn.warmup_steps=256",
             "--set", "dqn.updates_per_step=1", "--set", "dqn.batch_size=32", "--set", "dqn.buffer_size=4096",
             "--set", "dqn.exploration_fraction=1.0", "--set", "checkpoint.every_steps=0"]
    done = trainctl("run", "--algo", "dqn-per", "--env", "skirmish", "--steps", "1024", "--runs-dir", str(tmp_path),
                    *small)
    assert done.returncode == 0, done.stderr
    (run,) = list_runs(tmp_path)
    events_before = len(read_events(run))
    extended = trainctl("run", "--resume", run.run_id, "--runs-dir", str(tmp_path), "--steps", "4096")
    assert extended.returncode == 0, extended.stdout + extended.stderr
    after = read_events(run)[events_before:]
    cfg = resolve("balance", algo="dqn-per", env="skirmish", environ={})
    # Both read SB3's progress, updated after each vec-env step: allow two steps of the 8 games.
    slack = 2 * cfg["env.num_envs"] / 4096
    epsilon = _metric_values(after, "train/epsilon")
    beta = _metric_values(after, "train/beta")
    assert len(epsilon) >= 5 and len(beta) == len(epsilon)
    for step, value in epsilon:  # over the old total of 1024 it would stay at its end value, 0.05
        expected = 1.0 - (1.0 - cfg["dqn.exploration_final_eps"]) * step / 4096
        assert abs(value - expected) <= slack, (step, value, expected)
    for step, value in beta:
        expected = cfg["per.beta"] + (cfg["per.beta_end"] - cfg["per.beta"]) * step / 4096
        assert abs(value - expected) <= slack, (step, value, expected)


@pytest.mark.slow
def test_a_run_whose_process_dies_shows_lost_at_the_next_poll(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _run(tmp_path, state="running", **process_identity(sleeper.pid))
        watcher = RunsWatcher(tmp_path)
        assert watcher.poll().runs[0].state == "running"
    finally:
        sleeper.kill()
        sleeper.wait()
    (snapshot,) = watcher.poll().runs  # no file of the run changed
    assert snapshot.state == "lost" and any(n.startswith("lost: process gone") for n in snapshot.notes)


PRINT_PERF_LINES = ("for i in range(1, 100000):\n    print(f'[PERF] step={i} sps=10', flush=True)\n"
                    "    time.sleep(0.05)\n")
# A trainer whose last update (after SIGINT) takes 3 s: longer than the TUI's first wait in the test below.
SLOW_LAST_UPDATE = ("import signal, sys, time\ndef last_update(*_):\n    time.sleep(3)\n    sys.exit(130)\n"
                    "signal.signal(signal.SIGINT, last_update)\n")


@pytest.mark.slow
@pytest.mark.parametrize(("trainer", "first_wait_s", "said"), [
    ("import time\n", launcher.STOP_WAIT_S, ["stopped at step"]),
    (SLOW_LAST_UPDATE, 0.5, ["still stopping", "stopped at step"]),  # it follows the stop until it has ended
], ids=["quick", "slow"])
async def test_the_tui_stop_key_says_how_the_stop_ended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trainer: str,
                                                        first_wait_s: float, said: list[str]) -> None:
    monkeypatch.setattr(launcher, "STOP_WAIT_S", first_wait_s)
    run = launcher.create_wrapped_run([sys.executable, "-c", trainer + PRINT_PERF_LINES], tmp_path, ["test"], "loop",
                                      "balance")
    proc = launcher.start(run)
    try:
        app = TrainctlApp(tmp_path, poll_s=0.1)
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await wait_for_text(app, pilot, "· running ·")
            await pilot.press("s")
            await wait_for_text(app, pilot, "Stop 20")
            await pilot.press("y")
            for text in said:
                await wait_for_text(app, pilot, text, timeout_s=30)
        assert proc.wait(timeout=10) == 130
        request = run.read_stop_request()
        assert request is not None and request["by"] == "trainctl TUI"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
async def test_the_tui_shows_a_lost_run_and_how_to_resume_it(tmp_path: Path) -> None:
    pid, start = _dead_pid()
    run = _run(tmp_path, state="running", pid=pid, pid_start=start)
    (run.checkpoints / "step_000000004096.pt").write_bytes(b"listed, not loaded")
    app = TrainctlApp(tmp_path, poll_s=0.1)
    async with app.run_test(size=(160, 30), notifications=True) as pilot:
        shown = await wait_for_text(app, pilot, f"trainctl run --resume {run.path}")
        assert "· lost · step 8,192" in shown and "newest checkpoint step_000000004096.pt" in shown
        assert "  lost  " in shown  # the runs list


@pytest.mark.parametrize("hp_noise", [0, 2])
def test_a_world_models_memory_is_its_preloaded_data_twice_not_games_or_a_replay_buffer(tmp_path: Path,
                                                                                        hp_noise: int) -> None:
    """With worldmodel.hp_noise the inputs its HP features are rebuilt from are counted too."""
    from engine import datasets
    from engine.worldmodel import Tensors

    folder = tmp_path / "data"
    datasets.generate(folder, ("greedy", "random"), 200, seed=5, num_games=4)
    cfg = resolve("balance", algo="worldmodel", env="duel", environ={},
                  assignments=[f"data.dir={json.dumps(str(folder))}", f"worldmodel.hp_noise={hp_noise}"])
    (need,) = launcher.array_needs(cfg)
    loaded = datasets.load(folder)
    preloaded = sum(t.nbytes for split in (loaded.train, loaded.val)
                    for t in vars(Tensors.from_columns(split.columns, keep_inputs=hp_noise > 0)).values()
                    if t is not None)
    assert need.keys == ("data.dir",) and need.total == 2 * preloaded
