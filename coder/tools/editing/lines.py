"""Lines of a text that may be 40 MB, reached by offset and counted on demand rather than by
splitting the whole text; and lines shown to the model as read_file numbers them, each made
printable and short, so that sixty of them always fit in a tool's output."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

CONTEXT_LINES = 2
SNIPPET_MAX_LINES = 60
LINE_CHARS = 500  # longest line shown, escapes included
MAX_COUNT = 1000  # occurrences counted for an ambiguity message
_LISTED = 20  # line numbers listed in one

# Control characters, C1 controls (latin-1 bytes 0x80-0x9f) and undecodable bytes kept as lone surrogates.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


class LineNumbers:
    """Line numbers of offsets asked for in (mostly) increasing order, at the cost of one pass."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.line = text, 0, 1

    def at(self, pos: int) -> int:
        if pos >= self.pos:
            self.line += self.text.count("\n", self.pos, pos)
        else:
            self.line -= self.text.count("\n", pos, self.pos)
        self.pos = pos
        return self.line


def line_at(text: str, pos: int) -> int:
    return LineNumbers(text).at(pos)


def start_above(text: str, pos: int, k: int) -> int:
    """Start of the line k lines above the one holding pos (the first line at most)."""
    start = text.rfind("\n", 0, pos) + 1
    for _ in range(k):
        if start == 0:
            break
        start = text.rfind("\n", 0, start - 1) + 1
    return start


def end_below(text: str, pos: int, k: int) -> int:
    """End (after its line ending) of the line k lines below the one holding pos."""
    end = pos
    for _ in range(k + 1):
        nl = text.find("\n", end)
        if nl < 0:
            return len(text)
        end = nl + 1
    return end


def read_lines(text: str, pos: int, n: int) -> tuple[list[str], list[str], int]:
    """Up to n lines from pos: their contents, their endings ("\\r\\n", "\\n", "" at the end), the end offset."""
    contents, endings = [], []
    while len(contents) < n and pos < len(text):
        nl = text.find("\n", pos)
        if nl < 0:
            line, ending, pos_next = text[pos:], "", len(text) + 1
        else:
            line, ending, pos_next = text[pos:nl], "\n", nl + 1
            if line.endswith("\r"):
                line, ending = line[:-1], "\r\n"
        contents.append(line)
        endings.append(ending)
        pos = pos_next
        if not ending:
            break
    return contents, endings, min(pos, len(text))


def as_lines(s: str) -> list[str]:
    """Lines of a snippet; one trailing newline just ends the last line."""
    if s == "":
        return []
    if s.endswith("\n"):
        s = s[:-1]
    return s.split("\n")


def _escape(c: str) -> str:
    o = ord(c)
    return f"\\x{o - 0xDC00:02x}" if 0xDC80 <= o <= 0xDCFF else f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def visible(line: str) -> str:
    """A line fit to show: no line-end CR, no control character or undecodable byte, at most LINE_CHARS."""
    if line.endswith("\r"):
        line = line[:-1]
    head = _INVISIBLE.sub(lambda m: _escape(m.group()), line[:LINE_CHARS])
    if len(head) > LINE_CHARS:  # escapes take up to four characters each: cut where they still fit
        shown, width = [], 0
        for c in line[:LINE_CHARS]:
            c = _escape(c) if _INVISIBLE.match(c) else c
            if width + len(c) > LINE_CHARS:
                break
            shown.append(c)
            width += len(c)
        head, kept = "".join(shown), len(shown)
    else:
        kept = min(len(line), LINE_CHARS)
    return head + (f" [... {len(line) - kept} more characters]" if len(line) > kept else "")


def numbered(lines: list[str], first: int) -> list[str]:
    return [f"{n:>6}\t{visible(line)}" for n, line in enumerate(lines, first)]


def listed(text: str, starts: list[int]) -> str:
    """Line numbers of places (the first twenty): "3, 7 (2 times), ..." (two on one line: overlapping or
    side by side)."""
    numbers = LineNumbers(text)
    lines = [numbers.at(s) for s in starts[:_LISTED]]
    counts = Counter(lines)
    shown = ", ".join(f"{n} ({counts[n]} times)" if counts[n] > 1 else str(n) for n in dict.fromkeys(lines))
    return shown + (", ..." if len(starts) > len(lines) else "")


def count_text(n: int) -> str:
    return f"at least {n}" if n >= MAX_COUNT else str(n)


ANCHORS = 8  # lines (or words) of old_string looked up in a big file


def anchors(keyed: Iterable[tuple[str, int]], shortest: int = 1) -> list[tuple[str, int]]:
    """The longest distinct strings of (string, line index) pairs, ANCHORS at most, each with its first
    line: long lines of old_string are rare in a file, so they say where to look."""
    first: dict[str, int] = {}
    for s, i in keyed:
        if len(s) >= shortest:
            first.setdefault(s, i)
    return sorted(first.items(), key=lambda t: -len(t[0]))[:ANCHORS]
