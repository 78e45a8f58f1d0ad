"""edit_file: replace an exact string in a file, keeping everything else as it was.

What survives an edit: the file's encoding and BOM (textcodec: UTF-8, UTF-16/32,
latin-1), each line's own ending (a CRLF file with a stray LF keeps both; new lines
get the file's usual ending), and its permission bits. The model's old_string is
often a little off, so when it does not match exactly edit_file tries the readings
models get wrong: indentation (mapped level by level into the file's style),
read_file's line-number prefixes, literal \\n escapes, Unicode normalization,
typographic quotes. It applies one only when it matches exactly one place, says so,
and otherwise names the difference and shows the closest region of the file.

Big files are never split into lists of lines: the write splices the file's bytes,
the diff and snippet cover only the changed lines, and the closest region is looked
for from the rarest lines and words of old_string. The pieces are in coder/tools/editing/.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from coder.tools.base import Output, Param, Tool, ToolContext, ToolError
from coder.tools.editing.closest import no_match
from coder.tools.editing.document import Edit, load, new_bytes
from coder.tools.editing.exact import Finder, ambiguous, exact_edit
from coder.tools.editing.fuzzy import fuzzy_edit
from coder.tools.editing.readings import diagnose, reread
from coder.tools.editing.report import report
from coder.tools.pathhints import missing_path_message
from sandbox.paths import NotRegularFile, atomic_write, display, open_file, resolve_write


def _lf(s: str) -> str:
    return s.replace("\r\n", "\n")


def run(ctx: ToolContext, args: dict[str, Any]) -> Output:
    path: Path = resolve_write(ctx.policy, args["path"])
    old: str = args["old_string"]
    new: str = args["new_string"]
    replace_all = bool(args.get("replace_all"))
    shown = display(ctx.policy, path)

    if old == "":
        raise ToolError(
            "old_string is empty; give the exact text to replace (to create or rewrite a whole file use write_file)"
        )
    try:
        fd = open_file(ctx.policy, path)
    except (FileNotFoundError, NotADirectoryError):
        first, _, rest = missing_path_message(ctx.policy, args["path"], path).partition("\n")
        raise ToolError(f"{first}; use write_file to create it" + (f"\n{rest}" if rest else "")) from None
    except NotRegularFile:
        raise ToolError(f"{shown} is not a regular file; edit_file only edits files") from None
    st = os.fstat(fd)
    with os.fdopen(fd, "rb") as f:
        raw = f.read()
    doc = load(raw, shown)
    del raw
    old, new = _lf(old), _lf(new)
    if old == new:
        raise ToolError("old_string and new_string are identical; there is nothing to change")

    # As written, then ignoring indentation, then as the model may have meant it; else say what is there.
    edit: Edit | None = None
    found = Finder(doc, old).overlapping()
    if len(found) > 1 and not replace_all:
        raise ambiguous(doc, shown, found)
    if found:
        edit = exact_edit(doc, old, new, replace_all, found)
    if edit is None:
        edit = fuzzy_edit(doc, old, new, shown)
    notes: list[str] = []
    if edit is None:
        edit = reread(doc, old, new, replace_all, shown, notes)
    if edit is None:
        raise no_match(doc, shown, old, notes + diagnose(doc, old, shown))

    data = new_bytes(doc, edit, shown)
    ctx.before_write(path, data)
    try:
        atomic_write(ctx.policy, path, data, stat.S_IMODE(st.st_mode))
    finally:
        ctx.after_write(path)
    ctx.saw(path)
    del data
    snippet, diff = report(doc.text, edit, shown)
    plural = "occurrence" if edit.count == 1 else "occurrences"
    return Output(f"Edited {shown}: replaced {edit.count} {plural}{edit.note}\n{snippet}", diff)


TOOL = Tool(
    name="edit_file",
    description=(
        "Replace old_string with new_string in an existing file. old_string must match the file exactly "
        "(copy it from read_file output, without the line-number prefix) and occur once; include a few "
        "surrounding lines to make it unique, or set replace_all to change every occurrence. "
        "The file's encoding, line endings and permissions are kept. Use write_file to create files."
    ),
    params={
        "path": Param("string", "File to edit, relative to the workspace."),
        "old_string": Param("string", "The exact text to replace; must not be empty."),
        "new_string": Param("string", "The text to put in its place (may be empty to delete)."),
        "replace_all": Param("boolean", "Replace every occurrence instead of requiring exactly one.", optional=True),
    },
    run=run,
    read_only=False,
)
