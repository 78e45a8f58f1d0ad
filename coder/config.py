"""Settings, layered: defaults < environment < user config < project config < -c KEY=VALUE < flags.

User config: `$XDG_CONFIG_HOME/coder/config.toml` (`~/.config/coder/config.toml`).
Project config: `.coder/config.toml` in the workspace. Every mistake is a
`ConfigError` with one line naming where the value came from (the file, the
variable, the -c item or the flag) and the setting; `Config.sources` keeps
where each setting came from, for `coder config`.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
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
COMPLETION_WINDOWS = ("soonest", "2h", "8h")


class ConfigError(Exception):
    """A configuration mistake: reported in one line, never as a traceback."""


@dataclass(frozen=True)
class Source:
    """Where a setting's value came from: shown by `coder config`, and for errors to name."""

    kind: str  # default, env, user, project, -c, flag
    where: str = ""  # the variable, the file, the -c item or the flag

    def __str__(self) -> str:
        labels = {"default": "default", "env": "environment", "user": "user config", "project": "project config",
                  "-c": "-c", "flag": "flag"}
        return " ".join(filter(None, (labels.get(self.kind, self.kind), self.where)))


DEFAULT_SOURCE = Source("default")


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
    max_tokens: int | None = None  # total tokens a run may spend; None: no limit
    max_cost: float | None = None  # USD a run may spend (the provider's figure, else the price table)
    completion_window: str | None = None  # background mode's background_options.completion_window
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
    prices: dict[str, dict[str, float]] = field(default_factory=dict)  # [prices."MODEL"], USD per 1M tokens
    notify: str = "bell"  # when a long REPL turn ends: bell, osc9 (a desktop notification), off
    notify_after: float = 30.0  # seconds a turn must have taken to be notified of
    # Where each setting came from (keys as in `coder config`: "model", "limits.memory_mb"); not a setting.
    sources: dict[str, Source] = field(default_factory=dict, compare=False, repr=False)

    @property
    def zdr(self) -> bool:
        """Codex models always run under Zero Data Retention, whatever the settings say."""
        return self.zdr_forced or not self.store

    @property
    def zdr_forced(self) -> bool:
        """Whether ZDR is the model's (codex models), not a setting that store = true could change."""
        return "codex" in self.model.lower()

    def background_refusal(self) -> str:
        """Why background mode cannot run with these settings (it needs the provider to store responses)."""
        if self.zdr_forced:
            return (f"background mode needs stored responses, which Zero Data Retention models do not allow: "
                    f"{self.model} is a codex model and always runs with store = false (choose another model with -m)")
        return "background mode needs stored responses: set store = true, or pass --background, which turns it on"

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

    def source(self, key: str) -> Source:
        """Where a setting (or a table's entry, "limits.memory_mb") came from."""
        return self.sources.get(key) or self.sources.get(key.split(".", 1)[0], DEFAULT_SOURCE)

    def with_overrides(self, **overrides: Any) -> "Config":
        """The settings with flags' values (None: not given), each checked and named by its flag."""
        given = {k: _check_setting(k, v, _flag(k)) for k, v in overrides.items() if v is not None}
        return replace(self, **given, sources={**self.sources, **{k: Source("flag", _flag(k)) for k in given}})


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
    "max_tokens": (int,),
    "max_cost": (int, float),
    "completion_window": (str,),
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
    "prices": (dict,),
    "notify": (str,),
    "notify_after": (int, float),
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
    "completion_window": lambda v, user: True,  # it comes with background mode, which is yours to choose
}
assert set(_TYPES) | {"sources"} == {f.name for f in fields(Config)}
_CHOICES: dict[str, tuple[str, ...]] = {
    "reasoning_effort": EFFORTS, "reasoning_summary": SUMMARIES, "sandbox": SANDBOX_MODES, "approval": APPROVALS,
    "compaction": COMPACTIONS, "verbosity": VERBOSITIES, "sandbox_backend": BACKENDS,
    "notify": ("bell", "osc9", "off"),
    "completion_window": COMPLETION_WINDOWS,
}
# Bounds on numbers: (the check, what it says when it fails).
_BOUNDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "max_turns": (lambda v: v >= 1, "must be at least 1"),
    "max_tokens": (lambda v: v >= 1, "must be at least 1"),
    "max_cost": (lambda v: v > 0, "must be a positive number of US dollars"),
    "max_retries": (lambda v: v >= 0, "must not be negative"),
    "timeout": (lambda v: v > 0, "must be a positive number of seconds"),
    "command_timeout": (lambda v: v > 0, "must be a positive number of seconds"),
    "max_retry_wait": (lambda v: v >= 0, "must not be negative"),
    "auto_compact_at": (lambda v: 0 <= v < 1, "must be at least 0 and below 1 (0 switches it off)"),
    "notify_after": (lambda v: v >= 0, "must not be negative"),
    "context_window": (lambda v: v >= 1000, "is in tokens and must be at least 1000"),
    "model": (lambda v: bool(v.strip()), "must not be empty"),
}
_IN_MIB = ("fsize", "memory")  # limits set in MiB in the config, in bytes in the sandbox
_CEILINGS = ("max_turns", "timeout", "command_timeout", "max_retries", "max_retry_wait")  # a project may only lower these
_SPEND = ("max_tokens", "max_cost")  # a project may set these, but never above yours


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
    """A file's (or a -c's) settings, each checked: a mistake is one line naming the source and the key."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _TYPES:
            hint = difflib.get_close_matches(key, list(_TYPES), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"{source}: unknown setting {key!r}{suggestion}")
        out[key] = _check_setting(key, value, source)
    return out


def _check_setting(key: str, value: Any, source: str) -> Any:
    """One setting's value, checked on its own and normalised (lists become tuples).

    Every check lives here, so whichever layer a value comes from (a file, the environment, -c,
    a flag), its mistake names that source: no check waits for the merged settings.
    """
    def bad(msg: str) -> ConfigError:
        return ConfigError(f"{source}: {key} {msg}")

    kinds = _TYPES[key]
    if isinstance(value, tuple) and list in kinds:
        value = list(value)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = {int: "a whole number", float: "a number", str: "a string", bool: "true or false",
                 list: "a list", dict: "a table"}
        kind = "a number" if float in kinds else names[kinds[0]]
        raise bad(f"must be {kind}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise bad(f"must be a finite number, got {value!r}")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise bad(f"must be one of {', '.join(_CHOICES[key])}, got {value!r}")
    if key in _BOUNDS and not _BOUNDS[key][0](value):
        raise bad(f"{_BOUNDS[key][1]}, got {value!r}")
    if key == "extra_headers":
        return {str(k): str(v) for k, v in value.items()}
    if key in ("deny_read", "env_passthrough", "allowed_base_urls"):
        if not all(isinstance(v, str) and v for v in value):
            raise bad(f"must be a list of non-empty strings, got {value!r}")
        return tuple(value)
    if key == "limits":
        for name, n in value.items():
            if name not in LIMITS:
                raise ConfigError(f"{source}: unknown limit {name!r} (choose from {', '.join(LIMITS)})")
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ConfigError(f"{source}: limits.{name} must be a positive whole number, got {n!r}")
    if key == "prices":
        from coder.pricing import check_prices

        try:
            return check_prices(value, source)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return value


def _flag(key: str) -> str:
    """The flag that sets a setting (--max-turns for max_turns), to name it in errors and in `coder config`."""
    return "--" + key.replace("_", "-")


# `-c KEY=VALUE` items for this process, set once by the command line (coder.cli) so that every front
# end's load_config applies them without each passing them along: (the item as typed, its settings).
_cli_overrides: list[tuple[str, dict[str, Any]]] = []


def parse_override(item: str) -> dict[str, Any]:
    """`-c KEY=VALUE` as the TOML line `KEY = VALUE`, checked; a dotted KEY reaches into a table
    (limits.memory_mb). A VALUE that is not TOML is taken as a string: -c model=gpt-5.4 needs no quotes."""
    source = f"-c {item}"
    key, eq, text = item.partition("=")
    key, text = key.strip(), text.strip()
    if not eq or not key:
        raise ConfigError(f"{source}: expected KEY=VALUE, e.g. -c model=gpt-5.4 or -c limits.memory_mb=4096")
    try:
        doc: Any = tomllib.loads(f"{key} = 0") if "\n" not in key and "\r" not in key else None
    except tomllib.TOMLDecodeError:
        doc = None
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: {key!r} is not a setting name (quote a part with dots in it: "
                          "prices.\"gpt-5.4\".input=2)")
    path: list[str] = []
    while isinstance(doc, dict):  # a key makes exactly one table per dot
        (name, doc), = doc.items()
        path.append(name)
    try:
        parsed = tomllib.loads(f"v = {text}")
        value: Any = parsed["v"] if list(parsed) == ["v"] else text
    except tomllib.TOMLDecodeError:
        value = text
    for name in reversed(path[1:]):
        value = {name: value}
    return _check_values({path[0]: value}, source)


def use_overrides(items: list[str]) -> None:
    """Check the command line's -c items now (one line for a mistake, before anything runs) and keep
    them for load_config."""
    _cli_overrides[:] = [(item, parse_override(item)) for item in items]


def _merge(layers: dict[str, Any], sources: dict[str, Source], data: dict[str, Any], source: Source) -> None:
    """One layer over the ones below: tables merge entry by entry (prices model by model), the rest replaces."""
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(layers.get(key), dict):
            below = layers[key]
            if key == "prices":
                value = {m: {**below.get(m, {}), **t} for m, t in value.items()}
            layers[key] = {**below, **value}
        else:
            layers[key] = value
            for entry in [k for k in sources if k.startswith(key + ".")]:
                del sources[entry]
        sources[key] = source
        if isinstance(value, dict):
            for entry in value:
                sources[f"{key}.{_toml_key(entry)}"] = source


def _toml_key(name: str) -> str:
    """A table entry's name as TOML writes it: bare when it can be, else quoted."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


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
        from coder.redact import scrub_url

        self.path, self.url = path, url
        super().__init__(
            f"{path} sets base_url = {scrub_url(url)}, which would receive your API key; to allow it, add it to "
            f"allowed_base_urls in {user_config_path()}, approve it once in an interactive coder session "
            "here, or pass --base-url"
        )


# Decides a project's base_url the user has not allowed yet: True uses it, False ignores it.
BaseURLDecision = Callable[[Path, str], bool]


def load_config(workspace: Path, *, decide_base_url: BaseURLDecision | None = None,
                overrides: list[str] | None = None, settle_background: bool = True,
                **flags: Any) -> tuple[Config, list[str]]:
    """The effective settings for a workspace, and notices worth showing the user.

    Layers, each over the ones before: defaults, environment, user config, project config,
    `overrides` (-c items; None: the command line's, see use_overrides), flags. `Config.sources`
    says which layer each setting came from.

    A project's base_url is used only when the user allowed it (allowed_base_urls, or an
    earlier approval for this project, see coder.trust); otherwise `decide_base_url` is asked,
    and without one BaseURLNotAllowed is raised.

    `settle_background=False` leaves background mode unjudged (see for_background), for a caller that
    learns the model only later (a resumed session runs on its own model).
    """
    notices: list[str] = []
    layers: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    from coder import credentials

    for variable, key in (("OPENAI_BASE_URL", "base_url"), ("CODER_MODEL", "model")):
        value = credentials.get(variable)  # sealed away if it carries a password
        if value:
            _merge(layers, sources, _check_values({key: value}, f"${variable}"), Source("env", variable))
    project_url: tuple[Path, str] | None = None
    for path, kind in ((user_config_path(), "user"), (project_config_path(workspace), "project")):
        data = _check_values(_read_toml(path), str(path))
        if kind == "project":
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
            for key in _SPEND:
                if key in data and layers.get(key) is not None:
                    data[key] = min(data[key], layers[key])
        _merge(layers, sources, data, Source(kind, str(path)))
    given = _cli_overrides if overrides is None else [(item, parse_override(item)) for item in overrides]
    for item, data in given:  # what you typed is yours: no project rule applies
        _merge(layers, sources, data, Source("-c", item))
    url_given = flags.get("base_url") or any("base_url" in data for _, data in given)
    if project_url and not url_given and project_url[1] != layers.get("base_url"):
        from coder.redact import scrub_url

        shown = scrub_url(project_url[1])
        if _base_url_allowed(layers, *project_url, decide_base_url):
            _merge(layers, sources, {"base_url": project_url[1]}, Source("project", str(project_url[0])))
            notices.append(f"{project_url[0]} sets base_url = {shown} (allowed)")
        else:
            notices.append(f"ignored base_url = {shown} from {project_url[0]} (not allowed)")
    cfg = Config(**layers, sources=sources).with_overrides(**flags)
    return (for_background(cfg, notices) if settle_background else cfg), notices


def for_background(cfg: Config, notices: list[str]) -> Config:
    """Background mode needs stored responses: turned on for this run where the model allows it, said in a
    notice; a ConfigError where it cannot (a codex model). Judge it on the model the run will use."""
    if not cfg.background or not cfg.zdr:
        return cfg
    if cfg.zdr_forced:
        raise ConfigError(cfg.background_refusal())
    notices.append("background mode: store = true for this run (the provider keeps the responses, "
                   "as background mode needs)")
    return replace(cfg, store=True, sources={**cfg.sources, "store": cfg.source("background")})


def base_url_origin(cfg: Config) -> str:
    """Where the endpoint in use was set, for error messages: "base_url from $OPENAI_BASE_URL"."""
    if not cfg.base_url:
        return "the default endpoint"
    src = cfg.source("base_url")
    where = {"env": f"${src.where}", "flag": src.where or "--base-url", "-c": f"-c {src.where}",
             "default": ""}.get(src.kind, src.where)
    return f"base_url from {where}" if where else "base_url as configured"


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
