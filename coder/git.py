"""coder's one way to git, hardened against the tree it works in.

The work tree is shaped by the model, and so may be a repository's config: a
nested repository a command created in an earlier session is an ordinary
project the next time coder starts in it. So every repository is treated as
hostile, and every git call coder makes goes through `Repository`:

- git runs with everything that could start a program switched off: hooks,
  fsmonitor, every filter, textconv and merge driver the configs define,
  external diff, pagers, editors, credential helpers, ssh and every transport
  (`protocol.allow=never`), automatic gc; it never recurses into submodules,
  and it takes no optional locks (a `git add` of the user's at the same moment
  is never refused because of us);
- git never reads file contents from the work tree: checkpoints hash the files
  and write blobs, trees and commits in-process through GitPython's object
  database (gitdb), so no clean filter or line-ending conversion applies and a
  checkpoint holds the exact bytes; git itself only lists paths (`ls-files`)
  and moves refs;
- the environment is scrubbed: no secret, none of the user's `GIT_DIR`-style
  redirections;
- the repository is the one found when the session began (`Repository.find`),
  given to git explicitly with `--git-dir` and `--work-tree` (a config's
  `core.worktree` cannot point elsewhere), never one that appeared later.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.env import scrub

GIT = "git"
HARDENING: tuple[str, ...] = tuple(
    arg for setting in (
        "core.fsmonitor=false", "core.hooksPath=/dev/null", "core.untrackedCache=false", "core.pager=cat",
        "core.editor=false", "sequence.editor=false", "core.askPass=", "core.sshCommand=false",
        "credential.helper=", "diff.external=", "protocol.allow=never", "submodule.recurse=false",
        "diff.ignoreSubmodules=all", "gc.auto=0", "maintenance.auto=false", "commit.gpgSign=false",
        "tag.gpgSign=false", "core.alternateRefsCommand=", "status.submoduleSummary=false",
    ) for arg in ("-c", setting)
)
# Variables of the user's that would redirect git away from the repository coder chose.
_REDIRECTS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
              "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS",
              "GIT_CONFIG_COUNT", "GIT_EXTERNAL_DIFF", "GIT_PAGER", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS",
              "GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "GIT_EXEC_PATH", "GIT_TEMPLATE_DIR", "GIT_TRACE")
IDENT = {"GIT_AUTHOR_NAME": "coder", "GIT_AUTHOR_EMAIL": "coder@localhost",
         "GIT_COMMITTER_NAME": "coder", "GIT_COMMITTER_EMAIL": "coder@localhost"}
TREE, BLOB, LINK, EXEC, GITLINK = 0o40000, 0o100644, 0o120000, 0o100755, 0o160000
TIMEOUT = 120
LIST_TIMEOUT = 20  # listing the work tree: a turn must not wait longer for its checkpoint
STALE_LOCK_SECONDS = 10


class GitError(Exception):
    """A git operation failed; the message is one line."""


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """What git runs with: the user's environment without secrets or redirections."""
    env = {k: v for k, v in scrub(os.environ).items()
           if k not in _REDIRECTS and not k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_", "GIT_TRACE"))}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "GIT_NO_REPLACE_OBJECTS": "1",
                "LC_ALL": "C"})
    env.update(extra or {})
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str], stdin: bytes | None = None,
         timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, cwd=cwd, env=env, input=stdin or b"", capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        # A FIFO named .gitignore, or a file system that hangs, can hold git forever.
        raise GitError(f"git did not finish in {timeout:g} s (a FIFO in the work tree, or a hung file system?)"
                       ) from None
    except OSError as e:
        raise GitError(f"git could not be run: {e.strerror}") from None


def _first_line(r: subprocess.CompletedProcess) -> str:
    err = r.stderr.decode(errors="replace")
    return next((ln.strip() for ln in err.splitlines() if ln.strip()), f"exit status {r.returncode}")


def _driver_overrides(config_listing: bytes) -> tuple[str, ...]:
    """`-c` settings that blank every filter, textconv and merge driver a config defines.

    A driver runs only when both a `.gitattributes` (the work tree: the model's) names it and a
    config defines its command, so blanking every defined one leaves nothing to run.
    """
    out: list[str] = []
    for entry in config_listing.split(b"\0"):
        key = entry.split(b"\n", 1)[0].decode(errors="replace")
        section, _, rest = key.partition(".")
        name, _, _var = rest.rpartition(".")
        if not name:
            continue
        if section == "filter":
            out += [f"filter.{name}.clean=", f"filter.{name}.smudge=", f"filter.{name}.process=",
                    f"filter.{name}.required=false"]
        elif section == "diff":
            out += [f"diff.{name}.textconv=", f"diff.{name}.command="]
        elif section == "merge":
            out += [f"merge.{name}.driver="]
    return tuple(arg for setting in dict.fromkeys(out) for arg in ("-c", setting))


@dataclass
class Repository:
    """A repository found when a session began, with every call to git hardened (see the module)."""

    root: Path  # the top of the work tree
    git_dir: Path
    common_dir: Path  # where objects and refs live (differs from git_dir in a linked worktree)
    overrides: tuple[str, ...] = ()
    _reftable: bool | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.objects = Objects(self.common_dir / "objects")

    @classmethod
    def find(cls, start: Path) -> "Repository | None":
        """The repository holding `start`, or None (none, no git binary, or git refuses it)."""
        argv = [GIT, "--no-pager", *HARDENING, "rev-parse", "--show-toplevel", "--absolute-git-dir",
                "--git-common-dir"]
        try:
            r = _run(argv, start, environment())
        except GitError:
            return None
        lines = r.stdout.decode(errors="surrogateescape").splitlines()
        if r.returncode != 0 or len(lines) != 3 or not lines[0]:
            return None
        root, git_dir = Path(lines[0]).resolve(), Path(lines[1]).resolve()
        common = Path(lines[2]) if os.path.isabs(lines[2]) else start / lines[2]
        repo = cls(root, git_dir, common.resolve())
        listing = repo.run("config", "--list", "-z", "--includes", check=False)
        repo.overrides = _driver_overrides(listing)
        return repo

    # --- running git ---
    def command(self, *args: str) -> list[str]:
        return [GIT, "--no-pager", *HARDENING, *self.overrides, f"--git-dir={self.git_dir}",
                f"--work-tree={self.root}", *args]

    def run(self, *args: str, env: dict[str, str] | None = None, check: bool = True, stdin: bytes | None = None,
            cwd: Path | None = None, timeout: float = TIMEOUT) -> bytes:
        """git's stdout; a failure is a GitError (or b"" when not `check`)."""
        r = _run(self.command(*args), cwd or self.root, environment(env), stdin, timeout)
        if r.returncode != 0:
            if check:
                raise GitError(f"git {args[0]} failed: {_first_line(r)}")
            return b""
        return r.stdout

    def text(self, *args: str, **kwargs) -> str:
        return self.run(*args, **kwargs).decode(errors="replace").strip()

    def names(self, *args: str, **kwargs) -> list[str]:
        """Paths from a `-z` listing (bytes decoded as the file system does, so any name survives)."""
        return [os.fsdecode(p) for p in self.run(*args, **kwargs).split(b"\0") if p]

    def resolve(self, ref: str) -> str:
        """The object a ref names, or "" when it does not exist."""
        return self.text("rev-parse", "-q", "--verify", ref, check=False)

    def set_ref(self, ref: str, oid: str, old: str = "") -> None:
        """Point `ref` at `oid`, as git does for a loose ref (lock file, then rename), in-process; `old` is
        what it must still point at (another process moving it meanwhile is an error, not lost work)."""
        if self._reftable is None:
            self._reftable = b"reftable" in self.run("config", "--get", "extensions.refStorage", check=False)
        if self._reftable:
            self.run("update-ref", ref, oid, *([old] if old else []))
            return
        path = self.common_dir / ref
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.with_name(path.name + ".lock")
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            # git holds a ref lock for milliseconds: one this old was left by a process that died.
            if time.time() - lock.stat().st_mtime < STALE_LOCK_SECONDS:
                raise GitError(f"{ref} is locked ({lock} exists): another git is updating it") from None
            lock.unlink()
            return self.set_ref(ref, oid, old)
        try:
            current = path.read_text().strip() if path.exists() else self.resolve(ref)
            if current != old:
                raise GitError(f"{ref} moved meanwhile (to {current[:10] or 'nothing'}); not updated")
            os.write(fd, f"{oid}\n".encode())
            os.close(fd)
            fd = -1
            os.replace(lock, path)
        finally:
            if fd != -1:
                os.close(fd)
            if lock.exists():
                lock.unlink()

    def commit_command(self, paths: list[str], new: list[str], message: str, author: str
                       ) -> tuple[list[str], dict[str, str]]:
        """The argv and environment of the user's own `git commit --only` of `paths` (root-relative).

        The one git command here that is not hardened: a commit runs the repository's hooks and
        filters, as the user's own commit would. So it is handed back, not run: the caller runs it
        inside the sandbox (or, only when the user chose full access, as it is). `new` files are
        made known to the index first (intent-to-add stages no content) and taken back out if the
        commit fails, so the user's index is left as it was.
        """
        import shlex

        def specs(names: list[str]) -> str:
            return " ".join(shlex.quote(":(top,literal)" + p) for p in names)

        commit = f"git commit -q --only --author={shlex.quote(author)} -m {shlex.quote(message)} -- {specs(paths)}"
        script = commit if not new else (
            f"git add -N -- {specs(new)} && {commit} || "
            f"{{ status=$?; git rm --cached -q --ignore-unmatch -- {specs(new)}; exit $status; }}")
        has_identity = self.run("var", "GIT_COMMITTER_IDENT", check=False)
        return ["sh", "-c", script], environment(None if has_identity else IDENT)

    def branch(self) -> str:
        return self.text("rev-parse", "--abbrev-ref", "HEAD", check=False)

    def changed_count(self, cwd: Path) -> int:
        """Files under `cwd` that differ from the index by their stat data, or are untracked.

        Like `git status` without its content check, which would read files through filters.
        """
        count = len(self.names("ls-files", "-z", "--others", "--exclude-standard", "--directory", cwd=cwd))
        entries = self.run("ls-files", "--debug", cwd=cwd, check=False).decode(errors="surrogateescape")
        path = None
        for line in entries.splitlines():
            if not line.startswith("  "):
                path = line
            elif line.startswith("  mtime:") and path is not None:
                seconds, _, nanos = line.split()[1].partition(":")
                try:
                    st = os.lstat(cwd / path)
                except OSError:
                    count += 1
                    continue
                count += (st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9) != (int(seconds), int(nanos))
        return count


class Objects:
    """A git object database used in-process (GitPython's gitdb): a repository's, or a private one.

    Nothing runs to write or read an object, so no filter or hook of any repository can; and the
    bytes stored are exactly the bytes read.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._db: Any = None
        self._present: set[str] = set()  # objects known to be there
        self._trees: dict[str, dict[str, tuple[int, str]]] = {}  # parsed trees (they never change)

    @property
    def db(self) -> Any:
        if self._db is None:
            from gitdb.db.git import GitDB  # loose and packed objects, alternates

            self.directory.mkdir(parents=True, exist_ok=True)
            self._db = GitDB(str(self.directory))
        return self._db

    def store(self, kind: str, data: bytes) -> str:
        """Write an object (if new) and return its id.

        The id is computed first, so an object the database has (packed or loose: most of a
        snapshot's blobs, every turn) costs a lookup, not a write."""
        oid = hashlib.sha1(f"{kind} {len(data)}\0".encode() + data).hexdigest()
        if oid in self._present:
            return oid
        if not (self.directory / oid[:2] / oid[2:]).exists() and not self.db.has_object(bytes.fromhex(oid)):
            from gitdb import IStream

            self.db.store(IStream(kind.encode(), len(data), io.BytesIO(data)))
        self._present.add(oid)
        return oid

    def read(self, oid: str) -> tuple[str, bytes]:
        from gitdb.exc import ODBError

        try:
            stream = self.db.stream(bytes.fromhex(oid))
            return stream.type.decode(), stream.read()
        except (ODBError, ValueError) as e:
            raise GitError(f"cannot read object {oid or '(none)'} from {self.directory}: {type(e).__name__}") from None

    def blob(self, oid: str) -> bytes:
        return self.read(oid)[1]

    def write_tree(self, entries: dict[str, tuple[int, str]]) -> str:
        """A tree (and its subtrees) from {"dir/name": (mode, oid)}; returns the root tree's id."""
        dirs: dict[str, dict[str, tuple[int, str]]] = {"": {}}
        for path in entries:
            parts = path.split("/")
            for i in range(1, len(parts)):
                dirs.setdefault("/".join(parts[:i]), {})
        for path, entry in entries.items():
            parent, _, name = path.rpartition("/")
            dirs[parent][name] = entry
        for d in sorted(dirs, key=lambda d: d.count("/") if d else -1, reverse=True):
            if not d:
                continue
            parent, _, name = d.rpartition("/")
            dirs[parent][name] = (TREE, self._tree(dirs[d]))
        return self._tree(dirs[""])

    def _tree(self, children: dict[str, tuple[int, str]]) -> str:
        def order(name: str) -> bytes:  # git sorts a tree's entries as if directories ended in "/"
            return os.fsencode(name) + (b"/" if children[name][0] == TREE else b"")

        body = b"".join(f"{mode:o} ".encode() + os.fsencode(name) + b"\0" + bytes.fromhex(oid)
                        for name in sorted(children, key=order) for mode, oid in [children[name]])
        return self.store("tree", body)

    def _entries(self, oid: str) -> dict[str, tuple[int, str]]:
        """One tree's own entries, {name: (mode, oid)}."""
        cached = self._trees.get(oid)
        if cached is not None:
            return cached
        kind, body = self.read(oid)
        if kind != "tree":
            raise GitError(f"{oid} is a {kind}, not a tree")
        out: dict[str, tuple[int, str]] = {}
        i = 0
        while i < len(body):
            space, nul = body.index(b" ", i), body.index(b"\0", i)
            out[os.fsdecode(body[space + 1:nul])] = (int(body[i:space], 8), body[nul + 1:nul + 21].hex())
            i = nul + 21
        self._trees[oid] = out
        return out

    def read_tree(self, oid: str, prefix: str = "") -> dict[str, tuple[int, str]]:
        """{"dir/name": (mode, oid)} for every non-tree entry below tree `oid`."""
        out: dict[str, tuple[int, str]] = {}
        for name, (mode, child) in self._entries(oid).items():
            if mode == TREE:
                out.update(self.read_tree(child, f"{prefix}{name}/"))
            else:
                out[prefix + name] = (mode, child)
        return out

    def commit(self, tree: str, parents: list[str], message: str) -> str:
        stamp = f"coder <coder@localhost> {int(time.time())} +0000"
        lines = [f"tree {tree}", *(f"parent {p}" for p in parents), f"author {stamp}", f"committer {stamp}"]
        return self.store("commit", ("\n".join(lines) + f"\n\n{message}\n").encode())

    def commit_time(self, oid: str) -> int:
        _, body = self.read(oid)
        for line in body.split(b"\n\n", 1)[0].splitlines():
            if line.startswith(b"committer "):
                return int(line.rsplit(b" ", 2)[1])
        return 0
