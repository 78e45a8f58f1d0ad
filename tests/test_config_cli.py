"""`-c KEY=VALUE`, `coder config`, `coder completion` and the examples in --help, through the installed coder."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CODER, coder, unavailable
from tests.scripted_server import Reply, message


def user_config(env: dict[str, str], text: str) -> Path:
    path = Path(env["XDG_CONFIG_HOME"]) / "coder" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_c_sets_any_setting_before_and_after_the_command(server, env, workspace: Path):
    server.add(Reply([message("a")]), Reply([message("b")]))
    r = coder("-c", "model=c-model", "-c", 'extra_headers.X-Trace="t1"', "exec",
              "-c", "reasoning_effort=low", "-c", "extra_body.service_tier=flex", "hi", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    body = server.bodies[0]
    assert body["model"] == "c-model" and body["reasoning"]["effort"] == "low" and body["service_tier"] == "flex"
    assert server.requests[0]["headers"]["x-trace"] == "t1"  # the -c before the command survived the ones after
    r = coder("exec", "-m", "flag-model", "-c", "model=c-model", "hi", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert server.bodies[1]["model"] == "flag-model"  # a flag is more specific than -c


@pytest.mark.parametrize("args, says", [
    (["exec", "-c", "modle=x", "hi"], "-c modle=x: unknown setting 'modle' (did you mean 'model'?)"),
    (["exec", "-c", "max_turns=zero", "hi"], "-c max_turns=zero: max_turns must be a whole number, got 'zero'"),
    (["-c", "limits.memory_mb=0", "exec", "hi"], "-c limits.memory_mb=0: limits.memory_mb must be a positive whole"),
    (["sessions", "-c", "sandbox=danger"], "-c sandbox=danger: sandbox must be one of read-only, workspace-write"),
    (["config", "-c", "store"], "-c store: expected KEY=VALUE"),
    (["undo", "-c", "verbosity=5"], "-c verbosity=5: verbosity must be a string, got 5"),
])
def test_a_wrong_c_is_one_line_on_any_command(server, env, workspace: Path, args: list[str], says: str):
    r = coder(*args, env=env, cwd=workspace)
    assert r.returncode == 2 and r.stderr.startswith(f"coder: error: {says}") and r.stderr.count("\n") == 1
    assert server.requests == []


@pytest.mark.parametrize("line, says", [
    ('reasoning_effort = "hgih"', "reasoning_effort must be one of none, minimal, low, medium, high, xhigh, got 'hgih'"),
    ('sandbox = "danger"', "sandbox must be one of read-only, workspace-write, full-access, got 'danger'"),
    ("auto_compact_at = 2", "auto_compact_at must be at least 0 and below 1 (0 switches it off), got 2"),
    ('store = "yes"', "store must be true or false, got 'yes'"),
])
def test_a_bad_value_in_the_users_config_names_the_file(server, env, workspace: Path, line: str, says: str):
    path = user_config(env, line + "\n")
    r = coder("exec", "hi", env=env, cwd=workspace)
    assert (r.returncode, r.stderr) == (2, f"coder: error: {path}: {says}\n")
    assert server.requests == []


def rows(text: str) -> dict[str, tuple[str, str]]:
    """`coder config`'s lines as {key: (value, source)}."""
    out = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            key, value, source = re.fullmatch(r"(\S+)\s+(.*?)\s+# (.*)", line).groups()
            out[key] = (value, source)
    return out


def test_coder_config_shows_each_setting_and_where_it_came_from(server, env, workspace: Path):
    user = user_config(env, 'model = "user-model"\nreasoning_effort = "low"\n[limits]\nprocesses = 100\n'
                            '[extra_headers]\nAuthorization = "Bearer sk-in-config-123"\nX-Team = "blue"\n')
    project = workspace / ".coder" / "config.toml"
    project.parent.mkdir()
    project.write_text('reasoning_effort = "high"\n[limits]\nmemory_mb = 1024\n')
    del env["OPENAI_API_KEY"]  # showing settings needs no key
    args = ("config", "--sandbox", "read-only", "-c", "verbosity=high", "-c", "limits.cpu_seconds=60")
    r = coder(*args, env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert f"# user config: {user}\n# project config: {project}\n" in r.stdout
    shown = rows(r.stdout)
    assert shown["model"] == ('"user-model"', f"user config {user}")
    assert shown["reasoning_effort"] == ('"high"', f"project config {project}")
    assert shown["base_url"] == (json.dumps(env["OPENAI_BASE_URL"]), "environment OPENAI_BASE_URL")
    assert shown["sandbox"] == ('"read-only"', "flag --sandbox")
    assert shown["verbosity"] == ('"high"', "-c verbosity=high")
    assert shown["limits.processes"] == ("100", f"user config {user}")
    assert shown["limits.memory_mb"] == ("1024", f"project config {project}")
    assert shown["limits.cpu_seconds"] == ("60", "-c limits.cpu_seconds=60")
    assert shown["max_turns"] == ("100", "default") and shown["store"] == ("false", "default")
    assert shown["extra_headers.X-Team"] == ('"blue"', f"user config {user}")
    assert shown["extra_headers.Authorization"][0] == "(hidden)"
    assert shown["approval"][0].startswith("(not set")

    assert "sk-in-config-123" not in r.stdout
    r = coder(*args, "--json", env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["workspace"] == str(workspace)
    assert data["config_files"] == [{"kind": "user", "path": str(user), "exists": True},
                                    {"kind": "project", "path": str(project), "exists": True}]
    assert data["settings"]["limits"] == {"processes": 100, "memory_mb": 1024, "cpu_seconds": 60}
    assert data["settings"]["sandbox"] == "read-only" and data["settings"]["approval"] is None
    assert data["sources"]["model"] == {"kind": "user", "where": str(user)}
    assert data["sources"]["sandbox"] == {"kind": "flag", "where": "--sandbox"}
    assert data["sources"]["limits.cpu_seconds"] == {"kind": "-c", "where": "limits.cpu_seconds=60"}
    assert data["sources"]["base_url"] == {"kind": "env", "where": "OPENAI_BASE_URL"}
    assert data["sources"]["max_turns"] == {"kind": "default"}
    assert set(data["settings"]) == {k.split(".")[0] for k in data["sources"]}
    assert data["settings"]["extra_headers"] == {"Authorization": "(hidden)", "X-Team": "blue"}
    assert "sk-in-config-123" not in r.stdout and server.requests == []


def complete_in_bash(script: str, *words: str) -> list[str]:
    """What a real bash offers for `words` (the last one being completed) with the generated script."""
    line = " ".join(words)
    program = (f"source {shlex.quote(script)}\nCOMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
               f"COMP_CWORD={len(words) - 1}\nCOMP_LINE={shlex.quote(line)}\nCOMP_POINT={len(line)}\n"
               "_shtab_coder\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["bash", "--norc", "--noprofile"], input=program, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_bash_completion_comes_from_the_parser(env, workspace: Path, tmp_path: Path):
    r = coder("completion", "bash", env=env, cwd=workspace)
    assert r.returncode == 0 and r.stderr == ""
    script = tmp_path / "coder.bash"
    script.write_text(r.stdout)
    (workspace / "notes.txt").write_text("x\n")
    (workspace / "src").mkdir()
    assert complete_in_bash(str(script), "coder", "") == ["exec", "batch", "resume", "sessions", "undo", "init",
                                                          "config", "completion"]
    assert complete_in_bash(str(script), "coder", "comp") == ["completion"]
    assert complete_in_bash(str(script), "coder", "completion", "") == ["bash", "zsh", "fish"]
    assert complete_in_bash(str(script), "coder", "exec", "--sand") == ["--sandbox"]
    assert complete_in_bash(str(script), "coder", "exec", "--sandbox", "") == ["read-only", "workspace-write",
                                                                              "full-access"]
    assert "--json" in complete_in_bash(str(script), "coder", "config", "--")
    assert complete_in_bash(str(script), "coder", "-C", f"{workspace}/s") == [f"{workspace}/src"]  # folders only
    assert complete_in_bash(str(script), "coder", "exec", "-o", f"{workspace}/n") == [f"{workspace}/notes.txt"]


@pytest.mark.parametrize("shell, first", [("zsh", "#compdef coder"), ("fish", "# AUTOMATICALLY GENERATED")])
def test_zsh_and_fish_completion(env, workspace: Path, tmp_path: Path, shell: str, first: str):
    r = coder("completion", shell, env=env, cwd=workspace)
    assert r.returncode == 0 and r.stdout.startswith(first)
    for word in ("exec", "batch", "resume", "sessions", "undo", "init", "config", "completion", "--reasoning-effort",
                 "read-only workspace-write full-access", "--config"):
        assert word in r.stdout, word
    if shell == "fish":
        assert "set -g _shtab_coder_commands exec batch resume sessions undo init config completion" in r.stdout


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_completion_parse_in_their_shell(env, workspace: Path, tmp_path: Path, shell: str):
    program = shutil.which(shell)
    if program is None:
        unavailable(f"{shell} is not installed")
    r = coder("completion", shell, env=env, cwd=workspace)
    script = tmp_path / f"coder.{shell}"
    script.write_text(r.stdout)
    check = subprocess.run([program, "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    if shell == "fish":  # and fish really completes with it
        asked = f"source {script}; complete -C 'coder '; echo ==; complete -C 'coder exec --sandbox '"
        done = subprocess.run([program, "--no-config", "-c", asked], capture_output=True, text=True, timeout=30)
        commands, choices = ([line.split("\t")[0] for line in part.splitlines()]
                             for part in done.stdout.split("==\n"))
        assert commands == ["batch", "completion", "config", "exec", "init", "resume", "sessions", "undo"], done.stderr
        assert choices == ["read-only", "workspace-write", "full-access"]


def test_an_unknown_shell_is_a_usage_error(env, workspace: Path):
    r = coder("completion", "tcsh", env=env, cwd=workspace)
    assert r.returncode == 2 and "invalid choice: 'tcsh'" in r.stderr and "Traceback" not in r.stderr


def examples(help_text: str) -> list[list[str]]:
    """The example commands in a --help: each line's coder command (before the two spaces that start its
    comment, after a pipe, before a redirection)."""
    block = help_text.split("examples:\n", 1)[1]
    commands = []
    for line in block.splitlines():
        if not line.strip():
            break
        words = shlex.split(re.split(r"\s{2,}", line.strip())[0].split("|")[-1])
        assert words[0] == "coder", line
        commands.append(words[1:words.index(">")] if ">" in words else words[1:words.index("<")]
                        if "<" in words else words[1:])
    return commands


def test_help_shows_examples_that_really_parse(env, workspace: Path):
    from coder.cli import build_parser

    for args, least in ((["--help"], 5), (["exec", "--help"], 4)):
        r = coder(*args, env=env, cwd=workspace)
        assert r.returncode == 0
        found = examples(r.stdout)
        assert len(found) >= least, r.stdout
        for words in found:
            build_parser().parse_args(words)  # argparse exits (SystemExit) on anything it does not take
    exec_examples = examples(coder("exec", "--help", env=env, cwd=workspace).stdout)
    assert all(words[0] == "exec" for words in exec_examples)


def test_help_imports_no_completion_library(workspace: Path):
    traced = subprocess.run([str(CODER), "--help"], capture_output=True, text=True, cwd=workspace,
                            env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert traced.returncode == 0 and "examples:" in traced.stdout
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in traced.stderr.splitlines() if line.startswith("import time:")}
    assert "argparse" in imported and not imported & {"shtab", "tomllib", "rich", "openai"}


def test_coder_config_hides_secret_values_secret_names_and_url_secrets(server, env, workspace: Path):
    token = "sk-proj-" + "a1B2c3D4" * 5
    user_config(env, 'base_url = "https://me:hunter2pw@gw.example/v1?key=QSECRET&team=blue"\n'
                     'allowed_base_urls = ["https://gw.example/v1?api-key=ALLOWSECRET"]\n'
                     f'[extra_headers]\n"X-Custom" = "Bearer {token}"\nX-Team = "blue"\n'
                     '[extra_body]\napi_key = "plain-body-secret"\nmax_output_tokens = 1000\nservice_tier = "flex"\n'
                     '[extra_body.metadata]\naccess_token = "nested-secret"\nowner = "me"\n')
    del env["OPENAI_BASE_URL"]
    project = workspace / ".coder" / "config.toml"
    project.parent.mkdir()
    project.write_text('base_url = "https://me:PROJSECRET@proj.example/v1?token=PQSECRET"\n')
    secrets = ("hunter2pw", "QSECRET", "ALLOWSECRET", token, "plain-body-secret", "nested-secret", "PROJSECRET")
    r = coder("config", "-c", 'extra_body.client_secret="from-c-secret"', env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert r.stderr == (f"coder: note: ignored base_url = https://me:***@proj.example/v1?token=*** from {project} "
                        "(not allowed)\n")
    assert not [s for s in secrets + ("from-c-secret",) if s in r.stdout + r.stderr], r.stdout
    shown = rows(r.stdout)
    assert shown["base_url"][0] == '"https://me:***@gw.example/v1?key=***&team=***"'
    assert shown["allowed_base_urls"][0] == '["https://gw.example/v1?api-key=***"]'
    assert shown["extra_headers.X-Custom"][0] == "(hidden)" and shown["extra_headers.X-Team"][0] == '"blue"'
    assert shown["extra_body.api_key"][0] == "(hidden)" and shown["extra_body.client_secret"][0] == "(hidden)"
    assert shown["extra_body.max_output_tokens"][0] == "1000" and shown["extra_body.service_tier"][0] == '"flex"'
    assert shown["extra_body.metadata"][0] == '{access_token = (hidden), owner = "me"}'
    r = coder("config", "--json", "-c", 'extra_body.client_secret="from-c-secret"', env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    assert not [s for s in secrets + ("from-c-secret",) if s in r.stdout + r.stderr], r.stdout
    data = json.loads(r.stdout)["settings"]
    assert data["base_url"] == "https://me:***@gw.example/v1?key=***&team=***"
    assert data["extra_headers"] == {"X-Custom": "(hidden)", "X-Team": "blue"}
    assert data["extra_body"] == {"api_key": "(hidden)", "max_output_tokens": 1000, "service_tier": "flex",
                                  "metadata": {"access_token": "(hidden)", "owner": "me"},
                                  "client_secret": "(hidden)"}
