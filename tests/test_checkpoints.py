"""Checkpoints and undo against real git repositories (and a plain directory outside git).

A turn's changes are what its tools did: `agent_write` plays a file tool (announce, write, done),
`agent_command` a command (bracketed by snapshots). Anything else a test writes is the user's.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import git
import pytest

from coder import checkpoints as cpmod
from coder.checkpoints import CheckpointError, Checkpoints, Others, claims


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No system or user git config (hooksPath, signing...) leaks into the tests."""
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)


def init_repo(path: Path, commit: bool = True) -> git.Repo:
    path.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(path, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Some User")
        cw.set_value("user", "email", "user@example.com")
    if commit:
        (path / "a.py").write_text("print('a')\n")
        (path / "b.py").write_text("print('b')\n")
        (path / "blob.bin").write_bytes(bytes(range(256)) * 4)
        repo.git.add("-A")
        repo.git.commit("-m", "initial")
    return repo


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    return init_repo(tmp_path / "repo")


def ws(repo: git.Repo) -> Path:
    return Path(repo.working_tree_dir)


def make(repo_or_dir: git.Repo | Path, tmp_path: Path, session: str = "s1",
         records: list[dict[str, Any]] | None = None) -> Checkpoints:
    workspace = ws(repo_or_dir) if isinstance(repo_or_dir, git.Repo) else repo_or_dir
    return Checkpoints(workspace, session, tmp_path / "store" / session,
                       record=records.append if records is not None else None)


def agent_write(cp: Checkpoints, path: Path, data: str | bytes) -> None:
    """What write_file does: announce (with the bytes), write, say it is done."""
    data = data.encode() if isinstance(data, str) else data
    cp.before_write(path, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    cp.after_write(path)


def agent_command(cp: Checkpoints, run: Callable[[], Any]) -> None:
    """What run_command does: a snapshot, the command, a snapshot."""
    cp.before_command()
    run()
    cp.after_command()


def git_state(repo: git.Repo) -> tuple:
    root = ws(repo)
    return (
        repo.git.status("--porcelain", "--untracked-files=all"),
        (root / ".git" / "index").read_bytes(),
        repo.git.rev_parse("HEAD"),
        repo.git.symbolic_ref("HEAD"),
        repo.git.stash("list"),
        repo.git.diff("--cached"),
    )


def test_checkpoints_leave_status_index_head_branch_and_stash_alone(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    (root / "a.py").write_text("stashed\n")
    repo.git.stash("push", "-m", "users stash")
    (root / "a.py").write_text("staged\n")
    repo.git.add("a.py")
    (root / "b.py").write_text("unstaged\n")
    (root / "untracked.txt").write_text("mine\n")
    repo.git.status()  # let git refresh its own index first, so a byte comparison is fair
    before = git_state(repo)

    cp = make(repo, tmp_path)
    cp.begin_turn("look around")
    agent_command(cp, lambda: None)
    agent_write(cp, root / "new.txt", "agent\n")
    assert cp.end_turn() == ["new.txt"]
    (root / "new.txt").unlink()
    assert git_state(repo) == before
    tree = repo.commit(repo.git.rev_parse("refs/coder/checkpoints/s1")).tree  # the turn's images, kept from gc
    assert (tree / "post" / "new.txt").data_stream.read() == b"agent\n"


def test_undo_restores_only_the_agents_files(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    cp = make(repo, tmp_path)
    cp.begin_turn("edit a")
    agent_write(cp, root / "a.py", "print('agent')\n")
    assert cp.end_turn() == ["a.py"]
    (root / "b.py").write_text("print('user')\n")  # the user's own edit, elsewhere

    result = cp.undo()
    assert not result.refused and result.restored == ["a.py"]
    assert (root / "a.py").read_text() == "print('a')\n"
    assert (root / "b.py").read_text() == "print('user')\n"
    assert repo.git.status("--porcelain") == " M b.py"


def test_the_users_edits_during_a_turn_are_not_the_turns(repo: git.Repo, tmp_path: Path) -> None:
    """The user edits one file and creates another while the agent works: undo leaves both alone."""
    root = ws(repo)
    cp = make(repo, tmp_path)
    cp.begin_turn("work")
    agent_write(cp, root / "a.py", "print('agent')\n")
    (root / "b.py").write_text("print('user, meanwhile')\n")
    (root / "notes.md").write_text("the user's new file\n")
    agent_command(cp, lambda: (root / "built.txt").write_text("made by a command\n"))
    assert cp.end_turn() == ["a.py", "built.txt"]

    result = cp.undo()
    assert result.restored == ["a.py", "built.txt"]
    assert (root / "b.py").read_text() == "print('user, meanwhile')\n"
    assert (root / "notes.md").read_text() == "the user's new file\n"
    assert not (root / "built.txt").exists() and (root / "a.py").read_text() == "print('a')\n"


def test_two_sessions_in_one_repository_undo_only_their_own(repo: git.Repo, tmp_path: Path) -> None:
    """Five sessions at once: a command's snapshot sees what the others wrote meanwhile, and their own
    records of writing it (what coder.sessions gathers from their transcripts) keep it theirs."""
    root = ws(repo)
    records: list[list[dict[str, Any]]] = [[] for _ in range(5)]

    def others(me: int) -> Callable[[], Others]:
        def gather() -> Others:
            found = Others()
            for i, mine in enumerate(records):
                if i != me:
                    for path, entries in claims(f"s{i}", root, mine).items():
                        found.claims.setdefault(path, []).extend(entries)
            return found
        return gather

    sessions = [Checkpoints(root, f"s{i}", tmp_path / "store" / f"s{i}", record=records[i].append, others=others(i))
                for i in range(5)]
    for i, cp in enumerate(sessions):
        cp.begin_turn(f"turn {i}")
    for i, cp in enumerate(sessions):  # interleaved, as five concurrent sessions would be
        agent_write(cp, root / f"f{i}.txt", f"session {i}\n")
        agent_command(cp, lambda i=i: (root / f"cmd{i}.txt").write_text(f"command {i}\n"))
    for cp in sessions:
        cp.end_turn()
    result = sessions[0].undo()
    assert result.restored == ["cmd0.txt", "f0.txt"]
    assert result.not_restored == [] and all("wrote it while" in why for _, why in result.left_alone)
    for i in range(1, 5):
        assert (root / f"f{i}.txt").read_text() == f"session {i}\n"
    assert not (root / "f0.txt").exists() and not (root / "cmd0.txt").exists()


def test_undo_refuses_when_the_user_changed_the_same_file_then_force(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    cp = make(repo, tmp_path)
    cp.begin_turn("edit a")
    agent_write(cp, root / "a.py", "print('agent')\n")
    agent_write(cp, root / "b.py", "agent too\n")
    cp.end_turn()
    (root / "a.py").write_text("print('agent')\nprint('user')\n")

    result = cp.undo()
    assert result.refused and result.restored == []
    assert "a.py" in result.message and "b.py" not in result.message and "--force" in result.message
    assert "+print('user')" in result.diff
    assert (root / "a.py").read_text() == "print('agent')\nprint('user')\n"
    assert (root / "b.py").read_text() == "agent too\n"  # nothing was written
    assert cp.can_undo()

    forced = cp.undo(force=True)
    assert forced.restored == ["a.py", "b.py"] and (root / "a.py").read_text() == "print('a')\n"
    assert len(forced.kept) == 1 and Path(forced.kept[0]).read_text() == "print('agent')\nprint('user')\n"


def test_undo_twice_walks_back_two_turns_then_nothing(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    cp = make(repo, tmp_path)
    cp.begin_turn("one")
    agent_write(cp, root / "a.py", "v1\n")
    assert cp.end_turn() == ["a.py"]
    cp.begin_turn("quiet")
    assert cp.end_turn() == []
    cp.begin_turn("two")
    agent_write(cp, root / "a.py", "v2\n")
    agent_write(cp, root / "b.py", "b2\n")
    assert cp.end_turn() == ["a.py", "b.py"]

    assert cp.undo().restored == ["a.py", "b.py"]
    assert (root / "a.py").read_text() == "v1\n" and (root / "b.py").read_text() == "print('b')\n"
    assert cp.undo().restored == ["a.py"]
    assert (root / "a.py").read_text() == "print('a')\n"
    assert not cp.can_undo()
    with pytest.raises(CheckpointError, match="nothing to undo"):
        cp.undo()
    assert repo.git.status("--porcelain") == ""


def test_a_commands_creations_deletions_and_modes_are_put_back(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    (root / "run.sh").write_text("echo hi\n")
    (root / "run.sh").chmod(0o750)
    (root / "link").symlink_to("a.py")
    repo.git.add("run.sh", "link")
    repo.git.commit("-m", "script and link")
    cp = make(repo, tmp_path)
    cp.begin_turn("shuffle")
    new = root / "new dir" / "ünïcødé name.txt"
    agent_write(cp, new, "fresh\n")

    def command() -> None:
        (root / "b.py").unlink()
        (root / "blob.bin").write_bytes(b"\x00\xff" * 10)
        (root / "run.sh").write_text("echo changed\n")
        (root / "run.sh").chmod(0o644)
        (root / "link").unlink()
        (root / "link").write_text("no longer a link\n")

    agent_command(cp, command)
    assert cp.end_turn() == ["b.py", "blob.bin", "link", "new dir/ünïcødé name.txt", "run.sh"]

    assert not cp.undo().refused
    assert not new.exists() and not new.parent.exists()
    assert (root / "b.py").read_text() == "print('b')\n"
    assert (root / "blob.bin").read_bytes() == bytes(range(256)) * 4
    assert (root / "run.sh").read_text() == "echo hi\n"
    assert stat.S_IMODE(os.stat(root / "run.sh").st_mode) == 0o750  # every permission bit, not only +x
    assert (root / "link").is_symlink() and os.readlink(root / "link") == "a.py"
    assert repo.git.status("--porcelain") == ""
    assert not list(root.glob("**/*.coder-tmp"))


def test_ignored_and_large_files_the_tools_write_are_put_back(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    (root / ".gitignore").write_text("*.log\n")
    (root / "build.log").write_text("old log\n")
    big = os.urandom(20 << 20)  # larger than what snapshots keep of untracked files
    (root / "data.bin").write_bytes(big)
    cp = make(repo, tmp_path)
    cp.begin_turn("overwrite")
    agent_write(cp, root / "build.log", "new log\n")
    agent_write(cp, root / "data.bin", "tiny\n")
    assert cp.end_turn() == ["build.log", "data.bin"]
    result = cp.undo()
    assert result.restored == ["build.log", "data.bin"] and result.not_restored == []
    assert (root / "build.log").read_text() == "old log\n" and (root / "data.bin").read_bytes() == big


def test_what_cannot_be_put_back_is_said_not_claimed(repo: git.Repo, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root = ws(repo)
    monkeypatch.setattr(cpmod, "KEEP_FILE_BYTES", 1 << 20)
    (root / "huge.bin").write_bytes(os.urandom(3 << 20))
    (root / "other.bin").write_bytes(os.urandom(12 << 20))  # untracked, over what snapshots keep
    cp = make(repo, tmp_path)
    cp.begin_turn("overwrite")
    agent_write(cp, root / "huge.bin", "small now\n")
    agent_command(cp, lambda: (root / "other.bin").write_bytes(b"also small\n"))
    agent_write(cp, root / "a.py", "edited\n")
    cp.end_turn()
    result = cp.undo()
    assert result.restored == ["a.py"]
    assert sorted(p for p, _ in result.not_restored) == ["huge.bin", "other.bin"]
    assert all("too large to keep" in why for _, why in result.not_restored)
    assert "2 could not be restored" in result.message


def test_line_endings_come_back_byte_for_byte_under_autocrlf(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    with repo.config_writer() as cw:
        cw.set_value("core", "autocrlf", "true")
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\n")
    repo.git.add("win.txt")
    repo.git.commit("-m", "crlf")
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\n")  # as checked out on Windows
    cp = make(repo, tmp_path)
    cp.begin_turn("rewrite")
    agent_command(cp, lambda: (root / "win.txt").write_bytes(b"rewritten\n"))
    cp.end_turn()
    cp.undo()
    assert (root / "win.txt").read_bytes() == b"one\r\ntwo\r\nthree\n"


def test_a_turn_cut_off_by_kill_9_can_be_undone_after_a_restart(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    records: list[dict[str, Any]] = []
    cp = make(repo, tmp_path, records=records)
    cp.begin_turn("cut off")
    agent_write(cp, root / "a.py", "written before the crash\n")
    cp.before_command()
    (root / "made.txt").write_text("by a command that never returned\n")
    # the process dies here: no after_command, no end_turn

    (root / "b.py").write_text("the user, after the crash\n")

    again = make(repo, tmp_path, records=[])
    again.replay(records)
    refused = again.undo()  # what changed after the command began is not told apart from the user's edits
    assert refused.refused and "stopped while it was changing b.py, made.txt" in refused.message
    result = again.undo(force=True)
    assert result.restored == ["a.py", "b.py", "made.txt"]
    assert (root / "a.py").read_text() == "print('a')\n" and not (root / "made.txt").exists()
    assert [Path(k).read_text() for k in result.kept] == ["the user, after the crash\n",
                                                         "by a command that never returned\n"]


def test_a_write_cut_off_is_told_apart_from_an_edit_made_after(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    records: list[dict[str, Any]] = []
    cp = make(repo, tmp_path, records=records)
    cp.begin_turn("cut off")
    cp.before_write(root / "a.py", b"meant\n")
    (root / "a.py").write_bytes(b"meant\n")  # written, then the process died before saying so
    cp.before_write(root / "b.py", b"never written\n")  # announced, then the process died
    again = make(repo, tmp_path, records=[])
    again.replay(records)
    assert again.undo().restored == ["a.py"] and (root / "a.py").read_text() == "print('a')\n"
    assert (root / "b.py").read_text() == "print('b')\n"


def test_a_stale_ref_lock_from_a_crash_does_not_stop_later_turns(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    lock = root / ".git" / "refs" / "coder" / "checkpoints" / "s1.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    old = time.time() - 60
    os.utime(lock, (old, old))
    cp = make(repo, tmp_path)
    cp.begin_turn("after a crash")
    agent_write(cp, root / "a.py", "x\n")
    assert cp.end_turn() == ["a.py"]
    assert repo.git.rev_parse("refs/coder/checkpoints/s1") and not lock.exists()


def test_a_submodules_move_is_reported_not_restored(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    sub = init_repo(tmp_path / "sub")
    subprocess.run(["git", "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(ws(sub)), "sub"],
                   cwd=root, check=True, capture_output=True)
    repo.git.commit("-m", "sub")
    (ws(sub) / "c.py").write_text("c\n")
    sub.git.add("c.py")
    sub.git.commit("-m", "more")
    cp = make(repo, tmp_path)
    cp.begin_turn("bump")

    def bump() -> None:
        subprocess.run(["git", "-c", "protocol.file.allow=always", "pull", "-q"], cwd=root / "sub", check=True,
                       capture_output=True)
        subprocess.run(["git", "add", "sub"], cwd=root, check=True)

    agent_command(cp, bump)
    assert cp.end_turn() == ["sub"]
    result = cp.undo()
    assert result.restored == [] and result.not_restored[0][0] == "sub" and "submodule" in result.not_restored[0][1]


def test_store_dir_inside_the_workspace_is_never_snapshotted(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    store = root / ".coder" / "sessions" / "inner"
    cp = Checkpoints(root, "inner", store)
    cp.begin_turn("edit")
    agent_command(cp, lambda: (store / "copy-of-something").write_text("session data\n"))
    agent_write(cp, root / "a.py", "x\n")
    assert cp.end_turn() == ["a.py"]
    assert cp.undo().restored == ["a.py"]


def test_repo_without_commits(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "fresh", commit=False)
    root = ws(repo)
    (root / "draft.md").write_text("draft\n")
    cp = make(repo, tmp_path)
    cp.begin_turn("write")
    agent_write(cp, root / "draft.md", "rewritten\n")
    agent_write(cp, root / "src" / "main.py", "pass\n")
    assert cp.end_turn() == ["draft.md", "src/main.py"]
    assert "+rewritten" in cp.diff()
    assert cp.undo().restored == ["draft.md", "src/main.py"]
    assert (root / "draft.md").read_text() == "draft\n" and not (root / "src").exists()
    assert not repo.head.is_valid()  # still unborn: no commit was made on the user's branch


def test_workspace_in_a_subdirectory_of_the_repo(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    (root / "pkg").mkdir()
    (root / "pkg" / "mod.py").write_text("x = 1\n")
    repo.git.add("-A")
    repo.git.commit("-m", "pkg")
    cp = Checkpoints(root / "pkg", "sub", tmp_path / "store")
    cp.begin_turn("edit")

    def command() -> None:
        (root / "pkg" / "mod.py").write_text("x = 2\n")
        (root / "pkg" / "added.py").write_text("y = 1\n")
        (root / "a.py").write_text("outside the workspace\n")

    agent_command(cp, command)
    assert cp.end_turn() == ["added.py", "mod.py"]
    assert "pkg/mod.py" in cp.diff() and "a.py" not in cp.diff().replace("pkg/", "")
    assert cp.undo().restored == ["added.py", "mod.py"]
    assert (root / "pkg" / "mod.py").read_text() == "x = 1\n" and not (root / "pkg" / "added.py").exists()
    assert (root / "a.py").read_text() == "outside the workspace\n"


def test_outside_git_undo_uses_a_private_store(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    (root / "keep.txt").write_text("original\n")
    (root / "tool.sh").write_text("echo\n")
    (root / "tool.sh").chmod(0o750)
    cp = make(root, tmp_path)
    assert not cp.in_git
    cp.begin_turn("one")
    agent_write(cp, root / "keep.txt", "changed once\n")
    agent_write(cp, root / "keep.txt", "changed twice\n")
    agent_write(cp, root / "tool.sh", b"\x00binary\x01")
    agent_write(cp, root / "dir x" / "näme.txt", "new\n")
    assert cp.end_turn() == ["dir x/näme.txt", "keep.txt", "tool.sh"]
    assert list((tmp_path / "store" / "s1" / "objects").iterdir())
    assert "+changed twice" in cp.diff()
    cp.begin_turn("two")
    agent_write(cp, root / "keep.txt", "turn two\n")
    cp.end_turn()
    (root / "keep.txt").write_text("the user's hand edit\n")

    refused = cp.undo()
    assert refused.refused and "keep.txt" in refused.message and "+the user's hand edit" in refused.diff
    assert (root / "keep.txt").read_text() == "the user's hand edit\n"
    (root / "keep.txt").write_text("turn two\n")  # the user puts it back
    assert cp.undo().restored == ["keep.txt"]
    assert (root / "keep.txt").read_text() == "changed twice\n"
    assert cp.undo().restored == ["dir x/näme.txt", "keep.txt", "tool.sh"]
    assert (root / "keep.txt").read_text() == "original\n"
    assert (root / "tool.sh").read_text() == "echo\n" and stat.S_IMODE(os.stat(root / "tool.sh").st_mode) == 0o750
    assert not (root / "dir x").exists()
    with pytest.raises(CheckpointError, match="nothing to undo"):
        cp.undo()


def test_undo_never_follows_a_symlink_out_of_the_workspace(tmp_path: Path) -> None:
    root, outside = tmp_path / "plain", tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    (root / "d" / "f.txt").write_text("before\n")
    cp = make(root, tmp_path)
    cp.begin_turn("edit")
    agent_write(cp, root / "d" / "f.txt", "after\n")
    cp.end_turn()
    (root / "d" / "f.txt").rename(outside / "f.txt")  # d becomes a link to a look-alike outside
    (root / "d").rmdir()
    (root / "d").symlink_to(outside)

    result = cp.undo()  # d/f.txt is not reachable any more: as far as undo sees, it was changed since
    assert result.refused and "d/f.txt" in result.message
    forced = cp.undo(force=True)
    assert forced.restored == [] and "d/f.txt" in forced.not_restored[0][0]
    assert (outside / "f.txt").read_text() == "after\n"


def test_a_folder_swapped_for_a_symlink_is_never_read_through(repo: git.Repo, tmp_path: Path) -> None:
    """The model replaces a tracked folder with a link to a secret place: coder records the link,
    never the secret files behind it."""
    root = ws(repo)
    (root / "conf").mkdir()
    (root / "conf" / "id_rsa").write_text("placeholder\n")
    repo.git.add("-A")
    repo.git.commit("-m", "conf")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "id_rsa").write_text("PRIVATE-KEY-CANARY\n")
    cp = make(repo, tmp_path)
    cp.begin_turn("swap")

    def swap() -> None:
        (root / "conf" / "id_rsa").unlink()
        (root / "conf").rmdir()
        (root / "conf").symlink_to(secret)

    agent_command(cp, swap)
    assert cp.end_turn() == ["conf", "conf/id_rsa"]
    tree = repo.commit(repo.git.rev_parse("refs/coder/checkpoints/s1")).tree
    blobs = [b.data_stream.read() for b in tree.traverse() if b.type == "blob"]
    assert not any(b"CANARY" in data for data in blobs)
    assert cp.undo().restored == ["conf", "conf/id_rsa"]
    assert (root / "conf").is_dir() and (root / "conf" / "id_rsa").read_text() == "placeholder\n"
    assert (secret / "id_rsa").read_text() == "PRIVATE-KEY-CANARY\n"


def test_auto_commit_commits_only_the_turns_files_and_runs_hooks(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    (root / "staged.txt").write_text("user staged\n")
    repo.git.add("staged.txt")
    (root / "b.py").write_text("user unstaged\n")
    marker = tmp_path / "hook-ran"
    hook = root / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch '{marker}'\n")
    hook.chmod(0o755)
    cp = make(repo, tmp_path)
    assert cp.auto_commit("nothing yet") is None
    cp.begin_turn("feature")
    agent_write(cp, root / "a.py", "print('feature')\n")
    agent_write(cp, root / "new module.py", "NEW = 1\n")
    cp.end_turn()

    sha = cp.auto_commit("coder: feature")
    assert sha and repo.head.commit.hexsha == sha
    commit = repo.commit(sha)
    assert (commit.author.name, commit.author.email) == ("coder", "coder@localhost")
    assert commit.message.strip() == "coder: feature"
    assert sorted(commit.stats.files) == ["a.py", "new module.py"]
    assert marker.exists(), "the pre-commit hook did not run"
    assert repo.git.diff("--cached", "--name-only") == "staged.txt"
    assert repo.git.diff("--name-only") == "b.py"
    assert repo.git.status("--porcelain").splitlines() == [" M b.py", "A  staged.txt"]
    assert cp.auto_commit("again") is None  # the turn's files are committed already


def test_undo_of_an_auto_committed_turn_removes_its_commit(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    start = repo.head.commit.hexsha
    cp = make(repo, tmp_path)
    cp.begin_turn("feature")
    agent_write(cp, root / "a.py", "print('feature')\n")
    agent_write(cp, root / "new.py", "NEW = 1\n")
    cp.end_turn()
    sha = cp.auto_commit("coder: feature")
    result = cp.undo()
    assert result.commit == sha and result.commit_removed and "removed its commit" in result.message
    assert repo.head.commit.hexsha == start
    assert repo.git.status("--porcelain") == ""  # files, index and branch as before the turn


def test_an_auto_commit_the_branch_moved_past_stays(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    cp = make(repo, tmp_path)
    cp.begin_turn("feature")
    agent_write(cp, root / "a.py", "print('feature')\n")
    cp.end_turn()
    sha = cp.auto_commit("coder: feature")
    (root / "b.py").write_text("the user's next commit\n")
    repo.git.commit("-am", "user")
    result = cp.undo()
    assert result.commit == sha and not result.commit_removed and "moved on" in result.message
    assert repo.head.commit.parents[0].hexsha == sha
    assert (root / "a.py").read_text() == "print('a')\n"


def test_auto_commit_failing_hook_is_one_line_and_leaves_the_index(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    hook = root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'lint failed: trailing space' >&2\nexit 1\n")
    hook.chmod(0o755)
    cp = make(repo, tmp_path)
    cp.begin_turn("feature")
    agent_write(cp, root / "created.py", "x = 1\n")
    cp.end_turn()
    with pytest.raises(CheckpointError, match="lint failed") as err:
        cp.auto_commit("coder: feature")
    assert "\n" not in str(err.value)
    assert repo.git.status("--porcelain") == "?? created.py"
    assert repo.head.commit.message.strip() == "initial"
    assert repo.git.ls_files("created.py") == ""  # the intent-to-add entry is gone again


def test_diff_shows_the_agents_change_and_not_the_users(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    cp = make(repo, tmp_path)
    assert cp.diff() == ""
    cp.begin_turn("edit")
    agent_write(cp, root / "a.py", "print('agent')\n")
    cp.end_turn()
    (root / "b.py").write_text("print('user')\n")
    text = cp.diff()
    assert "a/a.py" in text and "-print('a')" in text and "+print('agent')" in text
    assert "b.py" not in text


def test_prune_removes_old_checkpoint_refs_only(repo: git.Repo, tmp_path: Path) -> None:
    tree = repo.head.commit.tree.hexsha
    old_date = f"{int(time.time()) - 30 * 86400} +0000"
    env = {"GIT_COMMITTER_DATE": old_date, "GIT_AUTHOR_DATE": old_date}
    old = repo.git.commit_tree(tree, "-m", "old", env=env)
    repo.git.update_ref("refs/coder/checkpoints/old-session", old)
    recent = repo.git.commit_tree(tree, "-m", "recent")
    repo.git.update_ref("refs/coder/checkpoints/recent-session", recent)
    cp = make(repo, tmp_path)
    cp.begin_turn("t")
    agent_write(cp, ws(repo) / "a.py", "x\n")
    cp.end_turn()

    cp.prune(keep_days=14)
    refs = repo.git.for_each_ref("--format=%(refname)", "refs/coder/").split()
    assert refs == ["refs/coder/checkpoints/recent-session", "refs/coder/checkpoints/s1"]


def test_errors_are_one_line_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a directory"):
        Checkpoints(tmp_path / "missing", "s", tmp_path / "store")
    cp = make(tmp_path, tmp_path)
    with pytest.raises(CheckpointError, match="git repository"):
        cp.auto_commit("x")


def test_a_large_untracked_file_a_command_touched_is_reported_not_refused(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    (root / "dump.bin").write_bytes(os.urandom(12 << 20))  # untracked, over what snapshots keep
    cp = make(repo, tmp_path)
    cp.begin_turn("touch it")
    agent_command(cp, lambda: (root / "dump.bin").write_bytes(os.urandom(13 << 20)))
    cp.end_turn()
    result = cp.undo()
    assert not result.refused and result.not_restored[0][0] == "dump.bin"
    assert "too large to keep" in result.not_restored[0][1]


def test_force_moves_a_version_too_large_to_copy(repo: git.Repo, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = ws(repo)
    monkeypatch.setattr(cpmod, "KEEP_FILE_BYTES", 1 << 20)
    cp = make(repo, tmp_path)
    cp.begin_turn("write")
    agent_write(cp, root / "out.txt", "the agent's\n")
    cp.end_turn()
    mine = os.urandom(3 << 20)  # the user grew it past the budget
    (root / "out.txt").write_bytes(mine)
    result = cp.undo(force=True)
    assert not (root / "out.txt").exists()  # the turn had created it
    assert len(result.kept) == 1 and Path(result.kept[0]).read_bytes() == mine


def test_a_file_name_that_is_not_utf8_is_recorded_and_undone(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    records: list[dict[str, Any]] = []
    cp = make(repo, tmp_path, records=records)
    cp.begin_turn("odd names")
    name = os.fsdecode(b"caf\xe9.txt")
    agent_command(cp, lambda: ((root / name).write_text("x\n"), (root / "zz.txt").write_text("z\n")))
    assert cp.end_turn() == [name, "zz.txt"]
    from coder.transcript import Transcript, load

    log = Transcript(tmp_path / "t.jsonl")
    log.write({"type": "header"})
    for r in records:
        log.write(r)
    log.close()
    assert not log.failure
    again = make(repo, tmp_path, records=[])
    assert again.replay(load(tmp_path / "t.jsonl").records) == []
    assert again.undo().restored == [name, "zz.txt"]
    assert not (root / name).exists()


def test_an_undo_cut_off_half_way_finishes_the_next_time(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    cp = make(repo, tmp_path)
    cp.begin_turn("two files")
    agent_write(cp, root / "a.py", "A\n")
    agent_write(cp, root / "b.py", "B\n")
    cp.end_turn()
    (root / "a.py").write_text("print('a')\n")  # what the first undo got to before it was killed
    result = cp.undo()
    assert not result.refused and result.restored == ["a.py", "b.py"]
    assert (root / "b.py").read_text() == "print('b')\n"


def test_another_sessions_old_write_does_not_claim_a_later_command(repo: git.Repo, tmp_path: Path) -> None:
    """A claim counts only while our command ran, and never from a turn its session undid."""
    root = ws(repo)
    old = {"type": "change", "turn": 1, "path": "gen.txt", "post": None, "t": time.time() - 3600}
    cp = make(repo, tmp_path)
    cp.others = lambda: Others(claims=claims("other", root, [old]))
    cp.begin_turn("generate")
    agent_command(cp, lambda: (root / "gen.txt").write_text("generated\n"))
    cp.end_turn()
    result = cp.undo()
    assert result.restored == ["gen.txt"] and result.left_alone == []


def test_undo_waits_for_another_sessions_running_command(repo: git.Repo, tmp_path: Path) -> None:
    root = ws(repo)
    cp = make(repo, tmp_path)
    cp.begin_turn("write")
    agent_write(cp, root / "a.py", "A\n")
    cp.end_turn()
    cp.others = lambda: Others(busy=["20260101-000000-abcdef"])
    with pytest.raises(CheckpointError, match="is running a command here right now"):
        cp.undo()
    assert cp.undo(force=True).restored == ["a.py"]
