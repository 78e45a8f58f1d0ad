"""Placeholders for absent protected names: held by every running command, removed by the last one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sandbox import placeholders


def test_the_last_holder_removes_them_and_not_before(tmp_path: Path) -> None:
    ws, registry = tmp_path / "ws", tmp_path / "registry"
    ws.mkdir()
    first = placeholders.hold([ws / ".git", ws / ".coder"], registry)
    assert sorted(os.listdir(ws)) == [".coder", ".git"]
    assert oct((ws / ".git").stat().st_mode & 0o777) == oct(placeholders.MODE)
    second = placeholders.hold([ws / ".git", ws / ".coder"], registry)  # already there: shared, not made again
    assert second.created == []
    assert placeholders.release(first) == []
    assert sorted(os.listdir(ws)) == [".coder", ".git"]  # the second command still needs them
    assert placeholders.release(second) == []
    assert os.listdir(ws) == []


def test_a_dead_holder_does_not_keep_them_forever(tmp_path: Path) -> None:
    ws, registry = tmp_path / "ws", tmp_path / "registry"
    ws.mkdir()
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; from sandbox import placeholders; "
            "placeholders.hold([Path(sys.argv[2])], Path(sys.argv[3]))")  # then dies without releasing (kill -9)
    subprocess.run([sys.executable, "-c", code, str(Path(__file__).parents[2]), str(ws / ".coder"), str(registry)],
                   check=True)
    assert (ws / ".coder").is_dir()
    mine = placeholders.hold([ws / ".coder"], registry)
    assert placeholders.release(mine) == []
    assert not (ws / ".coder").exists()
    assert json.loads((registry / "state.json").read_text()) == {"holders": [], "placed": {}}


def test_what_cannot_be_removed_is_reported_and_named(tmp_path: Path) -> None:
    ws, registry = tmp_path / "ws", tmp_path / "registry"
    ws.mkdir()
    guard = placeholders.hold([ws / ".coder", ws / ".git"], registry)
    (ws / ".coder").chmod(0o755)
    (ws / ".coder" / "config.toml").write_text("planted\n")  # by someone outside the sandbox meanwhile
    (ws / ".git").rmdir()
    (ws / ".git").mkdir()  # replaced: no longer the placeholder coder made
    problems = placeholders.release(guard)
    assert len(problems) == 2 and guard.suspect == [ws / ".coder", ws / ".git"]
    assert all("no longer coder's empty placeholder" in p and "left in place" in p for p in problems)
    assert (ws / ".coder" / "config.toml").exists() and (ws / ".git").is_dir()  # nothing of theirs destroyed
