"""search_file against real trees with the real rg binary."""

from __future__ import annotations

import json
import os
import re
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


def test_invalid_regex_one_line_with_the_escaped_form(ctx, tree):
    assert call(ctx, pattern="foo(") == (
        "Error: invalid regular expression foo(: unclosed group; to match the text literally, escape it: foo\\(",
        False,
    )
    out, ok = call(ctx, pattern="a[b.c")
    assert not ok and len(out.splitlines()) == 1
    assert out.startswith("Error: invalid regular expression a[b.c: ") and out.endswith("escape it: a\\[b\\.c")
    # the escaped form it offers is what the model then sends: it finds the text
    (tree / "calls.py").write_text("x = foo(1)\n")
    assert search(ctx, pattern="foo\\(") == "calls.py:1:x = foo(1)"


@pytest.mark.parametrize("pattern", ["*.py", "**/*.ts", "src/*.{ts,tsx}", "*test*"])
def test_glob_instead_of_regex_points_to_glob_files(ctx, tree, pattern):
    out, ok = call(ctx, pattern=pattern)
    assert not ok and len(out.splitlines()) == 1
    head, why, tail = re.fullmatch(r"(.*) \((.+)\); (.*)", out).groups()
    assert head == f"Error: pattern {pattern} is a file-name glob, not a regular expression"
    assert why.startswith("repetition")  # rg's reason
    assert tail == (
        f'to find files by name call glob_files with pattern="{pattern}", to search the contents '
        f'of those files pass glob="{pattern}" with a regex pattern'
    )


def test_line_break_in_pattern_points_to_multiline(ctx, tree):
    assert call(ctx, pattern="fix this\\ndef") == (
        "Error: pattern fix this\\ndef matches a line break; set multiline=true to search across lines",
        False,
    )
    assert search(ctx, pattern="fix this\\ndef", multiline=True) == (
        "app.py:3:# TODO: fix this\napp.py:4:def main():"
    )


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


def test_deny_list_checked_once_per_file(ctx, workspace, monkeypatch):
    for name in ("a.py", "b.py", "c.py"):
        (workspace / name).write_text("import x\n" * 50)
    checked = []
    real = rg.allowed
    monkeypatch.setattr(rg, "allowed", lambda policy, path: checked.append(path) or real(policy, path))
    assert len(search(ctx, pattern="import").splitlines()) == 150
    assert sorted(os.path.basename(p) for p in checked) == ["a.py", "b.py", "c.py"]


class _CountingJson:
    """search_file's `json`, counting the events it parses."""

    def __init__(self):
        self.parsed = 0

    def loads(self, text):
        self.parsed += 1
        return json.loads(text)


def test_matches_past_the_cap_are_counted_without_parsing_them(ctx, workspace, monkeypatch):
    """Once the output is full, the rest is only counted: 20,000 matches parse about MAX_LINES events."""
    for d in range(20):
        (workspace / f"m{d:02}.py").write_text("".join(f"import mod{i}\n" for i in range(1000)))
    counting = _CountingJson()
    monkeypatch.setattr(search_file, "json", counting)
    lines = search(ctx, pattern="import").splitlines()
    assert lines[0] == "m00.py:1:import mod0" and lines[199] == "m00.py:200:import mod199"
    assert lines[200] == "[19800 more lines not shown; narrow the pattern, path or glob]"
    assert counting.parsed < search_file.MAX_LINES + 50


@pytest.mark.parametrize("multiline", [False, True])
def test_count_past_the_cap_with_context_gaps_and_denied_files_is_exact(workspace, tmp_path, multiline):
    """What is only counted adds up as if it were shown: context lines, `--` between groups, no denied file."""
    private = workspace / "private"
    private.mkdir()
    (private / "key.txt").write_text("hit\n" * 500)
    # A hit every 4th line with 1 line of context: groups of 3 lines, a `--` between them (none at the
    # edges of a file); a file after the first starts with `--` too.
    body = "".join("hit\n" if i % 4 == 1 else f"other {i}\n" for i in range(1, 401))
    for name in ("a.txt", "b.txt", "c.txt"):
        (workspace / name).write_text(body)
    ctx = make_ctx(workspace, tmp_path, deny=(private,))
    out = search(ctx, pattern="hit", context_lines=1, multiline=multiline)
    per_file = 100 * 3 - 1 + 99  # the first group has no line before it; 99 separators
    total = 3 * per_file + 2  # a `--` before each later file
    lines = out.splitlines()
    assert lines[-1] == f"[{total - (len(lines) - 1)} more lines not shown; narrow the pattern, path or glob]"
    assert "key.txt" not in out and len(lines) - 1 == search_file.MAX_LINES


def test_long_lines_are_cut(ctx, workspace):
    (workspace / "min.js").write_text("needle" + "x" * 5000 + "\n")
    out = search(ctx, pattern="needle")
    assert out == "min.js:1:needle" + "x" * 294 + "… [column 1 of 5006]"


def test_match_deep_in_a_long_line_is_shown_in_a_window_around_it(ctx, workspace):
    line = "var a=1;" * 3750 + "needle()" + ";b=2" * 5000 + "needle" + "\n"  # 50k characters, minified
    (workspace / "app.min.js").write_text(line)
    (workspace / "other.js").write_text("c" * 1000 + "\n" + "ok needle\n")
    out = search(ctx, pattern="needle").splitlines()
    assert out == [
        "app.min.js:1:…" + ("var a=1;" * 13)[-100:] + "needle()" + (";b=2" * 48)
        + "… [column 30001 of 50014; 1 more match on this line]",
        "other.js:2:ok needle",
    ]
    # the column counts characters, not bytes
    (workspace / "app.min.js").write_text("é" * 1000 + "needle" + "\n")
    assert search(ctx, pattern="needle", path="app.min.js") == (
        "app.min.js:1:…" + "é" * 294 + "needle [column 1001 of 1006]"
    )


def test_context_of_a_long_line_shows_its_start(ctx, workspace):
    (workspace / "a.js").write_text("k" * 1000 + "\nneedle\n")
    assert search(ctx, pattern="needle", context_lines=1) == (
        "a.js-1-" + "k" * 300 + "… [1000 characters]\na.js:2:needle"
    )


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


# --- multiline -----------------------------------------------------------------------------------

SRC = "class Plain(Base):\n    pass\n\nclass Wrapped(\n    Base,\n    Mixin,\n):\n    pass\n"


def test_multiline_is_an_optional_nullable_parameter_of_a_strict_schema():
    schema = search_file.TOOL.schema()
    assert schema["strict"] is True
    assert schema["parameters"]["properties"]["multiline"]["type"] == ["boolean", "null"]
    assert set(schema["parameters"]["required"]) == set(schema["parameters"]["properties"])


def test_multiline_match_shows_every_line_it_spans(ctx, workspace):
    (workspace / "models.py").write_text(SRC)
    pattern = r"class \w+\(.*?\):"
    assert search(ctx, pattern=pattern) == "models.py:1:class Plain(Base):"
    assert search(ctx, pattern=pattern, multiline=True) == (
        "models.py:1:class Plain(Base):\n"
        "models.py:4:class Wrapped(\n"
        "models.py:5:    Base,\n"
        "models.py:6:    Mixin,\n"
        "models.py:7:):"
    )
    assert search(ctx, pattern=pattern, multiline=None) == "models.py:1:class Plain(Base):"


def test_multiline_with_context_and_gaps(ctx, workspace):
    (workspace / "models.py").write_text(SRC)
    assert search(ctx, pattern=r"Mixin,\n\)|Plain", multiline=True, context_lines=1) == (
        "models.py:1:class Plain(Base):\n"
        "models.py-2-    pass\n"
        "--\n"
        "models.py-5-    Base,\n"
        "models.py:6:    Mixin,\n"
        "models.py:7:):\n"
        "models.py-8-    pass"
    )


def test_a_match_over_many_lines_shows_its_head_and_its_end(ctx, workspace):
    body = "".join(f"    line {i}\n" for i in range(1, 101))
    (workspace / "big.py").write_text("def start():\n" + body + "    return END\n")
    out = search(ctx, pattern=r"def start.*END", multiline=True).splitlines()
    assert out[0] == "big.py:1:def start():"
    assert out[10] == "big.py:11:    line 10"
    assert out[11] == "[90 more lines of this match not shown, up to line 101]"
    assert out[12] == "big.py:102:    return END"
    assert len(out) == 13


def test_an_event_too_long_to_read_is_reported(ctx, workspace, monkeypatch):
    monkeypatch.setattr(search_file, "JSON_LINE_BYTES", 4096)
    (workspace / "huge.js").write_text("x" * 10_000 + "needle\n" + "short needle\n")
    assert search(ctx, pattern="needle") == "huge.js: [a match on a line too long to show]\nhuge.js:2:short needle"


def test_multiline_never_shows_a_denied_file(workspace, tmp_path, tree):
    private = tree / "private"
    private.mkdir()
    (private / "key.txt").write_text("TODO\nsecret\n")
    ctx = make_ctx(workspace, tmp_path, deny=(private,))
    for args in ({"multiline": True}, {"multiline": True, "context_lines": 3}, {"glob": "private/*"}):
        out = search(ctx, pattern="TODO.*?secret|TODO", **args)
        assert "secret\n" not in out and "key.txt" not in out, (args, out)
        assert out.startswith("No matches") or "app.py:3:# TODO" in out
