"""edit_file: replace an exact string in a file, keeping everything else as it was.

The file's encoding (UTF-8, UTF-8 with BOM, or anything else via lossless
latin-1), its line endings and its permission bits survive the edit. When the
model's old_string differs from the file only in indentation or trailing white
space, a unique whole-line match is still applied, re-indented to the file.
Anything else that fails explains itself and leaves the file untouched.
"""

from __future__ import annotations

import codecs
import difflib
import heapq
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coder.tools.base import Output, Param, Tool, ToolContext, ToolError, file_diff
from sandbox.paths import NotRegularFile, atomic_write, display, open_file, resolve_write

CONTEXT_LINES = 2
SNIPPET_MAX_LINES = 60
_LINE_CHARS = 500  # longest line shown in a snippet
_CANDIDATES = 40  # windows compared with SequenceMatcher.ratio() when looking for the closest region
_TOKEN = re.compile(r"\w+|[^\w\s]")

FUZZY_NOTE = (
    "old_string matched only when ignoring indentation and trailing white space; "
    "the file's indentation was used for new_string"
)


@dataclass
class _Decoded:
    text: str  # with "\n" line ends when the file is CRLF
    encoding: str
    crlf: bool


def _decode(raw: bytes) -> _Decoded:
    if raw.startswith(codecs.BOM_UTF8):
        try:
            text, encoding = raw.decode("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError:
            text, encoding = raw.decode("latin-1"), "latin-1"
    else:
        try:
            text, encoding = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = raw.decode("latin-1"), "latin-1"  # lossless for any bytes
    crlf = "\r\n" in text and "\n" not in text.replace("\r\n", "")
    if crlf:
        text = text.replace("\r\n", "\n")
    return _Decoded(text, encoding, crlf)


def _encode(text: str, doc: _Decoded, shown: str) -> bytes:
    if doc.crlf:
        text = text.replace("\n", "\r\n")
    try:
        return text.encode(doc.encoding)
    except UnicodeEncodeError as e:
        bad = text[e.start : e.end]
        raise ToolError(
            f"{shown} is not UTF-8 (kept as {doc.encoding}) and new_string contains {bad!r}, "
            "which that encoding cannot store; use only characters the file can hold"
        ) from None


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _exact_positions(text: str, old: str) -> list[int]:
    """Start offsets of non-overlapping matches, as str.replace sees them."""
    out, pos = [], text.find(old)
    while pos != -1:
        out.append(pos)
        pos = text.find(old, pos + len(old))
    return out


def _as_lines(s: str) -> list[str]:
    """Lines of a snippet; one trailing newline just ends the last line."""
    if s == "":
        return []
    if s.endswith("\n"):
        s = s[:-1]
    return s.split("\n")


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _fuzzy_windows(file_lines: list[str], old_lines: list[str]) -> list[int]:
    """Starts of line windows equal to old_lines when each line is stripped."""
    want = [line.strip() for line in old_lines]
    n = len(want)
    stripped = [line.strip() for line in file_lines]
    first = want[0]
    return [
        i
        for i in range(len(stripped) - n + 1)
        if stripped[i] == first and stripped[i : i + n] == want
    ]


def _reindent(new_lines: list[str], old_lines: list[str], window: list[str]) -> list[str]:
    pair = next(((o, f) for o, f in zip(old_lines, window) if o.strip()), None)
    if pair is None:
        return new_lines
    old_indent, file_indent = _indent(pair[0]), _indent(pair[1])
    if old_indent == file_indent:
        return new_lines
    return [
        file_indent + line[len(old_indent) :] if line.strip() and line.startswith(old_indent) else line
        for line in new_lines
    ]


def _numbered(lines: list[str], first: int) -> list[str]:
    out = []
    for n, line in enumerate(lines, first):
        if len(line) > _LINE_CHARS:
            line = line[:_LINE_CHARS] + f" [... {len(line) - _LINE_CHARS} more characters]"
        out.append(f"{n:>6}\t{line}")
    return out


def _snippet(before: str, after: str) -> str:
    """The changed lines of the new text with a little context, `cat -n` style."""
    a, b = before.split("\n"), after.split("\n")
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(a), len(b)) - prefix and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1
    start = max(0, prefix - CONTEXT_LINES)
    end = min(len(b), len(b) - suffix + CONTEXT_LINES)  # exclusive
    if after.endswith("\n") and end == len(b):
        end -= 1  # the empty string after the final newline is not a line
    end = max(end, start)
    lines = _numbered(b[start : min(end, start + SNIPPET_MAX_LINES)], start + 1)
    if end - start > SNIPPET_MAX_LINES:
        lines.append(f"[... {end - start - SNIPPET_MAX_LINES} more lines; read the file to see them]")
    return "\n".join(lines)


def _closest_region(file_lines: list[str], old_lines: list[str]) -> tuple[int, int, float]:
    """(start, length, similarity) of the file window most like old_lines.

    SequenceMatcher.ratio() on every window of a big file is far too slow, and
    quick_ratio() (a character multiset) hardly tells code lines apart, so a
    token-overlap score over sliding windows (linear in the file) picks a few
    candidates first; quick_ratio() then orders them and ratio() decides.
    """
    n = max(1, min(len(old_lines), len(file_lines)))
    stripped = [line.strip() for line in file_lines]
    target = "\n".join(line.strip() for line in old_lines)
    want = set(_TOKEN.findall(target))
    hits, sizes = [0], [0]  # prefix sums over file lines
    for line in stripped:
        toks = set(_TOKEN.findall(line))
        hits.append(hits[-1] + len(toks & want))
        sizes.append(sizes[-1] + len(toks))
    starts = range(len(stripped) - n + 1)

    def overlap(i: int) -> float:
        return 2 * (hits[i + n] - hits[i]) / ((sizes[i + n] - sizes[i]) + len(want) or 1)

    candidates = heapq.nlargest(_CANDIDATES, starts, key=lambda i: (overlap(i), -i))
    sm = difflib.SequenceMatcher(autojunk=False)
    sm.set_seq2(target)  # seq2 is the side SequenceMatcher caches
    bounded = []
    for i in candidates:
        sm.set_seq1("\n".join(stripped[i : i + n]))
        bounded.append((sm.quick_ratio(), i))
    # quick_ratio() bounds ratio() from above: visit best bounds first, stop when none can win.
    bounded.sort(key=lambda t: (-t[0], t[1]))
    best, best_i = -1.0, candidates[0] if candidates else 0
    for bound, i in bounded:
        if bound < best:
            break
        sm.set_seq1("\n".join(stripped[i : i + n]))
        r = sm.ratio()
        if r > best or (r == best and i < best_i):
            best, best_i = r, i
    return best_i, n, max(best, 0.0)


def _no_match(shown: str, text: str, old: str) -> ToolError:
    file_lines = _as_lines(text)
    if not file_lines:
        return ToolError(f"old_string was not found in {shown}: the file is empty; use write_file to fill it")
    start, n, score = _closest_region(file_lines, _as_lines(old) or [old])
    shown_lines = file_lines[start : start + min(n, SNIPPET_MAX_LINES)]
    region = "\n".join(_numbered(shown_lines, start + 1))
    return ToolError(
        f"old_string was not found in {shown}, not even ignoring indentation and trailing white space. "
        f"The closest region is lines {start + 1}-{start + len(shown_lines)} ({score:.0%} similar):\n"
        f"{region}\n"
        "Copy old_string exactly from the file (read_file shows the current content) and retry."
    )


def run(ctx: ToolContext, args: dict[str, Any]) -> str:
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
        raise ToolError(f"{shown} does not exist; use write_file to create it") from None
    except NotRegularFile:
        raise ToolError(f"{shown} is not a regular file; edit_file only edits files") from None
    st = os.fstat(fd)
    with os.fdopen(fd, "rb") as f:
        raw = f.read()
    doc = _decode(raw)
    if doc.crlf:
        old, new = old.replace("\r\n", "\n"), new.replace("\r\n", "\n")
    if old == new:
        raise ToolError("old_string and new_string are identical; there is nothing to change")
    text = doc.text

    note = ""
    positions = _exact_positions(text, old)
    if len(positions) > 1 and not replace_all:
        lines = ", ".join(str(_line_of(text, p)) for p in positions)
        raise ToolError(
            f"old_string occurs {len(positions)} times in {shown} (at lines {lines}); "
            "add surrounding lines to old_string so it matches once, or set replace_all to true"
        )
    if positions:
        count = len(positions)
        updated = text.replace(old, new) if replace_all else text.replace(old, new, 1)
    else:
        old_lines = _as_lines(old)
        if not any(line.strip() for line in old_lines):
            raise _no_match(shown, text, old)
        file_lines = _as_lines(text)  # a final newline ends the last line, it is not a line itself
        windows = _fuzzy_windows(file_lines, old_lines)
        if not windows:
            raise _no_match(shown, text, old)
        if len(windows) > 1:
            lines = ", ".join(str(i + 1) for i in windows)
            raise ToolError(
                f"old_string was not found exactly in {shown}; ignoring indentation and trailing white space "
                f"it matches {len(windows)} places (starting at lines {lines}). "
                "Copy old_string exactly from the file, with enough lines to match once"
            )
        i = windows[0]
        n = len(old_lines)
        new_lines = _reindent(_as_lines(new), old_lines, file_lines[i : i + n])
        updated = "\n".join(file_lines[:i] + new_lines + file_lines[i + n :])
        if text.endswith("\n") and updated:
            updated += "\n"
        count, note = 1, f" ({FUZZY_NOTE})"

    if updated == text:
        raise ToolError("the replacement leaves the file unchanged; nothing was written")
    data = _encode(updated, doc, shown)
    ctx.before_write(path, data)
    try:
        atomic_write(ctx.policy, path, data, stat.S_IMODE(st.st_mode))
    finally:
        ctx.after_write(path)
    plural = "occurrence" if count == 1 else "occurrences"
    return Output(f"Edited {shown}: replaced {count} {plural}{note}\n{_snippet(text, updated)}", file_diff(shown, text, updated))


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
