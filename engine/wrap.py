"""The run process of a foreign trainer: `python -m engine.wrap RUN_DIR -- CMD ARGS...`.

Runs CMD (no shell) in the run's process group and reads its stdout and stderr (after a read that found
the pipes holding little, `GATHER_S` later: a chatty trainer is read in a few large reads a second): every
line is copied to stdout.log, and the lines of each read are handed together to the line reader run.json
names (`parse`: auto, a format, or regex:…; see engine.line_parsers), whose perf, metric and extra
events go to events.jsonl. When run.json names a TensorBoard folder (`tb`), a thread follows its event
files and their scalars become metric events too. With no CMD the process only follows that folder
(`trainctl watch --tb DIR`): it runs until it is asked to stop, or ends `finished` once no scalar has
come for `TB_IDLE_S` seconds.

Reading never stalls and never fails on what the trainer prints: a line longer than `LINE_CAP_BYTES`
is cut there (the cut is marked in stdout.log and counted as `lines_capped`), invalid UTF-8 is replaced
and counted (`lines_invalid_utf8`), a line no parser understands is counted (`lines_not_understood`),
one that starts like a format but does not parse is counted (`malformed_lines`); status.json holds
these counts, what each parser read (`read`), and the step, rewritten every `STATUS_EVERY_S` by a
thread of its own (the reading never waits for a disk).
The command's exit code sets the final state: 0 finished, killed by SIGINT/SIGTERM stopped, else failed.

Stop requests: `trainctl stop` signals the whole group once `running` is recorded (the command decides
how to stop; the wrapper ignores the signal and only records how it ended). A request written as the
run's stop.request file (sent while the run was starting, or by a reader that cannot signal) is
forwarded by a watcher thread as SIGINT to the group, checked every `StopRequest.CHECK_EVERY_S`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from engine.events import EventWriter, log_event, status_event
from engine.line_parsers import LineReader, make_reader
from engine.runstore import EXIT_CODES, RunDir, StopRequest, process_identity
from engine.tb_tail import TbTail

LINE_CAP_BYTES = 64 * 1024  # longer lines are cut: no parser needs more, and memory stays bounded
CUT_MARK = b" [...line cut by trainctl]"
READ_CHUNK = 64 * 1024  # larger reads cost more than two: glibc maps a fresh 128 KiB buffer each time
PIPE_BYTES = 1024 * 1024  # the child's pipes: room for a second of a chatty trainer while we write
# After reads that emptied the pipes (each got less than READ_CHUNK) and found them holding little (under
# PIPE_FILL_TO_WAIT of their room), the reader waits this long before the next one, so that a chatty
# trainer's lines are read in a few large reads a second, not one per write: each wake-up and read costs
# about as much CPU as reading a hundred lines. A pipe fills during a wait (and the trainer blocks on its
# prints until the wait ends) only if its output suddenly grows many times over.
GATHER_S = 0.1
PIPE_FILL_TO_WAIT = 1 / 8
STATUS_EVERY_S = 1.0  # status.json is replaced whole (fsync): not once per line of a chatty trainer
TB_POLL_S = 1.0
TB_IDLE_S = 600.0


class LineSplitter:
    """Cuts a byte stream into lines (without their newline; a carriage return, alone or before the
    newline, ends a line too) of at most `cap` bytes. The rest of a longer line is dropped up to its
    newline; `capped` counts such lines. `close()` returns a last line left without a newline."""

    def __init__(self, cap: int = LINE_CAP_BYTES) -> None:
        self.cap = cap
        self.capped = 0
        self._buffer = b""
        self._dropping = False

    def feed(self, chunk: bytes) -> list[bytes]:
        # A carriage return ends a line too: a progress bar redrawn in place is a line per redraw, not
        # one endless line.
        data = self._buffer + chunk
        if b"\r" in data:  # a search in C; the two copies only when there is one
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = data.split(b"\n")  # in C: a chatty trainer's read holds hundreds of lines
        rest = lines.pop()
        if self._dropping and lines:  # the end of a line cut at the cap: dropped
            self._dropping = False
            del lines[0]
        if self._dropping:
            rest = b""
        elif len(rest) > self.cap:
            lines.append(rest)
            self._dropping, rest = True, b""
        self._buffer = rest
        if lines and max(map(len, lines)) > self.cap:
            lines = [self._cut(line) for line in lines]
        return lines

    def _cut(self, line: bytes) -> bytes:
        if len(line) <= self.cap:
            return line
        self.capped += 1
        return line[:self.cap] + CUT_MARK

    def close(self) -> list[bytes]:
        rest, self._buffer = self._buffer, b""
        return [rest] if rest and not self._dropping else []


class EventSink:
    """The run's events.jsonl shared by the output reader and the TensorBoard thread, and the step
    status.json shows (the largest either has seen)."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.step = 0
        self._writer = EventWriter(run.events_path)
        self._lock = threading.Lock()

    def write(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        with self._lock:
            self._writer.write_many(events)
            self.step = max(self.step, *(int(event.get("step", 0)) for event in events))

    def close(self) -> None:
        with self._lock:
            self._writer.close()


class OutputReader:
    """Copies the child's stdout and stderr to stdout.log and feeds their lines to `reader`. Its counts
    are read by the status thread while `pump` runs (plain ints and a dict made once: no locks)."""

    def __init__(self, run: RunDir, sink: EventSink, reader: LineReader, streams: list[IO[bytes]]) -> None:
        self.run, self.sink, self.reader = run, sink, reader
        self.streams = streams
        self.lines = 0
        self.invalid_utf8 = 0
        self._splitters = {stream.fileno(): LineSplitter() for stream in streams}

    def pump(self) -> None:
        """Read every stream until each is at its end, waiting `GATHER_S` after a read that found
        little in the pipes."""
        selector = selectors.DefaultSelector()
        for stream in self.streams:
            os.set_blocking(stream.fileno(), False)
            selector.register(stream, selectors.EVENT_READ)
        room = min((_widen_pipe(stream.fileno()) for stream in self.streams), default=PIPE_BYTES)
        with open(self.run.stdout_path, "ab") as log:
            while selector.get_map():
                most = 0
                for key, _ in selector.select():
                    chunk = os.read(key.fd, READ_CHUNK)
                    if not chunk:
                        selector.unregister(key.fileobj)
                    self.take(key.fd, chunk, log)
                    most = max(most, len(chunk))
                if 0 < most < min(READ_CHUNK, room * PIPE_FILL_TO_WAIT):
                    time.sleep(GATHER_S)
        selector.close()

    def take(self, fd: int, chunk: bytes, log: IO[bytes]) -> None:
        """One read of stream `fd` (b"" at its end): its complete lines to `log` and to the reader."""
        splitter = self._splitters[fd]
        self._take(splitter.feed(chunk) if chunk else splitter.close(), log)

    def _take(self, lines: list[bytes], log: IO[bytes]) -> None:
        if not lines:
            return
        block = b"\n".join(lines) + b"\n"
        log.write(block)
        log.flush()
        try:  # the whole read at once, line by line only when some line is not UTF-8
            texts = block[:-1].decode("utf-8").split("\n")
        except UnicodeDecodeError:
            texts = []
            for raw in lines:
                try:
                    texts.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    self.invalid_utf8 += 1
                    texts.append(raw.decode("utf-8", errors="replace"))
        # A read's lines are read together: its [PERF] lines make one perf event, not one each.
        events = self.reader.feed_lines(texts, time.time())
        self.lines += len(lines)
        self.sink.write(events)

    def status_fields(self) -> dict[str, Any]:
        return {"parse": self.reader.spec, "read": self.reader.counts(), "lines": self.lines,
                "lines_not_understood": self.reader.not_understood, "malformed_lines": self.reader.malformed,
                "lines_capped": sum(s.capped for s in self._splitters.values()),
                "lines_invalid_utf8": self.invalid_utf8}

    def write_status(self, **extra: Any) -> None:
        self.run.write_status(step=self.sink.step, **self.status_fields(), **extra)

    def write_status_until(self, ended: threading.Event) -> None:
        """Rewrite status.json every `STATUS_EVERY_S` until `ended`: in a thread of its own, so that
        its fsync never holds up the reading (a full pipe would stall the trainer)."""
        while not ended.wait(STATUS_EVERY_S):
            self.write_status()


def _widen_pipe(fd: int) -> int:
    """Give pipe `fd` `PIPE_BYTES` of room where the system allows it (Linux); the room it has."""
    with contextlib.suppress(OSError, AttributeError):  # Linux only; a smaller pipe still works
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    try:
        return int(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ))
    except (OSError, AttributeError):
        return 64 * 1024  # Linux's default; other systems give a pipe no more


class TbFollower(threading.Thread):
    """Polls a TensorBoard folder every `TB_POLL_S` seconds until `done` is set, then once more."""

    def __init__(self, folder: Path, sink: EventSink) -> None:
        super().__init__(daemon=True)
        self.tail, self.sink = TbTail(folder), sink
        self.done = threading.Event()
        self.last_scalar = time.monotonic()

    def run(self) -> None:
        problem = None
        while True:
            finished = self.done.wait(TB_POLL_S)
            # A bad event file must not end the run: it is said once in a log event, and read again.
            try:
                events = self.tail.poll()
            except Exception as exc:
                if str(exc) != problem:
                    self.sink.write([log_event("warning", f"TensorBoard folder {self.tail.folder}: {exc}")])
                problem, events = str(exc), []
            if events:
                self.last_scalar = time.monotonic()
                self.sink.write(events)
            if finished:
                return

    def status_fields(self) -> dict[str, Any]:
        return {"tb": str(self.tail.folder), "tb_files": len(self.tail.files)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[1] != "--":
        print("usage: python -m engine.wrap RUN_DIR -- [CMD [ARGS...]]", file=sys.stderr)
        return 2
    run, command = RunDir.open(args[0]), args[2:]
    info = run.read_config()
    sink = EventSink(run)
    tb = TbFollower(Path(info["tb"]), sink) if info.get("tb") else None
    if tb is not None:
        tb.start()
    try:
        if command:
            state, code = _wrap(run, command, sink, make_reader(str(info.get("parse", "auto"))), tb)
        elif tb is not None:
            state, code = _follow_tb_only(run, sink, tb)
        else:
            print("trainctl: nothing to follow: no command and no TensorBoard folder in run.json", flush=True)
            state, code = "failed", 2
    finally:
        if tb is not None:
            tb.done.set()
            tb.join()
    sink.write([status_event(state, exit_code=code)])
    run.write_status(state=state, exit_code=code, ended=time.time(), step=sink.step,
                     **(tb.status_fields() if tb else {}))
    sink.close()
    return EXIT_CODES[state]


def _wrap(run: RunDir, command: list[str], sink: EventSink, reader: LineReader,
          tb: TbFollower | None) -> tuple[str, int]:
    # The signal reaches the whole group; the command decides how to stop, we only record how it ended.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                 preexec_fn=_default_signals)
    except OSError as exc:
        print(f"trainctl: cannot start {command[0]!r}: {exc.strerror}", flush=True)
        return "failed", 127
    _record_running(run, sink, child_pid=child.pid)
    stop, ended = StopRequest(), threading.Event()
    forwarder = threading.Thread(target=_forward_stop_request, args=(run, stop, ended), daemon=True)
    forwarder.start()
    assert child.stdout is not None and child.stderr is not None
    output = OutputReader(run, sink, reader, [child.stdout, child.stderr])
    status = threading.Thread(target=output.write_status_until, args=(ended,), daemon=True)
    status.start()
    output.pump()
    code = child.wait()
    ended.set()
    forwarder.join()
    status.join()
    stopped = code in (-signal.SIGINT, -signal.SIGTERM, EXIT_CODES["stopped"], 128 + signal.SIGTERM)
    state = "finished" if code == 0 else "stopped" if stopped else "failed"
    output.write_status(stop_request=stop.request, **(tb.status_fields() if tb else {}))
    return state, code


def _follow_tb_only(run: RunDir, sink: EventSink, tb: TbFollower) -> tuple[str, int]:
    """Follow the TensorBoard folder until a stop (signal or stop.request) or `TB_IDLE_S` of quiet."""
    stop = StopRequest()
    stop.install()
    stop.watch(run)
    _record_running(run, sink)
    while not stop and time.monotonic() - tb.last_scalar < TB_IDLE_S:
        time.sleep(STATUS_EVERY_S)
        run.write_status(step=sink.step, **tb.status_fields())
    return ("stopped", EXIT_CODES["stopped"]) if stop else ("finished", 0)


def _record_running(run: RunDir, sink: EventSink, **fields: Any) -> None:
    run.write_status(state="running", **process_identity(os.getpid()), pgid=os.getpgid(0), started=time.time(),
                     exit_code=None, **fields)
    sink.write([status_event("running")])


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
