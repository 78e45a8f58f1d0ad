"""The installed `coder` program, run by its path the way people run it.

The environment's bin/ is not on PATH (as with pipx), so anything coder needs
from its own dependencies (the rg binary) must come from the installation.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CODER, assert_stopped, coder, heartbeat, in_terminal
from tests.scripted_server import Reply, call, message

def test_version_needs_nothing_and_imports_nothing_heavy(tmp_path: Path):
    from importlib.metadata import version

    from coder import __version__

    broken = tmp_path / "project"  # a project whose config would stop any command that read it
    (broken / ".coder").mkdir(parents=True)
    (broken / ".coder" / "config.toml").write_text("model = [unclosed\n")
    r = subprocess.run([str(CODER), "--version"], capture_output=True, text=True, env={}, cwd=broken)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"coder {__version__}\n", "")
    assert __version__ == version("coder")  # the installed distribution's own version
    traced = subprocess.run([str(CODER), "--version"], capture_output=True, text=True, cwd=broken,
                            env={"PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in traced.stderr.splitlines() if line.startswith("import time:")}
    assert "coder" in imported and "argparse" in imported  # the trace sees coder's own imports
    assert not imported & {"openai", "httpx", "rich", "prompt_toolkit", "git", "gitdb", "tomllib"}


def test_an_empty_answer_is_a_failure_in_one_line(server, env, workspace: Path):
    server.add(Reply([]))  # completed, with an empty output list
    r = coder("exec", "--quiet", "hello", env=env, cwd=workspace)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "coder: error: the response is incomplete: it completed with no answer and no tool call\n"


def test_missing_key_is_one_clear_line(server, env, workspace: Path):
    del env["OPENAI_API_KEY"]
    r = coder("exec", "hello", env=env, cwd=workspace)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "OPENAI_API_KEY is not set" in r.stderr
    assert "Traceback" not in r.stderr
    assert server.requests == []


def test_exec_does_real_work_and_prints_the_answer(server, env, workspace: Path):
    (workspace / "app.py").write_text("x = 1\n# TODO: fix\n")
    s = call("search_file", {"pattern": "TODO", "path": None, "glob": None, "case_insensitive": None,
                             "context_lines": None})
    e = call("edit_file", {"path": "app.py", "old_string": "x = 1", "new_string": "x = 2", "replace_all": None})
    server.add(Reply([s, e]), Reply([message("Fixed: x is now 2.")]))
    r = coder("exec", "--quiet", "fix app.py", env=env, cwd=workspace)

    assert r.returncode == 0, r.stderr
    assert r.stdout == "Fixed: x is now 2.\n"
    assert r.stderr == ""  # --quiet: nothing went wrong, so nothing to say
    assert (workspace / "app.py").read_text() == "x = 2\n# TODO: fix\n"
    outs = [i["output"] for i in server.bodies[1]["input"] if i["type"] == "function_call_output"]
    assert "app.py:2:# TODO: fix" in outs[0]  # rg found from the installation, not PATH


def test_exec_json_stdin_prompt_and_output_file(server, env, workspace: Path, tmp_path: Path):
    (workspace / "f.txt").write_text("hello\n")
    server.add(Reply([call("read_file", {"path": "f.txt"})]), Reply([message("It says hello.")]))
    answer = tmp_path / "answer.txt"
    r = coder("exec", "--json", "-o", str(answer), "-", env=env, cwd=workspace, input="what is in f.txt?")

    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types[0] == "run.started" and types[-1] == "turn.done"
    assert events[0]["sandbox"]["mode"] == "workspace-write" and "backend" in events[0]["sandbox"]
    assert {"tool.started", "tool.finished", "usage", "message.done"} <= set(types)
    assert events[-1]["status"] == "completed" and events[-1]["final_text"] == "It says hello."
    assert answer.read_text() == "It says hello.\n"
    assert server.bodies[0]["input"][0]["content"][0]["text"] == "what is in f.txt?"


def test_api_error_exits_1_with_one_line(server, env, workspace: Path):
    server.add(Reply(http_status=401, error={"error": {"message": "Incorrect API key provided"}}))
    r = coder("exec", "-q", "hi", env=env, cwd=workspace)
    assert r.returncode == 1
    assert r.stderr == (f"coder: error: HTTP 401: Incorrect API key provided; tried POST {server.base_url}/responses "
                        "(base_url from $OPENAI_BASE_URL)\n")
    assert r.stdout == ""


def test_max_turns_exits_1(server, env, workspace: Path):
    (workspace / "f.txt").write_text("x\n")
    server.add(Reply([call("read_file", {"path": "f.txt"})]))
    r = coder("exec", "--max-turns", "1", "loop", env=env, cwd=workspace)
    assert r.returncode == 1 and "max_turns" in r.stderr


@pytest.mark.parametrize(
    "args, expect",
    [
        (["exec", "--sandbox", "nope", "x"], "invalid choice"),
        (["exec", ""], "the prompt is empty"),
        (["exec", "-C", "/does/not/exist", "x"], "not a directory"),
        (["exec", "--tool-choice", "rm_rf", "x"], "tool_choice must be"),
    ],
)
def test_usage_errors_exit_2(server, env, workspace: Path, args, expect):
    r = coder(*args, env=env, cwd=workspace)
    assert r.returncode == 2 and expect in r.stderr and "Traceback" not in r.stderr
    assert server.requests == []


def test_config_mistakes_are_one_line(server, env, workspace: Path):
    cfg = workspace / ".coder" / "config.toml"
    cfg.parent.mkdir()
    cfg.write_text("modle = 'x'\n")
    r = coder("exec", "hi", env=env, cwd=workspace)
    assert r.returncode == 2
    assert r.stderr == f"coder: error: {cfg}: unknown setting 'modle' (did you mean 'model'?)\n"
    cfg.write_text("model = \n")
    r = coder("exec", "hi", env=env, cwd=workspace)
    assert r.returncode == 2 and "invalid TOML" in r.stderr and r.stderr.count("\n") == 1


def test_config_layers_user_project_flags(server, env, workspace: Path):
    user = Path(env["XDG_CONFIG_HOME"]) / "coder" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text(
        'model = "user-model"\nreasoning_effort = "low"\nstore = true\n'
        '[extra_headers]\nX-Project-ID = "p-123"\n[extra_body]\nservice_tier = "flex"\n'
    )
    (workspace / ".coder").mkdir()
    (workspace / ".coder" / "config.toml").write_text('model = "project-model"\nreasoning_effort = "high"\n')
    server.add(Reply([message("a")]), Reply([message("b")]))
    assert coder("exec", "hi", env=env, cwd=workspace).returncode == 0
    assert coder("exec", "-m", "flag-model", "hi", env=env, cwd=workspace).returncode == 0
    first, second = server.bodies
    assert first["model"] == "project-model" and second["model"] == "flag-model"
    assert first["reasoning"] == {"effort": "high"} and first["service_tier"] == "flex"
    assert first["store"] is True and "include" not in first
    assert server.requests[0]["headers"]["x-project-id"] == "p-123"


def test_sigint_during_a_command_exits_130_and_kills_it(server, env, workspace: Path):
    beat = workspace / "beat"
    c = call("run_command", {"command": f"{heartbeat(beat)} sleep 60", "timeout_seconds": None, "workdir": None})
    server.add(Reply([c]))
    proc = subprocess.Popen([str(CODER), "exec", "--json", "slow"], env=env, cwd=workspace,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not beat.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert_stopped(beat)
    assert "Traceback" not in err
    events = [json.loads(line) for line in out.splitlines()]
    types = [e["type"] for e in events]
    assert types[:4] == ["run.started", "request.started", "usage", "tool.started"] and types[-1] == "turn.done"
    assert "error" not in types  # a stop asked for is no error
    assert events[3]["call_id"] == c["call_id"]
    assert all(e["interrupted"] and not e["ok"] for e in events if e["type"] == "tool.finished")  # killed
    assert events[-1]["status"] == "interrupted" and events[-1]["final_text"] == ""
    assert "error" not in err


def test_progress_in_a_real_terminal_shows_each_step_and_the_answer_once(server, env, workspace: Path):
    (workspace / "f.txt").write_text("hello\n")
    server.add(
        Reply([message("Reading it first."), call("read_file", {"path": "f.txt"})]),
        Reply([message("The file says hello.")]),
    )
    code, screen = in_terminal(["exec", "read f.txt"], env, workspace)
    assert code == 0
    assert "→ read_file" in screen and "f.txt" in screen
    assert "Reading it first." in screen
    assert screen.count("The file says hello.") == 1
    assert re.search(r"completed · [\d.]+s · tokens in 200 \(cached 0\) · out 40", screen)


@pytest.mark.parametrize("setting, users", [
    ('sandbox = "full-access"', ""), ("network = true", ""), ('api_key_env = "AWS_SECRET_ACCESS_KEY"', ""),
    ("auto_commit = true", ""), ("store = true", ""), ('extra_headers = { Authorization = "Bearer sk-theirs" }', ""),
    ('extra_body = { user = "x" }', ""), ('env_passthrough = ["AWS_SECRET_ACCESS_KEY"]', ""),
    ('sandbox = "workspace-write"', 'sandbox = "read-only"'), ('approval = "never"', 'approval = "untrusted"'),
])
def test_a_project_config_cannot_loosen_the_sandbox(server, env, workspace: Path, setting: str, users: str):
    user = Path(env["XDG_CONFIG_HOME"]) / "coder" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text(users + "\n")
    cfg = workspace / ".coder" / "config.toml"
    cfg.parent.mkdir()
    cfg.write_text(setting + "\n")
    r = coder("exec", "hi", env=env, cwd=workspace)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert f"{cfg}: {setting.split(' = ')[0]} = " in r.stderr and "not allowed in a project's config" in r.stderr
    assert server.requests == []


def test_deny_list_and_limits_from_config_reach_the_sandbox(server, env, workspace: Path, tmp_path: Path):
    private = tmp_path / "private"
    private.mkdir()
    (private / "token.txt").write_text("s3cr3t-value\n")
    user = Path(env["XDG_CONFIG_HOME"]) / "coder" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text(f'deny_read = ["{private}"]\n[limits]\nfile_size_mb = 1\n')
    server.add(
        Reply([call("run_command", {"command": f"cat {private}/token.txt; head -c 5000000 /dev/zero > big",
                                    "timeout_seconds": None, "workdir": None}),
               call("read_file", {"path": f"{private}/token.txt", "offset": None, "limit": None})]),
        Reply([message("done")]),
    )
    r = coder("exec", "hi", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    outputs = [i["output"] for i in server.bodies[1]["input"] if i.get("type") == "function_call_output"]
    assert len(outputs) == 2 and not any("s3cr3t-value" in o for o in outputs)
    assert "not allowed" in outputs[1]
    assert (workspace / "big").stat().st_size == 1 << 20


def test_limits_in_config_are_checked(server, env, workspace: Path):
    cfg = workspace / ".coder" / "config.toml"
    cfg.parent.mkdir()
    cfg.write_text("[limits]\ncpu_secs = 5\n")
    r = coder("exec", "hi", env=env, cwd=workspace)
    assert r.returncode == 2 and "unknown limit 'cpu_secs'" in r.stderr and r.stderr.count("\n") == 1


def test_the_session_needs_a_terminal(server, env, workspace: Path):
    r = coder(env=env, cwd=workspace, input="hello\n")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "needs a terminal" in r.stderr and "coder exec" in r.stderr
    assert server.requests == []


def test_flags_before_the_command_count(server, env, workspace: Path, tmp_path: Path):
    server.add(Reply([message("ok")]))
    r = coder("-C", str(workspace), "--sandbox", "read-only", "exec", "--json", "hi", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    started = json.loads(r.stdout.splitlines()[0])
    assert started["workspace"] == str(workspace) and started["sandbox"]["mode"] == "read-only"


def test_a_project_config_may_make_settings_stricter(server, env, workspace: Path):
    (workspace / ".coder").mkdir()
    (workspace / ".coder" / "config.toml").write_text('sandbox = "read-only"\napproval = "untrusted"\n'
                                                      "[limits]\nprocesses = 64\nmemory_mb = 999999\n")
    server.add(Reply([message("ok")]))
    r = coder("exec", "--json", "hi", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])["sandbox"]["mode"] == "read-only"
