"""Run one shell command with bounded output and a process group we always kill.

The command gets its own session (so it has no controlling terminal and one
`killpg` reaches everything it started), stdin closed, and exactly the
environment given. Output is read by a thread into a head buffer and a rolling
tail, so a command printing gigabytes costs a fixed amount of memory; with
`clean`, terminal control (colours, progress redraws) is taken out on the way
in, so what the head and tail hold is text worth reading. When the
shell ends, times out or is cancelled, its whole process group is killed; a
grandchild that escaped the group and keeps the pipe open only delays `run` by
a short drain deadline.
"""

from __future__ import annotations

import os
import re
import select
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

DRAIN_SECONDS = 0.5
_POLL_MAX = 0.05
_READ_SIZE = 65536
_LINE_CUT_WINDOW = 2000  # how far we look for a line boundary when trimming

# Escape sequences (ECMA-48): CSI (colours, cursor moves, erasing), the string ones (OSC: titles,
# hyperlinks; DCS, SOS, PM, APC) ended by BEL or ST, the short ESC ones, and a stray ESC.
_ESCAPE_RE = rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-Z\\`-~])?"
_ESCAPE = re.compile(_ESCAPE_RE)
# The start of one the chunk cut off: held back until the next chunk completes it.
_UNFINISHED = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*|[\]PX^_][^\x07\x1b]*\x1b?|[ -/]*)\Z")
_MAX_ESCAPE = 4096  # longer is not a sequence anyone meant; its text shows
# A complete CSI sequence. Its ESC always starts a sequence of its own and it always ends at the same
# byte (parameters, intermediates and final bytes are disjoint ranges), so when every ESC of a chunk
# starts one of a few such sequences, removing each with bytes.replace is what _ESCAPE.sub does.
_CSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]")
_FAST_MIN = 16  # ESCs in a chunk worth trying the replacements for
_FAST_SAMPLE = 4096  # where the chunk's sequences are collected
_FAST_KINDS = 8  # distinct sequences replaced at most
# Cursor to column 1 (ESC[G, ESC[1G) and erase line (ESC[2K): a new frame, like \r, when text follows
# them (after other sequences, if any); before a line end or the stream's end they are only removed.
# They are first left as a lone ESC (no ESC survives the stripping otherwise), which is then read in
# linear passes: a run is one, one before \r or \n goes, one at the end of the chunk waits, the rest is \r.
_RESETS = (b"\x1b[2K", b"\x1b[G", b"\x1b[1G", b"\x1b[0G")
_ESCAPE_OR_RESET = re.compile(rb"(\x1b)\[(?:[01]?G|2K)|" + _ESCAPE_RE)
_MARKS = re.compile(rb"\x1b\x1b+")
_MARK_AT_LINE_END = re.compile(rb"\x1b(?=[\r\n])")
# What a later \r in the same line overwrote: up to the last \r that has text after it. A \r just
# before the \n (CRLF) erases nothing.
_OVERWRITTEN = re.compile(rb"^[^\n]*\r(?=[^\r\n])", re.MULTILINE)
_LONE_LINE = 65536  # a line without \n held longer than this is passed on (a later \r starts a new line)


def _overwrites(data: bytes) -> bool:
    """Whether a \r in `data` may overwrite: text follows it on its line (not in CRLF, nor as the last byte)."""
    first = data.find(b"\r")
    if first == -1:
        return False
    if first + 1 < len(data) and data[first + 1] not in b"\r\n":
        return True
    return data.count(b"\r") != data.count(b"\r\n") + data.endswith(b"\r")


def _mark_or_removed(m: re.Match[bytes]) -> bytes:
    return b"\x1b" if m.group(1) else b""


class TerminalText:
    """Bytes written for a terminal, as the text it would show: escape sequences removed, and of each
    line's carriage-return frames (progress bars) only the last; ESC[G, ESC[1G and ESC[2K start a frame
    too.

    Streaming: `feed` returns what is settled so far, holding back at most an unfinished escape
    sequence (or a line reset whose effect depends on what follows) and the current line's last frame
    (a later \r may still replace it); `end` the rest. Linear in the input, so 100,000 progress frames
    cost no more than their bytes; a chunk without ESC or \r costs a few scans of its bytes."""

    def __init__(self) -> None:
        self.pending = b""  # an unfinished escape sequence
        self.line = b""  # the current line's last frame (maybe a trailing \r), not yet passed on
        self.spilled = False  # part of the current line was passed on already (it grew past _LONE_LINE)
        self.reset = False  # the text so far ended with a line reset: what follows decides what it does

    def feed(self, chunk: bytes) -> bytes:
        data = self.pending + chunk if self.pending else chunk
        self.pending = b""
        if b"\x1b" in data:
            # A cut sequence starts at the last ESC, or the one before when the last byte is an ESC (ST).
            window = max(0, len(data) - _MAX_ESCAPE)
            cut = _UNFINISHED.search(data, max(window, data.rfind(b"\x1b", window, len(data) - 1)))
            if cut:
                data, self.pending = data[: cut.start()], data[cut.start():]
            data = self._strip(data)
        elif self.reset:
            data = self._resets(data)
        return self._frames(data, final=False)

    def _strip(self, data: bytes) -> bytes:
        """`data` (complete sequences only) without its escape sequences, a line reset made a \r."""
        escapes = data.count(b"\x1b")
        if escapes >= _FAST_MIN:  # the common case: a few colours (or progress frames), over and over
            kinds = set(_CSI.findall(data, 0, _FAST_SAMPLE))
            if len(kinds) <= _FAST_KINDS and sum(map(data.count, kinds)) == escapes:
                resets = kinds.intersection(_RESETS)
                for kind in kinds - resets:
                    data = data.replace(kind, b"")
                if resets:  # now every ESC starts a reset: made one kind, then marks, no text is taken along
                    for kind in resets - {b"\x1b[2K"}:
                        data = data.replace(kind, b"\x1b[2K")
                    data = data.replace(b"\x1b[2K", b"\x1b")
                return self._resets(data)
        if any(reset in data for reset in _RESETS):
            return self._resets(_ESCAPE_OR_RESET.sub(_mark_or_removed, data))
        return self._resets(_ESCAPE.sub(b"", data))

    def _resets(self, data: bytes) -> bytes:
        """Stripped `data` with each line reset (a lone ESC) made a \r, or removed where nothing follows it."""
        if self.reset:
            data, self.reset = b"\x1b" + data, False
        if b"\x1b" not in data:
            return data
        data = _MARKS.sub(b"\x1b", data)
        if data.endswith(b"\x1b"):
            data, self.reset = data[:-1], True
        return _MARK_AT_LINE_END.sub(b"", data).replace(b"\x1b", b"\r")

    def end(self) -> bytes:
        """What is left when the stream ends (an unfinished escape sequence is dropped)."""
        self.pending, self.reset = b"", False  # a line reset at the end overwrites nothing
        return self._frames(b"", final=True)

    def _frames(self, data: bytes, final: bool) -> bytes:
        data = self.line + data
        if _overwrites(data):
            if self.spilled and _OVERWRITTEN.match(data):
                data = b"\n" + data  # what it overwrites was passed on: start a line of its own
            data = _OVERWRITTEN.sub(b"", data)
        nl = data.rfind(b"\n")
        if nl != -1:
            self.spilled = False
        out, self.line = data[: nl + 1], data[nl + 1:]
        if final:
            out, self.line = out + self.line.rstrip(b"\r"), b""
        elif len(self.line) > _LONE_LINE:
            frame = self.line.rstrip(b"\r")  # a trailing \r may be half of a CRLF: keep it back
            out, self.line, self.spilled = out + frame, self.line[len(frame):], True
        return out


@dataclass
class CommandResult:
    exit_code: int | None  # None if killed (timeout/cancel)
    output: str  # stdout+stderr interleaved, decoded, bounded
    duration: float  # wall seconds
    timed_out: bool
    cancelled: bool
    omitted_bytes: int  # bytes dropped from the middle


class _Capture:
    """Keeps the first `head_bytes` and the last `tail_bytes` of a stream."""

    def __init__(self, head_bytes: int, tail_bytes: int) -> None:
        self.head_bytes = max(0, head_bytes)
        self.tail_bytes = max(0, tail_bytes)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.lock = threading.Lock()

    def add(self, chunk: bytes) -> None:
        with self.lock:
            self.total += len(chunk)
            room = self.head_bytes - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk and self.tail_bytes:
                self.tail += chunk
                if len(self.tail) > 2 * self.tail_bytes:  # trim rarely: amortised O(1)
                    del self.tail[: -self.tail_bytes]

    def text(self) -> tuple[str, int]:
        with self.lock:
            head = bytes(self.head)
            tail = bytes(self.tail[-self.tail_bytes :]) if self.tail_bytes else b""
            omitted = self.total - len(head) - len(tail)
        if omitted <= 0:
            return (head + tail).decode("utf-8", errors="replace"), 0
        # Cut on line boundaries when one is near, so no half lines around the note.
        cut = head.rfind(b"\n", max(0, len(head) - _LINE_CUT_WINDOW))
        if cut != -1:
            omitted += len(head) - (cut + 1)
            head = head[: cut + 1]
        cut = tail.find(b"\n", 0, _LINE_CUT_WINDOW)
        if cut != -1:
            omitted += cut + 1
            tail = tail[cut + 1 :]
        sep = b"" if not head or head.endswith(b"\n") else b"\n"
        note = f"{sep.decode()}[... {omitted} bytes omitted ...]\n"
        return head.decode("utf-8", errors="replace") + note + tail.decode("utf-8", errors="replace"), omitted


def _pump(fd: int, capture: _Capture, stop: threading.Event, clean: TerminalText | None = None) -> None:
    """Read until EOF, or until `stop` is set (the pipe may never reach EOF)."""
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while not stop.is_set():
                if not sel.select(timeout=0.05):
                    continue
                try:
                    chunk = os.read(fd, _READ_SIZE)
                except OSError:
                    return
                if not chunk:
                    return
                capture.add(clean.feed(chunk) if clean else chunk)
    finally:
        if clean:
            capture.add(clean.end())


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _exited(proc: subprocess.Popen) -> bool:
    """Whether the shell has exited, without reaping it.

    Leaving the zombie in place keeps its pid (= the group id) reserved, so
    the `killpg` that follows cannot hit a recycled group.
    """
    if not hasattr(os, "waitid"):
        return proc.poll() is not None
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # already reaped
        return True
    return info is not None


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits (Linux 5.3+), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _shell() -> str:
    return "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"


def run(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    cancel: threading.Event | None = None,
    head_bytes: int = 16_000,
    tail_bytes: int = 16_000,
    wrap: Callable[[list[str]], list[str]] | None = None,
    clean: bool = False,
) -> CommandResult:
    """Run `command` in a shell; never leaves a process of its group behind.

    `wrap` turns the shell's argv into the argv that actually runs (a sandbox helper). `clean`: the
    output as a terminal would show it (TerminalText), before the head and tail are kept, so the
    bounds count what is left.
    """
    start = time.monotonic()
    if cancel is not None and cancel.is_set():
        return CommandResult(None, "", 0.0, False, True, 0)

    argv = [_shell(), "-c", command]
    proc = subprocess.Popen(
        wrap(argv) if wrap else argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        close_fds=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    capture = _Capture(head_bytes, tail_bytes)
    stop = threading.Event()
    reader = threading.Thread(
        target=_pump, args=(proc.stdout.fileno(), capture, stop, TerminalText() if clean else None),
        name="coder-cmd-reader", daemon=True,
    )
    reader.start()

    timed_out = cancelled = False
    deadline = start + timeout
    exit_fd = _pidfd(proc.pid)
    try:
        delay = 0.001
        while not _exited(proc):
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if exit_fd is not None:  # wakes the moment the process exits
                select.select([exit_fd], [], [], min(_POLL_MAX, remaining))
                continue
            pause = min(delay, remaining)
            if cancel is not None:
                cancel.wait(pause)
            else:
                time.sleep(pause)
            delay = min(delay * 2, _POLL_MAX)
    finally:
        if exit_fd is not None:
            os.close(exit_fd)
        # Runs on normal exit, timeout, cancel and KeyboardInterrupt alike:
        # background children of the command die with the group.
        _kill_group(proc.pid)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        reader.join(DRAIN_SECONDS)
        stop.set()
        reader.join(1.0)
        proc.stdout.close()

    output, omitted = capture.text()
    code = proc.returncode
    if timed_out or cancelled:
        code = None
    elif code is not None and code < 0:  # killed by a signal: report it the way a shell does
        code = 128 - code
    return CommandResult(
        exit_code=code,
        output=output,
        duration=time.monotonic() - start,
        timed_out=timed_out,
        cancelled=cancelled,
        omitted_bytes=omitted,
    )
