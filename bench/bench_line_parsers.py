"""What reading a foreign trainer's output costs (engine.line_parsers, engine.wrap).

1. Lines parsed per second for each format, with `--parse auto` and with the format named, measured
   alternately in this process on the same lines (the exact lines real trainers print), handed over
   `--batch` at a time as the wrapper hands over one read's lines (100: a trainer printing 10,000 lines
   a second every 10 ms); the ratio auto / named says what trying every format costs. Plain text lines
   (no format) are timed too: under auto each is tried against every parser before it is counted as
   not understood.
2. The wrapper's CPU share while a child prints `--rate` lines a second, of plain text (read by no parser:
   a chatty log) and of seed 004's `[PERF]` lines (every value of every one read: the worst case): a
   real `engine.wrap` run process started through the launcher, its CPU time read from /proc between two
   moments of the steady state, with the lines it read meanwhile; the share at `--rate` is its CPU per
   line times the rate (the measured share when it kept up; the honest figure when a busy machine did
   not give it the CPU to). Target: under 10 % of one core. With `--before DIR`, a checkout of an
   earlier tree (`git archive COMMIT | tar -x -C /tmp/before`), that tree's wrapper is measured on the
   same lines too, alternately with this one's (`--rounds` times each), and the ratio of their CPU per
   line is printed LAST.

    .venv/bin/python bench/bench_line_parsers.py [--lines 20000] [--repeats 5] [--batch 100] [--rate 10000]
        [--seconds 6] [--before DIR] [--rounds 2]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine import launcher
from engine.line_parsers import make_reader
from engine.runstore import RunDir

SEED004 = ("[PERF] steps=256 updates=64 action_ms=0.412 enemy_turn_ms=98.100 env_step_ms=101.300 "
           "replay_sample_ms=1.460 train_fwd_ms=2.100 train_bwd_ms=3.300 log_ms=0.050")


def sb3_lines(count: int) -> list[str]:
    """`count` lines of SB3 logger tables, printed by SB3's own logger."""
    from stable_baselines3.common.logger import HumanOutputFormat

    out = io.StringIO()
    step = 0
    while out.getvalue().count("\n") < count:
        step += 2048
        values = {"rollout/ep_len_mean": 22.5, "rollout/ep_rew_mean": 22.5, "time/fps": 1203,
                  "time/iterations": step // 2048, "time/total_timesteps": step, "train/loss": 0.25,
                  "train/entropy_loss": -0.68, "train/value_loss": 51.2}
        HumanOutputFormat(out).write(values, {k: None for k in values})  # type: ignore[misc]
    return out.getvalue().splitlines()[:count]


FORMATS = {
    "trainctl": lambda n: [SEED004] * n,
    "sb3": sb3_lines,
    "cleanrl": lambda n: [f"global_step={128 * i}, episodic_return=[{i % 50}.]" for i in range(n)],
    "kv": lambda n: [f"[Step {100 * i:>5}] eval/win_rate=0.9340 | train/loss=0.1234" for i in range(n)],
    "plain": lambda n: [f"Epoch {i}: nothing to read here, just a message" for i in range(n)],
}


def lines_per_s(spec: str, lines: list[str], batch: int) -> float:
    reader = make_reader(spec, t0=0.0)
    start = time.perf_counter()
    for i in range(0, len(lines), batch):
        reader.feed_lines(lines[i:i + batch], float(i))
    return len(lines) / (time.perf_counter() - start)


def parse_rates(count: int, repeats: int, batch: int) -> None:
    print(f"{'format':<10} {'auto lines/s':>14} {'named lines/s':>14} {'auto/named':>11}  ({batch} lines a batch)")
    for name, make in FORMATS.items():
        lines = make(count)
        named = "auto" if name == "plain" else name
        auto, alone = [], []
        for _ in range(repeats):  # alternated, so that a busy moment of the machine hits both
            auto.append(lines_per_s("auto", lines, batch))
            alone.append(lines_per_s(named, lines, batch))
        a, n = statistics.median(auto), statistics.median(alone)
        print(f"{name:<10} {a:>14,.0f} {n:>14,.0f} {a / n:>11.2f}")


PRINTER = """
import sys, time
line, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
batch = max(1, rate // 100)
start = time.monotonic()
sent = 0
while time.monotonic() - start < seconds:
    sys.stdout.write((line + "\\n") * batch)
    sys.stdout.flush()
    sent += batch
    ahead = sent / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
"""


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (not its children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_wrapper(run: RunDir, tree: Path | None) -> subprocess.Popen[bytes]:
    """The run process of `run`: as the launcher starts it, or with `tree`'s engine.wrap (the same
    command, output and environment, that tree first on the import path)."""
    if tree is None:
        return launcher.start(run)
    argv = [sys.executable, "-m", "engine.wrap", str(run.path), "--", *run.read_config()["wrapped"]]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(tree)}
    with open(run.stdout_path, "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=tree, env=env)


def wrapper_cost(line: str, rate: int, seconds: float, tree: Path | None = None) -> tuple[float, float, float]:
    """(lines/s the wrapper read, its CPU share of one core, its CPU seconds per line) between two
    moments of the steady state while its child prints `line` `rate` times a second; `tree`: whose
    wrapper (None: this one's). The lines read are counted from stdout.log's size (every line is
    `line`), so the count is exact at both moments."""
    with tempfile.TemporaryDirectory() as tmp:
        run = launcher.create_wrapped_run([sys.executable, "-c", PRINTER, line, str(rate), str(seconds)],
                                          Path(tmp), ["bench"], "printer")
        proc = start_wrapper(run, tree)
        deadline = time.monotonic() + 30
        while "child_pid" not in run.read_status():
            if time.monotonic() > deadline:
                raise RuntimeError("the wrapper did not start")
            time.sleep(0.05)
        child = int(run.read_status()["child_pid"])
        time.sleep(1.0)  # past start-up: imports, the first reads

        def sample() -> tuple[float, float, float, float]:
            lines = run.stdout_path.stat().st_size / (len(line) + 1)
            return cpu_seconds(proc.pid), cpu_seconds(child), lines, time.monotonic()

        w0, c0, n0, t0 = sample()
        time.sleep(max(0.5, seconds - 2.0))
        w1, c1, n1, t1 = sample()
        proc.wait(timeout=60)
        status = run.read_status()
        print(f"wrapper read {status.get('lines', 0):,} lines in all ({status.get('read')}), step "
              f"{status.get('step'):,}; child CPU share {100 * (c1 - c0) / (t1 - t0):.1f} % of one core")
        return (n1 - n0) / (t1 - t0), (w1 - w0) / (t1 - t0), (w1 - w0) / max(1.0, n1 - n0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100, help="lines handed to the reader at once")
    parser.add_argument("--rate", type=int, default=10000, help="lines a second the child prints")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--before", type=Path, help="a checkout of an earlier tree whose wrapper to measure too")
    parser.add_argument("--rounds", type=int, default=2, help="with --before: measurements of each tree per case")
    args = parser.parse_args()
    if args.before is not None and not (args.before / "engine" / "wrap.py").is_file():
        parser.error(f"--before {args.before} holds no engine/wrap.py; expected a checkout of this project")
    parse_rates(args.lines, args.repeats, args.batch)
    # Lines no parser reads (a chatty log), then the worst case (every line a [PERF] line to read).
    cases = {"plain text": FORMATS["plain"](1)[0], "seed 004 [PERF]": SEED004}
    trees: dict[str, Path | None] = {"this tree": None}
    if args.before is not None:
        trees = {"before": args.before.resolve(), **trees}
    per_line: dict[tuple[str, str], list[float]] = {}
    for name, line in cases.items():
        for _ in range(args.rounds if args.before is not None else 1):
            for label, tree in trees.items():  # alternated, so that a busy moment of the machine hits both
                read, share, line_cpu = wrapper_cost(line, args.rate, args.seconds, tree)
                print(f"{label}: wrapper on {name} lines: {read:,.0f} lines/s read (child asked for {args.rate:,}), "
                      f"CPU share {100 * share:.1f} % of one core, {1e6 * line_cpu:.1f} us CPU per line")
                per_line.setdefault((label, name), []).append(line_cpu)
    # When the machine could not give the wrapper the CPU to keep up, the share at the asked-for rate is
    # its CPU per line times that rate.
    cpu = {key: statistics.median(values) for key, values in per_line.items()}
    for label in trees:
        print(f"{label}: wrapper CPU share at {args.rate:,} lines/s: "
              + ", ".join(f"{name} {100 * args.rate * cpu[label, name]:.1f} %" for name in cases)
              + " of one core (target < 10 %)")
    if args.before is not None:
        print("wrapper CPU per line, this tree / before (medians): "
              + ", ".join(f"{name} {cpu['this tree', name] / cpu['before', name]:.2f}x" for name in cases))


if __name__ == "__main__":
    main()
