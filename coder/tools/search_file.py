"""search_file: regex search over files with ripgrep, as `path:line:text`.

rg gives .gitignore handling, binary-file skipping and speed for free. It runs
from the search folder (so `glob` is anchored there, like glob_files) on the
absolute path, and the workspace prefix is cut from each path, so results read
relative to the workspace.

rg reports in JSON: each file's `begin` event gives its exact path (checked against
the deny list once, for the events of that file), and each match its lines and
the byte offsets of what matched. That is what lets a
match on a very long line (minified code) be shown as a window around the match
rather than the line's first columns, and a multi-line match be shown as its
lines, cut in the middle when it spans many. Once the output is full, the rest
is only counted, from each event's type and line number, without parsing it.
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

from coder.tools import rg
from coder.tools.base import MAX_OUTPUT_CHARS, Param, Tool, ToolContext, ToolError
from coder.tools.pathhints import resolve_existing

MAX_LINES = 200
MAX_CONTEXT = 10
LINE_CHARS = 300  # a longer line is shown as a window of this many characters
LEAD = 100  # characters of the window shown before the match
MATCH_LINES = 12  # a match spanning more lines shows its first ones and its last
JSON_LINE_BYTES = 16 << 20  # one rg event (a matching line and its metadata); a longer one is reported, not shown
BUDGET = MAX_OUTPUT_CHARS - 500
TIMEOUT = 30.0
_GLOB_LIKE = re.compile(r"[\w.\-/{},*?\[\]!]*\*[\w.\-/{},*?\[\]!]*")
_REGEX_META = re.compile(r"([\\.+*?()|\[\]{}^$])")
# An event's line number, read from its text. Inside a JSON string a quote is escaped (\"), so
# `"line_number":` with a bare quote is only ever the key.
_LINE_NUMBER = re.compile(r'"line_number":(\d+)')


def _regex_error(pattern: str, stderr: str) -> str | None:
    """One line on why rg refused the pattern and what to send instead; None if it is not a pattern error."""
    if 'literal "\\n" is not allowed' in stderr:
        return f"pattern {pattern} matches a line break; set multiline=true to search across lines"
    if "regex parse error" not in stderr:
        return None
    reasons = [ln.removeprefix("error:").strip() for ln in stderr.splitlines() if ln.startswith("error:")]
    why = reasons[0] if reasons else "regex parse error"
    if _GLOB_LIKE.fullmatch(pattern) and (pattern.startswith("*") or "/*" in pattern or "*." in pattern):
        return (
            f"pattern {pattern} is a file-name glob, not a regular expression ({why}); "
            f'to find files by name call glob_files with pattern="{pattern}", '
            f'to search the contents of those files pass glob="{pattern}" with a regex pattern'
        )
    escaped = _REGEX_META.sub(r"\\\1", pattern)
    return f"invalid regular expression {pattern}: {why}; to match the text literally, escape it: {escaped}"


def _kind(line: str) -> str:
    """The type of an rg JSON event; rg writes it first (`{"type":"match",...`), so it is read without
    parsing the event (another layout is parsed)."""
    if line.startswith('{"type":"'):
        return line[9:line.find('"', 9)]
    try:
        return str(json.loads(line).get("type", ""))
    except (ValueError, AttributeError):
        return ""


def _data(field: dict[str, Any]) -> bytes:
    """rg's JSON text field: `text` (UTF-8) or `bytes` (base64, anything else)."""
    if "text" in field:
        return field["text"].encode("utf-8", "surrogatepass")
    return base64.b64decode(field["bytes"])


def _window(text: str, focus: int | None, more: int) -> str:
    """`text` cut to LINE_CHARS around `focus` (where the first match on it starts), saying where it was cut."""
    if len(text) <= LINE_CHARS:
        return text
    start = max(0, min((focus or 0) - LEAD, len(text) - LINE_CHARS))
    end = start + LINE_CHARS
    body = ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
    note = f"column {focus + 1} of {len(text)}" if focus is not None else f"{len(text)} characters"
    if more:
        note += f"; {more} more match{'es' if more > 1 else ''} on this line"
    return f"{body} [{note}]"


def _render(shown: str, event: dict[str, Any]) -> tuple[list[str], int]:
    """The display lines of one match or context event (a match may span lines in multiline mode),
    and the number of its last line."""
    data = event["data"]
    raw = _data(data["lines"])
    spans = [(m["start"], m["end"]) for m in data.get("submatches", ())]
    is_match = event["type"] == "match"
    sep = ":" if is_match else "-"
    rows = raw.split(b"\n")
    if rows and rows[-1] == b"":
        rows.pop()
    first_no = data["line_number"] or 0
    offset = 0
    out: list[str] = []
    for i, row in enumerate(rows):
        lo, hi = offset, offset + len(row) + 1
        offset = hi
        starts = [s for s, _ in spans if lo <= s < hi]
        inside = any(s < lo < e for s, e in spans)
        text = row.rstrip(b"\r").decode("utf-8", "replace")
        if starts:
            focus: int | None = len(row[: starts[0] - lo].decode("utf-8", "replace"))
        else:
            focus = 0 if inside else None
        if is_match and (len(rows) <= MATCH_LINES or i < MATCH_LINES - 1 or i == len(rows) - 1):
            out.append(f"{shown}{sep}{first_no + i}{sep}{_window(text, focus, max(0, len(starts) - 1))}")
        elif is_match and i == MATCH_LINES - 1:
            out.append(f"[{len(rows) - MATCH_LINES} more lines of this match not shown, "
                       f"up to line {first_no + len(rows) - 2}]")
        elif not is_match:
            out.append(f"{shown}{sep}{first_no + i}{sep}{_window(text, None, 0)}")
    return out, first_no + max(0, len(rows) - 1)


def run(ctx: ToolContext, args: dict[str, Any]) -> str:
    policy = ctx.policy
    pattern: str = args["pattern"]
    path: str = args.get("path") or "."
    real, shown = resolve_existing(policy, path)
    cwd = real if real.is_dir() else real.parent

    glob = args.get("glob")
    argv = ["--json", "--sort", "path", *rg.base_args(policy, cwd, [glob] if glob else [])]
    if args.get("case_insensitive"):
        argv.append("-i")
    if args.get("multiline"):
        argv += ["--multiline", "--multiline-dotall"]
    context = max(0, min(MAX_CONTEXT, args.get("context_lines") or 0))
    if context:
        argv += ["-C", str(context)]
    argv += ["-e", pattern, "--", str(real)]

    multiline = bool(args.get("multiline"))
    out: list[str] = []
    size = total = 0
    full = False  # the output is at MAX_LINES or BUDGET: what follows is only counted
    last: tuple[str, int] | None = None  # (file, line) last shown, to mark gaps between context groups
    current = ""  # the file rg is reporting on, when it may be shown
    with rg.RgStream(argv, cwd, timeout=TIMEOUT, cancel=ctx.cancel, max_line_bytes=JSON_LINE_BYTES) as stream:
        for line in stream:
            kind = _kind(line)
            if kind == "begin":  # each file's events follow its `begin`: its path is checked once, here
                try:
                    file = os.fsdecode(_data(json.loads(line)["data"]["path"]))
                except (ValueError, KeyError, TypeError):
                    current = ""
                    continue
                current = rg.strip_prefix(file, policy.workspace) if rg.allowed(policy, file) else ""
                continue
            if kind == "end":  # (so an event outside a begin/end pair is never shown under a checked path)
                current = ""
            if kind not in ("match", "context") or not current:
                continue
            if full and not multiline:
                # Only counted: one line per event (and a `--` before a gap), read without parsing the event.
                total += 1
                if context:
                    number = _LINE_NUMBER.search(line)
                    if number:
                        no = int(number.group(1))
                        total += last is not None and last != (current, no - 1)
                        last = (current, no)
                continue
            try:
                event = json.loads(line)
                lines, end = _render(current, event)
            except (ValueError, KeyError, TypeError):  # an event over JSON_LINE_BYTES, cut
                lines = [f"{current}: [a match on a line too long to show]"]
            else:
                if context and last is not None and last != (current, event["data"]["line_number"] - 1):
                    lines.insert(0, "--")
                last = (current, end)
            for text in lines:
                total += 1
                full = full or len(out) >= MAX_LINES or size + len(text) + 1 > BUDGET
                if not full:
                    out.append(text)
                    size += len(text) + 1
    where = shown + (f" (glob {glob})" if glob else "")
    if stream.returncode == 2 and not total:
        hint = _regex_error(pattern, stream.stderr)
        if hint:
            raise ToolError(hint)
        first = stream.stderr.strip().splitlines()[:1]
        raise ToolError(f"search failed: {first[0].removeprefix('rg: ') if first else 'rg exited with status 2'}")
    if not total:
        if stream.timed_out:
            raise ToolError(
                f"search in {where} stopped after {TIMEOUT:.0f} s with no matches yet; narrow the path or glob"
            )
        return f"No matches for /{pattern}/ in {where}"
    if total > len(out):
        out.append(f"[{total - len(out)} more lines not shown; narrow the pattern, path or glob]")
    if stream.returncode == 2:
        first = stream.stderr.strip().splitlines()[:1]
        why = first[0].removeprefix("rg: ") if first else "unknown error"
        out.append(f"[some files could not be searched: {why}]")
    if stream.timed_out:
        out.append(f"[search stopped after {TIMEOUT:.0f} s; results are incomplete]")
    return "\n".join(out)


TOOL = Tool(
    name="search_file",
    description=(
        "Search file contents for a regular expression (ripgrep/Rust regex syntax) and list "
        "matching lines as path:line:text, sorted by path. Searches a folder recursively "
        "(default: the workspace root) or a single file. Files ignored by .gitignore/.ignore, "
        f"binary files and VCS folders are skipped. At most {MAX_LINES} lines are shown; a long "
        "line is shown as a window around the match. To find files by name, use glob_files."
    ),
    params={
        "pattern": Param(
            "string",
            "Regular expression, e.g. `def \\w+_handler` or `TODO|FIXME`; escape literal "
            "special characters like `\\(`.",
        ),
        "path": Param(
            "string", "Folder or file to search (default: the workspace root).", optional=True
        ),
        "glob": Param(
            "string",
            "Only search files matching this glob, e.g. `*.py` (any depth) or `src/**/*.ts` "
            "(relative to path); prefix with ! to exclude.",
            optional=True,
        ),
        "case_insensitive": Param("boolean", "Ignore case (default false).", optional=True),
        "context_lines": Param(
            "integer",
            f"Lines of context to show around each match (0-{MAX_CONTEXT}, default 0).",
            optional=True,
        ),
        "multiline": Param(
            "boolean",
            "Let the pattern span lines: `\\n` matches a line break and `.` matches any character "
            "including a line break, e.g. `class Foo\\(.*?\\):` across wrapped lines (default false).",
            optional=True,
        ),
    },
    run=run,
    key_arg="pattern",
)
