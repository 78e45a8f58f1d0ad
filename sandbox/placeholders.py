"""Stopping a command from creating a protected name (.git, .coder, .bashrc, ...) where none exists.

A mount can only cover a path that exists. So before a command runs, each
absent protected path gets a placeholder: an empty directory, mode 0555, which
the backend then mounts read-only like any existing protected path. A mount
point cannot be removed, renamed or written into, so for the command's whole
run the name stays an empty directory: creating `.git` or `.coder` there is
refused by the kernel, not undone afterwards. (git takes an empty `.git`
directory for no repository at all and looks further up, as before.)

Placeholders are coder's own and go away once no running command needs them.
Commands of several sessions (in one folder or several) share them: each
registers as a holder, under a lock, in one registry per user outside every
sandbox (coder's state directory), and the last holder out removes the
placeholders that holders created.
A holder that died (kill -9) is known by its pid's start time; the next
holder takes over its placeholders. A placeholder that cannot be removed is
reported (`Guard.problems`), never ignored.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

MODE = 0o555


def _start_time(pid: int) -> str:
    """A process's start time (clock ticks since boot), "" if it is gone: with the pid, a unique id."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


def _me() -> str:
    return f"{os.getpid()}-{_start_time(os.getpid())}-{os.urandom(3).hex()}"


def _alive(holder: str) -> bool:
    pid, started, _ = holder.split("-", 2)
    return _start_time(int(pid)) == started


@dataclass
class Guard:
    """Placeholders held for one command; `problems` says what could not be cleaned up, one line each."""

    entry: Path  # the registry directory
    holder: str
    problems: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # placeholders made for this command
    suspect: list[Path] = field(default_factory=list)  # left in place, and not coder's to vouch for


def _locked(entry: Path):
    entry.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = open(entry / "lock", "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def _load(entry: Path) -> dict:
    try:
        data = json.loads((entry / "state.json").read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save(entry: Path, data: dict) -> None:
    tmp = entry / "state.json.tmp"
    tmp.write_text(json.dumps(data))
    os.replace(tmp, entry / "state.json")


def hold(paths: list[Path], registry: Path) -> Guard:
    """Make sure every path in `paths` exists (an empty read-only directory where it did not), and hold it."""
    entry = registry
    guard = Guard(entry, _me())
    with _locked(entry):
        data = _load(entry)
        holders = [h for h in data.get("holders", []) if _alive(h)]
        placed: dict[str, list[int]] = data.get("placed", {})  # path -> identity of the placeholder coder made
        for path in paths:
            if os.path.lexists(path):
                continue
            try:
                os.mkdir(path, MODE)
                os.chmod(path, MODE)  # whatever the umask
            except FileExistsError:
                continue  # someone made it just now: it exists, so it is protected like any other
            except OSError as e:
                guard.problems.append(f"could not reserve {path}: {e.strerror}")
                continue
            placed[str(path)] = _identity(os.lstat(path))
            guard.created.append(str(path))
        _save(entry, {"holders": holders + [guard.holder], "placed": placed})
    return guard


def release(guard: Guard) -> list[str]:
    """Let go of a command's placeholders; the last holder removes them. Returns the problems."""
    with _locked(guard.entry):
        data = _load(guard.entry)
        holders = [h for h in data.get("holders", []) if h != guard.holder and _alive(h)]
        placed: dict[str, list[int]] = data.get("placed", {})
        if not holders:
            for path, identity in list(placed.items()):
                problem, keep = _remove(Path(path), identity)
                if problem:
                    guard.problems.append(problem)
                    guard.suspect.append(Path(path))
                if not keep:
                    del placed[path]
        _save(guard.entry, {"holders": holders, "placed": placed})
    return guard.problems


def _identity(st: os.stat_result) -> list[int]:
    """Inode and change time: an inode number alone is reused at once by the next directory made."""
    return [st.st_ino, st.st_ctime_ns]


def _remove(path: Path, identity: list[int]) -> tuple[str, bool]:
    """Remove one placeholder if it is still ours and empty: (what went wrong or "", keep it on record)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "", False
    except OSError as e:
        return f"could not check placeholder {path}: {e.strerror}", True
    if _identity(st) != list(identity) or not stat.S_ISDIR(st.st_mode):
        return f"{path} is no longer coder's empty placeholder; it was left in place: check it", False
    try:
        os.rmdir(path)
    except OSError as e:
        return f"could not remove placeholder {path}: {e.strerror}", True
    return "", False
