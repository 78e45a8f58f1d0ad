"""The command runner: real shells, real process groups, bounded output."""

from __future__ import annotations

import os
import resource
import signal
import threading
import time
from pathlib import Path

import pytest

from sandbox.process import TerminalText, run


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, seconds: float = 2.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def _env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def test_output_and_exit_code(tmp_path: Path) -> None:
    r = run("echo hello; exit 3", cwd=tmp_path, env=_env(), timeout=10)
    assert r.exit_code == 3
    assert r.output == "hello\n"
    assert not r.timed_out and not r.cancelled and r.omitted_bytes == 0


def test_runs_in_cwd_with_exactly_the_given_env(tmp_path: Path) -> None:
    r = run('pwd; echo "[$ONLY]" "[${HOME-unset}]"', cwd=tmp_path, env={"ONLY": "x", "PATH": "/usr/bin:/bin"}, timeout=10)
    assert r.output == f"{tmp_path}\n[x] [unset]\n"


def test_stderr_interleaved_in_order(tmp_path: Path) -> None:
    r = run("echo a; echo b >&2; echo c", cwd=tmp_path, env=_env(), timeout=10)
    assert r.output == "a\nb\nc\n"


def test_stdin_is_closed(tmp_path: Path) -> None:
    r = run("cat; echo done", cwd=tmp_path, env=_env(), timeout=10)
    assert r.output == "done\n" and r.exit_code == 0
    assert r.duration < 5


def test_timeout_kills_background_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    r = run(f"sleep 300 & echo $! > {pidfile}; echo started; wait", cwd=tmp_path, env=_env(), timeout=1)
    assert r.timed_out and r.exit_code is None
    assert r.output == "started\n"
    assert _wait_gone(int(pidfile.read_text()))


def test_background_child_killed_after_normal_exit(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    r = run(f"sleep 300 >/dev/null 2>&1 & echo $! > {pidfile}", cwd=tmp_path, env=_env(), timeout=10)
    assert r.exit_code == 0 and not r.timed_out
    assert _wait_gone(int(pidfile.read_text()))


def test_escaped_grandchild_holding_pipe_does_not_hang(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    # setsid puts the sleeper in a new session, out of reach of killpg; it keeps stdout open.
    start = time.monotonic()
    r = run(f"setsid sleep 30 & echo $! > {pidfile}; echo out", cwd=tmp_path, env=_env(), timeout=10)
    try:
        assert r.exit_code == 0 and r.output == "out\n"
        assert time.monotonic() - start < 3
    finally:
        os.kill(int(pidfile.read_text()), 9)


def test_cancel_kills_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    r = run(f"sleep 300 & echo $! > {pidfile}; wait", cwd=tmp_path, env=_env(), timeout=30, cancel=cancel)
    assert r.cancelled and not r.timed_out and r.exit_code is None
    assert r.duration < 5
    assert _wait_gone(int(pidfile.read_text()))


def test_already_cancelled_does_not_start(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    r = run(f"touch {tmp_path / 'ran'}", cwd=tmp_path, env=_env(), timeout=10, cancel=cancel)
    assert r.cancelled and not (tmp_path / "ran").exists()


def test_huge_output_is_bounded(tmp_path: Path) -> None:
    r = run("seq 1 2000000", cwd=tmp_path, env=_env(), timeout=30, head_bytes=1000, tail_bytes=1000)
    assert r.exit_code == 0
    assert r.output.startswith("1\n2\n3\n")
    assert r.output.endswith("1999999\n2000000\n")
    assert "bytes omitted ...]" in r.output
    assert len(r.output) < 2200
    total = sum(len(str(i)) + 1 for i in range(1, 2000001))
    kept = len(r.output.encode()) - len(f"[... {r.omitted_bytes} bytes omitted ...]\n")
    assert r.omitted_bytes == total - kept


def test_endless_output_with_timeout_stays_bounded(tmp_path: Path) -> None:
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    r = run("yes", cwd=tmp_path, env=_env(), timeout=1.5)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 100_000
    assert r.timed_out
    assert r.output.startswith("y\ny\n") and r.output.endswith("y\n")
    assert len(r.output) < 33_000
    assert r.omitted_bytes > 1_000_000


def test_signal_death_reported_like_a_shell(tmp_path: Path) -> None:
    r = run("kill -9 $$", cwd=tmp_path, env=_env(), timeout=10)
    assert r.exit_code == 137 and not r.timed_out


def test_invalid_utf8_replaced(tmp_path: Path) -> None:
    r = run(r"printf 'a\377b\n'", cwd=tmp_path, env=_env(), timeout=10)
    assert r.output == "a\ufffdb\n"


def test_keyboard_interrupt_kills_group_before_propagating(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        run(f"sleep 300 & echo $! > {pidfile}; wait", cwd=tmp_path, env=_env(), timeout=30)
    assert _wait_gone(int(pidfile.read_text()))


def _shown(*chunks: bytes) -> bytes:
    t = TerminalText()
    return b"".join(t.feed(c) for c in chunks) + t.end()


TERMINAL_CASES = [  # (written for a terminal, what it shows)
    (b"\x1b[31mred\x1b[0m \x1b[1;4;38;5;208mbold\x1b[m\n", b"red bold\n"),  # SGR colours
    (b"\x1b[?25l\x1b[2K\x1b[1A\x1b[10;20Hmoved\x1b[?25h\n", b"moved\n"),  # cursor moves, erase, modes
    (b"see \x1b]8;;https://example.com/a?b=c\x1b\\the docs\x1b]8;;\x1b\\.\n", b"see the docs.\n"),  # OSC 8, ST
    (b"\x1b]0;window title\x07text\n", b"text\n"),  # OSC ended by BEL
    (b"\x1bP1$r0m\x1b\\\x1b_apc\x1b\\\x1b(B\x1b7\x1b8\x1b=\x1bMplain\n", b"plain\n"),  # DCS, APC, short ESC ones
    (b"stray \x1b\n", b"stray \n"),
    (b"".join(b"\r[%-20s] %3d%%" % (b"#" * (i * 20 // 499), i * 100 // 499) for i in range(500)) + b"\nnext\n",
     b"[####################] 100%\nnext\n"),  # 500 progress frames: the last one
    (b"a\r\nb\r\n", b"a\r\nb\r\n"),  # CRLF: line endings, not frames
    (b"done 50%\r\n", b"done 50%\r\n"),  # a \r before \n erases nothing
    (b"\x1b[2K\rloading\x1b[K\r\x1b[32mready\x1b[0m\nbye", b"ready\nbye"),
    (b"50%\r100%\r", b"100%"),  # the frame left when the stream ends
    # Cursor to column 1 (ESC[1G, ESC[G) and erase line (ESC[2K) start a new frame, like \r (npm, yarn, ora).
    (b"\x1b[2K\x1b[1Gframe1\x1b[2K\x1b[1Gframe2\n", b"frame2\n"),
    (b"\x1b[?25l\x1b[2K\x1b[G\x1b[36m- 1/3\x1b[39m\x1b[2K\x1b[G\x1b[32m+ 3/3\x1b[39m\nok\n", b"+ 3/3\nok\n"),
    (b"abc\x1b[1GX\n", b"X\n"),
    # Before a line end (or the stream's end) they overwrite nothing and add no \r.
    (b"kept\x1b[2K\nnext\x1b[1G\x1b[0m\r\nend\x1b[2K", b"kept\nnext\r\nend"),
]


@pytest.mark.parametrize("raw, shown", TERMINAL_CASES)
def test_terminal_text_as_a_terminal_shows_it(raw: bytes, shown: bytes) -> None:
    assert _shown(raw) == shown
    for i in range(len(raw) + 1):  # however the pipe cuts it: sequences and lines span chunks
        for j in range(i, min(len(raw), i + 12) + 1):
            assert _shown(raw[:i], raw[i:j], raw[j:]) == shown, (i, j)


def test_terminal_text_is_linear() -> None:
    frames = b"".join(b"\rDownloading %6d/100000 [%-30s]" % (i, b"=" * (i * 30 // 100000)) for i in range(100001))
    colours = b"".join(b"\x1b[32m%d\x1b[0m \x1b[1mline\x1b[0m\r\n" % i for i in range(100000))
    for raw, shown in ((frames + b"\n", b"Downloading 100000/100000 [==============================]\n"),
                       (colours, b"".join(b"%d line\r\n" % i for i in range(100000)))):
        start = time.perf_counter()
        assert _shown(*(raw[i:i + 65536] for i in range(0, len(raw), 65536))) == shown
        assert time.perf_counter() - start < 5.0  # linear: ~0.1 s; a quadratic cleaner takes minutes


def test_terminal_text_is_linear_in_runs_of_line_resets() -> None:
    """Each line reset looks past the sequences after it for text: a long run of them is read once, not
    once per reset (a 64 KB chunk of them took 9 s)."""
    for unit in (b"\x1b[2K", b"\x1b[G", b"\x1b[2K\x1b[31m"):
        run = unit * (60000 // len(unit))
        raw = run + b"x" + run[:5000 // len(unit) * len(unit)] + b"y\n" + run + b"\n"
        start = time.perf_counter()
        assert _shown(*(raw[i:i + 65536] for i in range(0, len(raw), 65536))) == b"y\n\n"
        assert time.perf_counter() - start < 5.0  # linear: milliseconds; quadratic: 9 s per 64 KB chunk


def test_terminal_text_strips_common_colours_without_the_regex(monkeypatch) -> None:
    """Coloured output made of a few distinct sequences is cleaned by plain byte replacement: the
    escape regex sees only a small sample of it (it was 7x slower than the raw text)."""
    import sandbox.process as process

    seen = []

    class Spy:
        def __init__(self, rx):
            self.rx = rx

        def __getattr__(self, name):
            method = getattr(self.rx, name)

            def spy(*args, **kwargs):
                seen.append(max((len(a) for a in args if isinstance(a, bytes)), default=0))
                return method(*args, **kwargs)
            return spy

    monkeypatch.setattr(process, "_ESCAPE", Spy(process._ESCAPE))
    raw = b"".join(b"\x1b[1;31merror\x1b[0m: line %d\x1b[K\r\n" % i for i in range(40000))
    assert _shown(*(raw[i:i + 65536] for i in range(0, len(raw), 65536))) == b"".join(
        b"error: line %d\r\n" % i for i in range(40000))
    assert sum(seen) < len(raw) // 10


def test_terminal_text_fast_path_matches_the_regex() -> None:
    """However sequences, frames and chunk edges mix, a long chunk (cleaned by byte replacement when
    it can be) shows what short chunks (cleaned by the regex) show."""
    import random

    rnd = random.Random(7)
    text = [b"a", b"bc", b"\n", b"\r", b"\r\n", b"m", b"0m", b"[", b"\\", b"K"]
    csi = [b"\x1b[31m", b"\x1b[0m", b"\x1b[1;4m", b"\x1b[K", b"\x1b[m", b"\x1b[?25l", b"\x1b[2K", b"\x1b[1G"]
    odd = [b"\x1b", b"\x1b[", b"\x1b]0;t\x07", b"\x1b]8;;u\x1b\\", b"\x1b(B", b"\x1b[3"]
    for trial in range(2000):
        tokens = text + csi + (odd if trial % 2 else [])
        raw = b"".join(rnd.choice(tokens) for _ in range(rnd.randint(1, 60)))
        whole = _shown(raw)
        cuts = sorted(rnd.sample(range(len(raw) + 1), rnd.randint(0, min(6, len(raw)))))
        assert _shown(*(raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)]))) == whole, (raw, cuts)
        many = raw * 60
        assert _shown(many) == _shown(*(many[i:i + 7] for i in range(0, len(many), 7))), raw


def test_terminal_text_holds_back_little() -> None:
    """A line that never ends is passed on as it comes; a later \r then starts a new line."""
    t = TerminalText()
    out = b""
    for _ in range(50):
        out += t.feed(b"x" * 10000)
        assert len(t.line) <= 65536 + 10000 and len(t.pending) < 4096
    out += t.feed(b"\x1b]8;;" + b"u" * 5000)  # an OSC that is never ended: not held back for ever
    assert len(t.pending) < 4096
    out += t.feed(b"\rdone\n") + t.end()
    assert out.startswith(b"x" * 100000) and out.endswith(b"x\ndone\n") and b"\r" not in out


def test_output_cleaned_before_the_bounds(tmp_path: Path) -> None:
    """The head and tail count the text that is left: colour codes do not push lines out."""
    script = "for i in range(5000): print(f'\\x1b[1;31m{i}\\x1b[0m\\x1b[K')"
    r = run(f'python3 -c "{script}"', cwd=tmp_path, env=_env(), timeout=10, clean=True)
    assert r.output == "".join(f"{i}\n" for i in range(5000)) and r.omitted_bytes == 0
    raw = run(f'python3 -c "{script}"', cwd=tmp_path, env=_env(), timeout=10)  # as written, when not asked
    assert raw.output.startswith("\x1b[1;31m0\x1b[0m\x1b[K\n") and raw.omitted_bytes > 0
