"""glob_files on real trees: ** patterns, anchoring, newest first, ignores, caps, the forms models write."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from coder.tools import call_tool, glob_files
from coder.tools.base import ToolContext
from tests.conftest import make_ctx


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
    assert glob(ctx, pattern="lib/*.ts").startswith("No files matching lib/*.ts in .;")


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


# --- patterns as models write them -----------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    ["./src/*.ts", "src//*.ts", "src/./*.ts", ".//src/*.ts", "{ws}/src/*.ts", "{ws}//src/./*.ts"],
)
def test_dot_slash_double_slash_and_absolute_patterns(ctx, tree, pattern):
    assert glob(ctx, pattern=pattern.format(ws=tree)) == "src/a.ts"


def test_absolute_pattern_through_a_symlinked_workspace(ctx, tree, tmp_path):
    (tmp_path / "alias").symlink_to(tree)
    assert glob(ctx, pattern=f"{tmp_path}/alias/src/lib/*.ts") == "src/lib/b.ts"


def test_dot_slash_anchors_a_name_at_the_search_folder(ctx, tree):
    make(tree / "top.ts", 1_000)
    assert glob(ctx, pattern="./*.ts") == "top.ts"
    assert glob(ctx, pattern="./a.ts", path="src") == "src/a.ts"


def test_pattern_repeating_the_search_folder(ctx, tree):
    assert glob(ctx, pattern="src/**/*.ts", path="src") == "src/lib/b.ts\nsrc/lib/deep/c.ts\nsrc/a.ts"
    assert glob(ctx, pattern="src/*.ts", path="src") == "src/a.ts"
    assert glob(ctx, pattern="src/lib/*.ts", path="src/lib") == "src/lib/b.ts"
    # unless the folder really holds a folder of that name
    make(tree / "src" / "src" / "z.ts", 1_000)
    assert glob(ctx, pattern="src/*.ts", path="src") == "src/src/z.ts"


def test_trailing_slash_means_the_files_under_it(ctx, tree):
    assert glob(ctx, pattern="src/lib/") == "src/lib/b.ts\nsrc/lib/deep/c.ts"


@pytest.mark.parametrize(
    ("pattern", "path", "call"),
    [
        ("/etc/*.conf", None, 'path="/etc" and pattern="*.conf"'),
        ("/no/such/dir/**/*.py", None, 'path="/no/such/dir" and pattern="**/*.py"'),
        ("{up}/*.ts", None, 'path="{up}" and pattern="*.ts"'),
        ("../*", None, 'path="{up}" and pattern="*"'),
        ("../other/*.ts", "src", 'path="other" and pattern="*.ts"'),
        ("{ws}/other/*.ts", "src", 'path="other" and pattern="*.ts"'),
    ],
)
def test_pattern_outside_the_search_folder_is_refused_with_the_call_to_make(ctx, tree, pattern, path, call):
    up = str(tree.parent)
    pattern = pattern.format(ws=tree, up=up)
    res = call_tool(ctx, "glob_files", json.dumps({"pattern": pattern, "path": path}))
    where = "the search folder src" if path else "the workspace"
    assert (res.output, res.ok) == (
        f"Error: pattern {pattern} points outside {where} (patterns match relative to path); "
        f"call glob_files with {call.format(up=up)}",
        False,
    )


def test_refusal_for_a_protected_place_tells_nothing_of_what_exists(ctx, tree, secret_dir, monkeypatch):
    monkeypatch.setenv("HOME", str(secret_dir.parent))  # so that ~/secrets is the protected folder
    for pattern in (f"{secret_dir}/id_*", f"{secret_dir}/no_such_*", f"{secret_dir}/missing/dir/*", "~/secrets/*"):
        res = call_tool(ctx, "glob_files", json.dumps({"pattern": pattern, "path": None}))
        assert (res.output, res.ok) == (
            f"Error: pattern {pattern} points outside the workspace, into {secret_dir}, which may not be read",
            False,
        )
    assert glob(ctx, pattern="~/ws/src/*.ts") == "src/a.ts"  # ~ inside the workspace is fine


def test_denied_files_never_listed_from_a_folder_above(ctx, tree, secret_dir):
    parent = secret_dir.parent  # holds the workspace and the secrets
    outs = {}
    for pattern in ("**", "*", "secrets/*", "/secrets/*", f"{secret_dir}/*", "id_rsa", "**/id_*", "secrets"):
        res = call_tool(ctx, "glob_files", json.dumps({"pattern": pattern, "path": str(parent)}))
        outs[pattern] = res.output
        assert "id_rsa" not in res.output.replace(pattern, ""), (pattern, res.output)
    assert "src/a.ts" in outs["**"].splitlines()  # the search itself works
    # a protected folder reads as a missing one: the same answer as for a name that does not exist
    missing = call_tool(ctx, "glob_files", json.dumps({"pattern": "/nothing/*", "path": str(parent)})).output
    assert outs["/secrets/*"] == missing.replace("/nothing", "/secrets")


# --- an empty result says why --------------------------------------------------------------------


def test_empty_result_names_ignored_files(ctx, tree):
    assert glob(ctx, pattern="g.ts") == (
        "No files matching g.ts in .; 1 file matches but is ignored by .gitignore/.ignore (e.g. src/gen/g.ts)"
    )


def test_empty_result_names_the_anchoring(ctx, tree):
    assert glob(ctx, pattern="deep/*.ts") == (
        "No files matching deep/*.ts in .; a pattern with / is anchored at the search folder, "
        "and **/deep/*.ts matches 1 file (e.g. src/lib/deep/c.ts)"
    )


def test_empty_result_names_a_folder(ctx, tree):
    assert glob(ctx, pattern="other") == (
        "No files matching other in .; other is a folder: use other/** for the files under it"
    )


def test_empty_result_says_how_the_pattern_was_read(ctx, tree):
    assert glob(ctx, pattern="./*.js") == (
        "No files matching ./*.js (read as /*.js) in .; a pattern with / is anchored at the search folder, "
        "and **/*.js matches 1 file (e.g. src/x.js)"
    )


def test_hints_never_name_a_denied_file(workspace, tmp_path):
    make(workspace / "keys" / "id.pem", 1_000)
    make(workspace / "keys" / "sub" / "id.pem", 1_000)
    (workspace / ".gitignore").write_text("*.pem\n")
    ctx = make_ctx(workspace, tmp_path, deny=(workspace / "keys",))
    for pattern in ("*.pem", "sub/*.pem", "keys", "keys/*.pem", "/keys/sub/*", "keys/"):
        out = call_tool(ctx, "glob_files", json.dumps({"pattern": pattern, "path": None})).output
        assert "id.pem" not in out and "is a folder" not in out and "ignored" not in out, (pattern, out)


@pytest.fixture
def slow_hint_looks(tmp_path, monkeypatch):
    """rg as installed for the search itself, but the extra looks (`**/` or --no-ignore) take 10 s, after
    printing `$SLOW_FIRST` when it is set: a monorepo's node_modules."""
    real = glob_files.rg.find_rg()
    script = tmp_path / "rg"
    script.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in --no-ignore|"**/"*) '
        '[ -n "$SLOW_FIRST" ] && printf "%s\\n" "$SLOW_FIRST"; exec sleep 10;; esac; done\n'
        f'exec "{real}" "$@"\n'
    )
    script.chmod(0o755)
    monkeypatch.setattr(glob_files.rg, "find_rg", lambda: str(script))
    monkeypatch.setattr(glob_files.rg, "scrub", lambda env: dict(env))  # keep SLOW_FIRST for the script
    return monkeypatch


def test_the_looks_explaining_an_empty_result_share_half_a_second(ctx, tree, slow_hint_looks):
    start = time.monotonic()
    assert glob(ctx, pattern="lib/*.zz") == "No files matching lib/*.zz in ."
    assert time.monotonic() - start < glob_files.HINT_BUDGET + 1.0


def test_a_look_cut_short_says_there_may_be_more(ctx, tree, slow_hint_looks):
    slow_hint_looks.setenv("SLOW_FIRST", str(tree / "src" / "gen" / "g.ts"))
    start = time.monotonic()
    assert glob(ctx, pattern="g.ts") == (
        "No files matching g.ts in .; 1+ files match but are ignored by .gitignore/.ignore (e.g. src/gen/g.ts)")
    assert time.monotonic() - start < glob_files.HINT_BUDGET + 1.0
