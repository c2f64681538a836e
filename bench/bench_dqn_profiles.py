"""PER-DQN on Skirmish: the speed profile vs the balance profile (is speed worth it?), and prefetch on vs off
inside a real dqn-per run (the main thread's replay_sample_ms).

Each run is a real `trainctl run --algo dqn-per --env skirmish` subprocess on this machine, one after the
other in this process, same step budget; each profile trains once per seed (--seeds of them from --first-seed,
default 0), because one short DQN run's win rate swings by tens of points from seed to seed. Throughput: env
steps over the training time the run's own perf windows measured (sum over windows of steps / sps: everything
from the first env step to the last, warmup included; process start-up, model building and the final
checkpoint excluded, alike for both). Quality: both final policies (greedy, masked) play the same fixed seeded
set of games against the scripted player (engine.evaluate, game i dealt from seed EVAL_SEED + i; a truncated
game counts as a draw); a profile's win rate is the mean over its seeds. Verdict: speed must bring >= +10 %
throughput and lose <= 4 points of win rate; printed LAST with both numbers and the standard error of the win-
rate difference (one 40,000-step run's win rate swings by 10-25 points from seed to seed, so a difference of a
few points is inside the noise even at 5 seeds). Every run sets torch.threads=1: the machine is shared (2
cores), and one torch thread per run keeps the two profiles' figures comparable under other load.

Prefetch: two balance runs of --prefetch-steps, `per.prefetch` true and false, replay_sample_ms averaged over
the windows after warmup (steps-weighted); target on <= 20 % of off.

.venv/bin/python bench/bench_dqn_profiles.py [--steps 40000] [--seeds 5] [--first-seed 0] [--games 500]
[--prefetch-steps 20000]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.checkpoint import latest_checkpoint, load_checkpoint
from engine.dqn import check_resume, q_chooser, q_net_from_checkpoint, skirmish_outcomes
from engine.evaluate import Outcomes, play_games
from engine.runstore import RunDir, list_runs

PROJECT = Path(__file__).resolve().parent.parent
EVAL_SEED = 1_000_000


@dataclass(frozen=True)
class RunFigures:
    steps: int
    seconds: float
    ms: dict[str, float]  # steps-weighted mean ms per env step of each phase, windows after `skip_until`

    @property
    def sps(self) -> float:
        return self.steps / self.seconds


def train(profile: str, steps: int, seed: int, runs_dir: Path, *sets: str) -> RunDir:
    """A finished `trainctl run` of dqn-per on skirmish with `profile`; its run folder."""
    before = {run.run_id for run in list_runs(runs_dir)}
    cmd = [sys.executable, "-m", "cli.main", "run", "--algo", "dqn-per", "--env", "skirmish", "--profile", profile,
           "--steps", str(steps), "--seed", str(seed), "--runs-dir", str(runs_dir),
           "--name", f"{profile}-{len(before)}", *[a for s in ("torch.threads=1", *sets) for a in ("--set", s)]]
    done = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    (run,) = [r for r in list_runs(runs_dir) if r.run_id not in before]
    return run


def figures(run: RunDir, skip_until: int = 0) -> RunFigures:
    """Throughput over every perf window; phase means over the windows that start at or after `skip_until`."""
    perf = [json.loads(line) for line in run.events_path.read_text().splitlines()]
    perf = [e for e in perf if e["kind"] == "perf"]
    steps, seconds, last = 0, 0.0, 0
    ms_sum: dict[str, float] = {}
    ms_steps = 0
    for event in perf:
        window = event["step"] - last
        steps += window
        seconds += window / event["sps"]
        if last >= skip_until:
            ms_steps += window
            for phase, value in event["ms"].items():
                ms_sum[phase] = ms_sum.get(phase, 0.0) + value * window
        last = event["step"]
    return RunFigures(steps, seconds, {p: v / ms_steps for p, v in ms_sum.items()} if ms_steps else {})


def evaluate(run: RunDir, games: int) -> Outcomes:
    state = load_checkpoint(latest_checkpoint(run.checkpoints))  # type: ignore[arg-type]
    check_resume(state)
    return play_games(q_chooser(q_net_from_checkpoint(state)), games=games, seed=EVAL_SEED, env="skirmish",
                      opponent="scripted", outcomes=skirmish_outcomes)


def describe(name: str, fig: RunFigures, outcomes: Outcomes) -> str:
    low, high = outcomes.win_rate_interval()
    phases = " ".join(f"{p}={v:.3f}" for p, v in fig.ms.items())
    return (f"{name:<8} {fig.sps:8.0f} steps/s ({fig.steps:,} steps in {fig.seconds:.1f} s)  win rate "
            f"{100 * outcomes.win_rate:5.1f} % [{100 * low:.1f}, {100 * high:.1f}] "
            f"(W/D/L {outcomes.wins}/{outcomes.draws}/{outcomes.losses})\n{'':9}ms per env step: {phases}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40_000, help="env steps of each profile run")
    parser.add_argument("--seeds", type=int, default=5, help="training seeds per profile")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="first training seed (runs are deterministic per seed: extend an earlier run)")
    parser.add_argument("--games", type=int, default=500, help="evaluation games per policy")
    parser.add_argument("--prefetch-steps", type=int, default=20_000, help="env steps of each prefetch run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_dqn_") as tmp:
        runs_dir = Path(tmp)
        print(f"dqn-per on skirmish vs the scripted player, {args.steps:,} env steps per run, "
              f"seeds {args.first_seed}..{args.first_seed + args.seeds - 1}; "
              f"evaluation: {args.games} fixed games (seeds {EVAL_SEED}+i), greedy with masks", flush=True)
        sps: dict[str, float] = {}
        win_rate: dict[str, float] = {}
        spread: dict[str, float] = {}  # standard error of the mean win rate over seeds, points
        for profile in ("balance", "speed"):
            steps = seconds = 0.0
            rates = []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                run = train(profile, args.steps, seed, runs_dir)
                fig, outcomes = figures(run), evaluate(run, args.games)
                print(describe(f"{profile}/{seed}", fig, outcomes), flush=True)
                steps, seconds = steps + fig.steps, seconds + fig.seconds
                rates.append(100 * outcomes.win_rate)
            sps[profile], win_rate[profile] = steps / seconds, sum(rates) / len(rates)
            spread[profile] = statistics.stdev(rates) / math.sqrt(len(rates)) if len(rates) > 1 else math.nan
            print(f"{profile:<8} {sps[profile]:8.0f} steps/s over its runs; win rate mean {win_rate[profile]:.1f} % "
                  f"(runs {', '.join(f'{r:.1f}' for r in rates)})", flush=True)

        on_off = {}
        for prefetch in (True, False):
            run = train("balance", args.prefetch_steps, 0, runs_dir, f"per.prefetch={str(prefetch).lower()}",
                        "log.every_steps=5000", "log.tensorboard=false")
            on_off[prefetch] = figures(run, skip_until=10_000)  # windows after balance's 5,000-step warmup
        on, off = on_off[True].ms["replay_sample"], on_off[False].ms["replay_sample"]
        print(f"prefetch (balance, {args.prefetch_steps:,} steps, windows from step 10,000): main-thread "
              f"replay_sample_ms on {on:.4f} vs off {off:.4f} per env step; "
              f"ratio on/off = {100 * on / off:.1f} % (target <= 20 %) {'PASS' if on <= 0.2 * off else 'FAIL'}")

    gain = 100 * (sps["speed"] / sps["balance"] - 1)
    lost = win_rate["balance"] - win_rate["speed"]
    lost_se = math.hypot(spread["balance"], spread["speed"])
    verdict = "PASS" if gain >= 10 and lost <= 4 else "FAIL"
    print(f"verdict speed vs balance: throughput {gain:+.1f} % (target >= +10 %), win rate lost {lost:+.1f} points "
          f"(+/- {lost_se:.1f} standard error over seeds; target <= 4) -> {verdict}")


if __name__ == "__main__":
    main()
