"""read_file on real files: numbering, windows, cuts, binary/encoding handling, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from coder.tools import call_tool, read_file
from coder.tools.base import MAX_OUTPUT_CHARS, ToolContext, ToolError
from sandbox.paths import PathDenied


def read(ctx: ToolContext, **args) -> str:
    return read_file.TOOL.run(ctx, read_file.TOOL.validate_args(args))


def call(ctx: ToolContext, **args) -> tuple[str, bool]:
    res = call_tool(ctx, "read_file", json.dumps(args))
    return res.output, res.ok


def numbered(n: int, text: str) -> str:
    return f"{n:>6}\t{text}"


def test_numbered_lines_exact(ctx, workspace: Path):
    (workspace / "f.txt").write_text("alpha\nbeta\n\ngamma")
    assert read(ctx, path="f.txt") == "     1\talpha\n     2\tbeta\n     3\t\n     4\tgamma"


def test_crlf_line_endings_are_not_shown(ctx, workspace: Path):
    (workspace / "w.txt").write_bytes(b"one\r\ntwo\r\n")
    assert read(ctx, path="w.txt") == "     1\tone\n     2\ttwo"


def test_offset_and_limit_window_with_continue_note(ctx, workspace: Path):
    (workspace / "f.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    out = read(ctx, path="f.txt", offset=3, limit=2)
    assert out.splitlines() == [
        numbered(3, "line 3"),
        numbered(4, "line 4"),
        "",
        "(showing lines 3-4 of 10; call read_file with offset=5 to read more)",
    ]


def test_window_reaching_the_end_has_no_note(ctx, workspace: Path):
    (workspace / "f.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    assert read(ctx, path="f.txt", offset=9, limit=50) == "\n".join(
        [numbered(9, "line 9"), numbered(10, "line 10")]
    )


def test_default_window_of_long_file(ctx, workspace: Path):
    (workspace / "big.txt").write_text("".join(f"x{i}\n" for i in range(1, 2501)))
    lines = read(ctx, path="big.txt").splitlines()
    assert lines[0] == numbered(1, "x1")
    assert lines[1999] == numbered(2000, "x2000")
    assert lines[2000:] == [
        "",
        "(showing lines 1-2000 of 2500; call read_file with offset=2001 to read more)",
    ]
    assert read(ctx, path="big.txt", offset=2001).splitlines()[-1] == numbered(2500, "x2500")


def test_offset_past_end_says_how_many_lines(ctx, workspace: Path):
    (workspace / "f.txt").write_text("a\nb\nc\n")
    out, ok = call(ctx, path="f.txt", offset=4)
    assert not ok
    assert out == "Error: offset 4 is past the end of f.txt: the file has 3 lines"


def test_bad_offset_and_limit(ctx, workspace: Path):
    (workspace / "f.txt").write_text("a\n")
    assert read(ctx, path="f.txt", offset=0) == numbered(1, "a")  # 0 is read as "from the top"
    with pytest.raises(ToolError, match="offset must be a 1-based line number"):
        read(ctx, path="f.txt", offset=-5)
    with pytest.raises(ToolError, match="limit must be at least 1"):
        read(ctx, path="f.txt", limit=0)


def test_long_line_is_cut_with_marker(ctx, workspace: Path):
    (workspace / "min.js").write_text("a" * 12345 + "\nshort\n")
    assert read(ctx, path="min.js").splitlines() == [
        numbered(1, "a" * 2000 + "... [line truncated: 12345 chars]"),
        numbered(2, "short"),
    ]


def test_binary_file_refused_with_size(ctx, workspace: Path):
    (workspace / "blob.bin").write_bytes(b"ELF\x00" + bytes(range(256)) * 4)
    assert read(ctx, path="blob.bin") == "Binary file: blob.bin (1028 bytes); not shown"


def test_non_utf8_bytes_are_replaced(ctx, workspace: Path):
    (workspace / "latin.txt").write_bytes(b"caf\xe9 cr\xe8me\nok\n")
    assert read(ctx, path="latin.txt") == "     1\tcaf\ufffd cr\ufffdme\n     2\tok"


def test_empty_file(ctx, workspace: Path):
    (workspace / "empty.txt").write_bytes(b"")
    assert read(ctx, path="empty.txt") == "empty.txt is empty (0 bytes)"


def test_missing_file_suggests_near_names(ctx, workspace: Path):
    (workspace / "src").mkdir()
    (workspace / "src" / "main.py").write_text("x\n")
    (workspace / "src" / "mains.py").write_text("x\n")
    (workspace / "src" / "other.txt").write_text("x\n")
    out, ok = call(ctx, path="src/mian.py")
    assert not ok
    assert out == (
        "Error: No such file or directory: src/mian.py\n"
        "Did you mean: src/main.py, src/mains.py?"
    )


def test_missing_folder_in_path_suggests_the_folder(ctx, workspace: Path):
    (workspace / "src").mkdir()
    out, ok = call(ctx, path="scr/main.py")
    assert out == "Error: No such file or directory: scr/main.py\nDid you mean: src?"


def test_missing_file_without_near_names(ctx, workspace: Path):
    out, ok = call(ctx, path="nothing_like_it.txt")
    assert (out, ok) == ("Error: No such file or directory: nothing_like_it.txt", False)


def test_directory_points_to_list_dir(ctx, workspace: Path):
    (workspace / "pkg").mkdir()
    out, ok = call(ctx, path="pkg")
    assert (out, ok) == ("Error: pkg is a directory, not a file; use list_dir to see its contents", False)


def test_deny_listed_secret_refused(ctx, secret_dir: Path):
    with pytest.raises(PathDenied, match="not allowed"):
        read(ctx, path=str(secret_dir / "id_rsa"))
    out, ok = call(ctx, path=str(secret_dir / "id_rsa"))
    assert not ok and "PRIVATE KEY" not in out


def test_symlink_into_secret_refused(ctx, workspace: Path, secret_dir: Path):
    (workspace / "innocent.txt").symlink_to(secret_dir / "id_rsa")
    out, ok = call(ctx, path="innocent.txt")
    assert not ok
    assert out.startswith("Error: reading innocent.txt is not allowed")


def test_file_outside_workspace_not_denied_is_readable(ro_ctx, tmp_path: Path):
    outside = tmp_path / "outside.txt"
    outside.write_text("hello from outside\n")
    assert read(ro_ctx, path=str(outside)) == numbered(1, "hello from outside")


def test_output_stays_bounded(ctx, workspace: Path):
    (workspace / "wide.txt").write_text("".join(f"{i:05d}" + "y" * 195 + "\n" for i in range(1, 5001)))
    out = read(ctx, path="wide.txt", limit=5000)
    assert len(out) < MAX_OUTPUT_CHARS
    *body, blank, note = out.splitlines()
    last = len(body)
    assert 150 <= last < 5000
    assert body == [numbered(i, f"{i:05d}" + "y" * 195) for i in range(1, last + 1)]
    assert blank == ""
    assert note == (
        f"(showing lines 1-{last} of 5000; output limit of {MAX_OUTPUT_CHARS} chars reached; "
        f"call read_file with offset={last + 1} to read more)"
    )
    # The suggested offset continues exactly where the window stopped.
    nxt = read(ctx, path="wide.txt", offset=last + 1, limit=1).splitlines()[0]
    assert nxt == numbered(last + 1, f"{last + 1:05d}" + "y" * 195)



def test_own_environment_through_proc_refused(ctx: ToolContext) -> None:
    """coder's own /proc/self/environ holds the API key: the file tools never open /proc."""
    for path in ("/proc/self/environ", "/proc/thread-self/environ", "../../../../../proc/self/environ",
                 f"/proc/{os.getpid()}/environ"):
        out, ok = call(ctx, path=path)
        assert not ok and "kernel interface the file tools do not open" in out
