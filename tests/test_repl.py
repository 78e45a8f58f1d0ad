"""The interactive session, driven in a real terminal: the installed `coder` under tmux.

Keys go in with send-keys, the screen comes back with capture-pane, and the
scripted endpoint records exactly what the REPL made the agent send.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import CODER, STRICT, assert_stopped, assert_valid_history, heartbeat, rc, refused_write
from tests.scripted_server import Reply, ScriptedServer, call, message, reasoning

TMUX = shutil.which("tmux")

if TMUX is None and (STRICT or os.environ.get("CI")):
    pytest.fail("tmux is needed for the REPL tests (.ci/run installs it)", pytrace=False)
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


class Terminal:
    """One tmux server of our own with one window running coder."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, width: int = 120, height: int = 40) -> None:
        self.socket = f"coder-test-{uuid.uuid4().hex[:8]}"
        env_args = [f"{k}={v}" for k, v in env.items()]
        self._tmux("new-session", "-d", "-x", str(width), "-y", str(height), "-c", str(cwd),
                   "env", "-i", *env_args, *argv)
        self._tmux("set-option", "-g", "remain-on-exit", "on")

    def _tmux(self, *args: str) -> str:
        return subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "0", "-l", text)

    def press(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "0", *keys)

    def paste(self, text: str) -> None:
        """A bracketed paste, as a terminal does it when the program asked for one."""
        self._tmux("set-buffer", "--", text)
        self._tmux("paste-buffer", "-p", "-t", "0")

    def screen(self, escapes: bool = False) -> str:
        return self._tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", "0", *(["-e"] if escapes else []))

    def wait_for(self, pattern: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if re.search(pattern, screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never appeared on the screen:\n{screen}")
            time.sleep(0.05)

    def dead(self) -> bool:
        return self._tmux("display-message", "-p", "-t", "0", "#{pane_dead}").strip() == "1"

    def close(self) -> None:
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def repl_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "TERM": "xterm-256color", "EDITOR": "true"}


def trust(env: dict[str, str], folder: Path) -> None:
    """What answering "y" to "Trust this folder?" once leaves behind."""
    path = Path(env["XDG_STATE_HOME"]) / "coder" / "trust.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("folders", {})[str(folder)] = True
    path.write_text(json.dumps(data))


@pytest.fixture
def start(repl_env, workspace: Path):
    terminals: list[Terminal] = []

    def run(*args: str, env: dict[str, str] | None = None, trusted: bool = True, ready: str = r"(?m)^›") -> Terminal:
        if trusted:
            trust(env or repl_env, workspace)
        term = Terminal([str(CODER), *args], env or repl_env, workspace)
        terminals.append(term)
        term.wait_for(ready)
        return term

    yield run
    for term in terminals:
        term.close()


def user_texts(body: dict) -> list[str]:
    return [i["content"][0]["text"] for i in body["input"] if i.get("type") == "message" and i.get("role") == "user"]


def test_two_turns_replay_the_first_verbatim(server, start, workspace: Path):
    (workspace / "notes.txt").write_text("remember the milk\n")
    first = [reasoning("Reading the notes.", encrypted="gAAAA-secret-blob=="), call("read_file", {"path": "notes.txt"})]
    server.add(Reply(first), Reply([message("It says: remember the milk.")]), Reply([message("You're welcome.")]))
    term = start()
    from sandbox import backends
    from sandbox.policy import Policy

    backend = backends.select(Policy.for_workspace(workspace)).name
    term.wait_for(re.escape(f"sandbox workspace-write ({backend})"))  # the toolbar, once drawn, names the sandbox
    term.type("what do my notes say?")
    term.press("Enter")
    term.wait_for(r"It says: remember the milk\.")
    term.wait_for(r"completed ·")
    term.type("thanks")
    term.press("Enter")
    term.wait_for("You're welcome")
    third = server.bodies[2]["input"]
    second = server.bodies[1]["input"]
    assert third[: len(second)] == second  # turn one replayed as sent
    assert third[1:3] == first  # reasoning (encrypted_content too) and the call, verbatim
    assert user_texts(server.bodies[2]) == ["what do my notes say?", "thanks"]
    assert_valid_history(third)


def test_follow_up_during_a_slow_command_arrives_right_after_its_output(server, start, workspace: Path):
    server.add(Reply([rc("sleep 2; echo slow-done")]), Reply([message("Noted, using tabs.")]))
    term = start()
    term.type("format everything")
    term.press("Enter")
    term.wait_for(r"run_command sleep 2")  # the spinner line while it runs
    term.type("use tabs, not spaces")
    term.press("Enter")
    term.wait_for("queued")
    term.wait_for("delivered to the model: use tabs, not spaces")
    term.wait_for("Noted, using tabs")
    assert len(server.bodies) == 2  # no extra request: it went with the very next one
    second = server.bodies[1]["input"]
    assert [i["type"] for i in second[-3:]] == ["function_call", "function_call_output", "message"]
    assert "slow-done" in second[-2]["output"]
    assert second[-1]["content"][0]["text"] == "use tabs, not spaces"


def test_ctrl_c_kills_the_command_and_the_next_message_works(server, start, workspace: Path):
    beat = workspace / "beat"
    server.add(Reply([rc(f"{heartbeat(beat)} sleep 60")]), Reply([message("Starting over.")]))
    term = start()
    term.type("run the slow thing")
    term.press("Enter")
    deadline = time.monotonic() + 15
    while not beat.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    term.press("C-c")
    term.wait_for(r"(?m)^stopped · ")  # a stop the user asked for: said calmly, not as an error
    assert "error" not in term.screen()
    assert_stopped(beat)
    term.type("try again")
    term.press("Enter")
    term.wait_for("Starting over")
    body = server.bodies[1]["input"]
    assert_valid_history(body)
    outputs = [i for i in body if i["type"] == "function_call_output"]
    assert len(outputs) == 1 and "interrupted" in outputs[0]["output"].lower()
    assert user_texts(server.bodies[1]) == ["run the slow thing", "try again"]


def test_a_multi_line_paste_is_one_message(server, start):
    server.add(Reply([message("Got all three lines.")]))
    term = start()
    term.paste("line one\nline two\nline three")
    time.sleep(0.3)
    assert server.bodies == []  # the newlines in the paste did not send anything
    term.press("Escape", "Enter")  # Esc-Enter adds one more line by hand
    term.type("line four")
    term.press("Enter")
    term.wait_for("Got all three lines")
    assert user_texts(server.bodies[0]) == ["line one\nline two\nline three\nline four"]


def test_an_approval_answered_with_deny_becomes_the_output(server, start, tmp_path: Path):
    target = tmp_path / "outside.txt"
    server.add(Reply([rc(f"echo pwned > {target}")]), Reply([message("Understood, leaving it.")]))
    term = start()
    term.type("write outside")
    term.press("Enter")
    term.wait_for(r"\[n\] deny")
    assert f"echo pwned > {target}" in term.screen()
    term.type("abc")  # typed ahead, or a slip: not an answer
    term.press("Enter")
    term.wait_for("type one of: y, a, n, d")
    assert not target.exists()
    term.press("C-u")
    term.type("n")
    term.press("Enter")
    term.wait_for("Understood, leaving it")
    assert not target.exists()
    output = [i for i in server.bodies[1]["input"] if i["type"] == "function_call_output"][0]["output"]
    assert "The user declined to re-run this command outside the sandbox." in output
    assert refused_write(output)


def test_slash_commands_shell_escape_and_exit(server, start, workspace: Path):
    term = start()
    term.type("/modle")
    term.press("Enter")
    term.wait_for("unknown command /modle; did you mean /model")
    term.type("/model gpt-5.1")
    term.press("Enter")
    term.wait_for("model is now gpt-5.1")
    term.type("!echo hello-from-$((40+2))")
    term.press("Enter")
    term.wait_for("hello-from-42")
    server.add(Reply([message("ok")]))
    term.type("hi")
    term.press("Enter")
    term.wait_for("completed ·")
    assert server.bodies[0]["model"] == "gpt-5.1"
    assert user_texts(server.bodies[0]) == ["hi"]  # the ! command never reached the model
    term.press("C-c")
    term.wait_for("press Ctrl-C again to exit")
    term.press("C-c")
    term.wait_for("bye")
    deadline = time.monotonic() + 5
    while not term.dead() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert term.dead()


def test_history_is_kept_per_project(server, start, repl_env, workspace: Path):
    server.add(Reply([message("one")]))
    term = start()
    term.type("remember this line")
    term.press("Enter")
    term.wait_for("completed ·")
    term.press("C-d")
    term.wait_for("bye")
    again = start()
    again.press("Up")
    again.wait_for("› remember this line")
    [history] = (Path(repl_env["XDG_STATE_HOME"]) / "coder" / "history").iterdir()
    assert stat.S_IMODE(history.stat().st_mode) == 0o600  # what you type may hold secrets


def test_undo_restores_the_file_and_diff_shows_the_change(server, start, workspace: Path):
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    (workspace / "app.py").write_text("print('v1')\n")
    server.add(Reply([call("write_file", {"path": "app.py", "content": "print('v2')\n"})]), Reply([message("Now v2.")]),
               Reply([message("Understood, it is v1 again.")]))
    term = start()
    term.type("bump the version")
    term.press("Enter")
    term.wait_for("Now v2")
    term.wait_for(r"\+print\('v2'\)")  # the change shown as a diff
    assert (workspace / "app.py").read_text() == "print('v2')\n"
    term.type("/diff")
    term.press("Enter")
    term.wait_for(r"(?s)/diff.*-print\('v1'\).*\+print\('v2'\)")
    term.type("/undo")
    term.press("Enter")
    term.wait_for(r"undid 'bump the version': restored 1 file")
    assert (workspace / "app.py").read_text() == "print('v1')\n"
    term.type("/undo")
    term.press("Enter")
    term.wait_for("nothing to undo")
    term.type("and now?")
    term.press("Enter")
    term.wait_for("it is v1 again")
    texts = user_texts(server.bodies[-1])
    assert texts[-2].startswith("[coder] The user undid your turn 'bump the version'") and "app.py" in texts[-2]
    assert texts[-1] == "and now?"  # the model was told before it went on


def test_a_session_that_cannot_be_recorded_asks_before_going_on(server, start, repl_env, workspace: Path):
    data = Path(repl_env["XDG_DATA_HOME"]) / "coder"
    data.mkdir(parents=True)
    (data / "sessions").write_text("a file where the sessions folder should be\n")
    server.add(Reply([message("Working unrecorded.")]))
    term = start(ready="Go on without recording")
    assert "cannot record the session in" in term.screen()
    term.type("y")
    term.press("Enter")
    term.wait_for(r"(?m)^›")
    term.type("hello")
    term.press("Enter")
    term.wait_for("Working unrecorded")


def test_exit_says_how_to_resume_and_resume_continues(server, start, workspace: Path):
    server.add(Reply([message("The answer is 42.")]), Reply([message("Still 42.")]))
    term = start()
    term.type("what is the answer?")
    term.press("Enter")
    term.wait_for("completed ·")
    term.type("/model gpt-5.1-codex")  # a change made in the session is kept when it is resumed
    term.press("Enter")
    term.wait_for("model is now gpt-5.1-codex")
    term.press("C-d")
    screen = term.wait_for(r"resume this session with: coder resume \S+")
    sid = re.search(r"coder resume (\S+)", screen).group(1)
    again = start("resume", sid)
    again.wait_for(r"(?s)what is the answer\?.*The answer is 42\..*resumed session")
    again.type("are you sure?")
    again.press("Enter")
    again.wait_for("Still 42")
    assert user_texts(server.bodies[1]) == ["what is the answer?", "are you sure?"]
    assert server.bodies[0]["model"] == "gpt-5.3-codex" and server.bodies[1]["model"] == "gpt-5.1-codex"
    assert server.bodies[1]["input"][1]["content"][0]["text"] == "The answer is 42."


@pytest.mark.parametrize("no_color", [True, False])
def test_no_color_means_no_colors(server, start, repl_env, workspace: Path, no_color: bool):
    server.add(Reply([call("write_file", {"path": "a.txt", "content": "x\n"})]), Reply([message("**Done.**")]))
    term = start(env={**repl_env, "NO_COLOR": "1"} if no_color else repl_env)
    term.type("go")
    term.press("Enter")
    term.wait_for("Done")
    term.wait_for("completed ·")
    colors = re.findall(r"\x1b\[[0-9;]*(?:3[0-7]|9[0-7]|38;[25];[0-9;]+)m", term.screen(escapes=True))
    assert (colors == []) is no_color  # without NO_COLOR the same screen has colors: the check can fail


def test_completion_of_commands_and_project_files(server, start, workspace: Path):
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    (workspace / "pkg").mkdir()
    (workspace / "pkg" / "widget_factory.py").write_text("x = 1\n")
    (workspace / "ignored.log").write_text("noise\n")
    (workspace / ".gitignore").write_text("*.log\n")
    server.add(Reply([message("Looked.")]))
    term = start()
    term.type("/mod")
    term.wait_for("change the model: pick from a list")  # the menu, with each command's help
    term.press("C-u")
    term.type("look at @wfac")
    term.wait_for(r"pkg/widget_factory\.py")
    term.press("Tab")
    term.press("Enter")  # takes the completion
    term.press("Enter")  # sends
    term.wait_for("Looked")
    assert server.bodies[0]["input"][0]["content"][0]["text"] == "look at @pkg/widget_factory.py"
    term.type("@ignored")
    time.sleep(0.5)
    assert "ignored.log" not in term.screen().split("look at @pkg/widget_factory.py")[-1]


def test_ctrl_x_ctrl_e_edits_the_message_in_the_editor(server, start, repl_env, tmp_path: Path):
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "written in the editor\\nsecond line\\n" >> "$1"\n')
    editor.chmod(0o755)
    server.add(Reply([message("Got it.")]))
    term = start(env={**repl_env, "EDITOR": str(editor), "VISUAL": str(editor)})
    term.type("typed first ")
    term.press("C-x", "C-e")
    term.wait_for("second line")
    term.press("Enter")
    term.wait_for("Got it")
    assert user_texts(server.bodies[0]) == ["typed first written in the editor\nsecond line"]


def test_a_new_folder_is_trusted_once_or_opened_read_only(server, start, repl_env, workspace: Path):
    term = start(trusted=False, ready="Trust this folder")
    assert str(workspace) in term.screen()
    term.type("y")
    term.press("Enter")
    term.wait_for(r"(?m)^›")
    term.wait_for("sandbox workspace-write")
    term.close()
    again = start(trusted=False)  # remembered: no question this time
    assert "Trust this folder" not in again.screen()


def test_an_untrusted_folder_can_be_opened_read_only_or_left(server, start, workspace: Path):
    term = start(trusted=False, ready="Trust this folder")
    term.type("r")
    term.press("Enter")
    term.wait_for(r"(?m)^›")
    term.wait_for("sandbox read-only")
    term.close()
    left = start(trusted=False, ready="Trust this folder")  # read-only is not remembered as trust
    left.type("n")
    left.press("Enter")
    left.wait_for("nothing was started")
    assert server.requests == []


def test_a_project_base_url_is_asked_about_once_and_remembered(server, start, repl_env, workspace: Path):
    other = ScriptedServer()
    try:
        (workspace / ".coder").mkdir()
        (workspace / ".coder" / "config.toml").write_text(f'base_url = "{other.base_url}"\n')
        server.add(Reply([message("from your own endpoint")]))
        term = start(ready="Allow it for this project")
        assert other.base_url in term.screen() and "API key would be sent there" in term.screen()
        term.type("n")
        term.press("Enter")
        term.wait_for(r"(?m)^›")
        term.type("hello")
        term.press("Enter")
        term.wait_for("from your own endpoint")
        assert other.requests == []
        term.close()
        r = subprocess.run([str(CODER), "exec", "hi"], env=repl_env, cwd=workspace, capture_output=True, text=True,
                           timeout=60)
        assert "ignored base_url" in r.stderr and other.requests == []  # the answer holds for exec too
    finally:
        other.close()


def test_file_completion_runs_nothing_from_the_repository(server, start, workspace: Path, tmp_path: Path):
    """A repository a command planted in an earlier session is opened as a project: listing its files
    for completion must not start its fsmonitor."""
    marker = tmp_path / "fsmonitor-ran"
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    subprocess.run(["git", "-C", str(workspace), "config", "core.fsmonitor", f"touch {marker}; false"], check=True)
    (workspace / "widget_factory.py").write_text("x = 1\n")
    term = start()
    term.type("look at @wfac")
    term.wait_for(r"widget_factory\.py")
    assert not marker.exists(), "the repository's fsmonitor ran outside the sandbox"


def test_no_child_of_coder_sees_the_key(server, start, repl_env, tmp_path: Path):
    """coder seals secrets out of its own environment at start-up: the editor it starts sees none."""
    dump = tmp_path / "editor-env"
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\nenv > {dump}\nprintf "edited\\n" >> "$1"\n')
    editor.chmod(0o755)
    env = {**repl_env, "EDITOR": str(editor), "VISUAL": str(editor), "GITHUB_TOKEN": "ghp-like-CANARY",
           "DATABASE_URL": "postgres://u:CANARY-pw@db/x"}
    term = start(env=env)
    term.press("C-x", "C-e")
    term.wait_for("edited")
    seen = dump.read_text()
    assert env["OPENAI_API_KEY"] not in seen and "CANARY" not in seen, seen
    assert "OPENAI_BASE_URL=" in seen  # not a secret: left as it was


def test_compact_on_demand_and_recovery_from_an_overflow(server, start, workspace: Path):
    from tests.test_long_sessions import big_files, reads

    big_files(workspace, 5)
    server.window = 11_000  # a model coder does not know: it learns the limit from the refusal
    server.add(Reply([message("hello there")]))
    term = start("-m", "house-model")
    term.type("hi")
    term.press("Enter")
    term.wait_for("hello there")
    term.wait_for(r"completed ·")
    term.type("/compact the API shape")
    term.press("Enter")
    term.wait_for(r"context compacted by the endpoint")
    assert "the API shape" in json.dumps(server.compactions[0]["input"])

    server.compact_status = 404  # from now on the endpoint has no compaction: a summary it is
    server.add(*reads(4), Reply([message("NOTE: four read")]), Reply([message("finished reading")]))
    term.type("read the files")
    term.press("Enter")
    term.wait_for("finished reading", timeout=30)
    screen = term.wait_for(r"completed ·")
    assert "over the model's context window" in screen
    assert "context compacted into a summary" in screen
    assert "error:" not in screen
    assert_valid_history(server.bodies[-1]["input"])
