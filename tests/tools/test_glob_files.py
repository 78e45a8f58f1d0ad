"""glob_files on real trees: ** patterns, anchoring, newest first, ignores, caps."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from coder.tools import call_tool, glob_files
from coder.tools.base import ToolContext


def glob(ctx: ToolContext, **args) -> str:
    return glob_files.TOOL.run(ctx, glob_files.TOOL.validate_args(args))


def make(path: Path, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x\n")
    os.utime(path, (mtime, mtime))


@pytest.fixture
def tree(workspace: Path) -> Path:
    make(workspace / "src" / "a.ts", 1_000_000)
    make(workspace / "src" / "lib" / "b.ts", 3_000_000)
    make(workspace / "src" / "lib" / "deep" / "c.ts", 2_000_000)
    make(workspace / "src" / "x.js", 4_000_000)
    make(workspace / "src" / "gen" / "g.ts", 5_000_000)  # ignored
    make(workspace / "other" / "d.ts", 2_000_000)
    make(workspace / "node_modules" / "m" / "e.ts", 6_000_000)  # ignored
    (workspace / ".gitignore").write_text("node_modules/\nsrc/gen/\n")
    return workspace


def test_double_star_under_src_newest_first(ctx, tree):
    assert glob(ctx, pattern="**/*.ts", path="src") == "src/lib/b.ts\nsrc/lib/deep/c.ts\nsrc/a.ts"


def test_slash_pattern_is_anchored_at_search_path(ctx, tree):
    assert glob(ctx, pattern="src/**/*.ts") == "src/lib/b.ts\nsrc/lib/deep/c.ts\nsrc/a.ts"
    assert glob(ctx, pattern="lib/*.ts", path="src") == "src/lib/b.ts"
    assert glob(ctx, pattern="lib/*.ts") == "No files matching lib/*.ts in ."


def test_name_pattern_matches_any_depth_ties_by_path(ctx, tree):
    # c.ts and d.ts share an mtime: path order breaks the tie.
    assert glob(ctx, pattern="*.ts") == "src/lib/b.ts\nother/d.ts\nsrc/lib/deep/c.ts\nsrc/a.ts"


def test_ignored_files_excluded_but_hidden_included(ctx, tree):
    make(tree / ".github" / "wf.ts", 500_000)
    out = glob(ctx, pattern="*.ts")
    assert "node_modules" not in out and "gen" not in out
    assert out.splitlines()[-1] == ".github/wf.ts"


def test_cap_note(ctx, workspace):
    for i in range(230):
        make(workspace / "gen" / f"f{i:03d}.py", 1_000_000 + i)
    lines = glob(ctx, pattern="*.py").splitlines()
    assert len(lines) == 201
    assert lines[0] == "gen/f229.py"
    assert lines[199] == "gen/f030.py"
    assert lines[200] == "[30 more files not shown (newest 200 listed); narrow the pattern or path]"


def test_no_match(ctx, tree):
    assert glob(ctx, pattern="*.rs") == "No files matching *.rs in ."


def test_errors(ctx, tree):
    res = call_tool(ctx, "glob_files", json.dumps({"pattern": "*.ts", "path": "scr"}))
    assert (res.output, res.ok) == ("Error: No such file or directory: scr\nDid you mean: src?", False)
    res = call_tool(ctx, "glob_files", json.dumps({"pattern": "*.ts", "path": "src/a.ts"}))
    assert (res.output, res.ok) == (
        "Error: src/a.ts is a file, not a directory; give the folder to search in",
        False,
    )
