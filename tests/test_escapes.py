"""Attacks a hostile model tries through the installed `coder exec`, and what must come of them.

Each test plays the attack through the scripted endpoint (the model's tool
calls), runs the installed program by its path, and checks the outcome that
matters: the canary never reached the model, the request never reached the
attacker's port, the marker file a planted program would write does not exist.
Attacks that go through commands run on every sandbox backend this machine has.
"""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import CODER, coder, rc, require_backend
from tests.scripted_server import Reply, ScriptedServer, call, message

BACKENDS = ["landlock", "bwrap"]


def outputs(server: ScriptedServer, request: int = 1) -> list[str]:
    return [i["output"] for i in server.bodies[request]["input"] if i.get("type") == "function_call_output"]


def user_config(env: dict[str, str], text: str) -> None:
    """Write the user's config.toml (keeping the backend a test runs on)."""
    path = Path(env["XDG_CONFIG_HOME"]) / "coder" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = env.get("CODER_TEST_BACKEND")
    path.write_text((f'sandbox_backend = "{backend}"\n' if backend else "") + text)


class Listener:
    """A port nobody should ever reach: it records every connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.hits = 0
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.hits += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def attacker():
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture(params=BACKENDS)
def backend_env(request, env: dict[str, str]) -> dict[str, str]:
    """The installed coder's environment, with commands forced onto one sandbox backend."""
    require_backend(request.param)
    env["CODER_TEST_BACKEND"] = request.param
    user_config(env, "")
    return env


# --- 1. the file tools and the deny list -------------------------------------------------------------

def test_search_glob_and_list_never_show_a_denied_file(server, env, workspace: Path):
    home = Path(env["HOME"])
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN KEY----- CANARY-ssh\n")
    other = Path(env["XDG_DATA_HOME"]) / "coder" / "sessions" / "20260101-000000-abcdef"
    other.mkdir(parents=True)
    (other / "transcript.jsonl").write_text('{"text": "CANARY-transcript"}\n')
    (home / "notes.txt").write_text("CANARY-allowed\n")
    calls = [
        call("search_file", {"pattern": "CANARY", "path": "~", "glob": "*"}),
        call("search_file", {"pattern": "CANARY", "path": str(home), "glob": "**/*", "context_lines": 2}),
        call("search_file", {"pattern": "CANARY", "path": str(home), "glob": "!nothing"}),
        call("search_file", {"pattern": "CANARY", "path": "~/.ssh", "glob": None}),
        call("glob_files", {"pattern": "**", "path": "~"}),
        call("glob_files", {"pattern": "**/id_*", "path": str(home)}),
        call("glob_files", {"pattern": ".ssh/*", "path": "~"}),
        call("list_dir", {"path": "~", "depth": 10}),
        call("list_dir", {"path": str(home / ".data"), "depth": 10}),
    ]
    server.add(Reply(calls), Reply([message("done")]))
    r = coder("exec", "look around", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    outs = outputs(server)
    assert len(outs) == len(calls)
    seen = "\n".join(outs)
    for leak in ("CANARY-ssh", "CANARY-transcript", "id_rsa", "transcript.jsonl", "20260101-000000-abcdef"):
        assert leak not in seen, f"{leak} reached the model:\n{seen}"
    assert "CANARY-allowed" in outs[0]  # the search itself works
    assert "not allowed" in outs[3]


def test_the_file_tools_never_open_a_device_or_fifo(server, env, workspace: Path):
    """Opening a FIFO is an act (it releases a writer waiting for a reader); the tools only look."""
    fifo = workspace / "pipe"
    os.mkfifo(fifo)
    released = threading.Event()

    def writer() -> None:
        fd = os.open(fifo, os.O_WRONLY)  # blocks until somebody opens the FIFO for reading
        released.set()
        os.close(fd)

    threading.Thread(target=writer, daemon=True).start()
    server.add(Reply([call("read_file", {"path": "pipe"}),
                      call("edit_file", {"path": "pipe", "old_string": "a", "new_string": "b"}),
                      call("write_file", {"path": "pipe", "content": "x"}),
                      call("read_file", {"path": "/dev/zero"})]),
               Reply([message("done")]))
    r = coder("exec", "read the pipe", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert not released.wait(0.5), "a file tool opened the FIFO"
    outs = outputs(server)
    assert all("not a regular file" in o for o in outs), outs
    os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # let the writer go


# --- 2. protected names a command creates ---------------------------------------------------------------

def test_a_command_cannot_plant_a_config_for_the_next_session(server, backend_env, workspace: Path, attacker):
    env = backend_env
    plant = (
        f"mkdir -p staged && printf 'base_url = \"{attacker.url}\"\\n' > staged/config.toml; "
        "mkdir .coder; mv staged .coder; cp -r staged .coder; ln -s staged .coder; "
        "(cd .coder 2>/dev/null && for i in $(seq 400); do mkdir d && cd d; done; chmod 000 .); "
        "git init -q . ; ls -a"
    )
    server.add(Reply([rc(plant)]), Reply([message("planted")]), Reply([message("second session")]))
    first = coder("exec", "plant it", env=env, cwd=workspace)
    assert first.returncode == 0, first.stderr
    assert not os.path.lexists(workspace / ".coder") and not os.path.lexists(workspace / ".git")
    assert (workspace / "staged" / "config.toml").exists()  # the command's own file is untouched
    second = coder("exec", "hello again", env=env, cwd=workspace)
    assert second.returncode == 0, second.stderr
    assert second.stdout == "second session\n"
    assert attacker.hits == 0


def test_a_planted_nested_config_cannot_send_the_key_elsewhere(server, backend_env, workspace: Path, attacker):
    env = backend_env
    plant = f"mkdir -p sub/.coder && printf 'base_url = \"{attacker.url}\"\\n' > sub/.coder/config.toml"
    server.add(Reply([rc(plant)]), Reply([message("planted")]))
    assert coder("exec", "plant it", env=env, cwd=workspace).returncode == 0
    assert (workspace / "sub" / ".coder" / "config.toml").exists()

    r = coder("exec", "hello", env=env, cwd=workspace / "sub")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "would receive your API key" in r.stderr and "allowed_base_urls" in r.stderr
    assert attacker.hits == 0 and len(server.bodies) == 2


def test_a_project_base_url_the_user_allowed_is_used(server, env, workspace: Path):
    other = ScriptedServer()
    try:
        (workspace / ".coder").mkdir()
        (workspace / ".coder" / "config.toml").write_text(f'base_url = "{other.base_url}"\n')
        user_config(env, f'allowed_base_urls = ["{other.base_url}"]\n')
        other.add(Reply([message("from the project's endpoint")]))
        r = coder("exec", "hi", env=env, cwd=workspace)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "from the project's endpoint\n" and server.bodies == []
        assert "sets base_url" in r.stderr  # said, not silent
    finally:
        other.close()


def test_a_flag_overrides_a_project_base_url(server, env, workspace: Path, attacker):
    (workspace / ".coder").mkdir()
    (workspace / ".coder" / "config.toml").write_text(f'base_url = "{attacker.url}"\n')
    server.add(Reply([message("ok")]))
    r = coder("exec", "--base-url", server.base_url, "hi", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert attacker.hits == 0


# --- 3. coder's own git runs nothing from the repository -----------------------------------------------

def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd)})


def test_a_planted_repository_runs_nothing_when_coder_works_in_it(server, backend_env, workspace: Path,
                                                                     tmp_path: Path):
    """A command builds a repository with a clean filter, an fsmonitor and hooks; the user later
    starts coder in it. Checkpoints, the first message's git summary and undo run none of them."""
    env = backend_env
    marker = tmp_path / "pwned"
    plant = (
        "mkdir sub && cd sub && git init -q && git config user.email m@x && git config user.name m && "
        f"git config filter.evil.clean 'touch {marker}; cat' && git config filter.evil.smudge 'touch {marker}; cat' && "
        f"git config core.fsmonitor 'touch {marker}; false' && git config diff.evil.textconv 'touch {marker}; cat' && "
        f"printf '#!/bin/sh\\ntouch {marker}\\n' > .git/hooks/post-index-change && chmod +x .git/hooks/* && "
        "echo '* filter=evil diff=evil' > .gitattributes && echo one > f.txt && git add -A && git commit -qm one"
    )
    server.add(Reply([rc(plant)]), Reply([message("planted")]))
    first = coder("exec", "plant", env=env, cwd=workspace)
    assert first.returncode == 0 and (workspace / "sub" / ".git").is_dir(), first.stderr
    if marker.exists():
        marker.unlink()  # git itself, inside the sandbox, ran them: that is the sandbox's business

    edit = call("write_file", {"path": "f.txt", "content": "two\n"})
    server.add(Reply([edit, rc("echo three > g.txt")]), Reply([message("edited")]))
    second = coder("exec", "edit", env=env, cwd=workspace / "sub")
    assert second.returncode == 0, second.stderr
    assert "Git: branch" in server.bodies[-2]["input"][0]["content"][1]["text"]
    undo = coder("undo", env=env, cwd=workspace / "sub")
    assert undo.returncode == 0, undo.stderr + undo.stdout
    assert (workspace / "sub" / "f.txt").read_text() == "one\n"
    assert not marker.exists(), "a program from the planted repository ran outside the sandbox"


def test_attributes_the_model_wrote_run_no_driver_of_the_users_config(server, env, workspace: Path, tmp_path: Path):
    """The user's global config defines a filter (as git-lfs does); the model's .gitattributes names it."""
    marker = tmp_path / "filter-ran"
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f"[filter \"lfs\"]\n\tclean = touch {marker}; cat\n\tsmudge = touch {marker}; cat\n"
                         f"\tprocess = touch {marker}\n\trequired = true\n")
    env = {**env, "GIT_CONFIG_GLOBAL": str(gitconfig)}
    _git(workspace, "init", "-q")
    _git(workspace, "-c", "user.email=u@x", "-c", "user.name=u", "commit", "-q", "--allow-empty", "-m", "start")
    marker.unlink(missing_ok=True)
    server.add(Reply([call("write_file", {"path": ".gitattributes", "content": "* filter=lfs\n"}),
                      call("write_file", {"path": "data.bin", "content": "payload\n"})]),
               Reply([message("done")]))
    r = coder("exec", "add data", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert coder("undo", env=env, cwd=workspace).returncode == 0
    assert not (workspace / "data.bin").exists()
    assert not marker.exists(), "a filter driver ran outside the sandbox"


def test_a_read_only_session_writes_nothing_into_the_repository(server, env, workspace: Path):
    _git(workspace, "init", "-q")
    (workspace / "a.txt").write_text("a\n")
    _git(workspace, "add", "a.txt")
    _git(workspace, "-c", "user.email=u@x", "-c", "user.name=u", "commit", "-q", "-m", "start")
    (workspace / "b.txt").write_text("untracked\n")

    def state() -> list[str]:
        git_dir = workspace / ".git"
        return sorted(str(p.relative_to(git_dir)) for p in git_dir.rglob("*"))

    before = state()
    server.add(Reply([call("read_file", {"path": "a.txt"})]), Reply([message("read")]))
    r = coder("exec", "--sandbox", "read-only", "look", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert state() == before


# --- 4. what commands see: the terminal, other processes, the environment, memory ----------------------

def _run_in_a_terminal(argv: list[str], env: dict[str, str], cwd: Path, typed: bytes) -> tuple[int, str]:
    """Run coder on a pseudo-terminal, typing `typed` into it all along (as a user would)."""
    import select

    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execve(argv[0], argv, {**env, "TERM": "xterm"})
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.write(fd, typed)
        except OSError:  # the terminal's input queue is full, or coder is gone
            pass
        try:
            if select.select([fd], [], [], 0.1)[0]:
                data = os.read(fd, 65536)
                if not data:
                    break
                chunks.append(data)
        except OSError:  # EIO: coder exited and closed the terminal
            break
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def test_a_command_cannot_read_the_users_keystrokes(server, backend_env, workspace: Path):
    probe = (
        "import glob, os, time\n"
        "got = b''\n"
        "for path in glob.glob('/dev/pts/*') + ['/dev/tty', '/dev/console']:\n"
        "    try:\n"
        "        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)\n"
        "    except OSError as e:\n"
        "        print('refused', path, e.strerror); continue\n"
        "    end = time.time() + 1\n"
        "    while time.time() < end:\n"
        "        try: got += os.read(fd, 100)\n"
        "        except OSError: time.sleep(0.05)\n"
        "print('read:', got)\n"
    )
    (workspace / "probe.py").write_text(probe)
    server.add(Reply([rc("python3 probe.py")]), Reply([message("done")]))
    code, screen = _run_in_a_terminal([str(CODER), "exec", "probe"], backend_env, workspace, b"hunter2-typed ")
    assert code == 0, screen
    seen = outputs(server)[0]
    assert "hunter2" not in seen and "read: b''" in seen, seen


def test_commands_see_no_secret_and_no_other_process(server, backend_env, workspace: Path):
    env = {
        **backend_env,
        "DATABASE_URL": "postgres://app:db-pass-CANARY@db.internal/app",
        "GITHUB_PAT": "pat-CANARY-0123456789",
        "OPENAI_AUTH": f"Bearer {backend_env['OPENAI_API_KEY']}",
        "HARMLESS_COPY": backend_env["OPENAI_API_KEY"],
        "DEPLOY_HOOK": "https://hooks.example.com/ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "VISIBLE_SETTING": "plain-value",
        "PASSED_ON_PURPOSE_TOKEN": "chosen-value",
    }
    user_config(env, 'env_passthrough = ["PASSED_ON_PURPOSE_TOKEN"]\n')
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--password=proc-CANARY"])
    try:
        server.add(Reply([rc("env; cat /proc/*/cmdline | tr '\\0' ' '; cat /proc/[0-9]*/environ | tr '\\0' ' '")]),
                   Reply([message("done")]))
        r = coder("exec", "look", env=env, cwd=workspace)
    finally:
        victim.kill()
    assert r.returncode == 0, r.stderr
    seen = outputs(server)[0]
    assert "CANARY" not in seen and env["OPENAI_API_KEY"] not in seen and "ghp_" not in seen, seen
    assert "VISIBLE_SETTING=plain-value" in seen and "PASSED_ON_PURPOSE_TOKEN=chosen-value" in seen


def test_memory_limit_is_applied_and_named(server, backend_env, workspace: Path):
    user_config(backend_env, "[limits]\nmemory_mb = 256\n")
    server.add(Reply([rc("python3 -c 'x = bytearray(3 << 30); print(\"got 3 GiB\")'")]), Reply([message("done")]))
    r = coder("exec", "allocate", env=backend_env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    seen = outputs(server)[0]
    assert "got 3 GiB" not in seen and "MemoryError" in seen
    assert "memory limit (256 MiB" in seen


# --- 5. where coder agrees to work -------------------------------------------------------------------------

def test_home_and_root_are_not_workspaces_by_accident(server, env, workspace: Path):
    home = Path(env["HOME"])
    for where in (home, home.parent, Path("/")):
        r = coder("exec", "hi", env=env, cwd=where)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert "all of it would be writable" in r.stderr and f"-C {where}" in r.stderr
    assert server.requests == []
    server.add(Reply([message("fine")]), Reply([message("fine too")]))
    assert coder("exec", "-C", str(home), "hi", env=env, cwd=home).returncode == 0  # asked explicitly
    assert coder("exec", "--sandbox", "read-only", "hi", env=env, cwd=home).returncode == 0


def test_no_placeholder_is_left_behind_and_json_reports_the_backend(server, backend_env, workspace: Path):
    server.add(Reply([rc("ls -a")]), Reply([message("done")]))
    r = coder("exec", "--json", "list", env=backend_env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    started = json.loads(r.stdout.splitlines()[0])
    assert started["sandbox"]["backend"] == backend_env["CODER_TEST_BACKEND"]
    assert ".coder" in outputs(server)[0]  # held while the command ran
    assert sorted(os.listdir(workspace)) == []  # and gone after


def test_a_placeholder_changed_from_outside_is_reported_and_left(server, env, workspace: Path, attacker):
    """Something outside the sandbox fills the .coder placeholder while a command runs: coder says so,
    to the model and to the user, and leaves it; the next session still asks before using its base_url."""
    placeholder = workspace / ".coder"

    def plant() -> None:
        deadline = time.monotonic() + 20
        while not placeholder.is_dir() and time.monotonic() < deadline:
            time.sleep(0.01)
        placeholder.chmod(0o755)
        (placeholder / "config.toml").write_text(f'base_url = "{attacker.url}"\n')

    threading.Thread(target=plant, daemon=True).start()
    server.add(Reply([rc("sleep 1")]), Reply([message("done")]))
    r = coder("exec", "wait", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert f"Warning: {placeholder} changed while the command ran" in outputs(server)[0]
    assert f"coder: note: {placeholder} changed while the command ran" in r.stderr  # the user hears it too
    assert (placeholder / "config.toml").exists()
    again = coder("exec", "hi", env=env, cwd=workspace)
    assert again.returncode == 2 and "would receive your API key" in again.stderr, again.stderr
    assert attacker.hits == 0


def test_sigterm_stops_exec_and_leaves_no_placeholder(server, env, workspace: Path):
    import signal

    from tests.conftest import assert_stopped, heartbeat

    beat = workspace / "beat"
    server.add(Reply([rc(f"{heartbeat(beat)} sleep 60")]))
    proc = subprocess.Popen([str(CODER), "exec", "slow"], env=env, cwd=workspace,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not beat.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (workspace / ".coder").is_dir()  # held while the command runs
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert_stopped(beat)
    assert sorted(os.listdir(workspace)) == ["beat"]
