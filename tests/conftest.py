"""Fixtures shared by every test: a real workspace, a tool context, the scripted endpoint.

Every request body a test causes is validated at teardown against the Open
Responses `CreateResponseBody` schema, so no test can send an invalid request
without failing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests.scripted_server import ScriptedServer

from coder.tools.base import ToolContext
from sandbox.env import scrub
from sandbox.policy import Mode, Policy

import os  # noqa: E402


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws.resolve()


@pytest.fixture
def secret_dir(tmp_path: Path) -> Path:
    """A stand-in for ~/.ssh: on the deny list of every test policy."""
    d = tmp_path / "secrets"
    d.mkdir()
    (d / "id_rsa").write_text("PRIVATE KEY\n")
    return d.resolve()


def make_ctx(workspace: Path, tmp_path: Path, mode: Mode = Mode.WORKSPACE_WRITE, deny=()) -> ToolContext:
    temp_dir = tmp_path / "private-tmp"
    temp_dir.mkdir(exist_ok=True)
    policy = Policy.for_workspace(workspace, mode, temp_dir=temp_dir, deny_read=tuple(deny))
    env = scrub(os.environ)
    env["TMPDIR"] = str(temp_dir)
    return ToolContext(policy=policy, env=env, default_timeout=30)


@pytest.fixture
def ctx(workspace: Path, tmp_path: Path, secret_dir: Path) -> ToolContext:
    return make_ctx(workspace, tmp_path, deny=(secret_dir,))


@pytest.fixture
def ro_ctx(workspace: Path, tmp_path: Path, secret_dir: Path) -> ToolContext:
    return make_ctx(workspace, tmp_path, Mode.READ_ONLY, deny=(secret_dir,))


SPEC = Path(__file__).resolve().parents[1].parent / "shared" / "specs" / "openresponses-openapi.json"
FALLBACK_SPEC = Path(__file__).resolve().parent / "data" / "openresponses-openapi.json"
API_KEY = "sk-test-DO-NOT-LEAK-1234567890"


def _spec() -> dict[str, Any]:
    path = SPEC if SPEC.exists() else FALLBACK_SPEC
    return json.loads(path.read_text())


_SPEC = _spec()
_REGISTRY = Registry().with_resource("spec", DRAFT202012.create_resource(_SPEC))
CREATE_BODY_VALIDATOR = jsonschema.Draft202012Validator(
    {"$ref": "spec#/components/schemas/CreateResponseBody"}, registry=_REGISTRY
)
COMPACT_BODY_VALIDATOR = jsonschema.Draft202012Validator(
    {"$ref": "spec#/components/schemas/CompactResponseMethodPublicBody"}, registry=_REGISTRY
)


def schema_errors(body: dict[str, Any], validator: jsonschema.Validator = CREATE_BODY_VALIDATOR) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(body)]


def assert_valid_history(items: list[dict[str, Any]]) -> None:
    """Every function_call answered exactly once, outputs after their calls, no user message in between."""
    open_calls: set[str] = set()
    answered: set[str] = set()
    for item in items:
        kind = item.get("type")
        if kind == "function_call":
            open_calls.add(item["call_id"])
        elif kind == "function_call_output":
            assert item["call_id"] in open_calls, f"output before/without its call: {item['call_id']}"
            assert item["call_id"] not in answered, f"two outputs for {item['call_id']}"
            open_calls.discard(item["call_id"])
            answered.add(item["call_id"])
        elif kind == "message" and item.get("role") == "user":
            assert not open_calls, f"user message between a call and its output: {open_calls}"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.close()
    for i, body in enumerate(srv.bodies):
        errors = schema_errors(body)
        assert not errors, f"request {i} does not validate against CreateResponseBody: {errors[:5]}"
    for i, body in enumerate(srv.compactions):
        errors = schema_errors(body, COMPACT_BODY_VALIDATOR)
        assert not errors, f"compaction {i} does not validate against CompactResponseMethodPublicBody: {errors[:5]}"


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    return API_KEY


def heartbeat(path: Path) -> str:
    """Shell text that starts a background process touching `path` every 50 ms.

    Process ids inside the sandbox's PID namespace mean nothing outside it, so
    "is it still running" is judged by whether the heartbeat goes on.
    """
    return f"(while :; do date +%s%N > {path}; sleep 0.05; done) &"


def assert_stopped(path: Path) -> None:
    import time

    assert path.exists(), "the heartbeat never started"
    time.sleep(0.2)  # let a kill that is on its way land
    before = path.read_text()
    time.sleep(0.5)
    assert path.read_text() == before, f"something is still writing {path.name}: a process survived"


CODER = Path(sys.executable).parent / "coder"
# Set by .ci/run: there, a test that cannot run (no bubblewrap, no tmux) fails the run instead of skipping.
STRICT = bool(os.environ.get("CODER_CI"))


def unavailable(reason: str) -> None:
    """Skip a test that cannot run on this machine; under .ci/run, fail it."""
    if STRICT:
        pytest.fail(f"cannot run under .ci/run: {reason}")
    pytest.skip(reason)


def require_backend(name: str) -> None:
    from sandbox import backends

    if backends.get(name) is None:
        unavailable(f"the {name} backend is not available on this machine")


@pytest.fixture
def env(tmp_path: Path, server: ScriptedServer) -> dict[str, str]:
    """What the installed coder runs with: a home of its own, the scripted endpoint, its bin/ not on PATH."""
    if not CODER.exists():
        pytest.fail(f"coder is not installed next to {sys.executable}: run pip install '.[test]' first")
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".data"),
        "XDG_STATE_HOME": str(home / ".state"),
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": server.base_url,
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def coder(*args: str, env: dict[str, str], cwd: Path, input: str | None = None) -> subprocess.CompletedProcess:
    """Run the installed coder by its path, as people do."""
    return subprocess.run(
        [str(CODER), *args], env=env, cwd=cwd, input=input, capture_output=True, text=True, timeout=60
    )


def refused_write(text: str) -> bool:
    """Whether `text` holds the kernel's refusal of a write the sandbox does not allow: Landlock's EACCES, or the
    read-only mount's EROFS (bubblewrap, and Landlock's own mount view)."""
    return "Permission denied" in text or "Read-only file system" in text


def rc(command: str) -> dict[str, Any]:
    """The model's run_command call."""
    from tests.scripted_server import call

    return call("run_command", {"command": command, "timeout_seconds": None, "workdir": None})


def write(path: str, content: str) -> dict[str, Any]:
    """The model's write_file call."""
    from tests.scripted_server import call

    return call("write_file", {"path": path, "content": content})


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(workspace: Path) -> Path:
    """The workspace as a git repository with one commit (app.py, notes.txt)."""
    git(workspace, "init", "-q")
    git(workspace, "config", "user.name", "Dev")
    git(workspace, "config", "user.email", "dev@example.com")
    (workspace / "app.py").write_text("print('v1')\n")
    (workspace / "notes.txt").write_text("mine\n")
    git(workspace, "add", ".")
    git(workspace, "commit", "-qm", "start")
    return workspace


def in_terminal(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run the installed coder with stdin, stdout and stderr on a pseudo-terminal; its exit code and screen."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execve(str(CODER), [str(CODER), *args], {**env, "TERM": "xterm", "COLUMNS": "120"})
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")
