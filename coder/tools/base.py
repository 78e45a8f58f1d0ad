"""What every tool shares: its description for the model, its context, its errors.

A tool is a plain function plus a strict JSON schema. Strict means every
parameter is listed in `required` and optional ones accept null, which is what
the Responses API wants for `strict: true`; `validate_args` still accepts calls
that leave optional keys out, because not every provider enforces strictness.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sandbox import backends
from sandbox.policy import Policy

# No tool may put more than this many characters into the model's context.
MAX_OUTPUT_CHARS = 40_000


def file_state(st: os.stat_result) -> tuple[int, ...]:
    """What tells one version of a file from the next. A command can set the mtime back (`touch -r`,
    `cp -p`) and keep the size, but not the ctime, and a file moved into place is another inode."""
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


class ToolError(Exception):
    """A failure the model should read and can act on (bad path, no match, ...)."""


@dataclass(frozen=True)
class Param:
    type: str  # "string", "integer" or "boolean"
    description: str
    optional: bool = False


class Recorder(Protocol):
    """Who keeps what the tools change, so a turn can be undone (a Session)."""

    def before_write(self, path: Path, content: bytes | None = None) -> None: ...
    def after_write(self, path: Path) -> None: ...
    def before_command(self) -> None: ...
    def after_command(self) -> None: ...


@dataclass
class ToolContext:
    """Everything a tool may use; built once per session by the agent."""

    policy: Policy
    env: Mapping[str, str] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    default_timeout: float = 120.0
    backend: backends.Backend | None = None  # None: chosen from the policy (and backend_choice)
    backend_choice: str = "auto"  # "auto", or the one backend to use ("landlock", "bwrap")
    recorder: Recorder | None = None  # told of each change a tool is about to make, and made (undo)
    registry: Path | None = None  # where placeholders in use are recorded (sandbox.placeholders)
    on_warning: Callable[[str], None] | None = None  # something the user must hear of (not only the model)
    # What the model has seen of each file (real path: file_state), so a write can tell that the file
    # changed on disk since (a command, the user) instead of overwriting that change unseen.
    seen: dict[str, tuple[int, ...]] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)  # what the file tools wrote in this run (real paths)

    def __post_init__(self) -> None:
        if self.backend is None:
            self.backend = backends.select(self.policy, self.backend_choice)

    @property
    def workspace(self) -> Path:
        return self.policy.workspace

    @property
    def placeholder_registry(self) -> Path:
        return self.registry or default_registry()

    def saw(self, path: Path, st: os.stat_result | None = None) -> None:
        """The model now knows `path` as it is on disk (it read it, or a tool of ours just wrote it); `st`:
        the file as the tool opened it, when the model saw that (a change made since still counts as new)."""
        if st is None:
            try:
                st = os.stat(path)
            except OSError:
                self.seen.pop(str(path), None)
                return
        self.seen[str(path)] = file_state(st)

    def changed_since_seen(self, path: Path) -> bool:
        """Whether `path` changed on disk since the model last saw it (False when it never saw it)."""
        known = self.seen.get(str(path))
        if known is None:
            return False
        try:
            st = os.stat(path)
        except OSError:
            return True
        return file_state(st) != known

    def warn(self, message: str) -> None:
        if self.on_warning is not None:
            self.on_warning(message)

    def before_write(self, path: Path, content: bytes | None = None) -> None:
        if self.recorder is not None:
            self.recorder.before_write(path, content)

    def after_write(self, path: Path) -> None:
        self.written.add(str(path))
        if self.recorder is not None:
            self.recorder.after_write(path)

    def before_command(self) -> None:
        if self.recorder is not None:
            self.recorder.before_command()

    def after_command(self) -> None:
        if self.recorder is not None:
            self.recorder.after_command()


def default_registry() -> Path:
    """Where placeholders are recorded when the caller names no place: a private folder of this user."""
    import tempfile

    path = Path(tempfile.gettempdir()) / f"coder-{os.getuid()}" / "placeholders"
    path.parent.mkdir(exist_ok=True, mode=0o700)
    path.mkdir(exist_ok=True, mode=0o700)
    owner = path.parent.lstat()
    if owner.st_uid != os.getuid() or not stat.S_ISDIR(owner.st_mode) or owner.st_mode & 0o077:
        raise OSError(f"{path.parent} is not a private folder of this user")
    return path


@dataclass(frozen=True)
class Output:
    """What a tool returns when there is more than text: a diff for front ends, content for the model
    beyond text (`content`: Responses input content parts, e.g. an `input_image`, sent after the text),
    and facts front ends and the core act on without reading the text (a command's exit code, whether
    the sandbox refused it, how many matches a search found)."""

    text: str
    diff: str = ""
    content: tuple[dict[str, Any], ...] = ()
    exit_code: int | None = None  # a command that exited on its own; None when killed or not a command
    timed_out: bool = False  # killed at its timeout
    interrupted: bool = False  # killed because the user stopped the run
    denied: bool = False  # the sandbox refused something it tried (a write, a network connection)
    denial: str = ""  # the output line that shows the refusal
    output_tail: str = ""  # the last lines of a command's own output, for a front end to show a failure
    counts: Mapping[str, int] = field(default_factory=dict)  # e.g. matches, files, lines, entries

    @property
    def failed(self) -> bool:
        """A command that did not succeed: a non-zero exit, a timeout, a stop, a refusal."""
        return self.timed_out or self.interrupted or self.denied or self.exit_code not in (None, 0)


MAX_DIFF_LINES = 400


def file_diff(shown: str, before: str | None, after: str) -> str:
    """A unified diff of one file's change, cut to MAX_DIFF_LINES (for people, not the model)."""
    import difflib

    old = before.splitlines(keepends=True) if before else []
    lines = list(difflib.unified_diff(old, after.splitlines(keepends=True),
                                      "/dev/null" if before is None else f"a/{shown}", f"b/{shown}", n=2))
    lines = [line if line.endswith("\n") else line + "\n" for line in lines]
    if len(lines) > MAX_DIFF_LINES:
        lines = lines[:MAX_DIFF_LINES] + [f"... ({len(lines) - MAX_DIFF_LINES} more diff lines)\n"]
    return "".join(lines)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    params: Mapping[str, Param]
    run: Callable[[ToolContext, dict[str, Any]], str]
    read_only: bool = True  # read-only tools may run concurrently
    key_arg: str = "path"  # the argument a front end shows next to the tool name

    def schema(self) -> dict[str, Any]:
        """The function tool definition sent to the model."""
        props: dict[str, Any] = {}
        for name, p in self.params.items():
            props[name] = {
                "type": [p.type, "null"] if p.optional else p.type,
                "description": p.description,
            }
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": props,
                "required": list(self.params),
                "additionalProperties": False,
            },
        }

    def validate_args(self, args: Any) -> dict[str, Any]:
        """Check decoded arguments; fill absent optional ones with None."""
        if not isinstance(args, dict):
            raise ToolError(f"arguments must be a JSON object, got {type(args).__name__}")
        unknown = sorted(set(args) - set(self.params))
        if unknown:
            raise ToolError(
                f"unknown argument(s) {', '.join(unknown)}; {self.name} takes: {', '.join(self.params)}"
            )
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            value = args.get(name)
            if value is None:
                if not p.optional:
                    raise ToolError(f"missing required argument {name!r} ({p.type})")
                out[name] = None
                continue
            out[name] = _coerce(name, p.type, value)
        return out


def _coerce(name: str, kind: str, value: Any) -> Any:
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "integer" and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    raise ToolError(f"argument {name!r} must be {kind}, got {value!r}")


def truncate_middle(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Keep the head and tail of an over-long text, with a note of what was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    omitted = len(text) - 2 * half
    head, tail = text[:half], text[-half:]
    return f"{head}\n[... {omitted} characters omitted ...]\n{tail}"
