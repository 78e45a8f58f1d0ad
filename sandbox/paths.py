"""Path confinement for the file tools.

Every path the model names goes through `resolve_read` or `resolve_write`:
relative paths are taken against the workspace, symlinks are resolved, and the
*real* location is checked against the policy. The check and the use are then
tied together: `open_file` and `atomic_write` walk the real path again one
component at a time with O_NOFOLLOW, so a symlink swapped in after the check
makes the operation fail instead of leading it elsewhere. Writes go through a
temp file in that same directory and an atomic rename, so a reader never sees
a half-written file and a symlink is never written through.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import time
from pathlib import Path

from sandbox.policy import Policy


class PathDenied(Exception):
    """The policy refuses this path; the message is meant for the model."""


def within(path: Path, root: Path) -> bool:
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


# Kernel interfaces, not files: /proc/self/environ would hand over coder's own API key.
KERNEL_TREES = (Path("/proc"), Path("/sys"))


def denied_by(policy: Policy, real: Path | str) -> Path | None:
    """The deny-list entry (or kernel tree) covering a real path, else None.

    Lexical: `real` must already be free of symlinks (a resolved path, or one
    found by a walk that does not follow links, as rg's is).
    """
    text = os.fspath(real)
    for root in (*KERNEL_TREES, *policy.deny_read):
        r = os.fspath(root)
        if text == r or text.startswith(r.rstrip("/") + "/"):
            return root
    return None


def resolve_read(policy: Policy, path: str) -> Path:
    """The real path to read, or PathDenied if the deny list covers it."""
    real = Path(os.path.realpath(_absolute(policy, path)))
    denied = denied_by(policy, real)
    if denied in KERNEL_TREES:
        raise PathDenied(f"{path} is under {denied}, a kernel interface the file tools do not open")
    if denied is not None:
        raise PathDenied(f"reading {path} is not allowed (protected location {denied})")
    return real


def resolve_write(policy: Policy, path: str) -> Path:
    """The real path to write, or PathDenied if the policy refuses it.

    Under a file scope (`policy.writable_files`) a file root admits that one path only: the target
    itself, never a sibling or a path below it; anything else outside the temp directory is refused
    with a line naming the targets.
    """
    real = resolve_read(policy, path)
    if policy.can_write_anywhere:
        return real
    if not policy.writable_roots:
        raise PathDenied(f"cannot write {path}: the sandbox is read-only")
    root = next((r for r in policy.writable_roots
                 if (real == r if r in policy.writable_files else within(real, r))), None)
    if root is None and policy.writable_files:
        targets = ", ".join(display(policy, f) for f in policy.writable_files)
        raise PathDenied(f"cannot write {path}: this session may only write {targets} (batch --scope file)")
    if root is None:
        roots = ", ".join(str(r) for r in policy.writable_roots)
        raise PathDenied(f"cannot write {path}: outside the writable roots ({roots})")
    for part in real.relative_to(root).parts:
        if part in policy.protected_names:
            raise PathDenied(f"cannot write {path}: {part} is protected")
    for protected in policy.protected_paths:
        if within(real, protected):
            raise PathDenied(f"cannot write {path}: {protected} is protected")
    return real


def display(policy: Policy, path: Path) -> str:
    """A path as the model should see it: relative inside the workspace."""
    try:
        rel = path.relative_to(policy.workspace)
    except ValueError:
        return str(path)
    return str(rel) if rel.parts else "."


_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _walk(root: Path, parts: tuple[str, ...], create: bool = False) -> int:
    """An O_PATH descriptor for root/parts, refusing any symlink on the way (mkdir missing ones if `create`)."""
    fd = os.open(root, _DIR)
    try:
        for part in parts:
            try:
                nxt = os.open(part, _DIR, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, dir_fd=fd)
                except FileExistsError:
                    pass
                nxt = os.open(part, _DIR, dir_fd=fd)
            except NotADirectoryError:
                if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise PathDenied(
                        f"{root.joinpath(*parts)} changed while being used: {part} became a symlink"
                    ) from None
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", part) from None
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def _parent_fd(policy: Policy, path: Path, create: bool) -> int:
    """The directory holding `path`, reached from its writable root (or /) without following links.

    A file root (a file scope's target) holds no directory, so its folder is reached from / like any
    path outside the roots: every component of its real path is walked again with O_NOFOLLOW, and
    atomic_write's temp file and rename happen there, in coder's own (unsandboxed) process.
    """
    root = next((r for r in policy.directory_roots if within(path.parent, r)), Path("/"))
    return _walk(root, path.parent.relative_to(root).parts, create)


class NotRegularFile(OSError):
    """The path is a directory, device, pipe or socket: never opened (opening a device can act)."""

    def __init__(self, path: Path, mode: int) -> None:
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (device, pipe or socket)"
        super().__init__(errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL, kind, str(path))
        self.mode = mode


def open_file(policy: Policy, path: Path, flags: int = os.O_RDONLY) -> int:
    """Open a checked real path that must be a regular file.

    The type is checked before the open (a device or FIFO is never opened: that alone can have
    effects), the open itself refuses symlinks and never blocks, and the opened file must be the
    one that was checked.
    """
    parent = _parent_fd(policy, path, create=False)
    try:
        try:
            before = os.stat(path.name, dir_fd=parent, follow_symlinks=False)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise PathDenied(f"{path} became a symlink after it was checked; not opened") from None
            raise
        if stat.S_ISLNK(before.st_mode):
            raise PathDenied(f"{path} became a symlink after it was checked; not opened")
        if not stat.S_ISREG(before.st_mode):
            raise NotRegularFile(path, before.st_mode)
        try:
            fd = os.open(path.name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise PathDenied(f"{path} became a symlink after it was checked; not opened") from None
            raise
        after = os.fstat(fd)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISREG(after.st_mode):
            os.close(fd)
            raise PathDenied(f"{path} was replaced while being opened; not opened")
        os.set_blocking(fd, True)
        return fd
    finally:
        os.close(parent)


def read_bytes(policy: Policy, path: Path) -> bytes:
    with os.fdopen(open_file(policy, path), "rb") as f:
        return f.read()


def atomic_write(policy: Policy, path: Path, data: bytes, mode: int | None = None) -> None:
    """Write through a temp file in the same directory and rename over `path`.

    `path` is a real path from `resolve_write`; the directory is reached again
    without following symlinks. Keeps `mode` (an existing file's permission
    bits) when given; otherwise the new file gets 0o666 less the umask.
    """
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    parent = _parent_fd(policy, path, create=True)
    tmp = f".{path.name}.{secrets.token_hex(4)}.coder-tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fchmod(f.fileno(), mode)
                os.fsync(f.fileno())
            os.rename(tmp, path.name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=parent)
            except FileNotFoundError:
                pass
            raise
    finally:
        os.close(parent)


def atomic_symlink(policy: Policy, path: Path, target: str) -> None:
    """Make `path` a symlink to `target`, replacing what is there in one rename (never through a link)."""
    parent = _parent_fd(policy, path, create=True)
    tmp = f".{path.name}.{secrets.token_hex(4)}.coder-tmp"
    try:
        os.symlink(target, tmp, dir_fd=parent)
        try:
            os.rename(tmp, path.name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            os.unlink(tmp, dir_fd=parent)
            raise
    finally:
        os.close(parent)


def move_out(policy: Policy, path: Path, dest: Path) -> bool:
    """Move a file (reached without following links) to `dest`, outside any sandbox's reach; a copy
    then a removal where the two are on different file systems. False if nothing was there."""
    try:
        parent = _parent_fd(policy, path, create=False)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        try:
            os.stat(path.name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return False
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.rename(path.name, dest, src_dir_fd=parent)
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
            fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            with os.fdopen(fd, "rb") as src, open(dest, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            os.unlink(path.name, dir_fd=parent)
        return True
    finally:
        os.close(parent)


def remove(policy: Policy, path: Path, directory: bool = False) -> bool:
    """Remove a file or link (or an empty folder), reached without following links; False if it was not there."""
    try:
        parent = _parent_fd(policy, path, create=False)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        (os.rmdir if directory else os.unlink)(path.name, dir_fd=parent)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(parent)


# What atomic_write (and atomic_symlink) name their temp files: `.NAME.<8 hex>.coder-tmp`.
_TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{8}\.coder-tmp")
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules"})  # nothing of the agent's is written there
_LISTABLE = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_stale_temp_files(root: Path, *, min_age: float = 60.0, max_entries: int = 50_000,
                            max_seconds: float = 0.5, max_depth: int = 64) -> list[Path]:
    """Remove the temp files a killed coder left under `root` (kill -9 between write and rename); the paths removed.

    Only names of atomic_write's exact pattern, only files and symlinks (never a folder), and only
    those older than `min_age` seconds, since another coder in the same tree may be writing one right
    now. Every folder is opened relative to its parent without following links, and entries are
    removed by name relative to that open folder, so a symlink swapped in cannot lead anywhere else.
    The walk is bounded (entries, seconds, depth): it runs at start-up, and a leftover it misses
    costs nothing but a stray file.
    """
    removed: list[Path] = []
    budget = {"entries": max_entries, "deadline": time.monotonic() + max_seconds}

    def walk(fd: int, folder: Path, depth: int) -> None:
        with os.scandir(fd) as entries:
            for entry in entries:
                budget["entries"] -= 1
                if budget["entries"] < 0 or time.monotonic() > budget["deadline"]:
                    return
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode) and entry.name not in _SKIP_DIRS and depth < max_depth:
                    try:
                        child = os.open(entry.name, _LISTABLE, dir_fd=fd)
                    except OSError:
                        continue  # gone, unreadable, or swapped for a symlink
                    try:
                        walk(child, folder / entry.name, depth + 1)
                    except OSError:
                        pass  # a folder that vanished or cannot be listed: the others still count
                    finally:
                        os.close(child)
                elif ((stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)) and _TEMP_NAME.fullmatch(entry.name)
                      and time.time() - st.st_mtime > min_age):
                    try:
                        os.unlink(entry.name, dir_fd=fd)  # a link is removed itself, never what it points to
                        removed.append(folder / entry.name)
                    except OSError:
                        pass

    try:
        top = os.open(root, _LISTABLE)
    except OSError:
        return removed
    try:
        walk(top, root, 0)
    except OSError:
        pass  # a folder that vanished mid-walk: what was removed so far stands
    finally:
        os.close(top)
    return removed
