"""Undo for the agent's turns: what each turn changed, recorded as it happened, and put back exactly.

A turn's changes are attributed when they happen, never by comparing two
moments that other writers share (the user at their editor, another session):
- a file tool announces each path before it writes (`before_write`, with the
  bytes it is about to write) and after (`after_write`): the path's content
  before the turn first touched it (its pre-image) and after it last did;
- in a git repository, each command is bracketed by two snapshots of the work
  tree (coder.snapshots; `before_command`, `after_command`): what differs
  between them is the command's doing. The second snapshot is taken on a side
  thread, while the model reads the command's output; whatever comes next
  waits for it.
A user's edit between the agent's steps is never the turn's. One made while a
command runs is (it cannot be told apart).

Contents go into an object store, as exact bytes with their permission bits:
the repository's own object database (kept from gc by a commit per turn under
`refs/coder/checkpoints/<session>`; the user's branch, index and HEAD are never
touched), or outside git a private one in the session's directory. A file
larger than the budget is identified by its size and time, not kept, and undo
says it cannot put it back. Every change is handed to `record` (the
transcript) as it happens, so a turn cut off by kill -9 can be finished after
a restart; what changed in a path while nothing was watching (a write or a
command cut off) is marked uncertain, and undo puts it back only when told to.

Undo puts back the last turn's paths, and only if each is still as the turn
left it (or already back as it was: an undo cut off half-way); otherwise it
refuses and says which and how (`force=True` goes ahead, moving the user's
version into the session's directory first). It leaves alone what another
session recorded writing during the turn's commands, and refuses while
another session's command is running in the same place. It reports what it
restored, what it could not and why, and, with auto-commit, whether the
turn's commit went too.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from coder.git import BLOB, EXEC, GITLINK, LINK, GitError, Objects, Repository
from coder.snapshots import OTHER, Dirs, Entry, Snapshotter, entry_of, read, same
from sandbox.paths import PathDenied, atomic_symlink, atomic_write, move_out, remove
from sandbox.policy import Mode, Policy

REF_ROOT = "refs/coder/checkpoints/"
AUTHOR = "coder <coder@localhost>"
KEEP_FILE_BYTES = 64 << 20  # a file's pre-image is kept up to this size...
KEEP_SESSION_BYTES = 512 << 20  # ...and all of a session's together up to this

# Runs a command (argv, environment, directory) somewhere safe; returns (exit code, output).
Runner = Callable[[list[str], dict[str, str], Path], tuple[int, str]]
Record = Callable[[dict[str, Any]], None]


@dataclass
class Others:
    """What the other sessions working in this place have recorded (coder.sessions builds it)."""

    claims: dict[str, list[tuple[str, float, "Entry | None"]]] = field(default_factory=dict)  # abs path -> writes
    busy: list[str] = field(default_factory=list)  # sessions running a command here right now


class CheckpointError(Exception):
    """A one-line, user-facing reason (e.g. 'nothing to undo')."""


@dataclass
class UndoResult:
    restored: list[str]  # workspace-relative paths put back (or deleted, if the turn created them)
    refused: bool  # True when undo refused because the user changed one of the same files since
    diff: str  # when refused: what the turn left vs what is there now, for those files
    message: str  # one line for the user (more lines follow for what could not be restored)
    not_restored: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    left_alone: list[tuple[str, str]] = field(default_factory=list)  # (path, why): another session's, not ours
    label: str = ""
    commit: str = ""  # the turn's auto-commit, if any
    commit_removed: bool = False
    kept: list[str] = field(default_factory=list)  # with force: where the user's versions were moved


@dataclass
class Change:
    pre: Entry | None  # before the turn first touched the path (None: it did not exist)
    post: Entry | None  # after the turn last touched it
    uncertain: bool = False  # changed while nothing watched (cut off mid-write or mid-command)
    at: tuple[float, float] = (0.0, 0.0)  # for a command's change: when the command ran


@dataclass
class Turn:
    number: int
    label: str
    changes: dict[str, Change] = field(default_factory=dict)
    new_dirs: set[str] = field(default_factory=set)  # folders a file tool's write created
    commit: str = ""  # the auto-commit of this turn's files
    by_tools: set[str] = field(default_factory=set)  # paths a file tool wrote (the rest came from commands)
    open_command: dict[str, Entry] | None = None  # a command began and was not accounted for (a crash)
    open_since: float = 0.0
    open_writes: dict[str, tuple[Entry | None, str]] = field(default_factory=dict)  # path -> (pre, intended oid)
    ended: bool = False

    @property
    def paths(self) -> list[str]:
        return sorted(p for p, c in self.changes.items() if not same(c.pre, c.post) or c.uncertain)


def _one_line(method: Callable[..., Any]) -> Any:
    """Public methods fail only with CheckpointError: an OSError or GitError becomes one line."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (GitError, PathDenied) as e:
            raise CheckpointError(str(e)) from None
        except (OSError, ValueError) as e:  # anything else is a bug of ours: keep the traceback
            what = f"{e.strerror}: {e.filename}" if isinstance(e, OSError) and e.strerror else str(e).strip()
            verb = "checkpoints" if method.__name__ == "__init__" else method.__name__.replace("_", " ")
            raise CheckpointError(f"{verb} failed: {(what or type(e).__name__).splitlines()[0]}") from None

    return wrapper


class Checkpoints:
    """The turns of one session that changed files, and undo of the last one (see the module)."""

    @_one_line
    def __init__(self, workspace: Path, session_id: str, store_dir: Path, exclude: list[Path] | tuple[Path, ...] = (),
                 record: Record | None = None, others: Callable[[], Others] | None = None,
                 scope: Callable[[], tuple[Path, ...]] | None = None) -> None:
        """`exclude`: paths never read (the sandbox's deny list); `record`: where changes are written down;
        `others`: what other sessions in this place recorded (see `undo`); `scope`: the only files this
        session's commands can write now (a batch's file scope, asked at each command: a sandbox change
        can lift it; empty: anything), so what else changes while they run is another writer's."""
        self.workspace = Path(workspace).resolve()
        if not self.workspace.is_dir():
            raise CheckpointError(f"checkpoints: {workspace} is not a directory")
        self._store_dir = Path(store_dir)
        self._store_dir.mkdir(parents=True, exist_ok=True)
        self.record = record or (lambda r: None)
        self.others = others or Others
        self._scope = scope or (lambda: ())
        self.repo = Repository.find(self.workspace)
        self._snapshots: Snapshotter | None = None
        self.prefix = ""
        if self.repo is not None:
            self.objects: Objects = self.repo.objects
            self._snapshots = Snapshotter(self.repo, self.workspace, [self._store_dir, *map(Path, exclude)])
            rel = self.workspace.relative_to(self.repo.root).as_posix()
            self.prefix = "" if rel == "." else rel + "/"
            safe = re.sub(r"[^A-Za-z0-9_-]+", "-", session_id).strip("-") or "session"
            self.ref = REF_ROOT + safe
            self._tip = self.repo.resolve(self.ref)
        else:
            self.objects = Objects(self._store_dir / "objects")
        self._policy = Policy.for_workspace(self.workspace, Mode.WORKSPACE_WRITE, deny_read=tuple(map(Path, exclude)))
        self._turns: list[Turn] = []  # turns that changed something, oldest first
        self._open: Turn | None = None
        self._count = 0  # turns begun in this session
        self._origin: dict[str, Entry | None] = {}  # each path as the session first found it (for diff)
        self._kept_bytes = 0
        self._before: dict[str, Entry] | None = None  # the snapshot before the running command
        self._since = 0.0
        self._background: threading.Thread | None = None  # the after-snapshot, or the before-tree's record
        self._late_error = ""  # what went wrong on the side thread, said when the turn ends

    @property
    def in_git(self) -> bool:
        return self.repo is not None

    @property
    def git_dir(self) -> Path | None:
        return self.repo.git_dir if self.repo else None

    def _settle(self) -> None:
        """Wait for work left on a side thread (an after-snapshot); anything that follows depends on it."""
        if self._background is not None:
            self._background.join()
            self._background = None

    # --- recording a turn ---------------------------------------------------------------------
    @_one_line
    def begin_turn(self, label: str) -> None:
        if self._open is not None:
            self.end_turn()
        self._count += 1
        self._open = Turn(self._count, label)
        self.record({"type": "turn", "turn": self._count, "label": label, "t": time.time(), **_me()})

    def _turn(self) -> Turn:
        if self._open is None:
            self.begin_turn("")
        assert self._open is not None
        return self._open

    def _rel(self, path: Path) -> str | None:
        path = Path(path) if Path(path).is_absolute() else self.workspace / path
        path = path.parent.resolve() / path.name
        if not path.is_relative_to(self.workspace) or path == self.workspace:
            return None  # outside the workspace: not ours to undo
        return path.relative_to(self.workspace).as_posix()

    @_one_line
    def before_write(self, path: Path, content: bytes | None = None) -> None:
        """A file tool is about to write `content` to `path`: keep what is there now (the first time this
        turn), and note what is meant to be there, so a write cut off mid-way can be told from an edit."""
        self._settle()
        rel = self._rel(path)
        if rel is None:
            return
        turn = self._turn()
        parent = (self.workspace / rel).parent
        while parent != self.workspace and not parent.is_dir():
            turn.new_dirs.add(parent.relative_to(self.workspace).as_posix())
            parent = parent.parent
        pre = self._capture(rel)
        intended = self.objects.store("blob", content) if content is not None else ""
        turn.open_writes[rel] = (pre, intended)
        self.record({"type": "write", "turn": turn.number, "path": rel, "pre": _json(pre), "intended": intended,
                     "new_dirs": sorted(turn.new_dirs)})

    @_one_line
    def after_write(self, path: Path) -> None:
        rel = self._rel(path)
        if rel is None or self._open is None or rel not in self._open.open_writes:
            return
        pre, _ = self._open.open_writes.pop(rel)
        self._open.by_tools.add(rel)
        self._change(self._open, rel, pre, self._capture(rel))

    @_one_line
    def before_command(self) -> None:
        """In git, a command is bracketed by snapshots (outside git, commands are not covered)."""
        self._settle()
        if self._snapshots is None:
            return
        turn = self._turn()
        before = self._before = self._snapshots.take().entries
        self._since = time.time()
        turn.open_command = before

        def record() -> None:  # only needed after a crash mid-command: written while the command runs
            tree = self.objects.write_tree({r: (e.mode, e.oid) for r, e in before.items() if e.kept})
            exact = {r: e.to_json() for r, e in before.items() if not e.kept or e.perm != _default_perm(e.mode)}
            self.record({"type": "command", "turn": turn.number, "before": tree, "exact": exact, "t": self._since,
                         **_me()})

        self._background = threading.Thread(target=record, name="coder-checkpoint", daemon=True)
        self._background.start()

    @_one_line
    def after_command(self) -> None:
        """The command ended: its changes are told apart from a second snapshot, taken on a side thread."""
        self._settle()
        before, self._before = self._before, None
        turn = self._open
        if self._snapshots is None or before is None or turn is None:
            return
        snapshots, since, until = self._snapshots, self._since, time.time()

        def account() -> None:
            try:
                self._account(turn, before, snapshots.take().entries, (since, until))
            except (GitError, OSError) as e:  # said at the end of the turn, like any checkpoint problem
                self._late_error = f"after a command: {e}"

        self._background = threading.Thread(target=account, name="coder-checkpoint", daemon=True)
        self._background.start()

    def _account(self, turn: Turn, before: dict[str, Entry], after: dict[str, Entry], at: tuple[float, float],
                 uncertain: bool = False) -> None:
        turn.open_command = None
        keep = self._scope_rels()
        for rel in sorted(before.keys() | after.keys()):
            if keep is not None and rel not in keep:
                continue  # the sandbox let the command write nothing else: another session's doing, or the user's
            if not same(before.get(rel), after.get(rel)):
                self._change(turn, rel, before.get(rel), after.get(rel), uncertain, at)
        self.record({"type": "command-end", "turn": turn.number})

    def _scope_rels(self) -> set[str] | None:
        """The workspace paths a command could change under the file scope; None: any (no scope, or a target
        with another name, a hard link, which changes with it)."""
        files = self._scope()
        if not files:
            return None
        rels = set()
        for path in files:
            try:
                if os.stat(path).st_nlink > 1:
                    return None
                rels.add(Path(os.path.realpath(path)).relative_to(self.workspace).as_posix())
            except (OSError, ValueError):
                continue
        return rels

    def _change(self, turn: Turn, rel: str, pre: Entry | None, post: Entry | None, uncertain: bool = False,
                at: tuple[float, float] = (0.0, 0.0)) -> None:
        known = turn.changes.get(rel)
        turn.changes[rel] = Change(known.pre if known else pre, post, uncertain or bool(known and known.uncertain),
                                   at if not known else (min(known.at[0] or at[0], at[0] or known.at[0]),
                                                         max(known.at[1], at[1])))
        self._origin.setdefault(rel, pre)
        self.record({"type": "change", "turn": turn.number, "path": rel, "pre": _json(pre), "post": _json(post),
                     "uncertain": uncertain, "at": list(at), "t": time.time()})

    def _capture(self, rel: str, like: Entry | None = None) -> Entry | None:
        """What `rel` holds now, its bytes kept in the store within the size budget (identified by size and
        time only when `like` was, so the two compare)."""
        dirs = Dirs(self.workspace)
        try:
            room = max(0, min(KEEP_FILE_BYTES, KEEP_SESSION_BYTES - self._kept_bytes))
            found = read(dirs, rel, limit=-1 if like is not None and like.by_stat else room)
        finally:
            dirs.close()
        if found is None:
            return None
        st, data = found
        if data is not None and stat.S_ISREG(st.st_mode):
            self._kept_bytes += len(data)
        return entry_of(st, data, lambda b: self.objects.store("blob", b))

    @_one_line
    def end_turn(self) -> list[str]:
        """The paths the turn changed ([]: nothing to undo); its objects are kept from then on."""
        self._settle()
        turn, self._open = self._open, None
        if turn is None:
            return []
        late, self._late_error = self._late_error, ""
        if turn.open_command is not None and self._before is not None:  # a command cut off mid-way
            self._account(turn, self._before, self._snapshots.take().entries, (self._since, time.time()))
            self._before = None
        for rel, (pre, _intended) in list(turn.open_writes.items()):
            self._change(turn, rel, pre, self._capture(rel))
        turn.open_writes.clear()
        turn.ended = True
        self.record({"type": "turn-end", "turn": turn.number})
        if turn.paths:
            self._turns.append(turn)
            self._keep(turn)
        if late:
            raise CheckpointError(late)
        return turn.paths

    def _keep(self, turn: Turn) -> None:
        """In a repository, a commit of the turn's pre- and post-images on the session's ref keeps them from gc."""
        if self.repo is None:
            return
        images = {f"{side}/{rel}": (e.mode, e.oid) for rel, c in turn.changes.items()
                  for side, e in (("pre", c.pre), ("post", c.post)) if e is not None and e.kept}
        if not images:
            return
        tip = self.objects.commit(self.objects.write_tree(images), [self._tip] if self._tip else [],
                                  f"coder turn {turn.number}: {turn.label}")
        self.repo.set_ref(self.ref, tip, self._tip)
        self._tip = tip

    # --- after a restart ----------------------------------------------------------------------
    @_one_line
    def replay(self, records: list[dict[str, Any]]) -> list[str]:
        """Rebuild the undo stack from the records an earlier process wrote; a turn cut off is finished
        here, what changed unwatched marked uncertain. Returns a line for each record that was unusable."""
        turns: dict[int, Turn] = {}
        problems = []
        for r in records:
            try:
                self._replay_record(turns, r)
            except (KeyError, TypeError, ValueError, GitError) as e:
                problems.append(f"a {r.get('type')} record of turn {r.get('turn')} could not be used: {e}")
        for turn in turns.values():
            self._finish_cut_off(turn)
            if turn.paths:
                self._turns.append(turn)
        self._turns.sort(key=lambda t: t.number)
        return problems

    def _replay_record(self, turns: dict[int, Turn], r: dict[str, Any]) -> None:
        kind, number = r.get("type"), r.get("turn")
        if kind == "turn" and isinstance(number, dict):  # a turn as coder 0.1 recorded it, at its end
            self._count += 1
            turns[self._count] = self._old_turn(self._count, number)
        elif kind == "turn" and isinstance(number, int):
            turns[number] = Turn(number, r.get("label", ""))
            self._count = max(self._count, number)
        elif kind == "undo":
            changed = [n for n, t in turns.items() if t.paths]
            turns.pop(r.get("turn_number", changed[-1] if changed else 0), None)
        elif isinstance(number, int) and number in turns:
            self._replay_one(turns[number], r)

    def _replay_one(self, turn: Turn, r: dict[str, Any]) -> None:
        kind = r["type"]
        if kind == "write":
            turn.open_writes[r["path"]] = (Entry.from_json(r.get("pre")), r.get("intended", ""))
            turn.by_tools.add(r["path"])
            turn.new_dirs.update(r.get("new_dirs", []))
        elif kind == "change":
            rel = r["path"]
            turn.open_writes.pop(rel, None)
            known = turn.changes.get(rel)
            pre, post = Entry.from_json(r.get("pre")), Entry.from_json(r.get("post"))
            at = tuple(r.get("at") or (0.0, 0.0))
            turn.changes[rel] = Change(known.pre if known else pre, post,
                                       bool(r.get("uncertain")) or bool(known and known.uncertain), at)
            self._origin.setdefault(rel, pre)
        elif kind == "command":
            before = {p: Entry(m, o, _default_perm(m)) for p, (m, o) in self.objects.read_tree(r["before"]).items()}
            before.update({p: Entry.from_json(e) for p, e in r.get("exact", {}).items()})
            turn.open_command, turn.open_since = before, float(r.get("t", 0.0))
        elif kind == "command-end":
            turn.open_command = None
        elif kind == "turn-end":
            turn.ended = True
        elif kind == "commit":
            turn.commit = r.get("sha", "")

    def _finish_cut_off(self, turn: Turn) -> None:
        """A turn an earlier process did not finish: what changed since nobody watched is uncertain."""
        if turn.open_command is not None and self._snapshots is not None:
            self._account(turn, turn.open_command, self._snapshots.take().entries, (turn.open_since, time.time()),
                          uncertain=True)
        for rel, (pre, intended) in list(turn.open_writes.items()):
            now = self._capture(rel)
            if same(now, pre):
                continue  # the write never happened
            certain = bool(intended) and now is not None and now.oid == intended
            self._change(turn, rel, pre, now, uncertain=not certain)
            turn.by_tools.add(rel)
        turn.open_writes.clear()

    def _old_turn(self, number: int, data: dict[str, Any]) -> Turn:
        """A turn of coder 0.1's records: trees before and after (git), or copies of the files."""
        turn = Turn(number, data.get("label", ""), new_dirs=set(data.get("new_dirs", [])), ended=True)
        if data.get("before") and data.get("after"):
            trees = [self.objects.read_tree(data[k]) for k in ("before", "after")]
            entries = [{r: Entry(m, o, -1) for r, (m, o) in t.items()} for t in trees]  # bits not recorded
        else:
            entries = [{r: self._old_state(v) for r, v in data.get(k, {}).items()} for k in ("saved", "left")]
        for rel in data.get("paths", []):
            turn.changes[rel] = Change(entries[0].get(rel), entries[1].get(rel))
            self._origin.setdefault(rel, entries[0].get(rel))
        return turn

    def _old_state(self, state: dict[str, Any]) -> Entry | None:
        if state.get("kind") == "link":
            return Entry(LINK, self.objects.store("blob", os.fsencode(state.get("target", ""))), 0)
        if state.get("kind") != "file" or not state.get("copy"):
            return None if state.get("kind") == "absent" else Entry(OTHER, "", 0, kept=False)
        data = Path(state["copy"]).read_bytes()
        mode = EXEC if state.get("mode", 0) & 0o100 else BLOB
        return Entry(mode, self.objects.store("blob", data), state.get("mode", 0o644))

    # --- undo -----------------------------------------------------------------------------------
    def can_undo(self) -> bool:
        return bool(self._turns)

    @_one_line
    def undo(self, force: bool = False) -> UndoResult:
        """Put the last changed turn's files back, unless the user changed one of them since (see the module)."""
        self._settle()
        if not self._turns:
            raise CheckpointError("nothing to undo")
        turn = self._turns[-1]
        others = self.others()
        if others.busy and not force:
            raise CheckpointError(f"session {', '.join(others.busy)} is running a command here right now; what "
                                  "changes meanwhile cannot be told apart: undo when it has finished (or --force)")
        theirs = self._written_by_others(turn, others)
        # A submodule's checkout is someone else's repository: reported, never compared or moved.
        movable = [r for r in turn.paths if r not in theirs
                   and GITLINK not in (_mode(turn.changes[r].pre), _mode(turn.changes[r].post))]
        now = {rel: self._capture(rel, like=turn.changes[rel].post) for rel in movable}
        done = {rel for rel in movable if same(now[rel], turn.changes[rel].pre) and not turn.changes[rel].uncertain}
        edited = [rel for rel in movable if rel not in done
                  and (turn.changes[rel].uncertain or not same(now[rel], turn.changes[rel].post))]
        if edited and not force:
            diff = "".join(self._diff(rel, turn.changes[rel].post, now[rel]) for rel in edited)
            uncertain = [r for r in edited if turn.changes[r].uncertain]
            why = (f"; coder was stopped while it was changing {', '.join(uncertain)} (a write or a command cut off), "
                   "so what changed there since cannot be told apart" if uncertain else "")
            return UndoResult([], True, diff, (
                f"undo refused: {', '.join(edited)} changed since turn '{turn.label}' (by you, or another "
                f"program){why}; nothing was restored. Put them back as the turn left them (the diff shows how), "
                "or undo anyway with --force: your versions are then moved into the session's folder"),
                label=turn.label)
        kept, failed = self._move_aside(turn, edited) if edited else ([], [])
        restored, not_restored = self._restore(turn, skip=set(theirs) | {r for r, _ in failed}, done=done)
        failed += not_restored
        commit, removed, why = self._undo_commit(turn) if turn.commit else ("", False, "")
        self._turns.pop()
        self.record({"type": "undo", "turn_number": turn.number, "restored": restored,
                     "not_restored": [list(f) for f in failed], "left_alone": sorted(theirs), "commit_removed": removed})
        message = f"undid '{turn.label}': restored {len(restored)} file(s)"
        if failed:
            message += f", {len(failed)} could not be restored"
        if theirs:
            message += f", left {len(theirs)} another session wrote"
        if commit:
            message += f"; {'removed' if removed else 'kept'} its commit {commit[:10]}" + ("" if removed else f" ({why})")
        return UndoResult(restored, False, "", message, failed, sorted(theirs.items()), turn.label, commit, removed,
                          kept)

    def _written_by_others(self, turn: Turn, others: Others) -> dict[str, str]:
        """{path: why} for the turn's command-made changes another session recorded making while they ran."""
        theirs = {}
        for rel in turn.paths:
            change = turn.changes[rel]
            if rel in turn.by_tools or change.at == (0.0, 0.0):
                continue
            start, end = change.at
            for sid, when, post in others.claims.get(str(self.workspace / rel), []):
                if start - 1 <= when <= end + 1 and same(post, change.post):
                    theirs[rel] = f"session {sid} wrote it while this turn's command ran; left alone"
                    break
        return theirs

    def _restore(self, turn: Turn, skip: set[str], done: set[str]) -> tuple[list[str], list[tuple[str, str]]]:
        restored: list[str] = sorted(done)
        failed: list[tuple[str, str]] = []
        paths = [p for p in turn.paths if p not in skip and p not in done]
        for rel in sorted(paths, key=lambda r: (turn.changes[r].pre is not None, -r.count("/"))):
            change = turn.changes[rel]  # deletions first (deepest first), so a folder can take a file's place
            why = _why_not(change.pre) or (_why_not(change.post) if _mode(change.post) == GITLINK else "")
            if why:
                failed.append((rel, why))
                continue
            try:
                self._put(rel, change.pre)
            except (OSError, PathDenied, GitError) as e:
                failed.append((rel, getattr(e, "strerror", None) or str(e)))
                continue
            restored.append(rel)
        for rel in sorted(turn.new_dirs, key=len, reverse=True):
            try:
                remove(self._policy, self.workspace / rel, directory=True)
            except OSError:
                pass  # files of someone else's are in it now: it stays
        return sorted(restored), failed

    def _put(self, rel: str, entry: Entry | None) -> None:
        path = self.workspace / rel
        if entry is None:
            remove(self._policy, path)
            return
        data = self.objects.blob(entry.oid)
        try:
            remove(self._policy, path, directory=True)  # an empty folder in the way goes; a full one fails
        except OSError:
            pass
        if entry.mode == LINK:
            atomic_symlink(self._policy, path, os.fsdecode(data))
        else:
            atomic_write(self._policy, path, data, entry.perm if entry.perm >= 0 else None)

    def _move_aside(self, turn: Turn, rels: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
        """Before a forced undo: the user's versions, moved (never copied: whatever their size) into the
        session's folder; a path whose version cannot be moved is not restored."""
        where = self._store_dir / "overwritten-by-undo" / f"turn-{turn.number}-{int(time.time())}"
        kept, failed = [], []
        for rel in rels:
            try:
                if move_out(self._policy, self.workspace / rel, where / rel):
                    kept.append(str(where / rel))
            except (OSError, PathDenied) as e:
                failed.append((rel, f"your version could not be moved aside ({getattr(e, 'strerror', None) or e}), "
                               "so it was left as it is"))
        return kept, failed

    def _undo_commit(self, turn: Turn) -> tuple[str, bool, str]:
        """With auto-commit: drop the turn's commit if it is still the branch's tip and was never pushed."""
        assert self.repo is not None
        sha = turn.commit
        branch = self.repo.text("symbolic-ref", "-q", "HEAD", check=False)
        if not branch:
            return sha, False, "HEAD is detached: no branch to take it off"
        if self.repo.resolve(branch) != sha:
            return sha, False, "the branch has moved on since"
        if self.repo.text("for-each-ref", "--contains", sha, "refs/remotes/"):
            return sha, False, "it was pushed"
        parent = self.repo.resolve(sha + "^")
        if not parent:
            return sha, False, "it is the repository's first commit"
        paths = self.objects.read_tree(self.repo.resolve(sha + "^{tree}"))
        before = self.objects.read_tree(self.repo.resolve(parent + "^{tree}"))
        changed = [p for p in paths.keys() | before.keys() if paths.get(p) != before.get(p)]
        # The index gets the parent's entries back for those paths (no work tree read, nothing run).
        lines = [f"{before[p][0]:o} {before[p][1]}\t{p}" if p in before else f"0 {'0' * 40}\t{p}" for p in changed]
        self.repo.run("update-index", "--index-info", stdin=("\n".join(lines) + "\n").encode())
        self.repo.set_ref(branch, parent, sha)
        return sha, True, ""

    # --- looking -------------------------------------------------------------------------------
    @_one_line
    def diff(self) -> str:
        """Everything this session changed, per file, from how it first found each path to now."""
        self._settle()
        return "".join(self._diff(rel, pre, self._capture(rel, like=pre)) for rel, pre in self._origin.items())

    def _diff(self, rel: str, old: Entry | None, new: Entry | None) -> str:
        def data(e: Entry | None) -> bytes | None:
            return self.objects.blob(e.oid) if e is not None and e.kept and e.mode != GITLINK else None

        if same(old, new):
            return ""
        if (old is not None and old.by_stat) or (new is not None and new.by_stat):
            return f"Large file {self.prefix + rel} changed (too large to show)\n"
        return _text_diff(self.prefix + rel, data(old), data(new))

    # --- auto-commit, pruning ------------------------------------------------------------------
    @_one_line
    def auto_commit(self, message: str, runner: Runner | None = None) -> str | None:
        """Commit the last turn's files only (hooks run, through `runner` when given: in the sandbox); the
        user's other staged changes stay staged."""
        if self.repo is None:
            raise CheckpointError("auto-commit needs a git repository")
        self._settle()
        if not self._turns:
            return None
        turn = self._turns[-1]
        theirs = self._written_by_others(turn, self.others())  # another session's file is not ours to commit
        head = self.repo.resolve("HEAD")
        head_tree = self.objects.read_tree(self.repo.resolve("HEAD^{tree}")) if head else {}
        todo = [self.prefix + r for r in turn.paths
                if r not in theirs and _entry_pair(turn.changes[r].post) != head_tree.get(self.prefix + r)]
        if not todo:
            return None
        indexed = set(self.repo.names("ls-files", "-z", "--", *(":(top,literal)" + p for p in todo)))
        new = [p for p in todo if p not in indexed and turn.changes[p[len(self.prefix):]].post is not None]
        argv, env = self.repo.commit_command(todo, new, message, AUTHOR)
        code, output = (runner or _run_here)(argv, env, self.repo.root)
        if code != 0:
            last = next((ln.strip() for ln in reversed(output.splitlines()) if ln.strip()), f"exit status {code}")
            raise CheckpointError(f"git commit failed: {last}")
        turn.commit = self.repo.resolve("HEAD")
        self.record({"type": "commit", "turn": turn.number, "sha": turn.commit})
        return turn.commit

    @_one_line
    def prune(self, keep_days: int = 14) -> None:
        """Drop other sessions' checkpoint refs whose last turn is older than `keep_days`."""
        if self.repo is None:
            return
        cutoff = time.time() - keep_days * 86400
        for ref in self.repo.text("for-each-ref", "--format=%(refname)", REF_ROOT).splitlines():
            if ref != self.ref and self.objects.commit_time(self.repo.resolve(ref)) < cutoff:
                self.repo.run("update-ref", "-d", ref)


def undo_report(result: UndoResult) -> list[str]:
    """An undo's outcome for a person: the line, then each path restored, each not restored and why."""
    lines = [result.message, *(f"  restored {p}" for p in result.restored)]
    lines += [f"  not restored {p}: {why}" for p, why in result.not_restored]
    lines += [f"  left alone {p}: {why}" for p, why in result.left_alone]
    lines += [f"  your version was kept in {k}" for k in result.kept]
    return lines


def claims(session_id: str, project: Path, records: list[dict[str, Any]]) -> dict[str, list[tuple[str, float, Any]]]:
    """What a session's records say it wrote and did not undo: {absolute path: [(session id, when, content)]}."""
    undone = {r.get("turn_number") for r in records if r.get("type") == "undo"}
    out: dict[str, list[tuple[str, float, Any]]] = {}
    for r in records:
        if r.get("type") == "change" and "path" in r and r.get("turn") not in undone:
            out.setdefault(str(project / r["path"]), []).append(
                (session_id, float(r.get("t", 0.0)), Entry.from_json(r.get("post"))))
    return out


def running_command(records: list[dict[str, Any]]) -> bool:
    """Whether a session's last command has no end yet and the process that ran it is alive."""
    last = next((r for r in reversed(records) if r.get("type") in ("command", "command-end")), None)
    return bool(last and last["type"] == "command" and _alive(last))


def running_turn(records: list[dict[str, Any]]) -> bool:
    """Whether a session's last turn has not ended and the process running it is alive."""
    last = next((r for r in reversed(records) if r.get("type") in ("turn", "turn-end")), None)
    return bool(last and last["type"] == "turn" and isinstance(last.get("turn"), int) and _alive(last))


def _me() -> dict[str, Any]:
    return {"pid": os.getpid(), "started": _start_time(os.getpid())}


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


def _alive(record: dict[str, Any]) -> bool:
    pid = record.get("pid")
    return isinstance(pid, int) and bool(record.get("started")) and _start_time(pid) == record.get("started")


def _default_perm(mode: int) -> int:
    return 0o755 if mode == EXEC else 0o644 if mode == BLOB else 0


def _why_not(entry: Entry | None) -> str:
    if entry is None or entry.kept:
        return ""
    if entry.mode == GITLINK:
        return "a submodule: coder does not move another repository's checkout"
    if entry.mode == OTHER:
        return "it was not a file (a folder, FIFO or device) before the turn"
    return f"it was too large to keep ({entry.oid.split()[1] if entry.by_stat else '?'} bytes)"


def _mode(entry: Entry | None) -> int:
    return entry.mode if entry is not None else 0


def _entry_pair(entry: Entry | None) -> tuple[int, str] | None:
    return None if entry is None else (entry.mode, entry.oid)


def _json(entry: Entry | None) -> list[Any] | None:
    return None if entry is None else entry.to_json()


def _run_here(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run a command outside any sandbox (the user chose full access); (exit code, output)."""
    import subprocess

    try:
        r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 1, str(e)
    return r.returncode, r.stdout + r.stderr


def _text_diff(rel: str, old: bytes | None, new: bytes | None) -> str:
    """A unified diff of one file."""
    if old == new:
        return ""
    if b"\0" in (old or b"") or b"\0" in (new or b""):
        return f"Binary files a/{rel} and b/{rel} differ\n"
    a = (old or b"").decode("utf-8", "replace").splitlines(keepends=True)
    b = (new or b"").decode("utf-8", "replace").splitlines(keepends=True)
    lines = difflib.unified_diff(a, b, f"a/{rel}" if old is not None else "/dev/null",
                                 f"b/{rel}" if new is not None else "/dev/null")
    return "".join(ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n" for ln in lines)

