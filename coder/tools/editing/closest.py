"""The region of the file most like old_string, shown when the edit matches nowhere.

The model retries better when it sees what is really there. In a file of up to a megabyte
every window of old_string's length is scored by the words it shares, linearly, and the best
few are compared with SequenceMatcher; in a bigger file only the windows around old_string's
rarest lines (or words) are. Comparisons are of the first lines only and stop at a budget:
a region need only be close enough to point the model at.
"""

from __future__ import annotations

import heapq
import re
from typing import Any

from coder.tools.base import ToolError
from coder.tools.editing import similarity
from coder.tools.editing.document import Document
from coder.tools.editing.lines import SNIPPET_MAX_LINES, LineNumbers, anchors, as_lines, numbered, read_lines

_CANDIDATES = 40  # windows compared with SequenceMatcher.ratio() when looking for the closest region
_EXHAUSTIVE_CHARS = 1_000_000  # up to this size every window is scored for the closest region
_ANCHOR_HITS = 50  # an anchor found more often than this says little about where old_string was meant
_COMPARED_CHARS = 4000  # of old_string's first lines, and as many of each window's, compared (about a hundred)
_TOKEN = re.compile(r"\w+|[^\w\s]")


def _compared(want: list[str]) -> int:
    """How many of old_string's lines are compared: as many as fit in _COMPARED_CHARS, one at least."""
    size = -1
    for k, w in enumerate(want):
        size += len(w) + 1
        if size > _COMPARED_CHARS:
            return max(k, 1)
    return len(want)


def _best_window(windows: list[tuple[Any, str]], target: str) -> tuple[Any, float]:
    """(key, similarity) of the window most like target. quick_ratio() bounds ratio() from above, so
    windows are compared best bound first until none left can win, or the budget is spent."""
    sm = similarity.Matcher(similarity.Budget())
    sm.set_seq2(target[:_COMPARED_CHARS])  # seq2 is the side SequenceMatcher caches
    bounded = []
    for key, window in windows:
        window = window[:_COMPARED_CHARS]
        sm.set_seq1(window)
        bounded.append((sm.quick_ratio(), key, window))
    bounded.sort(key=lambda t: (-t[0], t[1]))
    best, best_key = -1.0, bounded[0][1]
    known: dict[str, float] = {}
    for bound, key, window in bounded:
        if bound < best:
            break
        r = known.get(window)
        if r is None:
            sm.set_seq1(window)
            try:
                r = sm.ratio()
            except similarity.OverBudget:
                if best >= 0:
                    break  # the best so far stands
                r = bound  # the likeliest window, too costly to compare: its bound stands for it
            known[window] = r
        if r > best or (r == best and key < best_key):
            best, best_key = r, key
    return best_key, max(best, 0.0)


def _closest_small(text: str, old_lines: list[str]) -> tuple[int, int, float]:
    """(offset, first line, similarity) of the window most like old_lines, every window considered.

    A token-overlap score over sliding windows (linear in the file) picks a few
    candidates; SequenceMatcher then decides among them.
    """
    file_lines = as_lines(text)
    n = max(1, min(len(old_lines), len(file_lines)))
    stripped = [line.strip() for line in file_lines]
    target = "\n".join(line.strip() for line in old_lines)
    want = set(_TOKEN.findall(target))
    hits, sizes = [0], [0]  # prefix sums over file lines
    for line in stripped:
        toks = set(_TOKEN.findall(line))
        hits.append(hits[-1] + len(toks & want))
        sizes.append(sizes[-1] + len(toks))

    def overlap(i: int) -> float:
        return 2 * (hits[i + n] - hits[i]) / ((sizes[i + n] - sizes[i]) + len(want) or 1)

    candidates = heapq.nlargest(_CANDIDATES, range(len(stripped) - n + 1), key=lambda i: (overlap(i), -i))
    k = _compared([line.strip() for line in old_lines])
    start, score = _best_window([(i, "\n".join(stripped[i : i + k])) for i in candidates],
                                "\n".join(line.strip() for line in old_lines[:k]))
    return sum(len(line) + 1 for line in file_lines[:start]), start + 1, score


def _window(text: str, start: int, n: int) -> str:
    """The stripped lines (n at most) from start, as far as they are compared."""
    lines, size, pos = [], 0, start
    while len(lines) < n and pos < len(text) and size < _COMPARED_CHARS:
        nl = text.find("\n", pos, pos + _COMPARED_CHARS)
        lines.append(text[pos : pos + _COMPARED_CHARS if nl < 0 else nl].strip())
        size += len(lines[-1]) + 1
        if nl < 0:
            break
        pos = nl + 1
    return "\n".join(lines)


def _closest_big(text: str, old_lines: list[str]) -> tuple[int, int, float] | None:
    """(offset, first line, similarity) of the window most like old_lines, looked for only where its rarest
    lines (or, failing those, its rarest words) occur: a bounded number of scans of the file."""
    want = [line.strip() for line in old_lines]
    want = want[: _compared(want)]
    n = len(want)

    def hits_of(anchored: list[tuple[str, int]]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        rare: list[tuple[int, int]] = []
        common: list[tuple[int, int]] = []
        for s, idx in anchored:
            found, pos = [], text.find(s)
            while pos >= 0 and len(found) <= _ANCHOR_HITS:
                found.append((pos, idx))
                pos = text.find(s, pos + 1)
            (rare if len(found) <= _ANCHOR_HITS else common).extend(found[:_ANCHOR_HITS])
        return rare, common

    rare, common = hits_of(anchors(((w, i) for i, w in enumerate(want)), shortest=3))
    if not rare:
        words = ((tok, i) for i, w in enumerate(want) for tok in _TOKEN.findall(w))
        rare, more = hits_of(anchors(words, shortest=3))
        common += more
    hits = sorted(rare or common[:_ANCHOR_HITS])
    if not hits:
        return None
    numbers = LineNumbers(text)
    windows: dict[tuple[int, int], str] = {}
    line_start, after = 0, 0  # the start of the line of the last hit, and where that line is known to go on
    for pos, idx in hits:
        if text.find("\n", after, pos) >= 0:  # another line than the last hit's (hits are in order)
            line_start = text.rfind("\n", after, pos) + 1
        after = pos
        start = line_start
        for _ in range(idx):  # idx lines up: where old_string would start
            if start == 0:
                break
            start = text.rfind("\n", 0, start - 1) + 1
        key = (numbers.at(start), start)
        if key not in windows:
            windows[key] = _window(text, start, n)
    (line, start), score = _best_window(sorted(windows.items()), "\n".join(want))
    return start, line, score


def no_match(doc: Document, shown: str, old: str, notes: list[str]) -> ToolError:
    text = doc.text
    if not text:
        return ToolError(f"old_string was not found in {shown}: the file is empty; use write_file to fill it")
    old_lines = as_lines(old) or [old]
    found = _closest_small(text, old_lines) if len(text) <= _EXHAUSTIVE_CHARS else _closest_big(text, old_lines)
    head = f"old_string was not found in {shown}, not even ignoring indentation and trailing white space."
    tail = "Copy old_string exactly from the file (read_file shows the current content) and retry."
    if found is None:
        return ToolError("\n".join([head, *notes, "No line or word of old_string occurs in the file.", tail]))
    pos, first, score = found
    shown_lines, _, _ = read_lines(text, pos, min(len(old_lines), SNIPPET_MAX_LINES))
    region = "\n".join(numbered(shown_lines, first))
    return ToolError("\n".join([
        head, *notes,
        f"The closest region is lines {first}-{first + len(shown_lines) - 1} ({score:.0%} similar):",
        region, tail,
    ]))
