"""read_file: a window of a text file with line numbers, like `cat -n`.

Numbered lines let the model cite and edit precisely; the window, the per-line
cut and the character budget keep any file, however large, within one reply.
The file is read line by line, never loaded whole.
"""

from __future__ import annotations

import codecs
import os
import stat
from typing import Any, BinaryIO

from coder.tools.base import MAX_OUTPUT_CHARS, Param, Tool, ToolContext, ToolError
from coder.tools.pathhints import missing_path_message
from sandbox.paths import NotRegularFile, display, open_file, resolve_read

DEFAULT_LIMIT = 2000
MAX_LIMIT = 5000
MAX_LINE_CHARS = 2000
BINARY_SNIFF_BYTES = 8192
CHUNK = 64 * 1024
# Room left under MAX_OUTPUT_CHARS for the closing note.
BUDGET = MAX_OUTPUT_CHARS - 500


def count_lines(f: BinaryIO) -> int:
    """Lines in the file: newlines, plus one for a last line without a newline."""
    f.seek(0)
    n, last = 0, b""
    while chunk := f.read(1 << 20):
        n += chunk.count(b"\n")
        last = chunk
    return n + (1 if last and not last.endswith(b"\n") else 0)


def _skip_line(f: BinaryIO) -> bool:
    """Advance past one line; False at end of file."""
    while piece := f.readline(CHUNK):
        if piece.endswith(b"\n"):
            return True
    return False


def _read_line(f: BinaryIO) -> str | None:
    """The next line without its line ending, cut to MAX_LINE_CHARS with a marker."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    kept: list[str] = []
    kept_len = total = 0
    got_any = False
    while True:
        piece = f.readline(CHUNK)
        if not piece:
            text = decoder.decode(b"", final=True)
        else:
            got_any = True
            ended = piece.endswith(b"\n")
            if ended:
                piece = piece[:-2] if piece.endswith(b"\r\n") else piece[:-1]
            text = decoder.decode(piece, final=ended)
        total += len(text)
        if kept_len < MAX_LINE_CHARS:
            part = text[: MAX_LINE_CHARS - kept_len]
            kept.append(part)
            kept_len += len(part)
        if not piece or ended:
            break
    if not got_any:
        return None
    line = "".join(kept)
    if total > MAX_LINE_CHARS:
        line += f"... [line truncated: {total} chars]"
    return line


def run(ctx: ToolContext, args: dict[str, Any]) -> str:
    policy = ctx.policy
    real = resolve_read(policy, args["path"])
    shown = display(policy, real)
    offset = args.get("offset")
    limit = args.get("limit")
    offset = 1 if offset is None or offset == 0 else offset
    if offset < 0:
        raise ToolError(f"offset must be a 1-based line number (1 = first line), got {offset}")
    limit = DEFAULT_LIMIT if limit is None else limit
    if limit < 1:
        raise ToolError(f"limit must be at least 1, got {limit}")
    limit = min(limit, MAX_LIMIT)

    try:
        fd = open_file(policy, real)
    except (FileNotFoundError, NotADirectoryError):
        raise ToolError(missing_path_message(policy, args["path"], real)) from None
    except NotRegularFile as e:
        if stat.S_ISDIR(e.mode):
            raise ToolError(f"{shown} is a directory, not a file; use list_dir to see its contents") from None
        raise ToolError(f"{shown} is not a regular file (device, pipe or socket); not read") from None
    except PermissionError:
        raise ToolError(f"permission denied: cannot read {shown}") from None
    except OSError as e:
        raise ToolError(f"{shown} cannot be opened: {e.strerror}") from None
    st = os.fstat(fd)
    with os.fdopen(fd, "rb") as f:
        if st.st_size == 0:
            return f"{shown} is empty (0 bytes)"
        if b"\x00" in f.read(BINARY_SNIFF_BYTES):
            return f"Binary file: {shown} ({st.st_size} bytes); not shown"
        total = count_lines(f)
        if offset > total:
            raise ToolError(
                f"offset {offset} is past the end of {shown}: the file has {total} lines"
            )
        f.seek(0)
        for _ in range(offset - 1):
            _skip_line(f)
        out: list[str] = []
        size = 0
        last = offset - 1
        budget_hit = False
        while last < min(total, offset + limit - 1):
            line = _read_line(f)
            if line is None:
                break
            entry = f"{last + 1:>6}\t{line}"
            if out and size + len(entry) + 1 > BUDGET:
                budget_hit = True
                break
            out.append(entry)
            size += len(entry) + 1
            last += 1
    if last < total:
        why = f"output limit of {MAX_OUTPUT_CHARS} chars reached; " if budget_hit else ""
        out.append(
            f"\n(showing lines {offset}-{last} of {total}; {why}"
            f"call read_file with offset={last + 1} to read more)"
        )
    return "\n".join(out)


TOOL = Tool(
    name="read_file",
    description=(
        "Read a text file, with line numbers (cat -n style: number, tab, line). "
        f"Shows up to {DEFAULT_LIMIT} lines from `offset` (max {MAX_LIMIT}); lines longer than "
        f"{MAX_LINE_CHARS} characters are cut. When the file goes on, a final note says which "
        "offset to read next. Binary files are not shown. Relative paths are taken from the "
        "workspace root."
    ),
    params={
        "path": Param("string", "File to read, relative to the workspace root or absolute."),
        "offset": Param(
            "integer", "1-based line number to start at (default 1).", optional=True
        ),
        "limit": Param(
            "integer",
            f"Maximum number of lines to show (default {DEFAULT_LIMIT}, max {MAX_LIMIT}).",
            optional=True,
        ),
    },
    run=run,
)
