"""write_file: create or replace a whole file inside the writable roots.

Goes through `resolve_write` (confinement) and `atomic_write` (no half-written
file, never writes through a symlink); an existing file keeps its permission
bits so overwriting a script does not make it non-executable.
"""

from __future__ import annotations

import stat
from typing import Any

from coder.tools.base import Param, Tool, ToolContext, ToolError
from sandbox.paths import atomic_write, display, resolve_write


def count_lines(text: str) -> int:
    """Lines as an editor shows them: a final line without newline still counts."""
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def run(ctx: ToolContext, args: dict[str, Any]) -> str:
    path = resolve_write(ctx.policy, args["path"])
    content: str = args["content"]
    shown = display(ctx.policy, path)
    if path.is_dir():
        raise ToolError(f"{shown} is a directory; give a file path inside it")
    mode = None
    old_lines = None
    if path.exists():
        if not path.is_file():
            raise ToolError(f"{shown} exists and is not a regular file; refusing to replace it")
        mode = stat.S_IMODE(path.stat().st_mode)
        old_lines = count_lines(path.read_bytes().decode("utf-8", errors="replace"))
    atomic_write(path, content.encode("utf-8"), mode)
    lines = count_lines(content)
    if old_lines is None:
        return f"Created {shown} ({lines} lines)"
    return f"Overwrote {shown} ({lines} lines, was {old_lines} lines)"


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
