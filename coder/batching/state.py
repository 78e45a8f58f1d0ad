"""A batch's state file: each target's status and session, so a re-run picks up where the last one stopped.

The file is JSON, rewritten whole (temp file, then rename) after every change, so a crash or a kill
leaves the previous version, never half of one. A shard writes its own file next to the batch's
(`prompt.state.json` -> `prompt.shard-2-of-4.state.json`); every run reads the batch's file and all its
shards' files, and for each target the latest record wins: the state of a batch spread over a CI
matrix merges by copying the shards' files into one folder. A lock file keeps two runs from
writing one state file at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from coder.config import ConfigError

VERSION = 1
SUFFIX = ".state.json"
DONE = "completed"


def prompt_digest(template: str) -> str:
    return hashlib.sha256(template.encode("utf-8")).hexdigest()[:16]


def default_path(prompt_file: Path) -> Path:
    return prompt_file.with_name(prompt_file.name + SUFFIX)


def _stem(base: Path) -> str:
    return base.name[: -len(SUFFIX)] if base.name.endswith(SUFFIX) else base.name


def shard_path(base: Path, i: int, n: int) -> Path:
    return base.with_name(f"{_stem(base)}.shard-{i}-of-{n}{SUFFIX}")


def _family(base: Path, ending: str = "") -> list[Path]:
    """The batch's state file and its shards' files that exist, or with `ending` ".lock" their lock files
    (those of runs going on now)."""
    stem = _stem(base)
    try:
        names = os.listdir(base.parent)
    except OSError:
        return []
    return sorted(base.parent / n for n in names if n == base.name + ending
                  or (n.startswith(stem + ".shard-") and n.endswith(SUFFIX + ending)))


def _well_formed(record: Any) -> bool:
    """A record as this module writes it: what a re-run relies on has the type it expects."""
    return (isinstance(record, dict) and isinstance(record.get("status"), str)
            and isinstance(record.get("session", ""), str) and isinstance(record.get("prompt"), str)
            and isinstance(record.get("updated"), (int, float)) and not isinstance(record.get("updated"), bool)
            and isinstance(record.get("files_changed", []), list)
            and all(isinstance(f, str) for f in record.get("files_changed", [])))


class State:
    """The records of one batch, merged from its family of files; writes go to `path` only (None: kept in
    memory, for a script that wants no state file)."""

    def __init__(self, path: Path | None, base: Path | None, digest: str) -> None:
        self.path = path
        self.base = base
        self.digest = digest
        self.targets: dict[str, dict[str, Any]] = {}
        self.stale = 0  # records of another prompt, left out (the prompt file changed since)
        self.unreadable = 0  # records that are not a target's record (a hand-edited or damaged file)
        self._lock = threading.Lock()
        self._lock_fd: int | None = None

    def load(self) -> None:
        """Read the batch's state and its shards' (after `lock`: what another run wrote up to then is seen)."""
        for file in _family(self.base) if self.base is not None else []:
            self._merge(file)

    def _merge(self, file: Path) -> None:
        if not file.is_file() or file.is_symlink():  # a FIFO would hang the read; a link may lead anywhere
            raise ConfigError(f"state file {file}: not a regular file; move it away")
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"state file {file}: cannot read: {e.strerror}") from None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ConfigError(f"state file {file}: not a coder batch state file (not JSON); move it away") from None
        if not isinstance(data, dict) or not isinstance(data.get("targets"), dict):
            raise ConfigError(f"state file {file}: not a coder batch state file; move it away")
        for target, record in data["targets"].items():
            if not _well_formed(record):
                self.unreadable += 1
                continue
            if record.get("prompt") != self.digest:
                self.stale += 1
                continue
            mine = self.targets.get(target)
            if mine is None or record["updated"] > mine["updated"]:
                self.targets[target] = record

    def lock(self) -> None:
        """Hold the state file for this run; ConfigError when another run holds it."""
        if self.path is None:
            return
        lock_path = self._lock_path()
        for _ in range(10):
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            except OSError as e:
                raise ConfigError(f"state file {self.path}: cannot lock: {e.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise ConfigError(f"another coder batch is running with the state file {self.path}; wait for it, "
                                  "or give this run its own (--state FILE)") from None
            try:
                same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
            except OSError:
                same = False
            if same:  # not a lock file its last holder removed while we opened it
                self._lock_fd = fd
                return
            os.close(fd)
        raise ConfigError(f"state file {self.path}: cannot lock it (its lock file keeps changing)")

    def unlock(self) -> None:
        """Let go of the state file; the lock file goes too (a run that opened it meanwhile sees it gone and
        retries, see lock)."""
        if self._lock_fd is not None:
            try:
                os.unlink(self._lock_path())
            except OSError:
                pass
            os.close(self._lock_fd)
            self._lock_fd = None

    def _lock_path(self) -> Path:
        assert self.path is not None
        return self.path.with_name(self.path.name + ".lock")

    def family(self) -> set[Path]:
        """Every file of this state's (its own, its lock, its shards'): never a batch's target."""
        if self.path is None:
            return set()
        family = {*_family(self.base), *_family(self.base, ".lock")} if self.base else set()
        return {self.path, self._lock_path(), *family}

    def done(self, target: str) -> bool:
        return (self.targets.get(target) or {}).get("status") == DONE

    def record(self, target: str, **fields: Any) -> None:
        """Set a target's record and write the file (raises OSError when it cannot be written)."""
        with self._lock:
            self.targets[target] = {**fields, "prompt": self.digest, "updated": time.time()}
            self._write()

    def _write(self) -> None:
        if self.path is None:
            return
        data = {"version": VERSION, "targets": self.targets}
        # Compact: the C encoder (an indented dump is pure Python, and this runs twice per target).
        text = json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
