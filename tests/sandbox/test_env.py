"""Secrets never reach a command's environment."""

from __future__ import annotations

from pathlib import Path

from sandbox.env import scrub, separate
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


# What `separate` leaves of PATH: coder's own venv/bin goes only when the user did not activate it.
OWN = "/proj/.venv"
TOOLS = "/home/u/.local/lib/coder/bin"


def test_an_activated_venv_stays_even_when_coder_runs_from_it() -> None:
    # coder pip-installed into the project's own .venv, which the user activated: `python3 -m pytest` must work.
    env = {"PATH": f"{OWN}/bin:/usr/bin:/bin", "VIRTUAL_ENV": OWN, "VIRTUAL_ENV_PROMPT": "proj"}
    out = separate(env, OWN, f"{OWN}/bin", TOOLS)
    assert out["PATH"] == f"{OWN}/bin:/usr/bin:/bin:{TOOLS}"
    assert out["VIRTUAL_ENV"] == OWN and out["VIRTUAL_ENV_PROMPT"] == "proj"


def test_coders_venv_on_path_without_being_activated_leaves_it() -> None:
    # pipx / uv / install.sh's venv, whose bin got onto PATH some other way: only that entry goes.
    own = "/home/u/.local/lib/coder/venv"
    env = {"PATH": f"/home/u/bin::{own}/bin:/usr/bin:{own}/bin/:/bin"}
    out = separate(env, own, f"{own}/bin", TOOLS)
    assert out["PATH"] == f"/home/u/bin::/usr/bin:/bin:{TOOLS}"  # every other entry kept, in order
    assert "VIRTUAL_ENV" not in out


def test_coders_venv_goes_while_another_venv_is_activated() -> None:
    own = "/home/u/.local/lib/coder/venv"
    env = {"PATH": f"{OWN}/bin:{own}/bin:/usr/bin", "VIRTUAL_ENV": OWN}
    out = separate(env, own, f"{own}/bin", TOOLS)
    assert out["PATH"] == f"{OWN}/bin:/usr/bin:{TOOLS}" and out["VIRTUAL_ENV"] == OWN


def test_virtual_env_naming_coders_venv_without_its_bin_on_path_goes() -> None:
    env = {"PATH": "/usr/bin:/bin", "VIRTUAL_ENV": OWN, "VIRTUAL_ENV_PROMPT": "x"}
    out = separate(env, OWN, f"{OWN}/bin", TOOLS)
    assert out["PATH"] == f"/usr/bin:/bin:{TOOLS}" and "VIRTUAL_ENV" not in out and "VIRTUAL_ENV_PROMPT" not in out


def test_the_tools_folder_is_added_once_and_last() -> None:
    assert separate({"PATH": f"/usr/bin:{TOOLS}:/bin"}, tools=TOOLS)["PATH"] == f"/usr/bin:{TOOLS}:/bin"
    assert separate({"PATH": "/usr/bin"}, tools=None)["PATH"] == "/usr/bin"
