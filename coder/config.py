"""Settings, layered: defaults < environment < user config < project config < flags.

User config: `$XDG_CONFIG_HOME/coder/config.toml` (`~/.config/coder/config.toml`).
Project config: `.coder/config.toml` in the workspace. Every mistake in a file
is a `ConfigError` with one line naming the file and the setting.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from coder.dirs import user_config_path

DEFAULT_MODEL = "gpt-5.3-codex"
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
SUMMARIES = ("auto", "concise", "detailed", "none")
SANDBOX_MODES = ("read-only", "workspace-write", "full-access")
APPROVALS = ("never", "on-request", "untrusted")
COMPACTIONS = ("auto", "endpoint", "local", "off")
VERBOSITIES = ("low", "medium", "high")


class ConfigError(Exception):
    """A configuration mistake: reported in one line, never as a traceback."""


@dataclass(frozen=True)
class Config:
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None  # None: "auto" for reasoning models, else not sent
    store: bool = False  # False = Zero Data Retention (store=false + encrypted reasoning)
    timeout: float = 600.0
    max_retries: int = 5
    max_retry_wait: float = 60.0  # longest wait before a retry, in seconds; a Retry-After beyond it gives up
    extra_headers: dict[str, str] = field(default_factory=dict)
    extra_body: dict[str, Any] = field(default_factory=dict)
    tool_choice: str = "auto"
    parallel_tool_calls: bool = True
    max_turns: int = 100
    sandbox: str = "workspace-write"
    approval: str | None = None  # never, on-request, untrusted; None: the front end's default (exec never, REPL on-request)
    network: bool = False
    command_timeout: float = 120.0
    background: bool = False
    auto_commit: bool = False  # commit each turn's changes (only those), author "coder"
    deny_read: tuple[str, ...] = ()  # more paths nothing may read, on top of the built-in list
    limits: dict[str, int] = field(default_factory=dict)  # cpu_seconds, file_size_mb, processes, memory_mb
    env_passthrough: tuple[str, ...] = ()  # variables commands may see although they look secret
    allowed_base_urls: tuple[str, ...] = ()  # endpoints a project's own config may send the API key to
    sandbox_backend: str = "auto"  # auto, landlock, bwrap: which isolation commands run under
    context_window: int | None = None  # tokens; None: the built-in table for the model (coder.context)
    auto_compact_at: float = 0.85  # compact when the context passes this share of the window; 0: never
    compaction: str = "auto"  # auto, endpoint, local, off
    shrink_tool_outputs: bool = True  # shrink long tool outputs of older turns before compaction is needed
    chain: bool = False  # with store: send previous_response_id and only the new items
    verbosity: str | None = None  # text.verbosity: low, medium, high; None: not sent

    @property
    def zdr(self) -> bool:
        """Codex models always run under Zero Data Retention, whatever the settings say."""
        return "codex" in self.model.lower() or not self.store

    def api_key(self) -> str:
        from coder import credentials

        key = credentials.take(self.api_key_env).strip()
        if not key:
            raise ConfigError(
                f"{self.api_key_env} is not set: export {self.api_key_env}=<your API key> "
                "(and OPENAI_BASE_URL=<url> for another Responses-compatible endpoint)"
            )
        return key

    def sandbox_limits(self) -> dict[str, int]:
        """The per-command limits in the sandbox's own units (seconds, bytes, processes)."""
        return {LIMITS[k]: v << 20 if LIMITS[k] in _IN_MIB else v for k, v in self.limits.items()}

    def with_overrides(self, **overrides: Any) -> "Config":
        return _validated(replace(self, **{k: v for k, v in overrides.items() if v is not None}), "flags")


_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "base_url": (str,),
    "api_key_env": (str,),
    "reasoning_effort": (str,),
    "reasoning_summary": (str,),
    "store": (bool,),
    "timeout": (int, float),
    "max_retries": (int,),
    "max_retry_wait": (int, float),
    "extra_headers": (dict,),
    "extra_body": (dict,),
    "tool_choice": (str,),
    "parallel_tool_calls": (bool,),
    "max_turns": (int,),
    "sandbox": (str,),
    "approval": (str,),
    "network": (bool,),
    "command_timeout": (int, float),
    "background": (bool,),
    "auto_commit": (bool,),
    "deny_read": (list,),
    "limits": (dict,),
    "env_passthrough": (list,),
    "allowed_base_urls": (list,),
    "sandbox_backend": (str,),
    "context_window": (int,),
    "auto_compact_at": (int, float),
    "compaction": (str,),
    "shrink_tool_outputs": (bool,),
    "chain": (bool,),
    "verbosity": (str,),
}
LIMITS = {"cpu_seconds": "cpu", "file_size_mb": "fsize", "processes": "nproc", "memory_mb": "memory"}
BACKENDS = ("auto", "landlock", "bwrap")
# A cloned repository's own config (or one a command planted) must not loosen the sandbox, hand secrets
# to commands, or pick which secret becomes the API key. Its base_url is asked about (see load_config)
# and its limits can only tighten yours.
_LOOSENESS = {"read-only": 0, "workspace-write": 1, "full-access": 2}
PROJECT_FORBIDDEN: dict[str, Callable[[Any, dict[str, Any]], bool]] = {  # (value, the user's settings so far)
    "api_key_env": lambda v, user: True,
    "sandbox": lambda v, user: _LOOSENESS[v] > min(1, _LOOSENESS.get(user.get("sandbox"), 1)),
    "approval": lambda v, user: "approval" in user and v not in (user["approval"], "untrusted"),
    "network": lambda v, user: v is True,
    "auto_commit": lambda v, user: v is True,
    "store": lambda v, user: v is True,  # keeping your conversations is your decision
    "background": lambda v, user: v is True,
    "extra_headers": lambda v, user: True,  # an Authorization or OpenAI-Project header moves your session
    "extra_body": lambda v, user: True,  # to another account; a body field could too
    "env_passthrough": lambda v, user: True,
    "allowed_base_urls": lambda v, user: True,
    "sandbox_backend": lambda v, user: True,
}
assert set(_TYPES) == {f.name for f in fields(Config)}
_IN_MIB = ("fsize", "memory")  # limits set in MiB in the config, in bytes in the sandbox
_CEILINGS = ("max_turns", "timeout", "command_timeout", "max_retries", "max_retry_wait")  # a project may only lower these


def _default_limits() -> dict[str, int]:
    """The sandbox's own defaults in the config's units: a project's limits never exceed them."""
    from sandbox.policy import DEFAULT_LIMITS

    return {k: DEFAULT_LIMITS[s] >> 20 if s in _IN_MIB else DEFAULT_LIMITS[s] for k, s in LIMITS.items()}


def project_config_path(workspace: Path) -> Path:
    return workspace / ".coder" / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None


def _check_values(data: dict[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _TYPES:
            hint = difflib.get_close_matches(key, list(_TYPES), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"{source}: unknown setting {key!r}{suggestion}")
        kinds = _TYPES[key]
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join("number" if k is float else k.__name__ for k in kinds)
            raise ConfigError(f"{source}: {key} must be {names}, got {value!r}")
        if key == "extra_headers":
            value = {str(k): str(v) for k, v in value.items()}
        elif key in ("deny_read", "env_passthrough", "allowed_base_urls"):
            if not all(isinstance(v, str) and v for v in value):
                raise ConfigError(f"{source}: {key} must be a list of non-empty strings, got {value!r}")
            value = tuple(value)
        elif key == "limits":
            for name, n in value.items():
                if name not in LIMITS:
                    raise ConfigError(f"{source}: unknown limit {name!r} (choose from {', '.join(LIMITS)})")
                if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                    raise ConfigError(f"{source}: limits.{name} must be a positive whole number, got {n!r}")
        out[key] = value
    return out


def _validated(cfg: Config, source: str) -> Config:
    def bad(msg: str) -> ConfigError:
        return ConfigError(f"{source}: {msg}")

    if cfg.reasoning_effort is not None and cfg.reasoning_effort not in EFFORTS:
        raise bad(f"reasoning_effort must be one of {', '.join(EFFORTS)}, got {cfg.reasoning_effort!r}")
    if cfg.reasoning_summary is not None and cfg.reasoning_summary not in SUMMARIES:
        raise bad(f"reasoning_summary must be one of {', '.join(SUMMARIES)}, got {cfg.reasoning_summary!r}")
    if cfg.sandbox not in SANDBOX_MODES:
        raise bad(f"sandbox must be one of {', '.join(SANDBOX_MODES)}, got {cfg.sandbox!r}")
    if cfg.sandbox_backend not in BACKENDS:
        raise bad(f"sandbox_backend must be one of {', '.join(BACKENDS)}, got {cfg.sandbox_backend!r}")
    if cfg.approval not in (None, *APPROVALS):
        raise bad(f"approval must be one of {', '.join(APPROVALS)}, got {cfg.approval!r}")
    if cfg.max_turns < 1:
        raise bad(f"max_turns must be at least 1, got {cfg.max_turns}")
    if cfg.timeout <= 0 or cfg.command_timeout <= 0:
        raise bad("timeouts must be positive")
    if cfg.max_retry_wait < 0:
        raise bad(f"max_retry_wait must not be negative, got {cfg.max_retry_wait}")
    if not cfg.model.strip():
        raise bad("model must not be empty")
    if cfg.compaction not in COMPACTIONS:
        raise bad(f"compaction must be one of {', '.join(COMPACTIONS)}, got {cfg.compaction!r}")
    if not 0 <= cfg.auto_compact_at < 1:
        raise bad(f"auto_compact_at must be at least 0 and below 1 (0 switches it off), got {cfg.auto_compact_at}")
    if cfg.context_window is not None and cfg.context_window < 1000:
        raise bad(f"context_window is in tokens and must be at least 1000, got {cfg.context_window}")
    if cfg.verbosity is not None and cfg.verbosity not in VERBOSITIES:
        raise bad(f"verbosity must be one of {', '.join(VERBOSITIES)}, got {cfg.verbosity!r}")
    return cfg


def workspace_dir(cd: str | None) -> Path:
    """The project directory a command works in: -C DIR, else the current one (real path)."""
    workspace = Path(cd).expanduser() if cd else Path.cwd()
    if not workspace.is_dir():
        raise ConfigError(f"-C {cd}: not a directory")
    return Path(os.path.realpath(workspace))


def check_workspace(workspace: Path, sandbox: str, explicit: bool) -> None:
    """Refuse to make / or the home directory writable to the agent by accident (a shell left in ~)."""
    if sandbox != "workspace-write" or explicit:
        return
    home = Path(os.path.realpath(Path.home()))
    if workspace == Path("/") or workspace == home or workspace in home.parents:
        what = {home: "your home directory", Path("/"): "the root directory"}.get(workspace, "a folder above your home")
        raise ConfigError(
            f"not starting in {what} ({workspace}): all of it would be writable to the agent; "
            f"cd into a project, pass -C {workspace} to mean it, or use --sandbox read-only"
        )


class BaseURLNotAllowed(ConfigError):
    """A project's config wants the API key sent somewhere the user has not allowed."""

    def __init__(self, path: Path, url: str) -> None:
        self.path, self.url = path, url
        super().__init__(
            f"{path} sets base_url = {url}, which would receive your API key; to allow it, add it to "
            f"allowed_base_urls in {user_config_path()}, approve it once in an interactive coder session "
            "here, or pass --base-url"
        )


# Decides a project's base_url the user has not allowed yet: True uses it, False ignores it.
BaseURLDecision = Callable[[Path, str], bool]


def load_config(workspace: Path, *, decide_base_url: BaseURLDecision | None = None,
                **flags: Any) -> tuple[Config, list[str]]:
    """The effective settings for a workspace, and notices worth showing the user.

    A project's base_url is used only when the user allowed it (allowed_base_urls, or an
    earlier approval for this project, see coder.trust); otherwise `decide_base_url` is asked,
    and without one BaseURLNotAllowed is raised.
    """
    notices: list[str] = []
    layers: dict[str, Any] = {}
    from coder import credentials

    if credentials.get("OPENAI_BASE_URL"):  # sealed away if it carries a password
        layers["base_url"] = credentials.get("OPENAI_BASE_URL")
    if os.environ.get("CODER_MODEL"):
        layers["model"] = os.environ["CODER_MODEL"]
    project_url: tuple[Path, str] | None = None
    for path in (user_config_path(), project_config_path(workspace)):
        data = _check_values(_read_toml(path), str(path))
        if path.parent.name == ".coder":
            for key in ("sandbox", "approval"):
                if key in data:
                    _check_choice(key, data[key], path)
            for key, forbidden in PROJECT_FORBIDDEN.items():
                if key in data and forbidden(data[key], layers):
                    raise ConfigError(
                        f"{path}: {key} = {data[key]!r} is not allowed in a project's config (it may only make "
                        "your settings stricter); set it in your user config or with a flag"
                    )
            if "base_url" in data:
                project_url = (path, data.pop("base_url"))
            if "deny_read" in layers and "deny_read" in data:  # a project adds to the user's list
                data["deny_read"] = layers["deny_read"] + data["deny_read"]
            if "limits" in data:  # and may only tighten the limits
                ceiling = {**_default_limits(), **layers.get("limits", {})}
                data["limits"] = {k: min(v, ceiling[k]) for k, v in data["limits"].items()}
            for key in _CEILINGS:  # and spend no more time, turns or retries than you allow
                if key in data:
                    data[key] = min(data[key], layers.get(key, getattr(Config, key)))
        for key, value in data.items():  # tables merge key by key; everything else replaces
            layers[key] = {**layers[key], **value} if isinstance(value, dict) and key in layers else value
    if project_url and not flags.get("base_url") and project_url[1] != layers.get("base_url"):
        if _base_url_allowed(layers, *project_url, decide_base_url):
            layers["base_url"] = project_url[1]
            notices.append(f"{project_url[0]} sets base_url = {project_url[1]} (allowed)")
        else:
            notices.append(f"ignored base_url = {project_url[1]} from {project_url[0]} (not allowed)")
    cfg = _validated(Config(**layers), "configuration")
    return cfg.with_overrides(**flags), notices


def _check_choice(key: str, value: Any, path: Path) -> None:
    """A choice setting checked before it is compared (one clear line for a typo, not a KeyError)."""
    choices = SANDBOX_MODES if key == "sandbox" else APPROVALS
    if value not in choices:
        raise ConfigError(f"{path}: {key} must be one of {', '.join(choices)}, got {value!r}")


def _base_url_allowed(layers: dict[str, Any], path: Path, url: str, decide: BaseURLDecision | None) -> bool:
    from coder import trust

    if url in layers.get("allowed_base_urls", ()):
        return True
    remembered = trust.base_url_decision(path, url)
    if remembered is not None:
        return remembered
    if decide is None:
        raise BaseURLNotAllowed(path, url)
    return decide(path, url)
