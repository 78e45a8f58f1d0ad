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


# Every value check names where the value came from: the file (user's or project's), then the key.
BAD_VALUES = [
    ('reasoning_effort = "hgih"', "reasoning_effort must be one of none, minimal, low, medium, high, xhigh, got 'hgih'"),
    ('sandbox = "danger"', "sandbox must be one of read-only, workspace-write, full-access, got 'danger'"),
    ('approval = "sometimes"', "approval must be one of never, on-request, untrusted, got 'sometimes'"),
    ('verbosity = "loud"', "verbosity must be one of low, medium, high, got 'loud'"),
    ('compaction = "yes"', "compaction must be one of auto, endpoint, local, off, got 'yes'"),
    ("max_turns = 0", "max_turns must be at least 1, got 0"),
    ("max_retries = -1", "max_retries must not be negative, got -1"),
    ("context_window = 10", "context_window is in tokens and must be at least 1000, got 10"),
    ("timeout = 0", "timeout must be a positive number of seconds, got 0"),
    ("command_timeout = -5.5", "command_timeout must be a positive number of seconds, got -5.5"),
    ("timeout = nan", "timeout must be a finite number, got nan"),
    ("auto_compact_at = 1.5", "auto_compact_at must be at least 0 and below 1 (0 switches it off), got 1.5"),
    ('model = "  "', "model must not be empty, got '  '"),
    ("model = 5", "model must be a string, got 5"),
    ('max_turns = "ten"', "max_turns must be a whole number, got 'ten'"),
    ('timeout = "10s"', "timeout must be a number, got '10s'"),
    ('chain = "yes"', "chain must be true or false, got 'yes'"),
    ("deny_read = [1]", "deny_read must be a list of non-empty strings, got [1]"),
    ('deny_read = "/etc"', "deny_read must be a list, got '/etc'"),
    ("limits = { memory_mb = 0 }", "limits.memory_mb must be a positive whole number, got 0"),
]


@pytest.mark.parametrize("line, says", BAD_VALUES, ids=[line.split(" =")[0] + ":" + line.split("= ")[1] for line, _ in BAD_VALUES])
@pytest.mark.parametrize("where", ["user", "project"])
def test_every_bad_value_names_its_file_and_key(homes: Path, workspace: Path, where: str, line: str, says: str) -> None:
    path = homes / "config" / "coder" / "config.toml" if where == "user" else workspace / ".coder" / "config.toml"
    write(path, line + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(workspace)
    assert str(caught.value) == f"{path}: {says}"


def test_bad_values_from_the_environment_flags_and_c_name_them(homes: Path, workspace: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODER_MODEL", " ")
    with pytest.raises(ConfigError, match=r"^\$CODER_MODEL: model must not be empty"):
        load_config(workspace)
    monkeypatch.delenv("CODER_MODEL")
    with pytest.raises(ConfigError, match=r"^--max-turns: max_turns must be at least 1, got 0$"):
        load_config(workspace, max_turns=0)
    with pytest.raises(ConfigError, match=r"^--reasoning-effort: reasoning_effort must be one of"):
        load_config(workspace, reasoning_effort="hgih")
    with pytest.raises(ConfigError, match=r"^-c max_turns=0: max_turns must be at least 1, got 0$"):
        load_config(workspace, overrides=["max_turns=0"])


@pytest.mark.parametrize("item, says", [
    ("modle=x", "-c modle=x: unknown setting 'modle' (did you mean 'model'?)"),
    ("model", "-c model: expected KEY=VALUE, e.g. -c model=gpt-5.4 or -c limits.memory_mb=4096"),
    ("=x", "-c =x: expected KEY=VALUE"),
    ("limits.memory=5", "-c limits.memory=5: unknown limit 'memory'"),
    ("limits.memory_mb=lots", "-c limits.memory_mb=lots: limits.memory_mb must be a positive whole number, got 'lots'"),
    ("store=yes", "-c store=yes: store must be true or false, got 'yes'"),
    ("model.name=x", "-c model.name=x: model must be a string, got {'name': 'x'}"),
    ("a b=1", "-c a b=1: 'a b' is not a setting name"),
])
def test_a_wrong_c_is_one_line_naming_it(homes: Path, workspace: Path, item: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(workspace, overrides=[item])
    assert str(caught.value).startswith(says) and "\n" not in str(caught.value)


def test_c_values_are_toml_and_a_bare_word_is_a_string(homes: Path, workspace: Path) -> None:
    config, _ = load_config(workspace, overrides=[
        "model=gpt-5.4", "store=true", "timeout=30", "auto_compact_at=0.5", 'deny_read=["/srv/secrets"]',
        "limits.memory_mb=4096", 'extra_headers.X-Team="a=b"', 'prices."gpt-5.4".input=2', "tool_choice = none",
    ])
    assert (config.model, config.store, config.timeout, config.auto_compact_at) == ("gpt-5.4", True, 30, 0.5)
    assert config.deny_read == ("/srv/secrets",) and config.limits == {"memory_mb": 4096}
    assert config.extra_headers == {"X-Team": "a=b"} and config.prices == {"gpt-5.4": {"input": 2.0}}
    assert config.tool_choice == "none"
    newline, _ = load_config(workspace, overrides=['model="m"\nsandbox="full-access"'])  # one setting per -c
    assert newline.sandbox == "workspace-write" and newline.model == '"m"\nsandbox="full-access"'


def test_layers_and_where_each_setting_came_from(homes: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = homes / "config" / "coder" / "config.toml"
    project = workspace / ".coder" / "config.toml"
    write(user, 'model = "user-model"\nreasoning_effort = "low"\n[limits]\nprocesses = 100\nmemory_mb = 2048\n')
    write(project, 'reasoning_effort = "medium"\nverbosity = "low"\n[limits]\nmemory_mb = 1024\n')
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    config, _ = load_config(workspace, overrides=["verbosity=high", "limits.cpu_seconds=60"], model="flag-model")
    assert (config.model, config.reasoning_effort, config.verbosity) == ("flag-model", "medium", "high")
    assert config.limits == {"processes": 100, "memory_mb": 1024, "cpu_seconds": 60}
    where = {key: (config.source(key).kind, config.source(key).where) for key in (
        "model", "reasoning_effort", "verbosity", "base_url", "limits.processes", "limits.memory_mb",
        "limits.cpu_seconds", "sandbox")}
    assert where == {
        "model": ("flag", "--model"), "reasoning_effort": ("project", str(project)),
        "verbosity": ("-c", "verbosity=high"), "base_url": ("env", "OPENAI_BASE_URL"),
        "limits.processes": ("user", str(user)), "limits.memory_mb": ("project", str(project)),
        "limits.cpu_seconds": ("-c", "limits.cpu_seconds=60"), "sandbox": ("default", ""),
    }
    assert str(config.source("base_url")) == "environment OPENAI_BASE_URL"


def test_a_c_base_url_is_the_users_word_over_the_projects(homes: Path, workspace: Path) -> None:
    write(workspace / ".coder" / "config.toml", 'base_url = "http://127.0.0.1:9/v1"\n')
    config, notes = load_config(workspace, overrides=["base_url=http://127.0.0.1:8/v1"])  # nobody is asked
    assert config.base_url == "http://127.0.0.1:8/v1" and notes == []
    assert config.source("base_url").kind == "-c"


def test_a_c_may_set_what_a_project_may_not(homes: Path, workspace: Path) -> None:
    config, _ = load_config(workspace, overrides=["network=true", "sandbox=full-access"])
    assert config.network is True and config.sandbox == "full-access"
