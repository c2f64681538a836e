"""The run process of a foreign trainer: `python -m engine.wrap RUN_DIR -- CMD ARGS...`.

Runs CMD (no shell) in the run's process group, copies its merged stdout/stderr to stdout.log line by
line, and turns its `[PERF] key=value ...` lines into perf events and `[METRIC] key=value ...` lines
into metric events, so any trainer that prints them shows up in trainctl unchanged. A line that starts
like one but does not parse is counted (`malformed_lines` in status.json) and skipped, never fatal.
The command's exit code sets the final state: 0 finished, killed by SIGINT/SIGTERM stopped, else failed.

Stop requests: `trainctl stop` signals the whole group once `running` is recorded (the command decides
how to stop; the wrapper ignores the signal and only records how it ended). A request written as the
run's stop.request file (sent while the run was starting, or by a reader that cannot signal) is
forwarded by a watcher thread as SIGINT to the group, checked every `StopRequest.CHECK_EVERY_S`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from engine.events import METRIC_PREFIX, PERF_PREFIX, EventWriter, parse_metric_line, parse_perf_line, status_event
from engine.runstore import EXIT_CODES, RunDir, StopRequest, process_identity


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m engine.wrap RUN_DIR -- CMD [ARGS...]", file=sys.stderr)
        return 2
    run, command = RunDir.open(args[0]), args[2:]
    # The signal reaches the whole group; the command decides how to stop, we only record how it ended.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    events = EventWriter(run.events_path)
    try:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 preexec_fn=_default_signals)
    except OSError as exc:
        print(f"trainctl: cannot start {command[0]!r}: {exc.strerror}", flush=True)
        events.write(status_event("failed"))
        run.write_status(state="failed", exit_code=127, ended=time.time())
        return 127
    run.write_status(state="running", **process_identity(os.getpid()), pgid=os.getpgid(0), child_pid=child.pid,
                     started=time.time(), exit_code=None)
    events.write(status_event("running"))
    stop, ended = StopRequest(), threading.Event()
    forwarder = threading.Thread(target=_forward_stop_request, args=(run, stop, ended), daemon=True)
    forwarder.start()
    malformed = 0
    step = 0
    assert child.stdout is not None
    with open(run.stdout_path, "ab") as log:
        for raw in child.stdout:
            log.write(raw)
            log.flush()
            line = raw.decode("utf-8", errors="replace")
            if PERF_PREFIX in line or METRIC_PREFIX in line:
                event = parse_perf_line(line) if PERF_PREFIX in line else parse_metric_line(line)
                if event is None:
                    malformed += 1
                    run.write_status(malformed_lines=malformed)
                    continue
                events.write(event)
                step = max(step, event["step"])
                run.write_status(step=step)
    code = child.wait()
    ended.set()
    forwarder.join()
    stopped = code in (-signal.SIGINT, -signal.SIGTERM, EXIT_CODES["stopped"], 128 + signal.SIGTERM)
    state = "finished" if code == 0 else "stopped" if stopped else "failed"
    events.write(status_event(state, exit_code=code))
    run.write_status(state=state, exit_code=code, ended=time.time(), malformed_lines=malformed,
                     stop_request=stop.request)
    events.close()
    return EXIT_CODES[state]


def _forward_stop_request(run: RunDir, stop: StopRequest, ended: threading.Event) -> None:
    """Until `ended`: when the run's stop.request appears, SIGINT the run's process group, once."""
    stop.watch(run)
    while not stop:
        if ended.wait(StopRequest.CHECK_EVERY_S):
            return
    os.killpg(os.getpgid(0), signal.SIGINT)


def _default_signals() -> None:
    # The wrapper ignores SIGINT/SIGTERM; the command must not inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
