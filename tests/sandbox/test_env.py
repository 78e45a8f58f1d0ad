"""Secrets never reach a command's environment."""

from __future__ import annotations

from pathlib import Path

from sandbox.env import scrub
from sandbox.process import run


def _user_env() -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/someone",
        "OPENAI_API_KEY": "sk-test-123",
        "GITHUB_TOKEN": "ghp_abc",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "MY_COPY": "sk-test-123",
        "LANG": "C.UTF-8",
    }


def test_scrub_removes_secret_names_and_values() -> None:
    env = scrub(_user_env(), secret_values=["sk-test-123"])
    assert env == {"PATH": "/usr/bin:/bin", "HOME": "/home/someone", "LANG": "C.UTF-8"}


def test_scrub_ignores_empty_secret_values() -> None:
    env = scrub({"EMPTY": "", "PATH": "/bin"}, secret_values=[""])
    assert env == {"EMPTY": "", "PATH": "/bin"}


def test_scrubbed_env_is_what_the_child_sees(tmp_path: Path) -> None:
    env = scrub(_user_env(), secret_values=["sk-test-123"])
    r = run("env", cwd=tmp_path, env=env, timeout=10)
    seen = dict(line.split("=", 1) for line in r.output.splitlines() if "=" in line)
    assert "OPENAI_API_KEY" not in seen and "MY_COPY" not in seen and "GITHUB_TOKEN" not in seen
    assert "sk-test-123" not in r.output and "aws-secret" not in r.output
    assert seen["HOME"] == "/home/someone" and seen["PATH"] == "/usr/bin:/bin"
