"""Checkpoints around each agent turn, so `undo` can put back what a turn changed and nothing else.

In a git repository a checkpoint is a commit object under
`refs/coder/checkpoints/<session>` whose tree is the workspace as it was. It is
built through coder.git: git lists the paths (`ls-files`, reading the user's
index but never writing it), and the files are hashed and written as blobs,
trees and commits in-process, so no filter, hook or fsmonitor of the
repository runs and a checkpoint holds each file's exact bytes. The user's
branch, index, stash, HEAD and `git status` are never touched. Left out:
ignored files, nested repositories and submodules (never entered), deny-listed
paths, and untracked files over MAX_UNTRACKED_BYTES. A file whose size and
times have not changed since the last snapshot is not read again.

Outside git (or without a git binary) only the files announced through
`note_file` are covered: their before and after bytes are copied to `store_dir`.
Changes made by shell commands are invisible there.

`diff()` covers only files some turn of this session changed, so a user's own
edit to a file the agent never touched is not shown as the agent's.
"""

from __future__ import annotations

import difflib
import errno
import functools
import hashlib
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from coder.git import BLOB, EXEC, GITLINK, LINK, LIST_TIMEOUT, GitError, Repository

REF_ROOT = "refs/coder/checkpoints/"
AUTHOR = "coder <coder@localhost>"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


# Runs a command (argv, environment, directory) somewhere safe; returns (exit code, output).
Runner = Callable[[list[str], dict[str, str], Path], tuple[int, str]]


class CheckpointError(Exception):
    """A one-line, user-facing reason (e.g. 'undo refused: you edited a.py since; ...')."""


@dataclass
class UndoResult:
    restored: list[str]  # workspace-relative paths put back (or deleted, if the turn created them)
    refused: bool  # True when undo refused because the user edited one of the same files
    diff: str  # when refused: what the turn left vs what is there now, for those files
    message: str  # one line for the user


@dataclass(frozen=True)
class _State:
    """One file as the copy fallback saw it; `key` is what "unchanged" compares."""

    kind: str  # "absent", "file", "link" or "other"
    mode: int = 0
    digest: str = ""
    copy: Path | None = None
    target: str = ""

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.kind, self.mode, self.digest)

    def data(self) -> bytes | None:
        if self.kind == "link":
            return os.fsencode(self.target)
        return self.copy.read_bytes() if self.copy is not None else None


@dataclass
class _Turn:
    label: str
    before: str = ""  # git: tree oid before the turn
    after: str = ""  # git: tree oid after it
    paths: list[str] = field(default_factory=list)  # workspace-relative, what the turn changed
    new_dirs: set[str] = field(default_factory=set)  # directories that did not exist when a write was announced
    saved: dict[str, _State] = field(default_factory=dict)  # fallback: before the turn
    left: dict[str, _State] = field(default_factory=dict)  # fallback: after it


def _one_line(method: Callable[..., Any]) -> Any:
    """Public methods fail only with CheckpointError: an OSError or GitError becomes one line."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except GitError as e:
            raise CheckpointError(str(e)) from None
        except (OSError, ValueError) as e:  # anything else is a bug of ours: keep the traceback
            what = f"{e.strerror}: {e.filename}" if isinstance(e, OSError) and e.strerror else str(e).strip()
            verb = "checkpoints" if method.__name__ == "__init__" else method.__name__.replace("_", " ")
            raise CheckpointError(f"{verb} failed: {(what or type(e).__name__).splitlines()[0]}") from None

    return wrapper


MAX_UNTRACKED_BYTES = 10 << 20  # an untracked file larger than this is left out of checkpoints (and said so)
_RACY_SECONDS = 0.1  # a file changed this recently may change again within its timestamp's resolution


class _Git:
    """Snapshots of the workspace as tree objects, written in-process (coder.git)."""

    def __init__(self, repo: Repository, workspace: Path, session_id: str, exclude: list[Path]) -> None:
        self.repo = repo
        self.root = repo.root
        self.workspace = workspace
        rel = workspace.relative_to(self.root).as_posix()
        self.prefix = "" if rel == "." else rel + "/"
        self.ref = REF_ROOT + session_id
        self.exclude = [p.resolve().relative_to(workspace).as_posix() for p in exclude
                        if p.resolve().is_relative_to(workspace) and p.resolve() != workspace]  # workspace-relative
        self._last: tuple[dict[str, tuple[int, str]] | None, str] = (None, "")  # the last snapshot and its tree
        self.skipped: list[str] = []  # large untracked files left out of the last snapshot
        self._known: dict[str, tuple[tuple[int, ...], int, str]] = {}  # path -> (stat key, mode, blob id)
        self.tip = repo.resolve(self.ref)  # a resumed session
        self.tip_tree = repo.resolve(self.tip + "^{tree}") if self.tip else ""

    @property
    def git_dir(self) -> Path:
        return self.repo.git_dir

    def snapshot(self) -> str:
        """The work tree under the workspace as a tree id (workspace-relative paths)."""
        entries: dict[str, tuple[int, str]] = {}
        self.skipped = []
        dirs = _Dirs(self.workspace)
        try:
            # One listing: tracked entries come with their mode and id ("100644 <oid> 0\tpath"), untracked
            # ones as bare paths, a nested repository as "dir/".
            for line in self.repo.run("ls-files", "-z", "-s", "-c", "-o", "--exclude-standard",
                                      cwd=self.workspace, timeout=LIST_TIMEOUT).split(b"\0"):
                meta, tab, name = line.partition(b"\t")
                if not tab:
                    name = meta
                rel = os.fsdecode(name)
                if not rel or rel.endswith("/"):  # a nested repository: someone's, never entered
                    continue
                if tab and meta.startswith(b"160000 "):  # a submodule: recorded as its commit, never entered
                    entries[rel] = (GITLINK, meta.split()[1].decode())
                    continue
                entry = self._file(rel, not tab, dirs)
                if entry is not None:
                    entries[rel] = entry
        finally:
            dirs.close()
        if entries == self._last[0]:
            return self._last[1]  # nothing moved since the last snapshot
        tree = self.repo.write_tree(entries)
        self._last = (entries, tree)
        return tree

    def _file(self, rel: str, untracked: bool, dirs: "_Dirs") -> tuple[int, str] | None:
        if self.exclude and any(rel == e or rel.startswith(e + "/") for e in self.exclude):
            return None
        parent, _, name = rel.rpartition("/")
        try:
            # Reached through its folders without following a link: a folder the model swapped for a
            # symlink (to ~/.ssh, say) leads nowhere, never to a file outside the workspace.
            where = dirs.fd(parent)
            st = os.stat(name, dir_fd=where, follow_symlinks=False)
        except OSError as e:
            if e.errno in _GONE:
                return None  # deleted meanwhile, or behind a symlink
            raise
        key = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        known = self._known.get(rel)
        if known is not None and known[0] == key:
            return known[1], known[2]
        try:
            if stat.S_ISLNK(st.st_mode):
                mode, data = LINK, os.fsencode(os.readlink(name, dir_fd=where))
            elif stat.S_ISREG(st.st_mode):
                if untracked and st.st_size > MAX_UNTRACKED_BYTES:
                    self.skipped.append(rel)
                    return None
                mode = EXEC if st.st_mode & 0o100 else BLOB
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=where)
                with os.fdopen(fd, "rb") as f:
                    data = f.read()
            else:
                return None  # a fifo, socket or device: nothing to keep
        except OSError as e:
            if e.errno in _GONE:
                return None  # changed under us: the next snapshot takes it
            raise
        oid = self.repo.store("blob", data)
        if time.time() - st.st_mtime_ns / 1e9 > _RACY_SECONDS:
            self._known[rel] = (key, mode, oid)
        return mode, oid

    def checkpoint(self, label: str, tree: str = "") -> str:
        """Snapshot (or take `tree`) and chain it onto the session's ref unless nothing changed; the tree id."""
        tree = tree or self.snapshot()
        if tree != self.tip_tree:
            tip = self.repo.commit(tree, [self.tip] if self.tip else [], f"coder checkpoint: {label}")
            self.repo.set_ref(self.ref, tip, self.tip)
            self.tip, self.tip_tree = tip, tree
        return tree

    def changed(self, a: str, b: str) -> list[str]:
        """Workspace-relative paths that differ between two trees (content, mode, created, deleted)."""
        return self.repo.changed(a, b)

    def blobs(self, tree: str, rels: list[str]) -> dict[str, tuple[int, bytes] | None]:
        """(mode, exact bytes) of each of `rels` in `tree`, or None where it was absent."""
        entries = self.repo.read_tree(tree)
        out: dict[str, tuple[int, bytes] | None] = {}
        for rel in rels:
            entry = entries.get(rel)
            if entry is not None and entry[0] == GITLINK:
                raise CheckpointError(f"cannot restore {rel}: it is a submodule")
            out[rel] = None if entry is None else (entry[0], self.repo.read(entry[1])[1])
        return out

    def diff(self, a: str, b: str, rels: list[str]) -> str:
        old, new = self.repo.read_tree(a), self.repo.read_tree(b)

        def data(tree: dict[str, tuple[int, str]], rel: str) -> bytes | None:
            return self.repo.read(tree[rel][1])[1] if rel in tree and tree[rel][0] != GITLINK else None

        return "".join(_text_diff(self.prefix + r, data(old, r), data(new, r)) for r in rels)  # as git names them

    def commit_only(self, rels: list[str], message: str, runner: Runner | None = None) -> str | None:
        """`git commit --only` of the turn's files, hooks included: the user's other staged changes stay
        staged. A commit reads the work tree (filters, hooks), so it runs through `runner` (the sandbox),
        or here only when the user chose full access."""
        head = self.repo.resolve("HEAD")
        head_tree = self.repo.read_tree(self.repo.resolve("HEAD^{tree}")) if head else {}
        now = self.repo.read_tree(self.snapshot())
        todo = [self.prefix + r for r in rels if now.get(r) != head_tree.get(self.prefix + r)]
        if not todo:
            return None
        indexed = set(self.repo.names("ls-files", "-z", "--", *(":(top,literal)" + p for p in todo)))
        new = [p for p in todo if p not in indexed and p[len(self.prefix):] in now]
        argv, env = self.repo.commit_command(todo, new, message, AUTHOR)
        code, output = (runner or _run_here)(argv, env, self.root)
        if code != 0:
            last = next((ln.strip() for ln in reversed(output.splitlines()) if ln.strip()), f"exit status {code}")
            raise CheckpointError(f"git commit failed: {last}")
        return self.repo.resolve("HEAD")

    def prune(self, keep_days: int) -> None:
        cutoff = time.time() - keep_days * 86400
        for ref in self.repo.text("for-each-ref", "--format=%(refname)", REF_ROOT).splitlines():
            if ref != self.ref and self.repo.commit_time(self.repo.resolve(ref)) < cutoff:
                self.repo.run("update-ref", "-d", ref)


def _run_here(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run a command outside any sandbox (the user chose full access); (exit code, output)."""
    import subprocess

    try:
        r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 1, str(e)
    return r.returncode, r.stdout + r.stderr


# A file that vanished, or sits behind a symlink or a file where a folder was: not in the snapshot.
_GONE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


class _Dirs:
    """Descriptors of a snapshot's folders, each opened from its parent without following a link.

    The listing comes sorted, so only the folders on the way to the current one are kept open."""

    def __init__(self, top: Path) -> None:
        self._fds = {"": os.open(top, _DIR_FLAGS)}

    def fd(self, rel: str) -> int:
        found = self._fds.get(rel)
        if found is None:
            parent, _, name = rel.rpartition("/")
            where = self.fd(parent)
            if len(self._fds) > 64:
                self._keep_ancestors_of(rel)
            found = self._fds[rel] = os.open(name, _DIR_FLAGS, dir_fd=where)
        return found

    def _keep_ancestors_of(self, rel: str) -> None:
        for d in [d for d in self._fds if d and not rel.startswith(d + "/")]:
            os.close(self._fds.pop(d))

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)


def _find_git(workspace: Path, session_id: str, exclude: list[Path]) -> _Git | None:
    """The repository holding `workspace`, or None (no repo, no git binary, unusable repo)."""
    repo = Repository.find(workspace)
    if repo is None:
        return None
    try:
        return _Git(repo, workspace, session_id, exclude)
    except (GitError, OSError, ValueError):
        return None


class Checkpoints:
    """Before/after checkpoints of each turn of one session, and undo of the last changed turn."""

    @_one_line
    def __init__(self, workspace: Path, session_id: str, store_dir: Path, exclude: list[Path] | tuple[Path, ...] = ()) -> None:
        """`exclude`: paths checkpoints must never copy (the sandbox's deny list)."""
        self.workspace = Path(workspace).resolve()
        if not self.workspace.is_dir():
            raise CheckpointError(f"checkpoints: {workspace} is not a directory")
        safe = re.sub(r"[^A-Za-z0-9_-]+", "-", session_id).strip("-") or "session"
        self._store = Path(store_dir)
        self._store.mkdir(parents=True, exist_ok=True)
        self._git = _find_git(self.workspace, safe, [self._store, *(Path(p) for p in exclude)])
        self._turns: list[_Turn] = []  # turns that changed something, oldest first
        self._open: _Turn | None = None
        self._first = ""  # git: tree of the session's first checkpoint
        self._origin: dict[str, _State] = {}  # fallback: each noted file as the session first saw it
        self._touched: dict[str, None] = {}  # every path some turn changed (ordered set)
        self._count = 0

    @property
    def in_git(self) -> bool:
        return self._git is not None

    @_one_line
    def begin_turn(self, label: str) -> None:
        """Checkpoint before a turn (a turn still open is ended first, so nothing is lost)."""
        if self._open is not None:
            self.end_turn()
        turn = _Turn(label)
        if self._git:
            turn.before = self._git.checkpoint(label)
            self._first = self._first or turn.before
        self._open = turn

    @_one_line
    def end_turn(self) -> list[str]:
        """Checkpoint after the turn; the workspace-relative paths it changed ([]: nothing to undo)."""
        turn, self._open = self._open, None
        if turn is None:
            return []
        if self._git:
            turn.after = self._git.checkpoint(f"after {turn.label}")
            turn.paths = self._git.changed(turn.before, turn.after)
        else:
            turn.left = {rel: self._capture(rel, "after") for rel in turn.saved}
            turn.paths = sorted(r for r in turn.saved if turn.left[r].key != turn.saved[r].key)
        if turn.paths:
            self._turns.append(turn)
            self._touched.update(dict.fromkeys(turn.paths))
        return list(turn.paths)

    @_one_line
    def note_file(self, path: Path) -> None:
        """Called before the agent writes `path`: saves its bytes once per turn (the fallback's only record)."""
        path = Path(path) if Path(path).is_absolute() else self.workspace / path
        path = path.parent.resolve() / path.name
        if not path.is_relative_to(self.workspace) or path == self.workspace:
            return  # outside the workspace: not ours to undo
        if self._open is None:
            self.begin_turn("")
        turn, rel = self._open, path.relative_to(self.workspace).as_posix()
        parent = path.parent
        while parent != self.workspace and not parent.is_dir():
            turn.new_dirs.add(parent.relative_to(self.workspace).as_posix())
            parent = parent.parent
        if not self._git and rel not in turn.saved:
            turn.saved[rel] = self._capture(rel, "before")
            self._origin.setdefault(rel, turn.saved[rel])

    def can_undo(self) -> bool:
        return bool(self._turns)

    def last_turn(self) -> dict[str, Any] | None:
        """The last turn that changed files, as JSON data for the transcript (see `replay`)."""
        if not self._turns:
            return None
        t = self._turns[-1]
        return {"label": t.label, "before": t.before, "after": t.after, "paths": t.paths,
                "new_dirs": sorted(t.new_dirs), "saved": {r: _state_data(v) for r, v in t.saved.items()},
                "left": {r: _state_data(v) for r, v in t.left.items()}}

    def replay(self, records: list[tuple[str, dict[str, Any]]]) -> None:
        """Rebuild the undo stack of an earlier process from ("turn", data) and ("undo", {}) records."""
        for kind, data in records:
            if kind == "undo":
                if self._turns:
                    self._turns.pop()
                continue
            turn = _Turn(data["label"], data["before"], data["after"], list(data["paths"]), set(data["new_dirs"]),
                         {r: _State(**_state_args(v)) for r, v in data["saved"].items()},
                         {r: _State(**_state_args(v)) for r, v in data["left"].items()})
            self._turns.append(turn)
            self._first = self._first or turn.before
            self._touched.update(dict.fromkeys(turn.paths))
            for rel, state in turn.saved.items():
                self._origin.setdefault(rel, state)

    @_one_line
    def undo(self) -> UndoResult:
        """Put the last changed turn's files back, unless the user edited one of them since."""
        if not self._turns:
            raise CheckpointError("nothing to undo")
        turn = self._turns[-1]
        if self._git:
            now = self._git.snapshot()
            edited = sorted(set(self._git.changed(turn.after, now)) & set(turn.paths))
            diff = self._git.diff(turn.after, now, edited) if edited else ""
        else:
            current = {r: self._capture(r, None) for r in turn.paths}
            edited = [r for r in turn.paths if current[r].key != turn.left[r].key]
            diff = "".join(_text_diff(r, turn.left[r].data(), self._read(r)) for r in edited)
        if edited:
            return UndoResult([], True, diff, f"undo refused: you edited {', '.join(edited)} since "
                              f"turn '{turn.label}'; nothing was restored")
        if self._git:
            self._git.checkpoint(f"before undo of {turn.label}", now)  # what undo replaces stays recoverable
            states = self._git.blobs(turn.before, turn.paths)
        else:
            states = {r: None if s.kind == "absent" else (0o120000 if s.kind == "link" else s.mode, s.data())
                      for r, s in turn.saved.items() if r in turn.paths and s.kind != "other"}
        removed = {r for r, s in states.items() if s is None}
        for rel in turn.paths:  # refuse symlinks before any write (except one this undo removes first)
            parts = PurePosixPath(rel).parts
            if any("/".join(parts[:i]) in removed for i in range(1, len(parts))):
                continue
            fd = self._walk(rel, create=False)
            if fd is not None:
                os.close(fd)
        for rel in sorted((r for r, s in states.items() if s is None), reverse=True):
            self._remove(rel)
        for rel in sorted(turn.new_dirs, key=len, reverse=True):
            self._remove(rel, directory=True)
        for rel, state in states.items():
            if state is not None:
                self._put(rel, state[1], state[0], exact=not self._git)
        self._turns.pop()
        return UndoResult(list(turn.paths), False, "", f"undid '{turn.label}': restored {len(turn.paths)} file(s)")

    @_one_line
    def diff(self) -> str:
        """Everything this session changed, per file, against its first checkpoint (session files only)."""
        rels = list(self._touched)
        if not rels:
            return ""
        if self._git:
            return self._git.diff(self._first, self._git.snapshot(), rels)
        return "".join(_text_diff(r, self._origin[r].data(), self._read(r)) for r in rels if r in self._origin)

    @_one_line
    def auto_commit(self, message: str, runner: Runner | None = None) -> str | None:
        """Commit the last turn's files only (hooks run, through `runner` when given); the user's other
        staged changes stay staged."""
        if not self._git:
            raise CheckpointError("auto-commit needs a git repository")
        return self._git.commit_only(self._turns[-1].paths, message, runner) if self._turns else None

    @property
    def git_dir(self) -> Path | None:
        return self._git.git_dir if self._git else None

    @_one_line
    def prune(self, keep_days: int = 14) -> None:
        """Drop other sessions' checkpoint refs whose last checkpoint is older than `keep_days`."""
        if self._git:
            self._git.prune(keep_days)

    # -- helpers -------------------------------------------------------------

    def _capture(self, rel: str, copy_name: str | None) -> _State:
        """The fallback's view of one file; with `copy_name`, its bytes are kept under store_dir."""
        self._count += 1
        found = self._entry(rel)
        if found is None:
            return _State("absent")
        st, data = found
        if stat.S_ISLNK(st.st_mode):
            target = os.fsdecode(data)
            return _State("link", 0, hashlib.sha256(data).hexdigest(), target=target)
        if not stat.S_ISREG(st.st_mode):
            return _State("other", stat.S_IFMT(st.st_mode))  # a directory, fifo...: never restored
        copy = None
        if copy_name is not None:
            copy = self._store / "copies" / f"{self._count}-{copy_name}"
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(data)
        return _State("file", stat.S_IMODE(st.st_mode), hashlib.sha256(data).hexdigest(), copy)

    def _read(self, rel: str) -> bytes | None:
        found = self._entry(rel)
        return None if found is None or not (stat.S_ISREG(found[0].st_mode) or stat.S_ISLNK(found[0].st_mode)) \
            else found[1]

    def _entry(self, rel: str) -> tuple[os.stat_result, bytes] | None:
        """A path's stat and bytes (a link's target), reached without following a link on the way; None if
        it is missing or behind a symlink (never a file outside the workspace)."""
        parent, _, name = rel.rpartition("/")
        dirs = _Dirs(self.workspace)
        try:
            where = dirs.fd(parent)
            st = os.stat(name, dir_fd=where, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                return st, os.fsencode(os.readlink(name, dir_fd=where))
            if not stat.S_ISREG(st.st_mode):
                return st, b""
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=where)
            with os.fdopen(fd, "rb") as f:
                return st, f.read()
        except OSError as e:
            if e.errno in _GONE:
                return None
            raise
        finally:
            dirs.close()

    def _walk(self, rel: str, create: bool) -> int | None:
        """The directory holding `rel`, reached from the workspace without following a symlink (None: missing)."""
        parts = PurePosixPath(rel).parts
        if not parts or ".." in parts or rel.startswith("/"):
            raise CheckpointError(f"undo refused: {rel} is not a path inside the workspace")
        fd = os.open(self.workspace, _DIR_FLAGS)
        for part in parts[:-1]:
            try:
                if create:
                    try:
                        os.mkdir(part, dir_fd=fd)
                    except FileExistsError:
                        pass  # a symlink here is refused by the O_NOFOLLOW open below
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                os.close(fd)
                return None
            except OSError:
                os.close(fd)
                raise CheckpointError(f"undo refused: {rel} passes through {part}, a symlink or a file") from None
            os.close(fd)
            fd = nxt
        return fd

    def _remove(self, rel: str, directory: bool = False) -> None:
        fd = self._walk(rel, create=False)
        if fd is None:
            return
        try:
            (os.rmdir if directory else os.unlink)(PurePosixPath(rel).name, dir_fd=fd)
        except OSError as e:  # gone already; or a directory the user has since put files in: it stays
            if not isinstance(e, FileNotFoundError) and not directory:
                raise
        finally:
            os.close(fd)

    def _put(self, rel: str, data: bytes, mode: int, exact: bool) -> None:
        """Atomic per file: temp file beside it, then os.replace (a symlink is replaced, never written through)."""
        fd = self._walk(rel, create=True)
        if fd is None:
            raise CheckpointError(f"cannot restore {rel}: its directory vanished")
        name, tmp = PurePosixPath(rel).name, f".coder-undo-{secrets.token_hex(6)}"
        try:
            try:
                st: os.stat_result | None = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None and stat.S_ISDIR(st.st_mode):
                os.rmdir(name, dir_fd=fd)  # an empty directory in the way goes; a full one fails the undo
            if mode == 0o120000:
                os.symlink(os.fsdecode(data), tmp, dir_fd=fd)
            else:
                perm = _git_perm(mode, st) if not exact else mode
                with os.fdopen(os.open(tmp, _NEW_FILE, 0o600, dir_fd=fd), "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fchmod(f.fileno(), perm)
                    os.fsync(f.fileno())
            os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=fd)
            except OSError:
                pass
            raise
        finally:
            os.close(fd)


def _state_data(state: _State) -> dict[str, Any]:
    return {"kind": state.kind, "mode": state.mode, "digest": state.digest,
            "copy": str(state.copy) if state.copy else None, "target": state.target}


def _state_args(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "copy": Path(data["copy"]) if data.get("copy") else None}


def _git_perm(mode: int, st: os.stat_result | None) -> int:
    """Git keeps only the executable bit: keep the file's other bits, else 0o666 less the umask."""
    if st is not None and stat.S_ISREG(st.st_mode):
        perm = stat.S_IMODE(st.st_mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        perm = 0o666 & ~umask
    return perm | (perm & 0o444) >> 2 if mode == 0o100755 else perm & ~0o111


def _text_diff(rel: str, old: bytes | None, new: bytes | None) -> str:
    """A unified diff of one file for the copy fallback (git makes its own)."""
    if old == new:
        return ""
    if b"\0" in (old or b"") or b"\0" in (new or b""):
        return f"Binary files a/{rel} and b/{rel} differ\n"
    a = (old or b"").decode("utf-8", "replace").splitlines(keepends=True)
    b = (new or b"").decode("utf-8", "replace").splitlines(keepends=True)
    lines = difflib.unified_diff(a, b, f"a/{rel}" if old is not None else "/dev/null",
                                 f"b/{rel}" if new is not None else "/dev/null")
    return "".join(ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n" for ln in lines)
