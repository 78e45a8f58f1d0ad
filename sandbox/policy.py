"""Sandbox policy as data: what the model's actions may read, write and reach.

The policy is decided once per session and handed to the file tools and the
command runner; nothing else in `coder` makes path or process decisions.
"""

from __future__ import annotations

import os
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
    ) -> "Policy":
        workspace = Path(os.path.realpath(workspace))
        roots: tuple[Path, ...] = ()
        if mode is Mode.WORKSPACE_WRITE:
            roots = (workspace,) + ((Path(os.path.realpath(temp_dir)),) if temp_dir else ())
        if deny_read is None:
            deny_read = default_deny_read(Path.home())
        real_deny = tuple(Path(os.path.realpath(p)) for p in deny_read)
        home = Path(os.path.realpath(Path.home()))
        in_reach = any(home == r or r in home.parents for r in roots)
        return cls(
            mode=mode,
            workspace=workspace,
            writable_roots=roots,
            deny_read=real_deny,
            protected_paths=tuple(home / name for name in HOME_NAMES) if in_reach else (),
            network=network or mode is Mode.FULL_ACCESS,
            temp_dir=temp_dir,
            limits={**DEFAULT_LIMITS, **(limits or {})},
        )

    @property
    def can_write_anywhere(self) -> bool:
        return self.mode is Mode.FULL_ACCESS


def make_private_temp_dir() -> Path:
    """A per-session scratch directory, the only writable place outside the workspace."""
    return Path(tempfile.mkdtemp(prefix="coder-tmp-"))
