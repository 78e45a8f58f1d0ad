"""Sandbox policy as data: what the model's actions may read, write and reach.

The policy is decided once per session and handed to the file tools and the
command runner; nothing else in `coder` makes path or process decisions.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


class Mode(str, Enum):
    READ_ONLY = "read-only"
    WORKSPACE_WRITE = "workspace-write"
    FULL_ACCESS = "full-access"

    @classmethod
    def parse(cls, value: str) -> "Mode":
        for mode in cls:
            if mode.value == value:
                return mode
        choices = ", ".join(m.value for m in cls)
        raise ValueError(f"unknown sandbox mode {value!r} (choose one of: {choices})")


# Names that stay read-only inside a writable root, and that a command may not create there:
# version-control internals (their hooks and config run code when the user next runs git), coder's
# own project config, and direnv's `.envrc` (run on entering the folder).
PROTECTED_NAMES: tuple[str, ...] = (".git", ".hg", ".svn", ".coder", ".envrc")
# What in a home folder runs code or configures the user's tools: shell start-up and log-out files,
# git's settings, and the folders of per-user settings, programs and services (~/.config, ~/.local).
# Protected when the home folder lies in a writable root (coder takes it, or a folder above it, only
# when asked to).
HOME_NAMES: tuple[str, ...] = (".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc",
                               ".zprofile", ".zshenv", ".zlogin", ".zlogout", ".xprofile", ".pam_environment",
                               ".gitconfig", ".config", ".local")
DEFAULT_LIMITS = {"cpu": 600, "fsize": 4 << 30, "nproc": 4096, "memory": 8 << 30}


def default_deny_read(home: Path) -> tuple[Path, ...]:
    """Credential stores the model has no business reading (coder adds its own directories)."""
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return (
        home / ".ssh",
        home / ".aws",
        home / ".gnupg",
        home / ".netrc",
        home / ".git-credentials",
        home / ".docker" / "config.json",
        home / ".pypirc",
        config_home / "gcloud",
        config_home / "gh" / "hosts.yml",
    )


@dataclass(frozen=True)
class Policy:
    mode: Mode
    workspace: Path
    writable_roots: tuple[Path, ...]
    deny_read: tuple[Path, ...] = ()
    protected_names: tuple[str, ...] = PROTECTED_NAMES
    protected_paths: tuple[Path, ...] = ()  # more read-only places inside the writable roots, by full path
    network: bool = False
    temp_dir: Path | None = None
    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    # A file scope (`coder batch --scope file`): the only workspace files that may be written. They are
    # also in writable_roots, as file roots; the workspace directory itself is then not writable.
    writable_files: tuple[Path, ...] = ()

    @classmethod
    def for_workspace(
        cls,
        workspace: Path,
        mode: Mode = Mode.WORKSPACE_WRITE,
        *,
        network: bool = False,
        temp_dir: Path | None = None,
        deny_read: tuple[Path, ...] | None = None,
        limits: dict[str, int] | None = None,
        writable_files: tuple[Path, ...] | None = None,
    ) -> "Policy":
        """The policy for `workspace`.

        `writable_files` (a file scope): under workspace-write, the writable roots are exactly these
        files (their real paths) plus the private temp directory, and the workspace directory itself
        is read-only. Relative paths are taken against the workspace. Each must be an existing regular
        file whose real path lies inside the workspace, and not a protected or denied place; otherwise
        ValueError, with a one-line message. Other modes check the files the same way but keep their
        own writable roots (none, or everywhere).
        """
        workspace = Path(os.path.realpath(workspace))
        if deny_read is None:
            deny_read = default_deny_read(Path.home())
        real_deny = tuple(Path(os.path.realpath(p)) for p in deny_read)
        home = Path(os.path.realpath(Path.home()))
        home_names = tuple(home / name for name in HOME_NAMES)
        files: tuple[Path, ...] = ()
        if writable_files is not None:
            files = _scope_files(workspace, writable_files, real_deny, home_names)
        roots: tuple[Path, ...] = ()
        temp = (Path(os.path.realpath(temp_dir)),) if temp_dir else ()
        if mode is Mode.WORKSPACE_WRITE:
            roots = (files if writable_files is not None else (workspace,)) + temp
        in_reach = any(home == r or r in home.parents for r in roots if r not in files)
        return cls(
            mode=mode,
            workspace=workspace,
            writable_roots=roots,
            deny_read=real_deny,
            protected_paths=home_names if in_reach else (),
            network=network or mode is Mode.FULL_ACCESS,
            temp_dir=temp_dir,
            limits={**DEFAULT_LIMITS, **(limits or {})},
            writable_files=files if mode is Mode.WORKSPACE_WRITE else (),
        )

    @property
    def can_write_anywhere(self) -> bool:
        return self.mode is Mode.FULL_ACCESS

    @property
    def directory_roots(self) -> tuple[Path, ...]:
        """The writable roots that are directories (everything under them may be written): all of them
        but the file roots of a file scope. Protected names apply under these only."""
        return tuple(r for r in self.writable_roots if r not in self.writable_files)


def _scope_files(workspace: Path, paths: tuple[Path, ...], deny: tuple[Path, ...],
                 protected: tuple[Path, ...]) -> tuple[Path, ...]:
    """The real paths of a file scope's targets, each checked (ValueError with one line when one is refused)."""
    if not paths:
        raise ValueError("the file scope names no file to write")
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        shown = str(given)
        real = Path(os.path.realpath(path if path.is_absolute() else workspace / path))
        if real != workspace and workspace not in real.parents:
            via = f" (it resolves to {real})" if real != Path(os.path.abspath(workspace / path)) else ""
            raise ValueError(f"scope target {shown} is outside the workspace {workspace}{via}")
        try:
            st = real.stat()
        except FileNotFoundError:
            raise ValueError(f"scope target {shown} does not exist") from None
        except OSError as e:
            raise ValueError(f"scope target {shown} cannot be used: {e.strerror}") from None
        if stat.S_ISDIR(st.st_mode):
            raise ValueError(f"scope target {shown} is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"scope target {shown} is not a regular file")
        parts = real.relative_to(workspace).parts
        name = next((part for part in parts if part in PROTECTED_NAMES), None)
        if name is not None:
            raise ValueError(f"scope target {shown} is protected ({name} stays read-only)")
        for place in (*deny, *protected):
            if real == place or place in real.parents:
                raise ValueError(f"scope target {shown} is protected ({place})")
        if real not in found:
            found.append(real)
    return tuple(found)


def make_private_temp_dir() -> Path:
    """A per-session scratch directory, the only writable place outside the workspace."""
    return Path(tempfile.mkdtemp(prefix="coder-tmp-"))
