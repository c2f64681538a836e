"""`trainctl run -- CMD` on what real trainers print (engine.wrap with engine.line_parsers), their
TensorBoard files (`--tb`, auto-detected, and `trainctl watch --tb`), bad input, and the reader's limits:
a 10 MB line and invalid UTF-8 never stall it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli import main as cli
from cli.commands import report_text
from engine import launcher
from engine.line_parsers import make_reader
from engine.runstore import RunDir, list_runs
from engine.wrap import CUT_MARK, READ_CHUNK, EventSink, LineSplitter, OutputReader

PROJECT = Path(__file__).resolve().parent.parent
SEED004_SCRIPT = r'''
import sys, time
for i in range(3):
    print("[PERF] steps=256 updates=64 action_ms=0.412 enemy_turn_ms=98.100 env_step_ms=101.300 "
          "replay_sample_ms=1.460 train_fwd_ms=2.100 train_bwd_ms=3.300 log_ms=0.050", flush=True)
    print("[DQN][PERF] qsize=unknown dropped_batches=0 push_batch_ms=0.52 optimize_ms=12.10 updates/sec=80.50 "
          "batches=1 transitions=256 updates=64 interval_s=5.0", flush=True)
    time.sleep(0.05)
'''
SEED003_SCRIPT = r'''
import sys
for step in (200, 400, 600):
    print(f"[Step {step:>5}] eval/win_rate=0.9340 | train/loss=0.1234", file=sys.stderr, flush=True)
'''
CLEANRL_SCRIPT = r'''
for step in (128, 256, 384):
    print(f"global_step={step}, episodic_return=[{step / 10}]", flush=True)
print("SPS: 877", flush=True)
'''
GARBAGE_SCRIPT = r'''
import sys
out = sys.stdout.buffer
out.write(b"\xff\xfe\x00 binary garbage\n")
out.write(b"x" * 10_000_000 + b"\n")
out.write(b"[METRIC] step=5 after/garbage=1\n")
'''
TB_SCRIPT = r'''
import sys
from torch.utils.tensorboard import SummaryWriter
writer = SummaryWriter(sys.argv[1])
for step in (1000, 2000, 3000):
    writer.add_scalar("rollout/ep_rew_mean", step / 100, step)
    writer.add_scalar("train/loss", 1 / step, step)
writer.close()
print("done", flush=True)
'''


def trainctl(*args: str, cwd: Path = PROJECT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False, env={"PYTHONPATH": str(PROJECT), "PATH": "/usr/bin:/bin"})


def wrap(tmp_path: Path, script: str, *options: str, args: tuple[str, ...] = ()) -> RunDir:
    """Run `script` under `trainctl run` with `options`; the one run it made, after checking it finished."""
    runs = tmp_path / "runs"
    done = trainctl("run", "--runs-dir", str(runs), *options, "--", sys.executable, "-c", script, *args, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = list_runs(runs)
    return run


def events_of(run: RunDir, kind: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in run.events_path.read_text(encoding="utf-8").splitlines()]
    return [e for e in events if e["kind"] == kind]


@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")), max_size=20),
       st.integers(min_value=1, max_value=64))
def test_splitter_gives_back_every_line_cut_at_the_cap(lines: list[bytes], chunk: int) -> None:
    data = b"".join(line + b"\n" for line in lines)
    splitter = LineSplitter(cap=16)
    out = []
    for start in range(0, len(data), chunk):
        out += splitter.feed(data[start:start + chunk])
    out += splitter.close()
    assert out == [line if len(line) <= 16 else line[:16] + CUT_MARK for line in lines]
    assert splitter.capped == sum(len(line) > 16 for line in lines)


def test_splitter_ends_lines_at_carriage_returns() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"bar 10%\rbar 20%\rdone\r\nnext\n") == [b"bar 10%", b"bar 20%", b"done", b"next"]


def test_splitter_keeps_no_more_than_the_cap_of_an_endless_line() -> None:
    splitter = LineSplitter(cap=100)
    assert splitter.feed(b"y" * 250) == [b"y" * 100 + CUT_MARK]
    assert splitter.feed(b"y" * 10_000) == [] and len(splitter._buffer) == 0
    assert splitter.feed(b"y\nnext\n") == [b"next"] and splitter.capped == 1


@pytest.mark.parametrize(("options", "expected"), [
    (["--parse", "yaml"], "--parse 'yaml' is not a known format"),
    (["--parse", "regex:("], "does not compile"),
    (["--parse", "regex:loss=\\S+"], "has no named group"),
    (["--tb", "nowhere"], "--tb nowhere does not exist"),
    (["--profile", "nonesuch"], "nonesuch"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_started(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          options: list[str], expected: str) -> None:
    runs = tmp_path / "runs"
    code = cli.main(["run", "--runs-dir", str(runs), *options, "--", sys.executable, "-c", "pass"])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and err.count("\n") == 1
    assert not runs.exists()


def test_tb_on_a_file_and_watch_tb_on_a_missing_folder_are_usage_errors(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    assert cli.main(["run", "--runs-dir", str(tmp_path / "runs"), "--tb", str(tmp_path / "file"), "--", "true"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert cli.main(["watch", "--runs-dir", str(tmp_path / "runs"), "--tb", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["watch", "--runs-dir", str(tmp_path / "runs"), "--tb", str(tmp_path), "somerun"]) == 2
    assert "makes its own run" in capsys.readouterr().err
    assert cli.main(["run", "--runs-dir", str(tmp_path / "runs"), "--parse", "kv"]) == 2
    assert "--parse and --tb read a command" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # making a run folder asks git for the commit
def test_a_wrapped_run_records_its_command_folder_and_parser_and_no_profile(tmp_path: Path) -> None:
    run = launcher.create_wrapped_run(["python3", "train.py"], tmp_path, ["trainctl", "run", "--", "python3"],
                                      None, parse="cleanrl")
    info = run.read_config()
    assert info["wrapped"] == ["python3", "train.py"] and info["cwd"] and info["parse"] == "cleanrl"
    assert "profile" not in info and "seed" not in info and run.run_id.endswith("_cmd_python3")
    run.write_status(state="finished", read={"cleanrl": 412}, lines_not_understood=3, lines_capped=1)
    text = report_text(run)
    assert "profile" not in text and "seed None" not in text
    assert "wrapped: python3 train.py (in " in text and "--parse cleanrl" in text
    assert "output   read as cleanrl lines (412 lines), 3 lines not understood (1 cut at 64 KiB)" in text


@pytest.mark.slow
def test_seed004_lines_give_steps_steps_per_second_and_extras(tmp_path: Path) -> None:
    run = wrap(tmp_path, SEED004_SCRIPT, "--seed", "7")
    perf = events_of(run, "perf")
    assert [e["step"] for e in perf] == [256, 512, 768] and all(e["sps"] > 0 for e in perf)
    assert perf[-1]["ms"]["enemy_turn"] == pytest.approx(98.1) and perf[-1]["updates_total"] == 192
    extras = events_of(run, "extra")
    assert len(extras) == 3 and extras[0]["tag"] == "DQN" and extras[0]["values"]["qsize"] == "unknown"
    status = run.read_status()
    assert status["step"] == 768 and status["read"] == {"trainctl": 6} and status["malformed_lines"] == 0
    assert run.read_config()["seed"] == 7 and "profile" not in run.read_config()


@pytest.mark.slow
def test_seed003_step_lines_on_stderr(tmp_path: Path) -> None:
    run = wrap(tmp_path, SEED003_SCRIPT)
    metrics = events_of(run, "metric")
    assert [e["step"] for e in metrics] == [200, 400, 600]
    assert metrics[-1]["values"] == {"eval/win_rate": 0.934, "train/loss": 0.1234}
    assert run.read_status()["read"] == {"kv": 3} and "[Step   600]" in run.stdout_path.read_text()


@pytest.mark.slow
def test_cleanrl_lines(tmp_path: Path) -> None:
    run = wrap(tmp_path, CLEANRL_SCRIPT, "--parse", "cleanrl")
    assert [e["values"]["episodic_return"] for e in events_of(run, "metric")] == [12.8, 25.6, 38.4]
    (perf,) = events_of(run, "perf")
    assert perf["sps"] == 877 and perf["step"] == 384
    assert run.read_status()["read"] == {"cleanrl": 4}


@pytest.mark.slow
def test_regex_parser(tmp_path: Path) -> None:
    script = "for i in range(1, 4): print(f'iter {i * 100} | loss {1 / i:.4f}', flush=True)"
    run = wrap(tmp_path, script, "--parse", r"regex:iter (?P<step>\d+) \| loss (?P<loss>\S+)")
    assert [(e["step"], e["values"]["loss"]) for e in events_of(run, "metric")] == [(100, 1.0), (200, 0.5),
                                                                                       (300, 0.3333)]


@pytest.mark.slow
def test_a_10mb_line_and_invalid_utf8_are_cut_counted_and_the_rest_read(tmp_path: Path) -> None:
    run = wrap(tmp_path, GARBAGE_SCRIPT)
    status = run.read_status()
    assert status["lines_capped"] == 1 and status["lines_invalid_utf8"] == 1
    assert status["lines_not_understood"] == 2 and status["read"] == {"trainctl": 1}
    assert events_of(run, "metric")[0]["values"] == {"after/garbage": 1.0}  # read after the long line
    assert run.stdout_path.stat().st_size < 100_000


@pytest.mark.slow
def test_summary_writer_scalars_from_an_auto_detected_runs_folder(tmp_path: Path) -> None:
    run = wrap(tmp_path, TB_SCRIPT, args=("runs/ppo_1",))
    assert run.read_config()["tb"] == str(tmp_path / "runs" / "ppo_1")
    metrics = events_of(run, "metric")
    assert [e["step"] for e in metrics] == [1000, 2000, 3000]
    assert metrics[-1]["values"]["rollout/ep_rew_mean"] == 30.0
    assert metrics[0]["values"]["train/loss"] == pytest.approx(1e-3)
    status = run.read_status()
    assert status["step"] == 3000 and status["tb_files"] == 1


@pytest.mark.slow
def test_watch_tb_follows_a_finished_trainers_folder_until_stopped(tmp_path: Path) -> None:
    tb = tmp_path / "tb"
    subprocess.run([sys.executable, "-c", TB_SCRIPT, str(tb)], check=True, timeout=120, capture_output=True)
    runs = tmp_path / "runs"
    done = trainctl("watch", "--runs-dir", str(runs), "--tb", str(tb))
    assert done.returncode == 0, done.stderr
    (run,) = list_runs(runs)
    assert run.run_id.endswith("_cmd_tb-tb") and run.read_config()["tb"] == str(tb)

    def scalars_read() -> bool:
        return len(events_of(run, "metric")) == 3

    from test_cli_run import wait_for

    wait_for(scalars_read, timeout=60)
    assert run.read_status()["state"] == "running"
    stopped = trainctl("stop", "--runs-dir", str(runs), run.run_id)
    assert stopped.returncode == 0 and run.read_status()["state"] == "stopped", stopped.stdout
    assert "tb       1 event files in" in report_text(run)


@pytest.mark.slow
def test_sb3_ppo_on_cartpole_is_read_from_its_logger_tables(tmp_path: Path) -> None:
    script = ("from stable_baselines3 import PPO\n"
              "import torch; torch.set_num_threads(1)\n"
              "PPO('MlpPolicy', 'CartPole-v1', n_steps=512, batch_size=128, n_epochs=2, verbose=1, seed=0)"
              ".learn(2048)\n")
    run = wrap(tmp_path, script, "--parse", "sb3")
    metrics = events_of(run, "metric")
    assert [e["step"] for e in metrics] == [512, 1024, 1536, 2048]
    last = metrics[-1]["values"]
    assert {"rollout/ep_rew_mean", "rollout/ep_len_mean", "time/fps", "train/loss", "train/entropy_loss"} <= set(last)
    assert all(e["sps"] > 0 for e in events_of(run, "perf"))
    status = run.read_status()
    assert status["read"] == {"sb3": 4} and status["step"] == 2048
    assert "output   read as sb3 tables (4 blocks)" in report_text(run)


def test_tb_tail_reads_new_scalars_incrementally_and_skips_our_run_folders(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    from engine.tb_tail import TbTail, tb_folder_in

    writer = SummaryWriter(str(tmp_path / "ppo_1"))
    writer.add_scalar("train/loss", 0.5, 100)
    writer.add_scalar("rollout/ep_rew_mean", 2.0, 100)
    writer.flush()
    ours = tmp_path / "20260101T000000_ppo_beastybar_balance"
    (ours / "tb").mkdir(parents=True)
    (ours / "run.json").write_text("{}")
    theirs_not = SummaryWriter(str(ours / "tb"))
    theirs_not.add_scalar("not/theirs", 1.0, 5)
    theirs_not.close()
    assert len(TbTail(ours).poll()) == 1  # read when asked for directly, skipped inside a runs folder
    tail = TbTail(tmp_path)
    (first,) = tail.poll()
    assert first["step"] == 100 and first["values"] == {"train/loss": 0.5, "rollout/ep_rew_mean": 2.0}
    writer.add_scalar("train/loss", 0.25, 200)
    writer.flush()
    (second,) = tail.poll()
    assert second["step"] == 200 and second["values"] == {"train/loss": 0.25}
    assert tail.poll() == [] and tail.step == 200 and len(tail.files) == 1
    writer.close()
    assert tb_folder_in(["python", "train.py", "--tensorboard-log", "runs/ppo"]) == Path("runs/ppo")
    assert tb_folder_in(["python", "train.py", "--log-dir=tb"]) == Path("tb")
    assert tb_folder_in(["python", "train.py", "--lr", "3e-4"]) is None


def read_as_the_wrapper_does(tmp_path: Path, reads: list[bytes]) -> tuple[list[dict[str, Any]], dict[str, Any], bytes]:
    """The events, status fields and stdout.log of the wrapper's output reader (`--parse auto`) handed
    `reads` as the successive reads of the trainer's stdout, then its end."""
    run = RunDir.create(tmp_path, f"r{len(list(tmp_path.iterdir()))}", {"kind": "wrapped"})
    sink = EventSink(run)
    read_end, write_end = os.pipe()
    os.close(write_end)
    with open(read_end, "rb") as stream, open(run.stdout_path, "ab") as log:
        output = OutputReader(run, sink, make_reader("auto"), [stream])
        for chunk in [*reads, b""]:
            output.take(stream.fileno(), chunk, log)
    sink.close()
    events = [json.loads(line) for line in run.events_path.read_text(encoding="utf-8").splitlines()]
    return events, {**output.status_fields(), "step": sink.step}, run.stdout_path.read_bytes()


PERF_BURST = b"".join(b"[PERF] steps=%d updates=4 env_step_ms=%.3f sps=%d qsize=%d\n" % (i, 0.1 * i, 100 * i, i)
                      for i in range(1, 41)) + b"[METRIC] step=9999 loss=0.5\n" + b"[PERF] steps=7 env_step_ms=1.0\n"


def test_a_line_split_across_two_reads_is_read_once_and_whole(tmp_path: Path) -> None:
    whole_events, whole_status, whole_log = read_as_the_wrapper_does(tmp_path, [PERF_BURST])
    assert whole_status["step"] == 9999 + 7 and whole_status["read"] == {"trainctl": 42}
    assert [(e["kind"], e.get("folded")) for e in whole_events] == [("perf", 40), ("metric", None), ("perf", None)]
    for cut in (1, 5, 50, len(PERF_BURST) // 2, len(PERF_BURST) - 30, len(PERF_BURST) - 1):
        events, status, log = read_as_the_wrapper_does(tmp_path, [PERF_BURST[:cut], PERF_BURST[cut:]])
        assert status == whole_status and log == whole_log == PERF_BURST
        perf = [e for e in events if e["kind"] == "perf"]
        assert sum(e.get("folded", 1) for e in perf) == 41 and perf[-2]["updates_total"] == 160
        assert [e["values"] for e in events if e["kind"] == "metric"] == [{"loss": 0.5}]


def test_the_pump_reads_every_line_of_reads_it_gathers_and_of_ones_that_fill_its_chunk(tmp_path: Path) -> None:
    """Small writes (read after a wait, several at once) then a burst of many read chunks: all read, in order."""
    run = RunDir.create(tmp_path, "pump", {"kind": "wrapped"})
    sink = EventSink(run)
    small = [b"[PERF] steps=1 env_step_ms=0.5\n" * 3 for _ in range(20)]
    burst = b"".join(b"[PERF] steps=2 env_step_ms=%.3f\n" % (i / 1000) for i in range(4 * READ_CHUNK // 30))
    read_end, write_end = os.pipe()

    def trainer() -> None:
        with open(write_end, "wb", buffering=0) as out:
            for chunk in small:
                out.write(chunk)
            out.write(burst)

    writer = threading.Thread(target=trainer)
    with open(read_end, "rb") as stream:
        output = OutputReader(run, sink, make_reader("auto"), [stream])
        writer.start()
        output.pump()
    writer.join()
    sink.close()
    lines = 3 * len(small) + burst.count(b"\n")
    assert run.stdout_path.read_bytes() == b"".join(small) + burst
    assert output.lines == lines and output.reader.counts() == {"trainctl": lines}
    assert sink.step == 60 + 2 * (lines - 60)
