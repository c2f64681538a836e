"""The run process of a trainctl trainer: `python -m engine.worker RUN_DIR [--resume]`.

Started by engine.launcher in its own session (process group), with stdout and stderr going to the
run's stdout.log. It reads the resolved config from run.json, records its pid/pgid and state, runs the
trainer for the run's algo, and records how it ended: `finished`, `stopped` (SIGINT/SIGTERM or the
run's stop.request: the trainer finishes its current update, saves a checkpoint and returns) or
`failed` (an exception, whose traceback goes to stdout.log). Exit code: 0 finished, 130 stopped,
1 failed.

Order matters for stops sent early: the signal handlers are installed and the stop.request file
watched before anything heavy is imported (torch and SB3 take seconds), and only then is `running`
recorded (`phase` start-up, then training once torch is loaded), which is what tells `trainctl stop`
that a signal will be caught. A stop asked for while
starting is kept by the file; the trainer then stops at its first env step and still saves a
checkpoint. A resumed run finds no old request: the launcher removes it before starting this process.

Under torch.distributed.run (a run of `dist.nproc` processes, engine.distributed) every rank runs this;
only the first process of a machine records the status, and a rank that fails leaves its message for
rank 0, whose status then names it (`error`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

from engine import cores, distributed
from engine.errors import UsageError
from engine.events import EventWriter, log_event, status_event
from engine.runstore import EXIT_CODES, RunDir, StopRequest, process_identity

if TYPE_CHECKING:
    from engine.context import RunContext


def main(argv: list[str] | None = None) -> int:
    begun = time.monotonic()  # run.max_minutes counts the whole process, start-up included
    stop = StopRequest()
    stop.install()
    parser = argparse.ArgumentParser(prog="python -m engine.worker")
    parser.add_argument("run_dir")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    args = parser.parse_args(argv)
    ranks = distributed.Ranks.from_env()
    run = RunDir.open(args.run_dir)
    stop.watch(run)
    if ranks.records_status:
        run.write_status(state="running", phase="start-up", **process_identity(os.getpid()), pgid=os.getpgid(0),
                         started=time.time(), exit_code=None, error=None)
    share = cores.join(run.run_id, _requested_threads(run))  # this run's claim on the cores, until it ends
    state = "failed"
    error: str | None = None
    ctx: RunContext | None = None
    try:
        ctx = _context(run, stop, ranks)  # the heavy imports happen here
        if ctx.cfg["run.max_minutes"]:
            stop.limit(60.0 * ctx.cfg["run.max_minutes"], since=begun)
        ctx.set_state("running", phase="training")
        if stop:
            ctx.log("info", f"stop requested during start-up ({stop.reason}): stopping at the first step "
                            "with a checkpoint")
        state = _train(ctx, args.resume)
    except Exception:
        traceback.print_exc()
        sys.stdout.flush()
        error = traceback.format_exc().strip().splitlines()[-1]
        distributed.publish_failure(ranks, error)
        error = distributed.failure_note(ranks, error) if ranks.writes_run else error
        if ranks.writes_run:
            _event(run, ctx, log_event("error", error))
    finally:
        share.leave()
        code = EXIT_CODES[state]
        final: dict[str, Any] = {"exit_code": code, "ended": time.time(), "signal": stop.signal_name,
                                 "stop_request": stop.request, "error": error}
        if ranks.writes_run:
            _event(run, ctx, status_event(state, **final))
        if ranks.records_status:
            run.write_status(state=state, **final)
        if ctx is not None:
            ctx.close()
        if ranks.distributed:
            distributed.close()
    return code


def _requested_threads(run: RunDir) -> int:
    """The run's `torch.threads` as run.json records it (0, a fair share, when it cannot be read: the
    config is checked in full when the context is built)."""
    try:
        value = run.read_config()["config"]["torch.threads"]["value"]
    except (UsageError, KeyError, TypeError):
        return 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _context(run: RunDir, stop: StopRequest, ranks: distributed.Ranks) -> RunContext:
    """The run's RunContext (imports torch: only after the stop handling is in place)."""
    from engine.context import RunContext
    from engine.profiles import ResolvedConfig

    info = run.read_config()
    return RunContext(run, ResolvedConfig.from_json(info["config"], info.get("profile", "?")), stop, ranks)


def _train(ctx: RunContext, resume: bool) -> str:
    """Run the trainer of the run's algo (from the newest checkpoint when `resume`); its final state."""
    from engine.checkpoint import latest_checkpoint, load_checkpoint
    from engine.trainers import trainer_module

    checkpoint = None
    if resume:
        found = latest_checkpoint(ctx.run.checkpoints)
        if found is None and not ctx.ranks.distributed:
            raise RuntimeError(f"no checkpoint in {ctx.run.checkpoints} to resume from")
        # A distributed trainer resumes every rank from rank 0's checkpoint (engine.distributed.state_of_rank_0):
        # a machine after the first of the job has none of its own, and passes {} for it.
        checkpoint = load_checkpoint(found) if found is not None else {}
        if found is not None:
            ctx.log("info", f"resuming from {found.name} at step {checkpoint['step']}")
    state = str(trainer_module(ctx.cfg["run.algo"]).train(ctx, checkpoint))
    if state == "stopped":
        ctx.log("info", f"stopped: asked by {ctx.stop.reason}")
    return state


def _event(run: RunDir, ctx: RunContext | None, event: dict[str, Any]) -> None:
    """Write `event` through the run's context, or straight to events.jsonl when there is none yet."""
    if ctx is not None:
        ctx.events.write(event)
        return
    with EventWriter(run.events_path) as events:
        events.write(event)


if __name__ == "__main__":
    sys.exit(main())
