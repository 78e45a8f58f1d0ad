"""list_dir on real trees: shape, ignore handling, depth, caps, errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from coder.tools import call_tool, list_dir
from coder.tools.base import ToolContext
from tests.conftest import make_ctx


def ls(ctx: ToolContext, **args) -> str:
    return list_dir.TOOL.run(ctx, list_dir.TOOL.validate_args(args))


def call(ctx: ToolContext, **args) -> tuple[str, bool]:
    res = call_tool(ctx, "list_dir", json.dumps(args))
    return res.output, res.ok


def touch(path: Path, text: str = "x\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def tree(workspace: Path) -> Path:
    touch(workspace / "README.md")
    touch(workspace / "src" / "main.py")
    touch(workspace / "src" / "util" / "helpers.py")
    touch(workspace / "src" / "util" / "deep" / "x.py")
    touch(workspace / ".github" / "workflows" / "ci.yml")
    (workspace / "docs").mkdir()
    touch(workspace / ".gitignore", "node_modules/\n*.log\n")
    touch(workspace / "node_modules" / "pkg" / "index.js")
    touch(workspace / "debug.log")
    touch(workspace / ".git" / "HEAD", "ref: refs/heads/main\n")
    return workspace


def test_tree_shape_default_depth(ctx, tree):
    assert ls(ctx) == "\n".join(
        [
            ".github/",
            "  workflows/ (1 file)",
            ".gitignore",
            "docs/",
            "README.md",
            "src/",
            "  main.py",
            "  util/ (2 files)",
        ]
    )


def test_depth_one_collapses_with_counts(ctx, tree):
    assert ls(ctx, depth=1) == "\n".join(
        [".github/ (1 file)", ".gitignore", "docs/ (0 files)", "README.md", "src/ (3 files)"]
    )


def test_deeper_depth_expands(ctx, tree):
    assert ls(ctx, path="src", depth=3) == "\n".join(
        ["main.py", "util/", "  deep/", "    x.py", "  helpers.py"]
    )
    assert ls(ctx, path="src", depth=2) == "\n".join(
        ["main.py", "util/", "  deep/ (1 file)", "  helpers.py"]
    )


def test_ignored_and_vcs_hidden_inside_git_repo(ctx, tree):
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    touch(tree / "src" / "build.log")
    out = ls(ctx, depth=5)
    assert "node_modules" not in out and ".git/" not in out and ".log" not in out
    assert out.splitlines()[:3] == [".github/", "  workflows/", "    ci.yml"]


def test_nested_empty_folders_shown(ctx, workspace):
    (workspace / "a" / "b").mkdir(parents=True)
    touch(workspace / "z.txt")
    assert ls(ctx, depth=3) == "a/\n  b/\nz.txt"


def test_empty_folder_and_only_ignored_content(ctx, workspace):
    touch(workspace / ".gitignore", "cache/\n")
    touch(workspace / "cache" / "blob")
    assert ls(ctx) == ".gitignore"
    (workspace / "empty").mkdir()
    assert ls(ctx, path="empty") == (
        "empty is empty (files ignored by .gitignore and VCS folders are not listed)"
    )


def test_symlink_listed_with_target(ctx, workspace):
    touch(workspace / "real.txt")
    (workspace / "alias.txt").symlink_to("real.txt")
    assert ls(ctx) == "alias.txt -> real.txt\nreal.txt"


NOTE = ("[at most 400 entries are shown, each folder a fair share; "
        "list a subfolder or use a smaller depth for the rest]")


def test_cap_note(ctx, workspace):
    for i in range(450):
        touch(workspace / "many" / f"f{i:03d}.txt")
    lines = ls(ctx).splitlines()
    assert len(lines) == 401  # 400 entries (the folder, 398 files, the rest) and the note
    assert lines[:3] == ["many/", "  f000.txt", "  f001.txt"]
    assert lines[398:] == ["  f397.txt", "  … 52 more files", NOTE]


def many_files(folder: Path, n: int) -> None:
    """`n` empty files, made fast: hard links to one file (rg lists each as a file)."""
    folder.mkdir(parents=True)
    (folder / "f00000.png").touch()
    fd = os.open(folder, os.O_RDONLY)
    try:
        for i in range(1, n):
            os.link("f00000.png", f"f{i:05d}.png", src_dir_fd=fd, dst_dir_fd=fd)
    finally:
        os.close(fd)


@pytest.fixture
def huge(workspace: Path, tmp_path: Path) -> tuple[Path, ToolContext]:
    """assets/ with 20,000 files (and a protected folder in it), next to a small src/."""
    many_files(workspace / "assets", 20_000)
    for i in range(5):
        touch(workspace / "assets" / "private" / f"key{i}")
    touch(workspace / "README.md")
    touch(workspace / "src" / "main.py")
    touch(workspace / "src" / "util" / "helpers.py")
    return workspace, make_ctx(workspace, tmp_path, deny=(workspace / "assets" / "private",))


def test_a_huge_folder_leaves_room_for_its_siblings(huge):
    _, ctx = huge
    lines = ls(ctx).splitlines()
    # 3 entries at the top; of the 397 left, src/ gets the 2 it wants and assets/ the other 395:
    # 394 files and the line for the rest
    assert lines[:3] == ["assets/", "  f00000.png", "  f00001.png"]
    assert lines[394:] == [
        "  f00393.png",
        "  … 19,606 more files",
        "README.md",
        "src/",
        "  main.py",
        "  util/ (1 file)",
        NOTE,
    ]
    assert not any("private" in line or "key" in line for line in lines)


def test_a_huge_folder_leaves_room_for_deeper_levels(huge):
    _, ctx = huge
    lines = ls(ctx, depth=3).splitlines()
    assert len(lines) == 401
    shown = sum(line.startswith("  f") for line in lines)
    assert f"  … {20_000 - shown:,} more files" in lines
    assert lines[-5:-1] == ["src/", "  main.py", "  util/", "    helpers.py"]
    assert ls(ctx, depth=1) == "assets/ (20,000 files)\nREADME.md\nsrc/ (2 files)"


def test_a_cut_folder_shows_its_subfolders_first_and_counts_the_rest(ctx, workspace):
    for i in range(450):
        touch(workspace / "many" / f"d{i:03d}" / "x.txt")
    for i in range(5):
        touch(workspace / "many" / f"a{i}.txt")
    lines = ls(ctx).splitlines()
    assert lines[:3] == ["many/", "  d000/ (1 file)", "  d001/ (1 file)"]
    assert lines[-3:-1] == ["  d397/ (1 file)", "  … 5 more files and 52 more folders"]


def test_deny_listed_folder_left_out(workspace, tmp_path):
    touch(workspace / "keys" / "id_rsa")
    touch(workspace / "ok.txt")
    ctx = make_ctx(workspace, tmp_path, deny=(workspace / "keys",))
    assert ls(ctx) == "ok.txt"


def test_missing_path_suggests(ctx, tree):
    out, ok = call(ctx, path="scr")
    assert (out, ok) == ("Error: No such file or directory: scr\nDid you mean: src?", False)


def test_file_points_to_read_file(ctx, tree):
    out, ok = call(ctx, path="README.md")
    assert (out, ok) == ("Error: README.md is a file, not a directory; use read_file to read it", False)
