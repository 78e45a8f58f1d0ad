"""old_string matched as whole lines, ignoring indentation and trailing white space.

The commonest slip of a model is the indentation of what it copied; edit_file then replaces
the one run of lines whose stripped contents are old_string's, with new_string indented in
the file's style. Candidates are found from the rarest line of old_string; when even that line
is everywhere (ten thousand identical lines), one pass over the file's lines finds them instead.
"""

from __future__ import annotations

from coder.tools.base import ToolError
from coder.tools.editing.document import Document, Edit, single
from coder.tools.editing.endings import ending_plan
from coder.tools.editing.indent import IndentError, reindent
from coder.tools.editing.lines import MAX_COUNT, anchors, as_lines, count_text, line_at, listed, read_lines, start_above

FUZZY_NOTE = (
    "old_string matched only when ignoring indentation and trailing white space; "
    "the file's indentation was used for new_string"
)
_CHECKED_LINES = 200_000  # lines read checking candidates one by one, whatever the file's size


def _checked(text: str, want: list[str], anchor: str, idx: int, limit: int) -> list[int]:
    """Starts of the windows around each line that is `anchor` (line idx of want) that match."""
    out: list[int] = []
    pos = text.find(anchor)
    while pos >= 0 and len(out) < limit:
        ls = text.rfind("\n", 0, pos) + 1
        nl = text.find("\n", pos)
        le = len(text) if nl < 0 else nl
        if text[ls:le].strip() == anchor and (idx == 0 or ls > 0):
            start = start_above(text, ls, idx)
            contents, _, _ = read_lines(text, start, len(want))
            if [c.strip() for c in contents] == want and text.count("\n", start, ls) == idx:
                out.append(start)
        if nl < 0:
            break
        pos = text.find(anchor, nl + 1)
    return out


def _scanned(text: str, want: list[str], limit: int) -> list[int]:
    """The same starts from one pass over the file's stripped lines (Knuth-Morris-Pratt)."""
    n = len(want)
    fail = [0] * n
    k = 0
    for i in range(1, n):
        while k and want[i] != want[k]:
            k = fail[k - 1]
        if want[i] == want[k]:
            k += 1
        fail[i] = k
    out: list[int] = []
    starts = [0] * n  # the starts of the last n lines, in a ring
    k = line = pos = 0
    while pos < len(text) and len(out) < limit:
        nl = text.find("\n", pos)
        stripped = text[pos : len(text) if nl < 0 else nl].strip()
        starts[line % n] = pos
        while k and stripped != want[k]:
            k = fail[k - 1]
        if stripped == want[k]:
            k += 1
            if k == n:
                out.append(starts[(line - n + 1) % n])
                k = fail[k - 1]
        line += 1
        if nl < 0:
            break
        pos = nl + 1
    return out


def fuzzy_windows(text: str, want: list[str], limit: int = MAX_COUNT) -> list[int]:
    """Starts of line windows whose stripped lines are `want`, found from the rarest line of it."""
    anchor, idx, fewest = "", 0, -1
    for w, i in anchors((w, i) for i, w in enumerate(want)):
        c = text.count(w)
        if c == 0:
            return []  # a line of old_string is nowhere in the file
        if fewest < 0 or c < fewest:
            anchor, idx, fewest = w, i, c
    work = fewest * len(want)
    if work > _CHECKED_LINES and work > text.count("\n"):  # checking would read more lines than the file has
        return _scanned(text, want, limit)
    return _checked(text, want, anchor, idx, limit)


def fuzzy_edit(doc: Document, old: str, new: str, shown: str) -> Edit | None:
    old_lines = as_lines(old)
    want = [line.strip() for line in old_lines]
    if not any(want):
        return None
    text = doc.text
    starts = fuzzy_windows(text, want)
    if not starts:
        return None
    if len(starts) > 1:
        raise ToolError(
            f"old_string was not found exactly in {shown}; ignoring indentation and trailing white space "
            f"it matches {count_text(len(starts))} places (starting at lines {listed(text, starts)}). "
            "Copy old_string exactly from the file, with enough lines to match once"
        )
    start = starts[0]
    window, endings, end = read_lines(text, start, len(old_lines))
    try:
        new_lines = reindent(old_lines, window, as_lines(new), lambda: text[max(0, start - 20_000) : start + 20_000])
    except IndentError as e:
        raise ToolError(
            f"old_string matches line {line_at(text, start)} of {shown} only when ignoring indentation, "
            f"and its indentation does not map onto the file's: {e}. Copy old_string exactly from the file"
        ) from None
    # Only in a file of mixed endings can two lines end differently: elsewhere each gets the usual one.
    plan = ending_plan(want, [line.strip() for line in new_lines]) if doc.mixed else [None] * len(new_lines)
    parts = []
    for j, (line, i) in enumerate(zip(new_lines, plan)):
        ending = endings[-1] if j == len(new_lines) - 1 else (endings[i] if i is not None else "") or doc.dominant
        parts.append(line + ending)
    rep = "".join(parts)
    if not new_lines and not endings[-1] and start > 0:  # deleting the last lines: the line before ends the file
        start -= 2 if text[start - 2 : start] == "\r\n" else 1
    if rep == text[start:end]:
        raise ToolError("the replacement leaves the file unchanged; nothing was written")
    return single(start, end, rep, f" ({FUZZY_NOTE})")
