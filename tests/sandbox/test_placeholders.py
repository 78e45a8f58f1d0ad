"""Placeholders for absent protected names: held by every running command, removed by the last one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import placeholders

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    d = tmp_path / "ws"
    d.mkdir()
    return d


def test_the_last_holder_removes_them_and_not_before(ws: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    first = placeholders.hold([ws / ".git", ws / ".coder"], registry)
    assert sorted(os.listdir(ws)) == [".coder", ".git"]
    assert oct((ws / ".git").stat().st_mode & 0o777) == oct(placeholders.MODE)
    second = placeholders.hold([ws / ".git", ws / ".coder"], registry)
    assert placeholders.release(first) == []
    assert sorted(os.listdir(ws)) == [".coder", ".git"]  # the second command still needs them
    assert placeholders.release(second) == []
    assert os.listdir(ws) == []


def test_a_coder_with_another_registry_does_not_uncover_a_running_command(ws: Path, tmp_path: Path) -> None:
    """Two coders that keep their records apart (another user, another XDG_STATE_HOME) share the lock."""
    mine = placeholders.hold([ws / ".git"], tmp_path / "registry-a")
    theirs = placeholders.hold([ws / ".git"], tmp_path / "registry-b")
    assert placeholders.release(mine) == []
    assert (ws / ".git").is_dir()  # the other coder's command still runs
    assert placeholders.release(theirs) == []
    assert os.listdir(ws) == []  # the last holder took over the placeholder its maker could not remove
    later = placeholders.hold([ws / ".coder"], tmp_path / "registry-a")  # the maker's next command
    assert placeholders.release(later) == []
    assert os.listdir(ws) == [] and json.loads((tmp_path / "registry-a" / "placeholders.json").read_text()) == {}


def test_a_holder_killed_with_minus_9_holds_nothing(ws: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    code = ("import os, sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; from sandbox import placeholders; "
            "placeholders.hold([Path(sys.argv[2])], Path(sys.argv[3])); os._exit(0)")  # no release: as after kill -9
    subprocess.run([sys.executable, "-c", code, str(ROOT), str(ws / ".coder"), str(registry)], check=True)
    assert (ws / ".coder").is_dir()
    mine = placeholders.hold([ws / ".git"], registry)
    assert placeholders.release(mine) == []
    assert os.listdir(ws) == []  # the dead holder's placeholder went too
    assert json.loads((registry / "placeholders.json").read_text()) == {}


def test_what_changed_while_held_is_reported_and_left_in_place(ws: Path, tmp_path: Path) -> None:
    guard = placeholders.hold([ws / ".coder", ws / ".git"], tmp_path / "registry")
    (ws / ".coder").chmod(0o755)
    (ws / ".coder" / "config.toml").write_text("made by someone outside the sandbox meanwhile\n")
    (ws / ".git").rmdir()
    (ws / ".git").mkdir()  # replaced
    problems = placeholders.release(guard)
    assert len(problems) == 2 and all("changed while the command ran" in p for p in problems), problems
    assert (ws / ".coder" / "config.toml").exists() and (ws / ".git").is_dir()  # nothing of theirs destroyed
    again = placeholders.hold([ws / ".hg"], tmp_path / "registry")
    assert placeholders.release(again) == []  # said once: no longer coder's


def test_the_users_own_folders_are_held_but_never_judged(ws: Path, tmp_path: Path) -> None:
    """The user's repository changes while a command runs (their `git commit`): nothing to report."""
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    guard = placeholders.hold([ws / ".git", ws / ".coder"], tmp_path / "registry")
    (ws / ".git" / "index").write_bytes(b"")  # as git status or a commit would
    (ws / ".git" / "refs" / "heads" / "x").write_text("0" * 40 + "\n")
    assert placeholders.release(guard) == []
    assert (ws / ".git" / "HEAD").exists() and not (ws / ".coder").exists()


def test_what_changed_after_every_holder_let_go_is_the_users(ws: Path, tmp_path: Path) -> None:
    """A coder killed mid-command leaves a placeholder; the user removes it and makes a real repository."""
    registry = tmp_path / "registry"
    code = ("import os, sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; from sandbox import placeholders; "
            "placeholders.hold([Path(sys.argv[2])], Path(sys.argv[3])); os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(ROOT), str(ws / ".git"), str(registry)], check=True)
    (ws / ".git").rmdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    guard = placeholders.hold([ws / ".coder"], registry)
    assert placeholders.release(guard) == []
    assert (ws / ".git" / "HEAD").exists()


def test_a_placeholder_that_cannot_be_made_stops_the_command(ws: Path, tmp_path: Path) -> None:
    (ws / "file").write_text("a file where a folder would have to be\n")
    with pytest.raises(placeholders.Unavailable, match="cannot reserve .*file/.git"):
        placeholders.hold([ws / ".git", ws / "file" / ".git"], tmp_path / "registry")
    assert os.listdir(ws) == ["file"]  # what it had made was let go again
