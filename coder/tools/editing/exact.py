"""old_string found as written, each line break standing for either ending, and replaced so that
each line keeps its own ending.

Finding is str.find, linear whatever the text: in an all-CRLF file old_string's line breaks
become CRLF, and in a file of mixed endings the search runs on the text with CRLF read as LF,
its offsets mapped back. (A regular expression for "\\r?\\n" tries every start and goes quadratic
on repeated lines; it also found a second start inside the CRLF before a match.)
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

from coder.tools.base import ToolError
from coder.tools.editing.document import Document, Edit, single
from coder.tools.editing.endings import ending_plan
from coder.tools.editing.lines import MAX_COUNT, count_text, listed


class _Unfold:
    """Offsets in the folded text (CRLF read as LF) mapped to the text, asked for in increasing order."""

    def __init__(self, text: str) -> None:
        self.text, self.folded_at, self.text_at = text, 0, 0

    def __call__(self, p: int) -> int:
        text = self.text
        if p < self.folded_at:
            self.folded_at = self.text_at = 0
        base = self.text_at
        want = base + p - self.folded_at
        # The least t with t - (CRLFs in text[base:t]) == want, the CRLFs counted as the range takes them in.
        t, crlfs = want, text.count("\r\n", base, want)
        while want + crlfs > t:
            t, crlfs = want + crlfs, crlfs + text.count("\r\n", max(base, t - 1), want + crlfs)
        if 0 < t < len(text) and text[t] == "\n" and text[t - 1] == "\r":
            t += 1  # just after a folded line break: after all of its CRLF
        self.folded_at, self.text_at = p, t
        return t


class Finder:
    """Where old_string is in text (the document's, or one as long with some characters changed)."""

    def __init__(self, doc: Document, old: str, text: str | None = None) -> None:
        self.text = doc.text if text is None else text
        self.haystack, self.needle = self.text, old
        self.endings: list[str] | None = ["\n"] * old.count("\n")  # of old's lines, when alike at every match
        self.unfold: tuple[_Unfold, _Unfold] | None = None
        if doc.has_cr and "\n" in old:
            if not doc.mixed:
                self.needle = old.replace("\n", "\r\n")
                self.endings = ["\r\n"] * old.count("\n")
            else:
                self.haystack = doc.folded if text is None else self.text.replace("\r\n", "\n")
                self.endings = None
                self.unfold = (_Unfold(self.text), _Unfold(self.text))

    def _starts(self, step: int) -> Iterator[int]:
        i = self.haystack.find(self.needle)
        while i >= 0:
            yield i
            i = self.haystack.find(self.needle, i + step)

    def _spans(self, step: int) -> Iterator[tuple[int, int]]:
        n = len(self.needle)
        if self.unfold is None:
            return ((i, i + n) for i in self._starts(step))
        starts, ends = self.unfold
        return ((starts(i), ends(i + n)) for i in self._starts(step))

    def first(self) -> tuple[int, int] | None:
        return next(self._spans(1), None)

    def overlapping(self, limit: int = MAX_COUNT) -> list[tuple[int, int]]:
        """Every start, overlapping ones too ("aa" is twice in "aaa"): each is a place the model may mean."""
        return list(islice(self._spans(1), limit))

    def spans(self) -> Iterator[tuple[int, int]]:
        """Non-overlapping matches left to right, as replace_all replaces them."""
        return self._spans(len(self.needle))

    def count(self) -> int:
        return self.haystack.count(self.needle)


def exact_edit(doc: Document, old: str, new: str, replace_all: bool, found: list[tuple[int, int]],
               note: str = "") -> Edit:
    """The edit replacing old (found at `found`) by new; each replaced line keeps its own line ending."""
    text, dominant = doc.text, doc.dominant
    finder = Finder(doc, old)
    old_pieces, new_pieces = old.split("\n"), new.split("\n")
    # Only in a file of mixed endings can two lines end differently: elsewhere nothing to keep line by line.
    plan = ending_plan(old_pieces[:-1], new_pieces[:-1]) if doc.mixed else [None] * (len(new_pieces) - 1)

    def with_endings(endings: list[str]) -> str:
        out = [p + (dominant if i is None else endings[i]) for p, i in zip(new_pieces, plan)]
        return "".join(out) + new_pieces[-1]

    fixed = None if finder.endings is None else with_endings(finder.endings)

    def replacement(s: int, e: int) -> str:
        if fixed is not None:
            return fixed
        return with_endings(["\r\n" if p.endswith("\r") else "\n" for p in text[s:e].split("\n")[:-1]])

    if not replace_all:
        s, e = found[0]
        return single(s, e, replacement(s, e), note)

    def spans() -> Iterator[tuple[int, int, str]]:
        return ((s, e, replacement(s, e)) for s, e in finder.spans())

    def whole() -> str:
        if fixed is not None:
            return text.replace(finder.needle, fixed)
        pieces, at = [], 0
        for s, e in finder.spans():
            pieces += [text[at:s], replacement(s, e)]
            at = e
        pieces.append(text[at:])
        return "".join(pieces)

    count = finder.count()
    return Edit(spans, count, note, whole if count > 1 else None)


def ambiguous(doc: Document, shown: str, found: list[tuple[int, int]]) -> ToolError:
    overlap = any(b[0] < a[1] for a, b in zip(found, found[1:]))
    where = listed(doc.text, [s for s, _ in found])
    return ToolError(
        f"old_string occurs {count_text(len(found))} times in {shown} (at lines {where})"
        + ("; some of these occurrences overlap" if overlap else "")
        + "; add surrounding lines to old_string so it matches once, or set replace_all to true"
    )
