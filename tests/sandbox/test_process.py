"""The command runner: real shells, real process groups, bounded output."""

from __future__ import annotations

import os
import resource
import signal
import threading
import time
from pathlib import Path

import pytest

from sandbox.process import run


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
