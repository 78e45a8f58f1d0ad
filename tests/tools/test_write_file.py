"""write_file on real files: creation, overwrite, confinement."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from coder.tools import call_tool
from coder.tools.base import ToolContext, ToolError
from coder.tools.write_file import TOOL
from sandbox.paths import PathDenied


def call(ctx: ToolContext, path: str, content: str) -> str:
    return TOOL.run(ctx, TOOL.validate_args({"path": path, "content": content})).text


def test_create_with_parents(ctx: ToolContext, workspace: Path) -> None:
    assert call(ctx, "a/b/new.py", "x = 1\ny = 2\n") == "Created a/b/new.py (2 lines)"
    assert (workspace / "a" / "b" / "new.py").read_bytes() == b"x = 1\ny = 2\n"
    assert [p.name for p in (workspace / "a" / "b").iterdir()] == ["new.py"]


def test_line_counts(ctx: ToolContext, workspace: Path) -> None:
    assert call(ctx, "empty.txt", "") == "Created empty.txt (0 lines)"
    assert call(ctx, "nonl.txt", "a\nb") == "Created nonl.txt (2 lines)"
    assert call(ctx, "nonl.txt", "one\n") == "Overwrote nonl.txt (1 lines, was 2 lines)"
    assert (workspace / "empty.txt").read_bytes() == b""


def test_utf8_content(ctx: ToolContext, workspace: Path) -> None:
    call(ctx, "u.txt", "héllo ✓\n")
    assert (workspace / "u.txt").read_bytes() == "héllo ✓\n".encode()


def test_overwrite_keeps_mode(ctx: ToolContext, workspace: Path) -> None:
    script = workspace / "run.sh"
    script.write_text("#!/bin/sh\necho old\nexit 0\n")
    script.chmod(0o755)
    assert call(ctx, "run.sh", "#!/bin/sh\necho new\n") == "Overwrote run.sh (2 lines, was 3 lines)"
    assert script.read_text() == "#!/bin/sh\necho new\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


def test_outside_workspace_refused(ctx: ToolContext, workspace: Path, tmp_path: Path) -> None:
    with pytest.raises(PathDenied, match="outside the writable roots"):
        call(ctx, "../escape.txt", "x")
    assert not (tmp_path / "escape.txt").exists()
    with pytest.raises(PathDenied, match="outside the writable roots"):
        call(ctx, str(tmp_path / "abs.txt"), "x")
    assert not (tmp_path / "abs.txt").exists()


def test_into_git_refused(ctx: ToolContext, workspace: Path) -> None:
    (workspace / ".git" / "hooks").mkdir(parents=True)
    with pytest.raises(PathDenied, match=".git is protected"):
        call(ctx, ".git/hooks/pre-commit", "#!/bin/sh\nrm -rf /\n")
    assert list((workspace / ".git" / "hooks").iterdir()) == []


def test_read_only_mode_refused(ro_ctx: ToolContext, workspace: Path) -> None:
    with pytest.raises(PathDenied, match="read-only"):
        call(ro_ctx, "a.txt", "x")
    assert list(workspace.iterdir()) == []


def test_symlink_pointing_outside_refused(ctx: ToolContext, workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_text("keep\n")
    (workspace / "dirlink").symlink_to(outside)
    (workspace / "filelink.txt").symlink_to(outside / "target.txt")
    with pytest.raises(PathDenied, match="outside the writable roots"):
        call(ctx, "dirlink/new.txt", "x")
    with pytest.raises(PathDenied, match="outside the writable roots"):
        call(ctx, "filelink.txt", "x")
    assert sorted(p.name for p in outside.iterdir()) == ["target.txt"]
    assert (outside / "target.txt").read_text() == "keep\n"


def test_directory_refused(ctx: ToolContext, workspace: Path) -> None:
    (workspace / "pkg").mkdir()
    with pytest.raises(ToolError, match="pkg is a directory"):
        call(ctx, "pkg", "x")
    assert (workspace / "pkg").is_dir()


def test_file_where_a_folder_should_be(ctx: ToolContext, workspace: Path) -> None:
    (workspace / "a.txt").write_text("x\n")
    result = call_tool(ctx, "write_file", json.dumps({"path": "a.txt/b.txt", "content": "y"}))
    assert not result.ok and result.output == "Error: write_file: not a directory: a.txt"
    assert (workspace / "a.txt").read_text() == "x\n"


def test_created_file_diff(ctx: ToolContext, workspace: Path) -> None:
    out = TOOL.run(ctx, TOOL.validate_args({"path": "n.txt", "content": "a\nb"}))
    assert out.diff == "--- /dev/null\n+++ b/n.txt\n@@ -0,0 +1,2 @@\n+a\n+b\n"
