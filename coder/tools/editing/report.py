"""What an edit shows: the new text of each changed place, numbered, for the model, and a unified
diff for people, both made from the changed lines and their context only, whatever the size of
the file. A run of changes so long that both would be cut anyway is cut there, so replace_all on
every line of a big file costs no more to show than a few hundred changes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator

from coder.tools.base import MAX_DIFF_LINES
from coder.tools.editing.document import Edit
from coder.tools.editing.lines import CONTEXT_LINES, SNIPPET_MAX_LINES, LineNumbers, end_below, numbered, start_above

_GROUP_LINES = 2 * MAX_DIFF_LINES  # lines of changes in a row after which what follows is not shown
_HUNK = re.compile(r"^@@ -(\d+)((?:,\d+)?) \+(\d+)((?:,\d+)?) @@")


def _groups(text: str, spans: Iterator[tuple[int, int, str]]) -> Iterator[tuple[int, int, list[tuple[int, int, str]]]]:
    """Replacements whose context lines touch, with the extent (whole lines) of that context."""
    current: list[tuple[int, int, str]] = []
    cs = ce = lines = 0
    for s, e, rep in spans:
        start = start_above(text, s, CONTEXT_LINES)
        end = end_below(text, max(s, e - 1), CONTEXT_LINES)
        if current and start <= ce:
            last = current[-1][1]
            lines += text.count("\n", last, e)
            if lines > _GROUP_LINES and text.rfind("\n", max(0, last - 1), s) >= 0:  # and this one on a line of its own
                yield cs, text.rfind("\n", 0, s) + 1, current  # up to the line of this one, not shown
                return
            current.append((s, e, rep))
            ce = max(ce, end)
            continue
        if current:
            yield cs, ce, current
        current, cs, ce, lines = [(s, e, rep)], start, end, 0
    if current:
        yield cs, ce, current


def _keep_lines(s: str) -> list[str]:
    """Lines split at "\\n" only (as line numbers count them), each ending in "\\n" for the diff."""
    pieces = s.split("\n")
    out = [p.removesuffix("\r") + "\n" for p in pieces[:-1]]
    if pieces[-1]:
        out.append(pieces[-1] + "\n")
    return out


def report(text: str, edit: Edit, shown: str) -> tuple[str, str]:
    """The new text of each changed place with line numbers (for the model), and a unified diff of it
    (for people), both made from the changed lines only, whatever the size of the file."""
    numbers = LineNumbers(text)
    snippet: list[str] = []
    diff: list[str] = []
    delta = done = 0
    snippet_cut = diff_cut = ""
    for cs, ce, group in _groups(text, edit.spans()):
        before = text[cs:ce]
        pieces, at = [], cs
        for s, e, rep in group:
            pieces += [text[at:s], rep]
            at = e
        after = "".join(pieces) + text[at:ce]
        old_first = numbers.at(cs)
        new_first = old_first + delta
        delta += after.count("\n") - before.count("\n")
        done += len(group)
        if not snippet_cut:
            a, b = before.split("\n"), after.split("\n")
            prefix = 0
            while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
                prefix += 1
            suffix = 0
            while suffix < min(len(a), len(b)) - prefix and a[-1 - suffix] == b[-1 - suffix]:
                suffix += 1
            start = max(0, prefix - CONTEXT_LINES)
            end = min(len(b), len(b) - suffix + CONTEXT_LINES)
            if after.endswith("\n") and end == len(b):
                end -= 1  # the empty string after the final newline is not a line
            end = max(end, start)
            room = SNIPPET_MAX_LINES - sum(1 for line in snippet if "\t" in line)
            if room <= 0:
                snippet_cut = "[... more changes; read the file to see them]"
            elif end > start:
                if snippet:
                    snippet.append("[...]")
                snippet += numbered(b[start : start + min(end - start, room)], new_first + start)
                if end - start > room:
                    snippet_cut = f"[... {end - start - room} more lines; read the file to see them]"
        if not diff_cut:
            hunks = list(difflib.unified_diff(_keep_lines(before), _keep_lines(after), n=CONTEXT_LINES))[2:]
            for line in hunks:
                m = _HUNK.match(line)
                if m:
                    line = (f"@@ -{int(m.group(1)) + old_first - 1}{m.group(2)} "
                            f"+{int(m.group(3)) + new_first - 1}{m.group(4)} @@\n")
                diff.append(line)
            if len(diff) > MAX_DIFF_LINES - 2:
                diff_cut = f"... ({len(diff) - (MAX_DIFF_LINES - 2)} more diff lines)\n"
                del diff[MAX_DIFF_LINES - 2 :]
        if snippet_cut and diff_cut:
            break
    rest = edit.count - done
    if snippet_cut:
        snippet.append(snippet_cut)
    if rest > 0:
        more = f"{rest} more replacement{'s' if rest > 1 else ''}"
        snippet.append(f"[... and {more}, not shown]")
        diff_cut = diff_cut.rstrip("\n").removesuffix(")") + f", {more})\n" if diff_cut else f"... ({more})\n"
    head = [f"--- a/{shown}\n", f"+++ b/{shown}\n"] if diff else []
    return "\n".join(snippet), "".join(head + diff) + diff_cut if diff else ""
