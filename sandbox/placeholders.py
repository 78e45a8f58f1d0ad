"""Stopping a command from creating a protected name (.git, .coder, .envrc, ...) where none exists.

A mount can only cover a path that exists. So before a command runs, each
absent protected path gets a placeholder: an empty directory, mode 0555, which
the backend then mounts read-only like any existing protected path. A mount
point cannot be removed, renamed or written into, so for the command's whole
run the name stays an empty directory: creating `.git` or `.coder` there is
refused by the kernel, not undone afterwards. (git takes an empty `.git`
directory for no repository at all and looks further up, as before.) If a
placeholder cannot be made, the command does not run (`Unavailable`).

A placeholder is in use while some command holds a shared `flock` on it, and
it is removed only under an exclusive one, so a command of another session (of
another coder, another state directory, another user) is never uncovered by
one that ends first; a holder killed with -9 lets go of its lock with its
life. The placeholders coder made are listed in a registry in coder's state
directory (outside every sandbox), so a later release removes one that its
last holder could not; and a holder that found another coder's placeholder
takes it over when that coder could not remove it.

Nothing inside the sandbox can change a placeholder. Something outside can
(the user making a real `.git` there, say): such a one is no longer coder's,
is never removed, and, when it changed while a command held it, is reported
(`Guard.problems`).
"""

from __future__ import annotations

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
class _Held:
    fd: int  # holds the shared lock
    identity: list[int]  # the directory when it was taken
    placeholder: bool  # coder's (this coder's, or an empty 0555 one another left), not the user's own


@dataclass
class Guard:
    """The protected directories held for one command."""

    registry: Path
    held: dict[str, _Held] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # one line each, for the command's result and the user


def _identity(st: os.stat_result) -> list[int]:
    """Device, inode and change time: an inode number alone is reused at once by the next directory."""
    return [st.st_dev, st.st_ino, st.st_ctime_ns]


def _looks_like_one(fd: int, st: os.stat_result) -> bool:
    """An empty directory of mode 0555: what a placeholder is (a user's own protected folder is not)."""
    return stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == MODE and not os.listdir(fd)


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
    """Make sure every path in `paths` exists (an empty read-only directory where it did not), and hold
    the directories among them. Raises Unavailable (after letting go of what it took) when one cannot
    be made."""
    guard = Guard(registry)
    if not paths:
        return guard
    try:
        with _Registry(registry) as placed:
            for path in paths:
                _hold_one(guard, str(path), placed)
    except BaseException:
        release(guard)
        raise
    return guard


def _hold_one(guard: Guard, path: str, placed: dict[str, list[int]]) -> None:
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
        except OSError:
            if os.path.lexists(path) and not made:
                return  # a protected file or symlink: the backend covers it as it is
            continue  # removed by a releasing holder just now: make it again
        fcntl.flock(fd, fcntl.LOCK_SH)
        st = os.fstat(fd)
        try:
            current = _identity(os.lstat(path))
        except OSError:
            current = None
        if current != _identity(st):  # removed (or replaced) before we held it
            os.close(fd)
            continue
        if made:
            placed[path] = _identity(st)
        guard.held[path] = _Held(fd, _identity(st), made or path in placed or _looks_like_one(fd, st))
        return
    raise Unavailable(0, f"cannot reserve {path}: it keeps changing")


def release(guard: Guard) -> list[str]:
    """Let go of a command's directories, and remove every placeholder no command holds any more."""
    try:
        with _Registry(guard.registry) as placed:
            adopt = []
            for path, held in guard.held.items():
                if not held.placeholder:
                    continue  # the user's own .git or .coder: never judged, never removed
                try:
                    now = _identity(os.lstat(path))
                except OSError:
                    now = None
                if now != held.identity:
                    placed.pop(path, None)
                    guard.problems.append(f"{path} changed while the command ran (from outside the sandbox: "
                                          "the command could not); it is no longer coder's and was left in place")
                elif path not in placed:
                    adopt.append(path)  # another coder's, which it could not remove while we held it
            for path in adopt:
                placed[path] = guard.held[path].identity
            _let_go(guard)  # our shared locks go; the exclusive attempts below see only the others'
            for path, identity in list(placed.items()):
                if _remove(guard, path, identity):
                    del placed[path]
    finally:
        _let_go(guard)
    return guard.problems


def _let_go(guard: Guard) -> None:
    for held in guard.held.values():
        os.close(held.fd)
    guard.held.clear()


def _remove(guard: Guard, path: str, identity: list[int]) -> bool:
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
        if _identity(os.fstat(fd)) != list(identity):
            return True  # changed while nobody held it: the user's own now
        try:
            os.rmdir(path)
        except OSError as e:
            guard.problems.append(f"could not remove the placeholder {path}: {e.strerror}; it was left in place")
        return True
    finally:
        os.close(fd)
