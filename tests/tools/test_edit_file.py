"""edit_file on real files: every rule, and a failed edit never touches the file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from coder.tools.base import ToolContext, ToolError
from coder.tools.edit_file import TOOL
from sandbox.paths import PathDenied


def call(ctx: ToolContext, path: str, old: str, new: str, replace_all: bool | None = None) -> str:
    args = {"path": path, "old_string": old, "new_string": new, "replace_all": replace_all}
    return TOOL.run(ctx, TOOL.validate_args(args)).text


def refused(ctx: ToolContext, file: Path, old: str, new: str, match: str, **kw) -> str:
    """Assert the edit fails with `match` and leaves the file byte-for-byte as it was."""
    before = file.read_bytes()
    with pytest.raises(ToolError, match=match) as info:
        call(ctx, file.name, old, new, **kw)
    assert file.read_bytes() == before
    return str(info.value)


@pytest.fixture
def py(workspace: Path) -> Path:
    f = workspace / "m.py"
    f.write_text("import os\n\n\ndef f():\n    return 1\n\n\ndef g():\n    return 2\n")
    return f


def test_single_replacement_and_snippet(ctx: ToolContext, py: Path) -> None:
    out = call(ctx, "m.py", "return 2", "return 20")
    assert py.read_text() == "import os\n\n\ndef f():\n    return 1\n\n\ndef g():\n    return 20\n"
    assert out == "Edited m.py: replaced 1 occurrence\n" "     7\t\n     8\tdef g():\n     9\t    return 20"


def test_snippet_shows_context_around_multiline_change(ctx: ToolContext, py: Path) -> None:
    out = call(ctx, "m.py", "def f():\n    return 1\n", "def f():\n    x = 1\n    return x\n")
    assert out.split("\n")[1:] == [
        "     3\t",
        "     4\tdef f():",
        "     5\t    x = 1",
        "     6\t    return x",
        "     7\t",
        "     8\t",
    ]


def test_deletion(ctx: ToolContext, py: Path) -> None:
    out = call(ctx, "m.py", "import os\n", "")
    assert py.read_text().startswith("\n\ndef f():")
    assert out.startswith("Edited m.py: replaced 1 occurrence\n")


def test_missing_file_suggests_write_file(ctx: ToolContext, workspace: Path) -> None:
    with pytest.raises(ToolError, match="No such file or directory: nope.py; use write_file to create it"):
        call(ctx, "nope.py", "a", "b")
    assert not (workspace / "nope.py").exists()


def test_empty_old_string(ctx: ToolContext, py: Path) -> None:
    refused(ctx, py, "", "x", "old_string is empty")


def test_identical_strings(ctx: ToolContext, py: Path) -> None:
    refused(ctx, py, "return 1", "return 1", "identical")


def test_ambiguous_lists_line_numbers(ctx: ToolContext, py: Path) -> None:
    msg = refused(ctx, py, "    return", "    yield", "occurs 2 times")
    assert "lines 5, 9" in msg and "replace_all" in msg


def test_replace_all(ctx: ToolContext, py: Path) -> None:
    out = call(ctx, "m.py", "    return", "    yield", replace_all=True)
    assert py.read_text().count("    yield") == 2 and "return" not in py.read_text()
    assert out.startswith("Edited m.py: replaced 2 occurrences\n")


def test_replace_all_with_single_match(ctx: ToolContext, py: Path) -> None:
    assert call(ctx, "m.py", "import os", "import sys", replace_all=True).startswith(
        "Edited m.py: replaced 1 occurrence\n"
    )
    assert py.read_text().startswith("import sys\n")


def test_crlf_kept(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "win.txt"
    f.write_bytes(b"one\r\ntwo\r\nthree\r\n")
    call(ctx, "win.txt", "two\nthree\n", "2\n3\n")  # model speaks in "\n"
    assert f.read_bytes() == b"one\r\n2\r\n3\r\n"
    call(ctx, "win.txt", "one\r\n2", "uno\r\ndos")  # or in "\r\n"
    assert f.read_bytes() == b"uno\r\ndos\r\n3\r\n"


def test_mixed_line_endings_matched_raw(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "mixed.txt"
    f.write_bytes(b"a\r\nb\nc\r\n")
    call(ctx, "mixed.txt", "b", "B")
    assert f.read_bytes() == b"a\r\nB\nc\r\n"


def test_latin1_file_kept(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "old.txt"
    f.write_bytes(b"caf\xe9 = 1\nna\xefve = 2\n")
    out = call(ctx, "old.txt", "naïve = 2", "naïve = 3  # déjà")
    assert f.read_bytes() == b"caf\xe9 = 1\nna\xefve = 3  # d\xe9j\xe0\n"
    assert "naïve = 3" in out


def test_latin1_file_refuses_unencodable_text(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "old.txt"
    f.write_bytes(b"caf\xe9\n")
    refused(ctx, f, "café", "café ✓", "latin-1")


def test_bom_kept(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "bom.txt"
    f.write_bytes(b"\xef\xbb\xbfhello\nworld\n")
    call(ctx, "bom.txt", "hello", "hi")
    assert f.read_bytes() == b"\xef\xbb\xbfhi\nworld\n"


def test_mode_kept(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "run.sh"
    f.write_text("#!/bin/sh\necho old\n")
    f.chmod(0o755)
    call(ctx, "run.sh", "old", "new")
    assert f.read_text() == "#!/bin/sh\necho new\n"
    assert stat.S_IMODE(f.stat().st_mode) == 0o755
    assert sorted(p.name for p in workspace.iterdir()) == ["run.sh"]


def test_fuzzy_indentation_uses_file_indentation(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "c.py"
    f.write_text("class C:\n    def m(self):\n        if x:\n            go()\n        return 1\n")
    old = "if x:\n    go()\n"  # the model lost the indentation
    new = "if x and y:\n    go()\n    stop()\n"
    out = call(ctx, "c.py", old, new)
    assert f.read_text() == (
        "class C:\n    def m(self):\n        if x and y:\n            go()\n            stop()\n        return 1\n"
    )
    assert "ignoring indentation and trailing white space" in out
    assert "the file's indentation was used" in out
    assert "     3\t        if x and y:" in out


def test_fuzzy_trailing_whitespace(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "t.txt"
    f.write_bytes(b"alpha   \nbeta\t\ngamma\n")
    out = call(ctx, "t.txt", "alpha\nbeta", "ALPHA\nBETA")
    assert f.read_bytes() == b"ALPHA\nBETA\ngamma\n"
    assert "ignoring indentation" in out


def test_fuzzy_in_crlf_file(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "w.txt"
    f.write_bytes(b"top\r\n\tinner\r\nend\r\n")
    call(ctx, "w.txt", "  inner", "  changed")
    assert f.read_bytes() == b"top\r\n\tchanged\r\nend\r\n"


def test_fuzzy_ambiguous_lists_lines(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "a.py"
    f.write_text("def a():\n    pass\n\ndef b():\n        pass\n")
    msg = refused(ctx, f, "pass  ", "return", "matches 2 places")
    assert "lines 2, 5" in msg


def test_no_match_shows_closest_region(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "s.py"
    f.write_text("".join(f"line {i}\n" for i in range(1, 30)) + "def compute(a, b):\n    return a + b\n")
    msg = refused(ctx, f, "def compute(a, c):\n    return a + c\n", "x", "not found")
    assert "closest region is lines 30-31" in msg
    assert "    30\tdef compute(a, b):\n    31\t    return a + b" in msg


def test_no_match_in_empty_file(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "e.txt"
    f.write_bytes(b"")
    refused(ctx, f, "x", "y", "file is empty")


def test_whitespace_only_old_string_not_fuzzy_matched(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "b.txt"
    f.write_text("a\n\nb\n")
    refused(ctx, f, "   ", "x", "not found")


def test_big_file_no_match_completes(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "big.py"
    f.write_text("".join(f"    value_{i} = compute(alpha_{i % 97}, beta={i * 7})\n" for i in range(20_000)))
    old = "    value_12345 = compute(alpha_26, beta=86415, extra)\n    value_12346 = compute(alpha_27, beta=86422)\n"
    msg = refused(ctx, f, old, "x", "not found")
    assert "closest region is lines 12346-12347" in msg


def test_snippet_capped(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "long.txt"
    f.write_text("start\nend\n")
    out = call(ctx, "long.txt", "start\n", "".join(f"n{i}\n" for i in range(200)))
    numbered = [line for line in out.split("\n")[1:] if "\t" in line]
    assert len(numbered) == 60 and numbered[0] == "     1\tn0"
    assert "more lines" in out.split("\n")[-1]


def test_outside_workspace_refused(ctx: ToolContext, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("a\n")
    with pytest.raises(PathDenied, match="outside the writable roots"):
        call(ctx, str(outside), "a", "b")
    assert outside.read_text() == "a\n"


def test_read_only_mode_refused(ro_ctx: ToolContext, py: Path) -> None:
    before = py.read_bytes()
    with pytest.raises(PathDenied, match="read-only"):
        call(ro_ctx, "m.py", "import os", "import sys")
    assert py.read_bytes() == before


def test_fuzzy_last_line_keeps_final_newline(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "z.txt"
    f.write_text("a\n  tail\n")
    call(ctx, "z.txt", "tail \n", "end")
    assert f.read_bytes() == b"a\n  end\n"


def test_fuzzy_deleting_all_lines(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "y.txt"
    f.write_text("  only\n")
    call(ctx, "y.txt", "only ", "")
    assert f.read_bytes() == b""


def test_diff_for_front_ends_and_the_write_is_announced(ctx: ToolContext, py: Path) -> None:
    seen = []

    class Recorder:  # what a session is told, and when
        def before_write(self, path, content=None):
            seen.append(("before", path, path.read_text(), content))

        def after_write(self, path):
            seen.append(("after", path, path.read_text(), None))

    ctx.recorder = Recorder()
    out = TOOL.run(ctx, TOOL.validate_args({"path": "m.py", "old_string": "return 1", "new_string": "return 10",
                                           "replace_all": None}))
    assert out.diff.startswith("--- a/m.py\n+++ b/m.py\n")
    assert "-    return 1\n+    return 10\n" in out.diff
    old, new = (f"import os\n\n\ndef f():\n    return {n}\n\n\ndef g():\n    return 2\n" for n in (1, 10))
    assert seen == [("before", py, old, new.encode()), ("after", py, new, None)]


def test_missing_file_names_near_paths(ctx: ToolContext, workspace: Path) -> None:
    (workspace / "main.py").write_text("x = 1\n")
    with pytest.raises(ToolError) as info:
        call(ctx, "mian.py", "x = 1", "x = 2")
    assert str(info.value).splitlines() == [
        "No such file or directory: mian.py; use write_file to create it",
        "Did you mean: main.py?",
    ]
    assert not (workspace / "mian.py").exists()


def test_success_marks_the_file_as_seen(ctx: ToolContext, py: Path) -> None:
    call(ctx, "m.py", "return 2", "return 20")
    recorded = ctx.seen[str(py)]
    ctx.saw(py)  # what a read of the file as it is now records
    assert ctx.seen[str(py)] == recorded
    assert not ctx.changed_since_seen(py)


# --- indentation, level by level ------------------------------------------------------------------------


def test_fuzzy_tabs_file_model_spaces_maps_every_level(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "t.py"
    f.write_text("class C:\n\tdef m(self):\n\t\tif x:\n\t\t\tgo()\n\t\treturn 1\n")
    out = call(ctx, "t.py", "    if x:\n        go()\n",
               "    if x:\n        go()\n        if y:\n            stop()\n    done()\n")
    assert f.read_text() == (
        "class C:\n\tdef m(self):\n\t\tif x:\n\t\t\tgo()\n\t\t\tif y:\n\t\t\t\tstop()\n\t\tdone()\n\t\treturn 1\n"
    )
    assert "the file's indentation was used" in out


def test_fuzzy_two_space_model_four_space_file(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "f.py"
    f.write_text("def f():\n    if a:\n        return 1\n    return 2\n")
    call(ctx, "f.py", "def f():\n  if a:\n    return 1\n",
         "def f():\n  if a:\n    if b:\n      return 1\n  else:\n    pass\n")
    assert f.read_text() == (
        "def f():\n    if a:\n        if b:\n            return 1\n    else:\n        pass\n    return 2\n"
    )


def test_fuzzy_new_line_below_the_block_level(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "g.py"
    f.write_text("class A:\n\tdef f(self):\n\t\treturn 1\n")
    call(ctx, "g.py", "    return 1\n", "    return 1\n\ndef g(self):\n    return 2\n")
    assert f.read_text() == "class A:\n\tdef f(self):\n\t\treturn 1\n\n\tdef g(self):\n\t\treturn 2\n"


def test_fuzzy_indentation_that_cannot_be_mapped_is_refused(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "h.py"
    f.write_text("def f():\n    if a:\n        return 1\n")
    msg = refused(ctx, f, "if a:\nreturn 1", "if b:\nreturn 2", "does not map onto the file's")
    assert "lines 1 and 2 of old_string have the same indentation" in msg and "4 spaces" in msg


def test_fuzzy_never_mixes_tabs_and_spaces_in_one_indentation(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "m.txt"  # mostly tabs, one line of spaces: a level below it is neither "    \t" nor a guess
    f.write_text("\ta\n\tb\n\tc\n\tfoo()\n    bar()\n")
    msg = refused(ctx, f, "foo()\n  bar()", "foo()\n  bar()\n    baz()", "does not map onto the file's")
    assert "tabs and spaces" in msg


def test_fuzzy_refuses_to_mix_tabs_into_spaces(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "k.py"
    f.write_text("def a():\n    x = 1\n    y = 2\n    z = 3\ndef b():\n\tq = 1\n")
    msg = refused(ctx, f, "    q = 1", "    if q:\n        q = 1", "does not map onto the file's")
    assert "where the file's lines use tabs" in msg


# --- line endings, line by line -------------------------------------------------------------------------


def test_crlf_file_with_stray_lf_keeps_each_line_ending(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "w.txt"
    f.write_bytes(b"a\r\nb\nc\r\nd\r\n")
    call(ctx, "w.txt", "a\nb\nc\n", "A\nB\nX\nC\n")  # X is new: the file's usual CRLF
    assert f.read_bytes() == b"A\r\nB\nX\r\nC\r\nd\r\n"


def test_replace_all_keeps_the_endings_of_each_occurrence(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "r.txt"
    f.write_bytes(b"x = 1\r\ny = 2\nx = 1\r\ny = 2\r\n")
    out = call(ctx, "r.txt", "x = 1\ny = 2\n", "x = 1\nz = 0\ny = 3\n", replace_all=True)
    assert f.read_bytes() == b"x = 1\r\nz = 0\r\ny = 3\nx = 1\r\nz = 0\r\ny = 3\r\n"
    assert out.startswith("Edited r.txt: replaced 2 occurrences\n")


def test_crlf_old_string_starting_with_a_line_break_matches_once(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "w.txt"
    f.write_bytes(b"a\r\nb\r\nc\n")
    call(ctx, "w.txt", "\nb", "\nB")  # the CRLF before b is one line break, not two places to start
    assert f.read_bytes() == b"a\r\nB\r\nc\n"


def test_lf_file_and_old_string_with_crlf(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "u.txt"
    f.write_bytes(b"a\nb\nc\n")
    call(ctx, "u.txt", "a\r\nb", "x\r\ny")
    assert f.read_bytes() == b"x\ny\nc\n"


# --- encodings ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be", "utf-8-sig"])
def test_wide_and_bom_encodings_kept(ctx: ToolContext, workspace: Path, codec: str) -> None:
    f = workspace / "enc.txt"
    f.write_bytes("hello\nwörld\n".encode(codec))
    out = call(ctx, "enc.txt", "wörld", "welt ✓")
    assert f.read_bytes() == "hello\nwelt ✓\n".encode(codec)
    assert "     2\twelt ✓" in out


def test_latin1_refusal_names_the_character(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "l.txt"
    f.write_bytes(b"caf\xe9 = 1\n")
    msg = refused(ctx, f, "café = 1", "café = '✓'", "cannot store")
    assert "latin-1" in msg and "U+2713" in msg


@pytest.mark.parametrize("content, kind", [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20 + b"abc", "PNG image"),
    (b"\x7fELF\x02\x01abc", "executable (ELF)"),
    (b"abc\x00\x01\x02\x03def\x00", "binary data"),
])
def test_binary_file_refused_naming_what_it_is(ctx: ToolContext, workspace: Path, content: bytes, kind: str) -> None:
    f = workspace / "blob"
    f.write_bytes(content)
    msg = refused(ctx, f, "abc", "xyz", "is not text")
    assert kind in msg


def test_closest_region_shows_no_nul_or_raw_bytes(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "n.txt"  # the NUL is past what the sniffer looks at; 0x85 makes it latin-1
    f.write_bytes(b"x" * 9000 + b"\nline one\nbad \x00\x85 caf\xe9\n")
    msg = refused(ctx, f, "bad thing caf", "x", "closest region is lines 3-3")
    assert "\x00" not in msg and "\x85" not in msg
    assert "     3\tbad \\x00\\x85 café" in msg


def test_utf8_bom_file_with_bad_bytes_keeps_them(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "b.txt"
    f.write_bytes(b"\xef\xbb\xbfhello \xff\nworld\n")
    call(ctx, "b.txt", "world", "there")
    assert f.read_bytes() == b"\xef\xbb\xbfhello \xff\nthere\n"
    msg = refused(ctx, f, "hello \ufffd", "hi", "not found")
    assert "0xFF" in msg and "\udcff" not in msg


# --- what the model meant -------------------------------------------------------------------------------


def test_read_file_line_number_prefixes_removed(ctx: ToolContext, py: Path) -> None:
    out = call(ctx, "m.py", "     8\tdef g():\n     9\t    return 2\n", "     8\tdef g():\n     9\t    return 3\n")
    assert py.read_text().endswith("def g():\n    return 3\n")
    assert "line-number prefixes; they were removed from both old_string and new_string" in out


def test_line_number_prefixes_only_on_old_string(ctx: ToolContext, py: Path) -> None:
    call(ctx, "m.py", "     9\t    return 2", "    return 3")
    assert py.read_text().endswith("def g():\n    return 3\n")


def test_line_number_prefixes_on_some_lines_of_new_string_refused(ctx: ToolContext, py: Path) -> None:
    msg = refused(ctx, py, "     8\tdef g():\n     9\t    return 2", "     8\tdef g():\n    return 3", "not found")
    assert "new_string has read_file's line-number prefixes on some lines only" in msg


def test_line_number_prefixes_that_leave_an_ambiguous_match(ctx: ToolContext, py: Path) -> None:
    msg = refused(ctx, py, "     5\t    return", "     5\t    yield", "not found")
    assert "Without read_file's line-number prefixes old_string occurs 2 times (lines 5, 9)" in msg


def test_literal_newline_escapes_read_as_line_breaks(ctx: ToolContext, py: Path) -> None:
    out = call(ctx, "m.py", "def f():\\n    return 1", "def f():\\n    return 10")
    assert "def f():\n    return 10\n" in py.read_text()
    assert "literal \\n escapes were read as line breaks" in out


def test_literal_escapes_with_a_real_newline_in_new_string_refused(ctx: ToolContext, py: Path) -> None:
    msg = refused(ctx, py, "def f():\\n    return 1", "def f():\n    return 10", "not found")
    assert "new_string has real line breaks while old_string has \\n escapes" in msg


def test_line_breaks_where_the_file_has_escapes_are_named(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "s.py"
    f.write_text('msg = "one\\ntwo"\n')
    msg = refused(ctx, f, 'msg = "one\ntwo"', 'msg = "1\n2"', "not found")
    assert "Line 1 of the file has the two characters \\n" in msg


@pytest.mark.parametrize("file_form, model_form", [("NFC", "NFD"), ("NFD", "NFC")])
def test_unicode_normalization(ctx: ToolContext, workspace: Path, file_form: str, model_form: str) -> None:
    import unicodedata

    f = workspace / "u.txt"
    f.write_text(unicodedata.normalize(file_form, "café = 1\n"))
    out = call(ctx, "u.txt", unicodedata.normalize(model_form, "café = 1"), unicodedata.normalize(model_form, "café = ñ"))
    assert f.read_text() == unicodedata.normalize(file_form, "café = ñ\n")
    assert f"Unicode form {file_form}" in out


def test_typographic_quotes_in_old_string(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "q.py"
    f.write_text("say(\"hi\")\nname = 'x'\n")
    out = call(ctx, "q.py", "say(“hi”)\nname = ‘x’", "say(“hello”)\nname = ‘y’")
    assert f.read_text() == "say(\"hello\")\nname = 'y'\n"
    assert "typographic quotes" in out


def test_typographic_quotes_in_the_file_are_named(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "q.md"
    f.write_text("He said “hi”.\n")
    msg = refused(ctx, f, 'He said "hi".', 'He said "yo".', "not found")
    assert "the file has “ (U+201C) where old_string has \" (U+0022)" in msg


def test_replacement_character_in_latin1_file_names_the_bytes(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "l.txt"
    f.write_bytes(b"x = 0\ncaf\xe9 = 1\n")
    msg = refused(ctx, f, "caf\ufffd = 1", "caf\ufffd = 2", "not found")
    assert "U+FFFD" in msg and "latin-1" in msg and "at line 2 it has bytes 0xE9" in msg


# --- ambiguity, snippets, big files ---------------------------------------------------------------------


def test_overlapping_occurrences_are_ambiguous(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "o.txt"
    f.write_text("x\naaa\n")
    msg = refused(ctx, f, "aa", "b", "occurs 2 times")
    assert "line 2 (2 times)" in msg or "lines 2 (2 times)" in msg
    assert "overlap" in msg
    call(ctx, "o.txt", "aa", "b", replace_all=True)  # left to right, as str.replace
    assert f.read_text() == "x\nba\n"


def test_snippet_and_diff_numbers_after_lines_are_added(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "n.txt"
    f.write_text("".join(f"l{i}\n" for i in range(1, 21)) + "".join(f"l{i}\n" for i in range(1, 21)))
    tool_out = TOOL.run(ctx, TOOL.validate_args({"path": "n.txt", "old_string": "l10\n", "new_string": "a\nb\nc\n",
                                                "replace_all": True}))
    lines = tool_out.text.split("\n")
    assert lines[0] == "Edited n.txt: replaced 2 occurrences"
    assert lines[1:8] == ["     8\tl8", "     9\tl9", "    10\ta", "    11\tb", "    12\tc", "    13\tl11", "    14\tl12"]
    assert lines[8] == "[...]"
    assert lines[9:16] == ["    30\tl8", "    31\tl9", "    32\ta", "    33\tb", "    34\tc", "    35\tl11", "    36\tl12"]
    assert "@@ -8,5 +8,7 @@\n l8\n l9\n-l10\n+a\n+b\n+c\n l11\n l12\n" in tool_out.diff
    assert "@@ -28,5 +30,7 @@\n" in tool_out.diff
    assert f.read_text().count("a\nb\nc\n") == 2


def _big_source(path: Path, blocks: int) -> None:
    path.write_text("".join(
        f"def step_{i}(alpha, beta):\n    result = compute(alpha, beta={i * 7})\n    if result is None:\n"
        "        return None\n    return result\n\n" for i in range(blocks)
    ))


def test_big_file_edit_stays_within_a_small_multiple_of_its_size(ctx: ToolContext, workspace: Path) -> None:
    import tracemalloc

    f = workspace / "big.py"
    _big_source(f, 40_000)  # about 5 MB
    size = f.stat().st_size
    tracemalloc.start()
    try:
        out = TOOL.run(ctx, TOOL.validate_args({
            "path": "big.py", "old_string": "beta=210000)\n", "new_string": "beta=210000, fast=True)\n",
            "replace_all": None}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * size, f"peak {peak / size:.1f}x the file"
    assert "    result = compute(alpha, beta=210000, fast=True)" in f.read_text()
    assert out.diff.startswith("--- a/big.py\n+++ b/big.py\n@@ -180000,5 +180000,5 @@\n")
    assert "180002\t    result = compute(alpha, beta=210000, fast=True)" in out.text


def test_big_file_failed_edit_is_bounded_and_finds_the_region(ctx: ToolContext, workspace: Path) -> None:
    import time
    import tracemalloc

    f = workspace / "big.py"
    _big_source(f, 40_000)
    size = f.stat().st_size
    before = f.read_bytes()
    tracemalloc.start()
    t = time.perf_counter()
    try:
        with pytest.raises(ToolError, match="not found") as info:
            call(ctx, "big.py", "    result = compute(alpha, beta=210000, extra)\n    if result is None:\n", "x")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t < 5
    assert peak < 3 * size, f"peak {peak / size:.1f}x the file"
    assert "closest region is lines 180002-180003" in str(info.value)
    assert f.read_bytes() == before
