"""Path confinement for the file tools.

Every path the model names goes through `resolve_read` or `resolve_write`:
relative paths are taken against the workspace, symlinks are resolved, and the
*real* location is checked against the policy. Writes then go through a temp
file in the real parent directory and an atomic rename, so a reader never sees
a half-written file and a symlink is never written through.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sandbox.policy import Policy


class PathDenied(Exception):
    """The policy refuses this path; the message is meant for the model."""


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _absolute(policy: Policy, path: str) -> Path:
    if not isinstance(path, str) or not path:
        raise PathDenied("path must be a non-empty string")
    if "\x00" in path:
        raise PathDenied("path contains a NUL byte")
    if path == "~" or path.startswith("~/"):
        path = str(Path.home()) + path[1:]
    p = Path(path)
    return p if p.is_absolute() else policy.workspace / p


def resolve_read(policy: Policy, path: str) -> Path:
    """The real path to read, or PathDenied if the deny list covers it."""
    real = Path(os.path.realpath(_absolute(policy, path)))
    for denied in policy.deny_read:
        if _within(real, denied):
            raise PathDenied(f"reading {path} is not allowed (protected location {denied})")
    return real


def resolve_write(policy: Policy, path: str) -> Path:
    """The real path to write, or PathDenied if the policy refuses it."""
    real = resolve_read(policy, path)
    if policy.can_write_anywhere:
        return real
    if not policy.writable_roots:
        raise PathDenied(f"cannot write {path}: the sandbox is read-only")
    root = next((r for r in policy.writable_roots if _within(real, r)), None)
    if root is None:
        roots = ", ".join(str(r) for r in policy.writable_roots)
        raise PathDenied(f"cannot write {path}: outside the writable roots ({roots})")
    for part in real.relative_to(root).parts:
        if part in policy.protected_names:
            raise PathDenied(f"cannot write {path}: {part} is protected")
    return real


def display(policy: Policy, path: Path) -> str:
    """A path as the model should see it: relative inside the workspace."""
    try:
        rel = path.relative_to(policy.workspace)
    except ValueError:
        return str(path)
    return str(rel) if rel.parts else "."


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write through a temp file in the same directory and rename over `path`.

    Keeps `mode` (an existing file's permission bits) when given; otherwise the
    new file gets the usual 0o666 less the umask.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".coder-tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
