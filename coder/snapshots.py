"""What a path holds, and a git workspace's whole work tree at one moment, read without following links.

A snapshot is `{path: Entry}` for every file git would consider (tracked, and
untracked but not ignored) under the workspace. git only lists the paths
(`ls-files`, coder.git); the files are read and hashed in-process, through
folder descriptors opened without following a link, so a folder the model
swapped for a symlink (to ~/.ssh, say) leads nowhere. A file whose size, times
and inode have not changed since the last snapshot is not read again. Every
blob a snapshot names is in the object store, so whatever a later command does
to the file, its bytes before can be put back.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from coder.git import BLOB, EXEC, GITLINK, LINK, LIST_TIMEOUT, Repository

MAX_UNTRACKED_BYTES = 10 << 20  # a larger untracked file is only watched, not kept, by snapshots
_RACY_SECONDS = 0.1  # a file changed this recently may change again within its timestamp's resolution
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# A file that vanished, or sits behind a symlink or a file where a folder was: not there for us.
GONE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)
OTHER = 0  # the mode of something that is not a file or link (a folder, a FIFO): never restored


@dataclass(frozen=True)
class Entry:
    """A path's content: git mode, blob id (of the exact bytes), permission bits; `kept` when the
    bytes are in the store (a file over the size budget is only identified, not kept)."""

    mode: int
    oid: str
    perm: int = 0o644
    kept: bool = True

    def same(self, other: "Entry | None") -> bool:
        """Same content and bits (-1 bits: not known, as in records of coder 0.1)."""
        return (other is not None and (self.mode, self.oid) == (other.mode, other.oid)
                and (self.perm == other.perm or -1 in (self.perm, other.perm)))

    @property
    def by_stat(self) -> bool:
        """Identified by size and time only (too large to read and keep)."""
        return not self.kept and self.oid.startswith("size ")

    def to_json(self) -> list[Any]:
        return [self.mode, self.oid, self.perm, self.kept]

    @classmethod
    def from_json(cls, data: list[Any] | None) -> "Entry | None":
        return None if data is None else cls(int(data[0]), str(data[1]), int(data[2]), bool(data[3]))


def same(a: Entry | None, b: Entry | None) -> bool:
    return a is None and b is None or a is not None and a.same(b)


class Dirs:
    """Descriptors of folders under `top`, each opened from its parent without following a link.

    Walks come sorted, so only the folders on the way to the current one are kept open."""

    def __init__(self, top: Path) -> None:
        self._fds = {"": os.open(top, _DIR_FLAGS)}

    def fd(self, rel: str) -> int:
        found = self._fds.get(rel)
        if found is None:
            parent, _, name = rel.rpartition("/")
            where = self.fd(parent)
            if len(self._fds) > 64:
                for d in [d for d in self._fds if d and not rel.startswith(d + "/")]:
                    os.close(self._fds.pop(d))
            found = self._fds[rel] = os.open(name, _DIR_FLAGS, dir_fd=where)
        return found

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def identity(st: os.stat_result) -> str:
    """What stands for a file's content when it is too large to read: its size and modification time."""
    return f"size {st.st_size} mtime {st.st_mtime_ns}"


def read(dirs: Dirs, rel: str, limit: int | None = None) -> tuple[os.stat_result, bytes | None] | None:
    """A path's stat and bytes (a link's target; None for what is neither, or a file over `limit`),
    reached without following a link on the way; None when it is not there."""
    parent, _, name = rel.rpartition("/")
    try:
        where = dirs.fd(parent)
        st = os.stat(name, dir_fd=where, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            return st, os.fsencode(os.readlink(name, dir_fd=where))
        if not stat.S_ISREG(st.st_mode) or (limit is not None and st.st_size > limit):
            return st, None
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=where)
        with os.fdopen(fd, "rb") as f:
            return st, f.read()
    except OSError as e:
        if e.errno in GONE:
            return None
        raise


def entry_of(st: os.stat_result, data: bytes | None, store: Callable[[bytes], str]) -> Entry:
    """The Entry for what `read` found: kept in the store when its bytes came along, else (too large)
    identified by its size and time only."""
    if stat.S_ISLNK(st.st_mode):
        return Entry(LINK, store(data or b""), 0)
    if not stat.S_ISREG(st.st_mode):
        return Entry(OTHER, "", stat.S_IMODE(st.st_mode), kept=False)
    mode, perm = (EXEC if st.st_mode & 0o100 else BLOB), stat.S_IMODE(st.st_mode)
    if data is None:
        return Entry(mode, identity(st), perm, kept=False)
    return Entry(mode, store(data), perm)


@dataclass
class Snapshot:
    entries: dict[str, Entry] = field(default_factory=dict)


class Snapshotter:
    """Snapshots of one workspace in one repository (see the module)."""

    def __init__(self, repo: Repository, workspace: Path, exclude: list[Path]) -> None:
        self.repo = repo
        self.workspace = workspace
        self.exclude = [p.resolve().relative_to(workspace).as_posix() for p in exclude
                        if p.resolve().is_relative_to(workspace) and p.resolve() != workspace]
        self._known: dict[str, tuple[tuple[int, ...], Entry]] = {}  # path -> (stat key, entry)

    def take(self) -> Snapshot:
        snap = Snapshot()
        dirs = Dirs(self.workspace)
        try:
            # One listing: tracked entries come with their mode and id ("100644 <oid> 0\tpath"),
            # untracked ones as bare paths, a nested repository as "dir/".
            for line in self.repo.run("ls-files", "-z", "-s", "-c", "-o", "--exclude-standard",
                                      cwd=self.workspace, timeout=LIST_TIMEOUT).split(b"\0"):
                meta, tab, name = line.partition(b"\t")
                rel = os.fsdecode(name if tab else meta)
                if not rel or rel.endswith("/"):  # a nested repository: someone's, never entered
                    continue
                if tab and meta.startswith(b"160000 "):  # a submodule: its commit, never entered
                    snap.entries[rel] = Entry(GITLINK, meta.split()[1].decode(), 0, kept=False)
                    continue
                if self.exclude and any(rel == e or rel.startswith(e + "/") for e in self.exclude):
                    continue
                entry = self._entry(dirs, rel, untracked=not tab)
                if entry is not None:
                    snap.entries[rel] = entry
        finally:
            dirs.close()
        return snap

    def _entry(self, dirs: Dirs, rel: str, untracked: bool) -> Entry | None:
        parent, _, name = rel.rpartition("/")
        try:
            st = os.stat(name, dir_fd=dirs.fd(parent), follow_symlinks=False)
        except OSError as e:
            if e.errno in GONE:
                return None
            raise
        key = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        known = self._known.get(rel)
        if known is not None and known[0] == key:
            return known[1]
        found = read(dirs, rel, limit=MAX_UNTRACKED_BYTES if untracked else None)
        if found is None:
            return None
        entry = entry_of(found[0], found[1], lambda data: self.repo.objects.store("blob", data))
        if time.time() - st.st_mtime_ns / 1e9 > _RACY_SECONDS:
            self._known[rel] = (key, entry)
        return entry
