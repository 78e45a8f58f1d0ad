"""search_file against real trees with the real rg binary."""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
import threading
import time
from pathlib import Path

import pytest

from coder.tools import call_tool, rg, search_file
from coder.tools.base import ToolContext
from tests.conftest import make_ctx

APP = "import os\n\n# TODO: fix this\ndef main():\n    pass  # todo later\n"


def search(ctx: ToolContext, **args) -> str:
    return search_file.TOOL.run(ctx, search_file.TOOL.validate_args(args))


def call(ctx: ToolContext, **args) -> tuple[str, bool]:
    res = call_tool(ctx, "search_file", json.dumps(args))
    return res.output, res.ok


@pytest.fixture
def tree(workspace: Path) -> Path:
    (workspace / "app.py").write_text(APP)
    (workspace / "lib").mkdir()
    (workspace / "lib" / "util.py").write_text("x = 1  # TODO remove\n")
    (workspace / "notes.md").write_text("- TODO write docs\n")
    return workspace


def test_matches_with_line_numbers(ctx, tree):
    assert search(ctx, pattern="TODO") == (
        "app.py:3:# TODO: fix this\n"
        "lib/util.py:1:x = 1  # TODO remove\n"
        "notes.md:1:- TODO write docs"
    )


def test_case_insensitive(ctx, tree):
    assert search(ctx, pattern="todo", path="app.py", case_insensitive=True) == (
        "app.py:3:# TODO: fix this\napp.py:5:    pass  # todo later"
    )
    assert search(ctx, pattern="todo", path="app.py") == "app.py:5:    pass  # todo later"


def test_context_lines(ctx, tree):
    assert search(ctx, pattern="def main", context_lines=1) == (
        "app.py-3-# TODO: fix this\napp.py:4:def main():\napp.py-5-    pass  # todo later"
    )


def test_glob_filter(ctx, tree):
    assert search(ctx, pattern="TODO", glob="*.md") == "notes.md:1:- TODO write docs"
    assert search(ctx, pattern="TODO", glob="!*.md") == (
        "app.py:3:# TODO: fix this\nlib/util.py:1:x = 1  # TODO remove"
    )


def test_subfolder_and_file_paths(ctx, tree):
    assert search(ctx, pattern="TODO", path="lib") == "lib/util.py:1:x = 1  # TODO remove"
    assert search(ctx, pattern="TODO", path="lib/util.py") == "lib/util.py:1:x = 1  # TODO remove"
    assert search(ctx, pattern="TODO", path=str(tree / "lib")) == "lib/util.py:1:x = 1  # TODO remove"


def test_pattern_starting_with_dash(ctx, workspace):
    (workspace / "cli.sh").write_text("run --verbose\nrun -q\n")
    assert search(ctx, pattern="--verbose") == "cli.sh:1:run --verbose"


def test_gitignore_respected_outside_git(ctx, tree):
    (tree / ".gitignore").write_text("build/\n*.gen.py\n")
    (tree / "build").mkdir()
    (tree / "build" / "out.py").write_text("# TODO generated\n")
    (tree / "x.gen.py").write_text("# TODO generated\n")
    (tree / ".github").mkdir()
    (tree / ".github" / "ci.yml").write_text("# TODO hidden but not ignored\n")
    assert search(ctx, pattern="TODO") == (
        ".github/ci.yml:1:# TODO hidden but not ignored\n"
        "app.py:3:# TODO: fix this\n"
        "lib/util.py:1:x = 1  # TODO remove\n"
        "notes.md:1:- TODO write docs"
    )


def test_gitignore_respected_inside_git_repo(ctx, tree):
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    (tree / ".gitignore").write_text("lib/\n")
    assert (tree / ".git" / "HEAD").is_file()
    (tree / ".git" / "TODO_NOTES").write_text("TODO inside .git\n")
    assert search(ctx, pattern="TODO") == "app.py:3:# TODO: fix this\nnotes.md:1:- TODO write docs"


def test_invalid_regex(ctx, tree):
    out, ok = call(ctx, pattern="foo(")
    assert not ok
    assert out.startswith("Error: invalid regular expression: regex parse error:")
    assert out.splitlines()[-1] == "error: unclosed group"


def test_no_matches(ctx, tree):
    assert search(ctx, pattern="zzz") == "No matches for /zzz/ in ."
    assert search(ctx, pattern="zzz", path="lib", glob="*.py") == "No matches for /zzz/ in lib (glob *.py)"


def test_cap_note_with_exact_count(ctx, workspace):
    (workspace / "many.txt").write_text("".join(f"hit {i}\n" for i in range(1, 251)))
    lines = search(ctx, pattern="hit").splitlines()
    assert len(lines) == 201
    assert lines[0] == "many.txt:1:hit 1"
    assert lines[199] == "many.txt:200:hit 200"
    assert lines[200] == "[50 more lines not shown; narrow the pattern, path or glob]"


def test_long_lines_are_cut(ctx, workspace):
    (workspace / "min.js").write_text("needle" + "x" * 5000 + "\n")
    out = search(ctx, pattern="needle")
    assert out.startswith("min.js:1:needle")
    assert len(out) < 400


def test_missing_path_suggests(ctx, tree):
    out, ok = call(ctx, pattern="TODO", path="lbi")
    assert (out, ok) == ("Error: No such file or directory: lbi\nDid you mean: lib?", False)


def test_deny_listed_folder_inside_search_tree_is_skipped(workspace, tmp_path, tree):
    private = tree / "private"
    private.mkdir()
    (private / "key.txt").write_text("TODO secret\n")
    ctx = make_ctx(workspace, tmp_path, deny=(private,))
    assert "secret" not in search(ctx, pattern="TODO")
    out, ok = call(ctx, pattern="TODO", path="private")
    assert not ok and out.startswith("Error: reading private is not allowed")


@pytest.fixture
def fresh_rg_lookup():
    rg.find_rg.cache_clear()
    yield
    rg.find_rg.cache_clear()


def test_rg_found_in_installation_without_path(ctx, tree, monkeypatch, fresh_rg_lookup):
    monkeypatch.setenv("PATH", "")
    found = Path(rg.find_rg())
    assert found.parent == Path(sysconfig.get_path("scripts"))
    assert found.name == "rg"
    assert search(ctx, pattern="TODO", path="lib") == "lib/util.py:1:x = 1  # TODO remove"


def test_run_rg_never_hangs(workspace):
    fifo = workspace / "pipe"
    os.mkfifo(fifo)  # rg blocks opening a FIFO nobody writes to
    started = time.monotonic()
    res = rg.run_rg(["-e", "x", "--", str(fifo)], workspace, timeout=0.3)
    assert res.timed_out and res.total == 0
    assert time.monotonic() - started < 5


def test_run_rg_counts_past_the_cap(workspace):
    (workspace / "many.txt").write_text("hit\n" * 1000)
    res = rg.run_rg(["--no-filename", "-e", "hit", "many.txt"], workspace, max_lines=10)
    assert (res.lines, res.total, res.returncode) == (["hit"] * 10, 1000, 0)


def test_run_rg_stops_on_cancel(workspace):
    fifo = workspace / "pipe"
    os.mkfifo(fifo)
    cancel = threading.Event()
    cancel.set()
    res = rg.run_rg(["-e", "x", "--", str(fifo)], workspace, timeout=60, cancel=cancel)
    assert res.timed_out and res.total == 0
