"""Stopping a command from creating a protected name (.git, .coder, .envrc, ...) where none exists.

A mount can only cover a path that exists. So before a command runs, each
absent protected path gets a placeholder: an empty directory, mode 0555, which
the backend then mounts read-only like any existing protected path. A mount
point cannot be removed, renamed or written into, so for the command's whole
run the name stays an empty directory: creating `.git` or `.coder` there is
refused by the kernel, not undone afterwards. (git takes an empty `.git`
directory for no repository at all and looks further up, as before.)

A placeholder is in use while some command holds a shared `flock` on it, and
it is removed only under an exclusive one, so a command of another session (of
another coder, another state directory, another user) is never uncovered by
one that ends first; a holder killed with -9 lets go of its lock with its
life. The placeholders coder made are listed in a registry in coder's state
directory (outside every sandbox), so any later release removes one that its
last holder could not. What a command must not run without is refused before
it starts (`Unavailable`), and a placeholder that something replaced or filled
while a command held it is left in place and reported (`Guard.problems`,
`Guard.suspect`), never silently removed or ignored.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

MODE = 0o555
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Unavailable(OSError):
    """A placeholder could not be made: the command must not run without it."""


@dataclass
class Guard:
    """The placeholders held for one command."""

    registry: Path
    held: dict[str, tuple[int, list[int]]] = field(default_factory=dict)  # path -> (locked fd, identity then)
    problems: list[str] = field(default_factory=list)  # one line each, for the command's result
    suspect: list[Path] = field(default_factory=list)  # changed while held: not coder's to vouch for


def _identity(st: os.stat_result) -> list[int]:
    """Inode and change time: an inode number alone is reused at once by the next directory made."""
    return [st.st_dev, st.st_ino, st.st_ctime_ns]


class _Registry:
    """The placeholders coder made and has not removed yet: {path: identity}, under a lock."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = directory / "placeholders.json"
        self._lock = open(directory / "placeholders.lock", "a")

    def __enter__(self) -> dict[str, list[int]]:
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            data = json.loads(self.path.read_text())
            self.placed = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            self.placed = {}
        return self.placed

    def __exit__(self, *exc: object) -> None:
        try:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.placed))
            os.replace(tmp, self.path)
        finally:
            self._lock.close()


def hold(paths: list[Path], registry: Path) -> Guard:
    """Make sure every path in `paths` exists (an empty read-only directory where it did not), and hold it.

    Raises Unavailable (after letting go of what it took) when one cannot be made."""
    guard = Guard(registry)
    if not paths:
        return guard
    try:
        with _Registry(registry) as placed:
            for path in paths:
                _hold_one(guard, path, placed)
    except BaseException:
        release(guard)
        raise
    return guard


def _hold_one(guard: Guard, path: Path, placed: dict[str, list[int]]) -> None:
    for _ in range(5):
        try:
            os.mkdir(path, MODE)
            os.chmod(path, MODE)  # whatever the umask
            made = True
        except FileExistsError:
            made = False
        except OSError as e:
            raise Unavailable(e.errno, f"cannot reserve {path}: {e.strerror}") from None
        try:
            fd = os.open(path, _DIR)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                if made or os.path.lexists(path):  # not a directory: an existing protected file or link
                    return
                continue  # removed by a releasing holder just now: make it again
            raise Unavailable(e.errno, f"cannot reserve {path}: {e.strerror}") from None
        fcntl.flock(fd, fcntl.LOCK_SH)
        st = os.fstat(fd)
        try:
            now = os.lstat(path)
        except OSError:
            now = None
        if now is None or _identity(now) != _identity(st):  # removed (or replaced) before we held it
            os.close(fd)
            continue
        if made:
            placed[str(path)] = _identity(st)
        # Held whoever made it (a coder with another registry, or the user): a placeholder of another
        # coder's is then not removed under our command.
        guard.held[str(path)] = (fd, _identity(st))
        return
    raise Unavailable(errno.EAGAIN, f"cannot reserve {path}: it keeps changing")


def release(guard: Guard) -> list[str]:
    """Let go of a command's placeholders, and remove every placeholder no command holds any more."""
    for path, (_fd, then) in guard.held.items():
        try:
            changed = _identity(os.lstat(path)) != then
        except OSError:
            changed = True  # gone: only a process outside the sandbox could have removed it
        if changed:  # replaced, chmod-ed or filled: the sandbox cannot, something outside did
            guard.problems.append(f"{path} changed while the command ran (not by the command: it could not); "
                                  "it was left in place: check it")
            guard.suspect.append(Path(path))
    try:
        with _Registry(guard.registry) as placed:
            for path in guard.suspect:
                placed.pop(str(path), None)
            _let_go(guard)  # our shared locks go; the exclusive attempts below see only the others'
            for path, identity in list(placed.items()):
                if _remove(guard, Path(path), identity):
                    del placed[path]
    finally:
        _let_go(guard)
    return guard.problems


def _let_go(guard: Guard) -> None:
    for fd, _ in guard.held.values():
        os.close(fd)
    guard.held.clear()


def _remove(guard: Guard, path: Path, identity: list[int]) -> bool:
    """Remove one placeholder unless a command still holds it; whether it is off the registry now."""
    try:
        fd = os.open(path, _DIR)
    except OSError:
        return True  # gone, or no longer a directory: not ours any more
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a running command holds it: its release removes it
        st = os.fstat(fd)
        if _identity(st) != list(identity) or not stat.S_ISDIR(st.st_mode):
            return True  # changed while nobody held it: the user's own now
        try:
            os.rmdir(path)
        except OSError as e:
            guard.problems.append(f"could not remove placeholder {path}: {e.strerror}; it was left in place")
            guard.suspect.append(path)
        return True
    finally:
        os.close(fd)
