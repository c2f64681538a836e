"""What reading a foreign trainer's output costs (engine.line_parsers, engine.wrap).

1. Lines parsed per second for each format, with `--parse auto` and with the format named, measured
   alternately in this process on the same lines (the exact lines real trainers print); the ratio
   auto / named says what trying every format costs. Plain text lines (no format) are timed too:
   under auto each is tried against every parser before it is counted as not understood.
2. The wrapper's CPU share while a child prints `--rate` lines a second, of plain text (read by no
   parser: a chatty log) and of seed 004's `[PERF]` lines (every one an event: the worst case): a
   real `engine.wrap` run process started through the launcher, its CPU time read from /proc between
   two moments of the steady state, with the lines it read meanwhile; the share at `--rate` is its
   CPU per line times the rate (the measured share when it kept up; the honest figure when a busy
   machine did not give it the CPU to). Target: under 10 % of one core. Printed LAST.

    .venv/bin/python bench/bench_line_parsers.py [--lines 20000] [--repeats 5] [--rate 10000] [--seconds 6]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from engine import launcher
from engine.line_parsers import make_reader

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


def lines_per_s(spec: str, lines: list[str]) -> float:
    reader = make_reader(spec, t0=0.0)
    start = time.perf_counter()
    for i, line in enumerate(lines):
        reader.feed(line, float(i))
    return len(lines) / (time.perf_counter() - start)


def parse_rates(count: int, repeats: int) -> None:
    print(f"{'format':<10} {'auto lines/s':>14} {'named lines/s':>14} {'auto/named':>11}")
    for name, make in FORMATS.items():
        lines = make(count)
        named = "auto" if name == "plain" else name
        auto, alone = [], []
        for _ in range(repeats):  # alternated, so that a busy moment of the machine hits both
            auto.append(lines_per_s("auto", lines))
            alone.append(lines_per_s(named, lines))
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


def wrapper_cost(line: str, rate: int, seconds: float) -> tuple[float, float, float]:
    """(lines/s the wrapper read, its CPU share of one core, its CPU seconds per line) between two
    moments of the steady state while its child prints `line` `rate` times a second. The lines read
    are counted from stdout.log's size (every line is `line`), so the count is exact at both moments."""
    with tempfile.TemporaryDirectory() as tmp:
        run = launcher.create_wrapped_run([sys.executable, "-c", PRINTER, line, str(rate), str(seconds)],
                                          Path(tmp), ["bench"], "printer")
        proc = launcher.start(run)
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
    parser.add_argument("--rate", type=int, default=10000, help="lines a second the child prints")
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    parse_rates(args.lines, args.repeats)
    # Worst case first (every line an event to write), then lines no parser reads (a chatty log).
    cases = {"plain text": FORMATS["plain"](1)[0], "seed 004 [PERF]": SEED004}
    shares = {}
    for name, line in cases.items():
        read, share, per_line = wrapper_cost(line, args.rate, args.seconds)
        print(f"wrapper on {name} lines: {read:,.0f} lines/s read (child asked for {args.rate:,}), CPU share "
              f"{100 * share:.1f} % of one core, {1e6 * per_line:.1f} us CPU per line")
        # When the machine could not give the wrapper the CPU to keep up, the share at the asked-for
        # rate is its CPU per line times that rate.
        shares[name] = per_line * args.rate
    print("wrapper CPU share at " + f"{args.rate:,} lines/s: "
          + ", ".join(f"{name} {100 * share:.1f} %" for name, share in shares.items())
          + " of one core (target < 10 %)")

if __name__ == "__main__":
    main()
