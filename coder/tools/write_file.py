"""write_file: create or replace a whole file inside the writable roots.

Goes through `resolve_write` (confinement) and `atomic_write` (no half-written
file, never writes through a symlink); an existing file keeps its permission
bits so overwriting a script does not make it non-executable.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from coder.tools.base import Output, Param, Tool, ToolContext, ToolError, file_diff
from sandbox.paths import NotRegularFile, atomic_write, display, open_file, resolve_write


def count_lines(text: str) -> int:
    """Lines as an editor shows them: a final line without newline still counts."""
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def run(ctx: ToolContext, args: dict[str, Any]) -> str:
    path = resolve_write(ctx.policy, args["path"])
    content: str = args["content"]
    shown = display(ctx.policy, path)
    mode = old_text = None
    try:
        fd = open_file(ctx.policy, path)
    except FileNotFoundError:
        pass
    except NotRegularFile as e:
        if stat.S_ISDIR(e.mode):
            raise ToolError(f"{shown} is a directory; give a file path inside it") from None
        raise ToolError(f"{shown} exists and is not a regular file; refusing to replace it") from None
    else:
        st = os.fstat(fd)
        mode = stat.S_IMODE(st.st_mode)
        with os.fdopen(fd, "rb") as f:
            old_text = f.read().decode("utf-8", errors="replace")
    data = content.encode("utf-8")
    ctx.before_write(path, data)
    try:
        atomic_write(ctx.policy, path, data, mode)
    finally:
        ctx.after_write(path)
    lines = count_lines(content)
    diff = file_diff(shown, old_text, content)
    if old_text is None:
        return Output(f"Created {shown} ({lines} lines)", diff)
    return Output(f"Overwrote {shown} ({lines} lines, was {count_lines(old_text)} lines)", diff)


TOOL = Tool(
    name="write_file",
    description=(
        "Create a file, or replace an existing file's whole content, with `content` (UTF-8). "
        "Missing parent folders are created; an existing file keeps its permissions. "
        "To change part of an existing file, use edit_file instead."
    ),
    params={
        "path": Param("string", "File path, relative to the workspace."),
        "content": Param("string", "The complete new content of the file."),
    },
    run=run,
    read_only=False,
)
