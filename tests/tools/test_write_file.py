"""write_file on real files: creation, overwrite, confinement, what an overwrite keeps and refuses."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from coder.tools import call_tool, read_file
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
    assert call(ctx, "nonl.txt", "one\n") == "Overwrote nonl.txt (1 line, was 2 lines)"
    assert (workspace / "empty.txt").read_bytes() == b""


def test_utf8_content(ctx: ToolContext, workspace: Path) -> None:
    call(ctx, "u.txt", "héllo ✓\n")
    assert (workspace / "u.txt").read_bytes() == "héllo ✓\n".encode()


def test_overwrite_keeps_mode(ctx: ToolContext, workspace: Path) -> None:
    script = workspace / "run.sh"
    script.write_text("#!/bin/sh\necho old\nexit 0\n")
    script.chmod(0o755)
    assert call(ctx, "run.sh", "#!/bin/sh\necho new\n") == (
        "Overwrote run.sh (2 lines, was 3 lines; you had not read it)")
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


def read(ctx: ToolContext, path: str) -> None:
    read_file.TOOL.run(ctx, read_file.TOOL.validate_args({"path": path}))


def refusal(ctx: ToolContext, path: str, content: str) -> str:
    result = call_tool(ctx, "write_file", json.dumps({"path": path, "content": content}))
    assert not result.ok
    return result.output


# --- A file changed on disk since the model saw it ---------------------------------------------------------


def test_file_changed_since_it_was_read_is_refused_until_read_again(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "notes.txt"
    f.write_text("one\n")
    read(ctx, "notes.txt")
    f.write_text("one\nadded by the user\n")
    assert refusal(ctx, "notes.txt", "replaced\n") == (
        "Error: notes.txt changed on disk since you last read it (a command or the user changed it); "
        "read it again before overwriting it, so that change is not lost")
    assert f.read_text() == "one\nadded by the user\n"
    read(ctx, "notes.txt")
    assert call(ctx, "notes.txt", "replaced\n") == "Overwrote notes.txt (1 line, was 2 lines)"
    assert f.read_text() == "replaced\n"


def test_same_size_change_is_seen_by_its_time(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "same.txt"
    f.write_text("aaaa\n")
    read(ctx, "same.txt")
    f.write_text("bbbb\n")
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    with pytest.raises(ToolError, match="changed on disk since you last read it"):
        call(ctx, "same.txt", "cccc\n")
    assert f.read_text() == "bbbb\n"


def test_own_write_counts_as_seen_and_a_later_change_does_not(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "mine.txt"
    assert call(ctx, "mine.txt", "v1\n") == "Created mine.txt (1 line)"
    assert str(f) in ctx.seen and not ctx.changed_since_seen(f)
    assert call(ctx, "mine.txt", "v2\n") == "Overwrote mine.txt (1 line, was 1 line)"
    f.write_text("edited by a command\n")
    with pytest.raises(ToolError, match="changed on disk since you last read it"):
        call(ctx, "mine.txt", "v3\n")
    assert f.read_text() == "edited by a command\n"


def test_file_never_read_is_overwritten_and_said_so(ctx: ToolContext, workspace: Path) -> None:
    (workspace / "made.txt").write_text("made by a command\nline 2\n")
    assert call(ctx, "made.txt", "new\n") == "Overwrote made.txt (1 line, was 2 lines; you had not read it)"
    assert (workspace / "made.txt").read_text() == "new\n"


# --- Permissions --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode,shown", [(0o444, "-r--r--r--"), (0o555, "-r-xr-xr-x")], ids=["0444", "0555"])
def test_read_only_file_is_refused_naming_its_mode(ctx: ToolContext, workspace: Path, mode, shown) -> None:
    f = workspace / "locked.txt"
    f.write_text("keep\n")
    f.chmod(mode)
    assert refusal(ctx, "locked.txt", "x\n") == (
        f"Error: locked.txt is read-only (mode {mode:04o}, {shown}); not overwritten, "
        "and its permissions were left as they are")
    assert f.read_text() == "keep\n"
    assert stat.S_IMODE(f.stat().st_mode) == mode


# --- Encoding, BOM and line endings of an existing file -----------------------------------------------------


def test_utf16_file_keeps_its_encoding_bom_and_crlf(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "w.txt"
    f.write_bytes("\ufeffold\r\nlines\r\nhere\r\n".encode("utf-16-le"))
    read(ctx, "w.txt")
    out = TOOL.run(ctx, TOOL.validate_args({"path": "w.txt", "content": "new caf\u00e9\nsecond\n"}))
    assert out.text == ("Overwrote w.txt (2 lines, was 3 lines; kept its encoding, UTF-16-LE with BOM; "
                        "line endings written as CRLF, as the file had them)")
    assert f.read_bytes() == "\ufeffnew caf\u00e9\r\nsecond\r\n".encode("utf-16-le")
    assert "\r" not in out.diff and "+new caf\u00e9\n" in out.diff and "-old\n" in out.diff


def test_utf8_bom_is_kept_once(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "b.txt"
    f.write_bytes(b"\xef\xbb\xbfold\n")
    read(ctx, "b.txt")
    assert call(ctx, "b.txt", "new\n") == "Overwrote b.txt (1 line, was 1 line; kept its encoding, UTF-8 with BOM)"
    assert f.read_bytes() == b"\xef\xbb\xbfnew\n"
    call(ctx, "b.txt", "\ufeffagain\n")  # a BOM in the content is the file's BOM, not a second one
    assert f.read_bytes() == b"\xef\xbb\xbfagain\n"


def test_latin1_file_is_kept_latin1(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "l.txt"
    f.write_bytes(b"caf\xe9\n")
    read(ctx, "l.txt")
    assert call(ctx, "l.txt", "cr\u00e8me br\u00fbl\u00e9e\n") == (
        "Overwrote l.txt (1 line, was 1 line; kept its encoding, LATIN-1)")
    assert f.read_bytes() == b"cr\xe8me br\xfbl\xe9e\n"


def test_character_latin1_cannot_store_is_refused(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "l.txt"
    f.write_bytes(b"caf\xe9\n")
    read(ctx, "l.txt")
    assert refusal(ctx, "l.txt", "caf\u00e9\ndone \u2713\n") == (
        "Error: l.txt is LATIN-1 (not UTF-8), which cannot store '\u2713' (U+2713) at line 2; not written. "
        "Use only characters it can store, or delete the file first to write it anew as UTF-8")
    assert f.read_bytes() == b"caf\xe9\n"


def test_unpaired_surrogate_is_refused_and_nothing_written(ctx: ToolContext, workspace: Path) -> None:
    out = refusal(ctx, "s.txt", "ok\nbad \ud800 here\n")
    assert out == ("Error: the content has an unpaired surrogate '\\ud800' (U+D800) at line 2, "
                   "which no file can store; not written")
    assert list(workspace.iterdir()) == []


def test_crlf_kept_only_when_every_line_had_it(ctx: ToolContext, workspace: Path) -> None:
    (workspace / "all.txt").write_bytes(b"a\r\nb\r\n")
    (workspace / "mixed.txt").write_bytes(b"a\r\nb\n")
    read(ctx, "all.txt")
    read(ctx, "mixed.txt")
    assert call(ctx, "all.txt", "x\ny\r\nz") == (
        "Overwrote all.txt (3 lines, was 2 lines; line endings written as CRLF, as the file had them)")
    assert (workspace / "all.txt").read_bytes() == b"x\r\ny\r\nz"
    assert call(ctx, "mixed.txt", "x\ny\n") == "Overwrote mixed.txt (2 lines, was 2 lines)"
    assert (workspace / "mixed.txt").read_bytes() == b"x\ny\n"
    assert call(ctx, "all.txt", "one line") == "Overwrote all.txt (1 line, was 3 lines)"
    assert (workspace / "all.txt").read_bytes() == b"one line"


def test_binary_file_replaced_by_text_is_said_so(ctx: ToolContext, workspace: Path) -> None:
    blob = b"\x00\x01\x02 data \x00" * 10
    (workspace / "blob.bin").write_bytes(blob)
    read(ctx, "blob.bin")
    assert call(ctx, "blob.bin", "text now\n") == (
        f"Overwrote blob.bin (1 line, it was not text (binary data, {len(blob)} bytes); "
        "written as UTF-8)")
    assert (workspace / "blob.bin").read_bytes() == b"text now\n"


def test_a_replacement_that_keeps_size_and_mtime_is_still_a_change(ctx: ToolContext, workspace: Path) -> None:
    """`touch -r` / `cp -p` / `rsync -t` put the old mtime on new content of the same size: the inode and
    the ctime still tell."""
    f = workspace / "a.txt"
    f.write_text("v1\n")
    read(ctx, "a.txt")
    other = workspace / "b.txt"
    other.write_text("XX\n")
    st = f.stat()
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, f)
    assert (f.stat().st_mtime_ns, f.stat().st_size) == (st.st_mtime_ns, st.st_size)
    with pytest.raises(ToolError, match="changed on disk since you last read it"):
        call(ctx, "a.txt", "mine\n")
    assert f.read_text() == "XX\n"
