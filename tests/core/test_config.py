"""What a project's own config may and may not do to the user's settings (load_config, in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coder import trust
from coder.config import BaseURLNotAllowed, ConfigError, load_config


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"), ("XDG_DATA_HOME", "data")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return tmp_path


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_projects_limits_only_lower_the_users(homes: Path, workspace: Path) -> None:
    write(homes / "config" / "coder" / "config.toml", "[limits]\nprocesses = 100\n")
    write(workspace / ".coder" / "config.toml", "[limits]\nprocesses = 5000\nmemory_mb = 999999\ncpu_seconds = 30\n")
    config, _ = load_config(workspace)
    assert config.limits == {"processes": 100, "memory_mb": 8192, "cpu_seconds": 30}


def test_a_projects_base_url_needs_the_users_word(homes: Path, workspace: Path) -> None:
    project = workspace / ".coder" / "config.toml"
    write(project, 'base_url = "http://127.0.0.1:9/v1"\n')
    with pytest.raises(BaseURLNotAllowed, match="would receive your API key"):
        load_config(workspace)
    asked: list[str] = []
    config, notes = load_config(workspace, decide_base_url=lambda path, url: asked.append(url) or False)
    assert asked == ["http://127.0.0.1:9/v1"] and config.base_url is None and "ignored base_url" in notes[0]
    trust.decide_base_url(project, "http://127.0.0.1:9/v1", True)  # what the REPL records on "yes"
    config, _ = load_config(workspace)
    assert config.base_url == "http://127.0.0.1:9/v1"
    config, _ = load_config(workspace, base_url="http://127.0.0.1:8/v1")  # a flag always wins
    assert config.base_url == "http://127.0.0.1:8/v1"


def test_a_typo_in_a_projects_sandbox_is_one_line(homes: Path, workspace: Path) -> None:
    write(workspace / ".coder" / "config.toml", 'sandbox = "danger"\n')
    with pytest.raises(ConfigError, match=r"config.toml: sandbox must be one of read-only, workspace-write"):
        load_config(workspace)


def test_max_retry_wait_is_a_setting_a_project_may_only_lower(homes: Path, workspace: Path) -> None:
    assert load_config(workspace)[0].max_retry_wait == 60
    write(homes / "config" / "coder" / "config.toml", "max_retry_wait = 30\n")
    write(workspace / ".coder" / "config.toml", "max_retry_wait = 3600\n")
    assert load_config(workspace)[0].max_retry_wait == 30
    write(workspace / ".coder" / "config.toml", "max_retry_wait = 5\n")
    assert load_config(workspace)[0].max_retry_wait == 5
    write(workspace / ".coder" / "config.toml", "max_retry_wait = -1\n")
    with pytest.raises(ConfigError, match="max_retry_wait must not be negative"):
        load_config(workspace)
