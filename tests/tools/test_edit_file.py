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
    with pytest.raises(ToolError, match="nope.py does not exist; use write_file"):
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
