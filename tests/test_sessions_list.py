"""`coder sessions` through the installed program: each session's status, failed runs that got no reply
hidden by default, `--all`, `--json`, one unwrapped line per session in a pipe, and `--last` passing over
a failed run.

Real processes, the scripted endpoint on 127.0.0.1, a real SIGKILL for a turn cut off mid-way.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import CODER, coder, heartbeat, rc
from tests.scripted_server import Reply, message

LONG = "review the retry logic in client.py and the backoff it uses " * 3  # 180 characters: wider than 80


def sessions_root(env: dict[str, str]) -> Path:
    return Path(env["XDG_DATA_HOME"]) / "coder" / "sessions"


def session_of(env: dict[str, str], prompt: str) -> str:
    for meta in sessions_root(env).glob("*/meta.json"):
        if json.loads(meta.read_text())["first_prompt"] == prompt.strip()[:200]:
            return meta.parent.name
    raise AssertionError(f"no session for {prompt!r}")


def wait_for(path: Path, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path.name} never appeared"


def listed(env: dict[str, str], cwd: Path, *args: str) -> dict[str, dict]:
    r = coder("sessions", "--json", *args, env=env, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return {o["id"]: o for o in map(json.loads, r.stdout.splitlines())}


def test_sessions_show_each_status_and_hide_runs_that_failed_before_any_reply(server, env, repo: Path):
    server.add(Reply([message("Fixed.")]))
    assert coder("exec", LONG, env=env, cwd=repo).returncode == 0
    server.add(Reply([message("Half an ans")], status="incomplete"))  # failed, but the model said something
    assert coder("exec", "write the changelog", env=env, cwd=repo).returncode == 1
    server.add(Reply(http_status=404, error={"error": {"message": "The model `gpt-9` does not exist",
                                                       "type": "invalid_request_error", "code": "model_not_found"}}))
    assert coder("exec", "typo in the model name", env=env, cwd=repo).returncode == 1

    beat = repo / "beat"
    server.add(Reply([rc(f"{heartbeat(beat)} sleep 30")]))
    proc = subprocess.Popen([str(CODER), "exec", "run the slow suite"], env=env, cwd=repo,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(beat)
        slow = session_of(env, "run the slow suite")
        assert listed(env, repo)[slow]["status"] == "running"  # its turn is running in a live process
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    done, failed, empty = (session_of(env, p) for p in (LONG, "write the changelog", "typo in the model name"))
    shown = listed(env, repo)
    assert {i: o["status"] for i, o in shown.items()} == {done: "done", failed: "failed", slow: "interrupted"}
    assert shown[done]["tokens"] == 120 and shown[done]["first_prompt"] == LONG.strip()
    assert shown[done]["workspace"] == str(repo) and shown[done]["started"][:4].isdigit()
    assert set(shown[done]) >= {"id", "started", "status", "tokens", "first_prompt", "workspace"}
    everything = listed(env, repo, "--all")
    assert everything[empty]["status"] == "failed" and everything[empty]["tokens"] == 0

    r = coder("sessions", env=env, cwd=repo)  # stdout is a pipe: one line per session, whole
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4 and lines[0].split()[:2] == ["id", "when"]
    [line] = [ln for ln in lines if ln.startswith(done)]
    assert line.endswith(LONG.strip()) and " done " in line
    assert not any(ln.startswith(empty) for ln in lines)
    assert "1 empty session(s) not shown" in r.stderr and "--all" in r.stderr
    assert sum(ln.startswith(empty) for ln in coder("sessions", "--all", env=env, cwd=repo).stdout.splitlines()) == 1

    # A session kept no status in meta.json before: it is read from the transcript.
    for sid in (done, failed, empty, slow):
        meta = sessions_root(env) / sid / "meta.json"
        old = {k: v for k, v in json.loads(meta.read_text()).items() if k not in ("status", "outputs", "pid",
                                                                                   "pid_started")}
        meta.write_text(json.dumps(old))
    assert {i: o["status"] for i, o in listed(env, repo, "--all").items()} == {
        done: "done", failed: "failed", slow: "interrupted", empty: "failed"}
    assert empty not in listed(env, repo)


def test_last_passes_over_a_run_that_failed_before_any_reply(server, env, repo: Path):
    server.add(Reply([message("It prints v1.")]))
    assert coder("exec", "what does app.py print?", env=env, cwd=repo).returncode == 0
    server.add(Reply(http_status=404, error={"error": {"message": "no such model", "code": "model_not_found"}}))
    assert coder("exec", "-m", "gpt-9", "and now?", env=env, cwd=repo).returncode == 1
    server.add(Reply([message("Still v1.")]))
    r = coder("exec", "--last", "sure?", env=env, cwd=repo)
    assert r.returncode == 0, r.stderr
    sent = json.dumps(server.bodies[-1]["input"])
    assert "what does app.py print?" in sent and "It prints v1." in sent and "and now?" not in sent


def test_on_a_terminal_each_session_is_one_line_cut_to_the_width(server, env, repo: Path):
    server.add(Reply([message("Fixed.")]))
    assert coder("exec", LONG, env=env, cwd=repo).returncode == 0
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(repo)
        os.execve(str(CODER), [str(CODER), "sessions"], {**env, "COLUMNS": "70", "LINES": "20", "TERM": "xterm"})
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out.decode()).replace("\r", "")
    [row] = [ln for ln in plain.splitlines() if ln.startswith(session_of(env, LONG))]
    assert row.rstrip().endswith("…") and "done" in row and len(row.rstrip()) <= 70
