"""The run process of a trainctl trainer: `python -m engine.worker RUN_DIR [--resume]`.

Started by engine.launcher in its own session (process group), with stdout and stderr going to the
run's stdout.log. It reads the resolved config from run.json, records its pid/pgid and state, runs the
trainer for the run's algo, and records how it ended: `finished`, `stopped` (SIGINT/SIGTERM: the trainer
finishes its current update, saves a checkpoint and returns) or `failed` (an exception, whose traceback
goes to stdout.log). Exit code: 0 finished, 130 stopped, 1 failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

from engine import cores
from engine.checkpoint import latest_checkpoint, load_checkpoint
from engine.context import RunContext, StopRequest
from engine.profiles import ResolvedConfig
from engine.runstore import RunDir
from engine.trainers import trainer_module

EXIT_CODES = {"finished": 0, "stopped": 130, "failed": 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.worker")
    parser.add_argument("run_dir")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    args = parser.parse_args(argv)

    stop = StopRequest()
    stop.install()
    run = RunDir.open(args.run_dir)
    info = run.read_config()
    cfg = ResolvedConfig.from_json(info["config"], info.get("profile", "?"))
    ctx = RunContext(run, cfg, stop)
    ctx.set_state("running", pid=os.getpid(), pgid=os.getpgid(0), started=time.time(), exit_code=None)
    share = cores.join(run.run_id, cfg["torch.threads"])  # this run's claim on the cores, until it ends
    state = "failed"
    try:
        resume = None
        if args.resume:
            found = latest_checkpoint(run.checkpoints)
            if found is None:
                raise RuntimeError(f"no checkpoint in {run.checkpoints} to resume from")
            resume = load_checkpoint(found)
            ctx.log("info", f"resuming from {found.name} at step {resume['step']}")
        state = trainer_module(cfg["run.algo"]).train(ctx, resume)
    except Exception:
        traceback.print_exc()
        sys.stdout.flush()
        ctx.log("error", traceback.format_exc().strip().splitlines()[-1])
    finally:
        share.leave()
        code = EXIT_CODES[state]
        ctx.set_state(state, exit_code=code, ended=time.time(), signal=stop.signal_name)
        ctx.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
