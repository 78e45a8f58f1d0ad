"""write_file: create or replace a whole file inside the writable roots.

Goes through `resolve_write` (confinement) and `atomic_write` (no half-written
file, never writes through a symlink). Replacing a file keeps what the model
cannot see in read_file's view of it: its permission bits (a script stays
executable), its encoding and BOM (`textcodec`), and CRLF line endings when
every line had them. It refuses what would lose something unseen: a file that
changed on disk since the model last read or wrote it (a command, the user),
and a read-only file (the rename would replace it anyway, so the permission
bits are checked here). A file the model never read may be replaced: it may
have made it by a command; the result says it was unread, and undo keeps it.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from coder.tools.base import Output, Param, Tool, ToolContext, ToolError, file_diff
from coder.tools.textcodec import BinaryFile, Encoding, decode, encode
from sandbox.paths import NotRegularFile, atomic_write, display, open_file, resolve_write

UTF8 = Encoding("utf-8")


def plural(n: int) -> str:
    return f"{n} line" if n == 1 else f"{n} lines"


def count_lines(text: str) -> int:
    """Lines as an editor shows them: a final line without newline still counts."""
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def _mode(st: os.stat_result) -> str:
    return f"mode {stat.S_IMODE(st.st_mode):04o}, {stat.filemode(st.st_mode)}"


def _not_writable(shown: str, path: os.PathLike[str], st: os.stat_result) -> str | None:
    """Why an existing file must not be replaced given its permissions, or None when it may be.

    The bits are read rather than tried: the temp file and rename of atomic_write would replace
    a read-only file anyway (and root may write any file).
    """
    if not st.st_mode & 0o222:
        return f"{shown} is read-only ({_mode(st)}); not overwritten, and its permissions were left as they are"
    if not os.access(path, os.W_OK):
        return f"{shown} is not writable by this user ({_mode(st)}, owner uid {st.st_uid}); not overwritten"
    return None


def _encode(text: str, encoding: Encoding, shown: str) -> bytes:
    """`text` in the file's encoding; a ToolError naming the first character it cannot store."""
    try:
        return encode(text, encoding)
    except UnicodeEncodeError as e:
        ch, line = e.object[e.start], e.object.count("\n", 0, e.start) + 1
        where = f"{ch!r} (U+{ord(ch):04X}) at line {line}"
        if encoding.unicode:  # only a lone surrogate: no encoding stores it
            raise ToolError(f"the content has an unpaired surrogate {where}, which no file can store; "
                            "not written") from None
        raise ToolError(f"{shown} is {encoding.describe()} (not UTF-8), which cannot store {where}; not written. "
                        "Use only characters it can store, or delete the file first to write it anew as UTF-8") from None


def run(ctx: ToolContext, args: dict[str, Any]) -> Output:
    path = resolve_write(ctx.policy, args["path"])
    content: str = args["content"]
    shown = display(ctx.policy, path)
    mode = raw = None
    try:
        fd = open_file(ctx.policy, path)
    except FileNotFoundError:
        pass
    except NotRegularFile as e:
        if stat.S_ISDIR(e.mode):
            raise ToolError(f"{shown} is a directory; give a file path inside it") from None
        raise ToolError(f"{shown} exists and is not a regular file; refusing to replace it") from None
    except PermissionError:  # not readable by this user (never for root): say what its permissions are
        st = os.stat(path, follow_symlinks=False)
        raise ToolError(_not_writable(shown, path, st)
                        or f"{shown} cannot be read ({_mode(st)}), so it is not overwritten") from None
    else:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            raw = f.read()
        mode = stat.S_IMODE(st.st_mode)
        refusal = _not_writable(shown, path, st)
        if refusal:
            raise ToolError(refusal)
        if ctx.changed_since_seen(path):
            raise ToolError(f"{shown} changed on disk since you last read it (a command or the user changed it); "
                            "read it again before overwriting it, so that change is not lost")

    text, encoding, old_text, crlf, notes = content, UTF8, None, False, []
    if raw is not None:
        try:
            old_text, encoding = decode(raw)
            notes.append(f"was {plural(count_lines(old_text))}")
        except BinaryFile as e:
            old_text = ""
            notes.append(f"it was not text ({e}, {len(raw)} bytes); written as UTF-8")
        else:
            if encoding != UTF8:
                notes.append(f"kept its encoding, {encoding.describe()}")
            if encoding.bom and text.startswith("\ufeff"):
                text = text[1:]  # the BOM is the file's, written once
            crlf = "\n" in old_text and old_text.count("\n") == old_text.count("\r\n")
            if crlf:  # every line ended in CRLF: so do the new ones (the diff shows lines, not their endings)
                old_text, text = old_text.replace("\r\n", "\n"), text.replace("\r\n", "\n")
                if "\n" in text:
                    notes.append("line endings written as CRLF, as the file had them")
        if str(path) not in ctx.seen:
            notes.append("you had not read it")
    data = _encode(text.replace("\n", "\r\n") if crlf else text, encoding, shown)
    ctx.before_write(path, data)
    try:
        atomic_write(ctx.policy, path, data, mode)
    finally:
        ctx.after_write(path)
    ctx.saw(path)
    diff = file_diff(shown, old_text, text)
    lines = plural(count_lines(text))
    if old_text is None:
        return Output(f"Created {shown} ({lines})", diff)
    return Output(f"Overwrote {shown} ({lines}, {'; '.join(notes)})", diff)


TOOL = Tool(
    name="write_file",
    description=(
        "Create a file, or replace a file's whole content, with `content`. Parent folders are created. "
        "An existing file keeps its permissions, encoding and CRLF line endings. Refused if the file changed "
        "on disk since you last read it, or is read-only. To change part of a file, use edit_file."
    ),
    params={
        "path": Param("string", "File path, relative to the workspace."),
        "content": Param("string", "The complete new content of the file."),
    },
    run=run,
    read_only=False,
)
