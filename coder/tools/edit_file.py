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
for from the rarest lines and words of old_string.
"""

from __future__ import annotations

import codecs
import difflib
import heapq
import os
import re
import stat
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coder.tools.base import MAX_DIFF_LINES, Output, Param, Tool, ToolContext, ToolError
from coder.tools.pathhints import missing_path_message
from coder.tools.textcodec import BinaryFile, Encoding, decode
from sandbox.paths import NotRegularFile, atomic_write, display, open_file, resolve_write

CONTEXT_LINES = 2
SNIPPET_MAX_LINES = 60
_LINE_CHARS = 500  # longest line shown in a snippet
_CANDIDATES = 40  # windows compared with SequenceMatcher.ratio() when looking for the closest region
_EXHAUSTIVE_CHARS = 1_000_000  # up to this size every window is scored for the closest region
_ANCHORS = 8  # lines (or words) of old_string looked up in a big file
_ANCHOR_HITS = 50  # an anchor found more often than this says little about where old_string was meant
_MAX_COUNT = 1000  # occurrences counted for an ambiguity message
_LISTED = 20  # line numbers listed in one
_ENCODE_CHUNK = 1 << 20  # characters encoded at a time to find a byte offset
_TOKEN = re.compile(r"\w+|[^\w\s]")
_INDENT = re.compile(r"[ \t]*")
_PREFIX = re.compile(r" *(\d+)\t")  # read_file's `{n:>6}\t`
_ESCAPE = re.compile(r"\\(r\\n|n|t|\"|'|\\)")
_ESCAPES = {"r\\n": "\n", "n": "\n", "t": "\t", '"': '"', "'": "'", "\\": "\\"}
# Control characters, C1 controls (latin-1 bytes 0x80-0x9f) and undecodable bytes kept as lone surrogates.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_SINGLE, _DOUBLE = "\u2018\u2019\u201a\u201b", "\u201c\u201d\u201e\u201f"
_STRAIGHTEN = str.maketrans({**dict.fromkeys(_SINGLE, "'"), **dict.fromkeys(_DOUBLE, '"')})

FUZZY_NOTE = (
    "old_string matched only when ignoring indentation and trailing white space; "
    "the file's indentation was used for new_string"
)


# --- the file ------------------------------------------------------------------------------------------


@dataclass
class _File:
    raw: bytes
    text: str
    encoding: Encoding
    errors: str  # "surrogateescape" keeps the bad bytes of a UTF-8 file with BOM as they were
    dominant: str  # the line ending most lines have: what new lines get
    has_cr: bool

    @property
    def label(self) -> str:
        if self.encoding.codec == "latin-1":
            return "latin-1 (not valid UTF-8; read_file shows it one character per byte)"
        return self.encoding.describe()

    def encode(self, s: str, shown: str) -> bytes:
        try:
            return s.encode(self.encoding.codec, self.errors)
        except UnicodeEncodeError as e:
            bad = s[e.start : e.end]
            raise ToolError(
                f"{shown} is {self.label}, which cannot store {bad!r} "
                f"({', '.join(f'U+{ord(c):04X}' for c in bad[:3])}) in new_string; "
                "use only characters the file's encoding can hold (or an escape of the file's language)"
            ) from None

    def encoded_len(self, start: int, end: int) -> int:
        """Bytes that text[start:end] takes in the file, without copying the whole text at once."""
        codec = self.encoding.codec
        if codec == "latin-1" or (codec == "utf-8" and self.text.isascii()):
            return end - start
        if codec.startswith("utf-32"):
            return 4 * (end - start)
        return sum(
            len(self.text[i : min(i + _ENCODE_CHUNK, end)].encode(codec, self.errors))
            for i in range(start, end, _ENCODE_CHUNK)
        )


def _load(raw: bytes, shown: str) -> _File:
    errors = "strict"
    try:
        text, encoding = decode(raw)
    except BinaryFile as e:
        if not raw.startswith(codecs.BOM_UTF8):
            raise ToolError(f"{shown} is not text ({e}); edit_file only edits text files") from None
        # read_file shows such a file with U+FFFD for its bad bytes; an edit elsewhere keeps them as they are.
        text, errors = raw[3:].decode("utf-8", "surrogateescape"), "surrogateescape"
        encoding = Encoding("utf-8", codecs.BOM_UTF8)
    crlf = text.count("\r\n")
    lf = text.count("\n") - crlf
    return _File(raw, text, encoding, errors, "\r\n" if crlf > lf else "\n", crlf > 0)


# --- small helpers over the text, none of which splits the whole file ----------------------------------


class _LineNumbers:
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


def _back(text: str, pos: int, k: int) -> int:
    """Start of the line k lines above the one holding pos (the first line at most)."""
    start = text.rfind("\n", 0, pos) + 1
    for _ in range(k):
        if start == 0:
            break
        start = text.rfind("\n", 0, start - 1) + 1
    return start


def _forward(text: str, pos: int, k: int) -> int:
    """End (after its line ending) of the line k lines below the one holding pos."""
    end = pos
    for _ in range(k + 1):
        nl = text.find("\n", end)
        if nl < 0:
            return len(text)
        end = nl + 1
    return end


def _read_lines(text: str, pos: int, n: int) -> tuple[list[str], list[str], int]:
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


def _as_lines(s: str) -> list[str]:
    """Lines of a snippet; one trailing newline just ends the last line."""
    if s == "":
        return []
    if s.endswith("\n"):
        s = s[:-1]
    return s.split("\n")


def _lf(s: str) -> str:
    return s.replace("\r\n", "\n")


def _visible(line: str) -> str:
    """A line fit to show: no line-end CR, no control character or undecodable byte, not too long."""
    if line.endswith("\r"):
        line = line[:-1]
    if len(line) > _LINE_CHARS:
        line = line[:_LINE_CHARS] + f" [... {len(line) - _LINE_CHARS} more characters]"

    def esc(m: re.Match[str]) -> str:
        c = ord(m.group())
        return f"\\x{c - 0xDC00:02x}" if 0xDC80 <= c <= 0xDCFF else f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return _INVISIBLE.sub(esc, line)


def _numbered(lines: list[str], first: int) -> list[str]:
    return [f"{n:>6}\t{_visible(line)}" for n, line in enumerate(lines, first)]


def _line_list(lines: list[int], total: int) -> str:
    """Line numbers of occurrences: "3, 7 (2 times), ..." (two on one line: overlapping or side by side)."""
    counts = Counter(lines)
    shown = ", ".join(f"{n} ({counts[n]} times)" if counts[n] > 1 else str(n) for n in dict.fromkeys(lines))
    return shown + (", ..." if total > len(lines) else "")


def _count_text(n: int) -> str:
    return f"at least {n}" if n >= _MAX_COUNT else str(n)


# --- exact matching (line endings aside) ---------------------------------------------------------------


class _Finder:
    """Where old_string is, its "\\n" standing for either line ending when the file has CRLF ones."""

    def __init__(self, doc: _File, old: str) -> None:
        self.text, self.old = doc.text, old
        self.regex = (
            re.compile(r"\r?\n".join(map(re.escape, old.split("\n")))) if doc.has_cr and "\n" in old else None
        )

    def find(self, pos: int) -> tuple[int, int] | None:
        if self.regex is None:
            i = self.text.find(self.old, pos)
            return None if i < 0 else (i, i + len(self.old))
        m = self.regex.search(self.text, pos)
        return None if m is None else m.span()

    def overlapping(self, limit: int = _MAX_COUNT) -> list[tuple[int, int]]:
        """Every start, overlapping ones too ("aa" is twice in "aaa"): each is a place the model may mean."""
        out: list[tuple[int, int]] = []
        span = self.find(0)
        while span is not None and len(out) < limit:
            out.append(span)
            span = self.find(span[0] + 1)
        return out

    def spans(self) -> Iterator[tuple[int, int]]:
        """Non-overlapping matches left to right, as replace_all replaces them."""
        span = self.find(0)
        while span is not None:
            yield span
            span = self.find(span[1])


def _pair_lines(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Pairs (i, j), in order, of the old and new lines most alike: which new line rewrites which old one.
    Every pair counts a little beyond its similarity, and ties go to the first lines, so lines with
    nothing in common pair up in order."""
    if len(a) * len(b) > 2500:
        return list(zip(range(len(a)), range(len(b))))
    sm = difflib.SequenceMatcher(autojunk=False)
    sim = []
    for x in a:
        sm.set_seq2(x.casefold())
        row = []
        for y in b:
            sm.set_seq1(y.casefold())
            row.append(sm.ratio() + 0.01)
        sim.append(row)
    # best[i][j]: the best total for a[i:] and b[j:]
    best = [[0.0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            best[i][j] = max(best[i + 1][j], best[i][j + 1], best[i + 1][j + 1] + sim[i][j])
    pairs, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if best[i][j] == best[i + 1][j + 1] + sim[i][j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif best[i][j] == best[i][j + 1]:
            j += 1
        else:
            i += 1
    return pairs


def _ending_plan(old_keys: list[str], new_keys: list[str]) -> list[int | None]:
    """For each new line, the old line whose ending it keeps (None: a new line, gets the file's usual one)."""
    plan: list[int | None] = [None] * len(new_keys)
    sm = difflib.SequenceMatcher(None, old_keys, new_keys, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                plan[j1 + k] = i1 + k
        elif tag == "replace":
            for i, j in _pair_lines(old_keys[i1:i2], new_keys[j1:j2]):
                plan[j1 + j] = i1 + i
    return plan


@dataclass
class _Edit:
    spans: Callable[[], Iterator[tuple[int, int, str]]]  # (start, end, replacement), in order, never overlapping
    count: int
    note: str = ""
    whole: Callable[[], str] | None = None  # the whole new text, when there are many replacements


def _exact(doc: _File, old: str, new: str, replace_all: bool, found: list[tuple[int, int]], note: str = "") -> _Edit:
    """The edit replacing old (found at `found`) by new; each replaced line keeps its own line ending."""
    text, dominant = doc.text, doc.dominant
    old_pieces, new_pieces = old.split("\n"), new.split("\n")
    # Without a CR in the file every ending is "\n": nothing to keep line by line.
    plan = _ending_plan(old_pieces[:-1], new_pieces[:-1]) if doc.has_cr else [None] * (len(new_pieces) - 1)
    finder = _Finder(doc, old)

    def with_endings(endings: list[str]) -> str:
        out = [p + (dominant if i is None else endings[i]) for p, i in zip(new_pieces, plan)]
        return "".join(out) + new_pieces[-1]

    fixed = with_endings(["\n"] * (len(old_pieces) - 1)) if finder.regex is None else None

    def replacement(s: int, e: int) -> str:
        if fixed is not None:
            return fixed
        return with_endings(["\r\n" if p.endswith("\r") else "\n" for p in text[s:e].split("\n")[:-1]])

    if not replace_all:
        s, e = found[0]
        rep = replacement(s, e)
        return _Edit(lambda: iter([(s, e, rep)]), 1, note)

    def spans() -> Iterator[tuple[int, int, str]]:
        return ((s, e, replacement(s, e)) for s, e in finder.spans())

    def whole() -> str:
        if finder.regex is None:
            return text.replace(old, fixed or "")
        return finder.regex.sub(lambda m: replacement(*m.span()), text)

    count = text.count(old) if finder.regex is None else sum(1 for _ in finder.spans())
    return _Edit(spans, count, note, whole if count > 1 else None)


def _ambiguous(doc: _File, shown: str, found: list[tuple[int, int]], what: str = "old_string") -> ToolError:
    numbers = _LineNumbers(doc.text)
    lines = [numbers.at(s) for s, _ in found[:_LISTED]]
    overlap = any(b[0] < a[1] for a, b in zip(found, found[1:]))
    return ToolError(
        f"{what} occurs {_count_text(len(found))} times in {shown} (at lines {_line_list(lines, len(found))})"
        + ("; some of these occurrences overlap" if overlap else "")
        + "; add surrounding lines to old_string so it matches once, or set replace_all to true"
    )


# --- whole lines, indentation aside ----------------------------------------------------------------------


def _fuzzy_windows(text: str, want: list[str], limit: int = _MAX_COUNT) -> list[int]:
    """Starts of line windows whose stripped lines are `want`, found from the rarest line of it."""
    first_index: dict[str, int] = {}
    for i, w in enumerate(want):
        if w:
            first_index.setdefault(w, i)
    anchor, idx, fewest = "", 0, -1
    for w, i in sorted(first_index.items(), key=lambda t: -len(t[0]))[:_ANCHORS]:
        c = text.count(w)
        if c == 0:
            return []  # a line of old_string is nowhere in the file
        if fewest < 0 or c < fewest:
            anchor, idx, fewest = w, i, c
    out: list[int] = []
    pos = text.find(anchor)
    while pos >= 0 and len(out) < limit:
        ls = text.rfind("\n", 0, pos) + 1
        nl = text.find("\n", pos)
        le = len(text) if nl < 0 else nl
        if text[ls:le].strip() == anchor and (idx == 0 or ls > 0):
            start = _back(text, ls, idx)
            contents, _, _ = _read_lines(text, start, len(want))
            if [c.strip() for c in contents] == want and text.count("\n", start, ls) == idx:
                out.append(start)
        if nl < 0:
            break
        pos = text.find(anchor, nl + 1)
    return out


class _IndentError(Exception):
    """new_string's indentation cannot be mapped to the file's without guessing."""


def _indent(line: str) -> str:
    m = _INDENT.match(line)
    return m.group() if m else ""


def _kind_width(ind: str) -> tuple[str, int] | None:
    """(" " or "\\t", how many) for an indentation of one kind; None when it mixes tabs and spaces."""
    kinds = set(ind)
    if len(kinds) > 1:
        return None
    return (kinds.pop() if kinds else "", len(ind))


def _model_unit(blocks: list[list[str]]) -> tuple[str, int]:
    """The model's indentation kind and step: the most common increase from one line to the next."""
    kinds: set[str] = set()
    steps: Counter[int] = Counter()
    widths: set[int] = set()
    for block in blocks:
        prev = None
        for ind in block:
            kw = _kind_width(ind)
            if kw is None:
                raise _IndentError(f"old_string or new_string indents a line with tabs and spaces mixed ({ind!r})")
            if kw[0]:
                kinds.add(kw[0])
            widths.add(kw[1])
            if prev is not None and kw[1] > prev:
                steps[kw[1] - prev] += 1
            prev = kw[1]
    if len(kinds) > 1:
        raise _IndentError("old_string and new_string indent some lines with tabs and others with spaces")
    kind = kinds.pop() if kinds else " "
    if steps:
        return kind, max(steps, key=lambda d: (steps[d], -d))
    ordered = sorted(widths)
    diffs = [b - a for a, b in zip(ordered, ordered[1:])]
    return kind, min(diffs) if diffs else 0


def _file_unit(sample: str) -> str | None:
    """The file's indentation step near the edit: a tab, or the most common increase in spaces."""
    tabs = spaces = 0
    steps: Counter[int] = Counter()
    prev = None
    for line in sample.split("\n")[1:-1]:  # the first and last may be cut
        if not line.strip():
            continue
        ind = _indent(line)
        if ind.startswith("\t"):
            tabs += 1
        elif ind:
            spaces += 1
        if set(ind) <= {" "}:
            if prev is not None and len(ind) > prev:
                steps[len(ind) - prev] += 1
            prev = len(ind)
        else:
            prev = None
    if tabs > spaces:
        return "\t"
    if steps:
        return " " * max(steps, key=lambda d: (steps[d], -d))
    return None


def _show_indent(ind: str) -> str:
    if not ind:
        return "no indentation"
    kw = _kind_width(ind)
    if kw is None:
        return repr(ind)
    name = "tab" if kw[0] == "\t" else "space"
    return f"{kw[1]} {name}{'s' if kw[1] > 1 else ''}"


def _reindent(old_lines: list[str], window: list[str], new_lines: list[str], sample: Callable[[], str]) -> list[str]:
    """new_lines indented in the file's style: each indentation old_string uses maps to the file's for
    the same lines; others are that plus or minus whole levels (model's step -> file's step)."""
    table: dict[str, tuple[str, int]] = {}  # model indentation -> (file indentation, old line index)
    for i, (o, f) in enumerate(zip(old_lines, window)):
        if not o.strip():
            continue
        mi, fi = _indent(o), _indent(f)
        known = table.setdefault(mi, (fi, i))
        if known[0] != fi:
            raise _IndentError(
                f"lines {known[1] + 1} and {i + 1} of old_string have the same indentation ({_show_indent(mi)}) "
                f"but in the file one has {_show_indent(known[0])} and the other {_show_indent(fi)}"
            )
    file_kinds = {c for f in window for c in _indent(f) if f.strip()}
    unit: list[Any] = []  # computed once, when a new indentation needs it

    def units() -> tuple[int, str]:
        if not unit:
            old_inds = [_indent(o) for o in old_lines if o.strip()]
            new_inds = [_indent(n) for n in new_lines if n.strip()]
            kind, step = _model_unit([old_inds, new_inds])
            found: Counter[str] = Counter()
            keyed = sorted(((_kind_width(k) or ("", -1))[1], v[0]) for k, v in table.items())
            for (wa, fa), (wb, fb) in zip(keyed, keyed[1:]):
                if step and wa >= 0 and (wb - wa) % step == 0 and fb.startswith(fa):
                    k, extra = (wb - wa) // step, fb[len(fa) :]
                    u = extra[: len(extra) // k] if k else ""
                    if u and u * k == extra:
                        found[u] += 1
            fu = found.most_common(1)[0][0] if found else _file_unit(sample())
            if fu is None:
                fu = kind * (step if kind == " " else 1)  # a file without indentation: the model's own step
            unit.extend([step, fu])
        return unit[0], unit[1]

    def mapped(ind: str) -> str:
        if ind in table:
            return table[ind][0]
        kw = _kind_width(ind)
        step, fu = units()
        if kw is None or not step or not fu:
            raise _IndentError(f"new_string uses an indentation ({_show_indent(ind)}) old_string does not")
        w = kw[1]
        keyed = [(kw2[1], v[0]) for k, v in table.items() if (kw2 := _kind_width(k))]  # one kind: _model_unit
        below = [(wk, f) for wk, f in keyed if wk < w and (w - wk) % step == 0]
        if below:
            wk, f = max(below)
            return f + fu * ((w - wk) // step)
        above = [(wk, f) for wk, f in keyed if wk > w and (wk - w) % step == 0]
        if above:
            wk, f = min(above)
            cut = fu * ((wk - w) // step)
            if f.endswith(cut):
                return f[: len(f) - len(cut)]
        raise _IndentError(
            f"new_string indents a line with {_show_indent(ind)}, which is not a whole number of levels "
            f"({step}) from any indentation old_string uses"
        )

    out = []
    for line in new_lines:
        if not line.strip():
            out.append("")
            continue
        ind = _indent(line)
        f = mapped(ind)
        if file_kinds and not set(f) <= file_kinds:
            raise _IndentError(
                f"mapping {_show_indent(ind)} would indent with {_show_indent(f)} where the file's lines use "
                + ("tabs" if file_kinds == {"\t"} else "spaces")
            )
        out.append(f + line[len(ind) :])
    return out


def _fuzzy(doc: _File, old: str, new: str, shown: str) -> _Edit | None:
    old_lines = _as_lines(old)
    want = [line.strip() for line in old_lines]
    if not any(want):
        return None
    text = doc.text
    starts = _fuzzy_windows(text, want)
    if not starts:
        return None
    if len(starts) > 1:
        numbers = _LineNumbers(text)
        lines = [numbers.at(s) for s in starts[:_LISTED]]
        raise ToolError(
            f"old_string was not found exactly in {shown}; ignoring indentation and trailing white space "
            f"it matches {_count_text(len(starts))} places (starting at lines {_line_list(lines, len(starts))}). "
            "Copy old_string exactly from the file, with enough lines to match once"
        )
    start = starts[0]
    window, endings, end = _read_lines(text, start, len(old_lines))
    try:
        new_lines = _reindent(old_lines, window, _as_lines(new), lambda: text[max(0, start - 20_000) : start + 20_000])
    except _IndentError as e:
        raise ToolError(
            f"old_string matches line {_LineNumbers(text).at(start)} of {shown} only when ignoring indentation, "
            f"and its indentation does not map onto the file's: {e}. Copy old_string exactly from the file"
        ) from None
    plan = _ending_plan(want, [line.strip() for line in new_lines])
    parts = []
    for j, (line, i) in enumerate(zip(new_lines, plan)):
        ending = endings[-1] if j == len(new_lines) - 1 else (endings[i] if i is not None else "") or doc.dominant
        parts.append(line + ending)
    rep = "".join(parts)
    if not new_lines and not endings[-1] and start > 0:  # deleting the last lines: the line before ends the file
        start -= 2 if text[start - 2 : start] == "\r\n" else 1
    if rep == text[start:end]:
        raise ToolError("the replacement leaves the file unchanged; nothing was written")
    return _Edit(lambda: iter([(start, end, rep)]), 1, f" ({FUZZY_NOTE})")


# --- what the model may have meant ---------------------------------------------------------------------


def _strip_prefixes(s: str, consecutive: bool) -> tuple[str, bool | None]:
    """s without read_file's line-number prefixes: True when every line had one, False when none, None when some."""
    lines = s.split("\n")
    body = lines[:-1] if len(lines) > 1 and lines[-1] == "" else lines
    found = [_PREFIX.match(line) for line in body]
    if not any(found):
        return s, False
    if not all(found):
        return s, None
    if consecutive:
        numbers = [int(m.group(1)) for m in found if m]
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            return s, False
    stripped = [line[m.end() :] for line, m in zip(body, found) if m]
    return "\n".join(stripped + lines[len(body) :]), True


def _unescape(s: str, only_newlines: bool) -> str:
    if only_newlines:
        return s.replace("\\r\\n", "\n").replace("\\n", "\n")
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group(1)], s)


def _readings(old: str, new: str) -> Iterator[tuple[str, str | None, str, str]]:
    """(old', new', what it means, note when applied) for each other reading of what the model meant;
    new' is None when new_string is not written the same way (so the reading cannot be applied)."""
    p_old, ok = _strip_prefixes(old, consecutive=True)
    if ok:
        p_new, new_ok = _strip_prefixes(new, consecutive=False)
        yield p_old, None if new_ok is None else p_new, "without read_file's line-number prefixes", (
            "old_string carried read_file's line-number prefixes; they were removed"
            + (" from both old_string and new_string" if new_ok else "")
        )
    if "\\n" in old:
        for only_newlines in (True, False):
            e_old = _unescape(old, only_newlines)
            if e_old != old:
                e_new = _unescape(new, only_newlines) if "\n" not in new else None
                yield e_old, e_new, "reading its \\n escapes as line breaks", (
                    "old_string's literal \\n escapes were read as line breaks, in new_string too"
                )
    for form in ("NFC", "NFD"):
        n_old = unicodedata.normalize(form, old)
        if n_old != old:
            yield n_old, unicodedata.normalize(form, new), f"in Unicode normalization form {form}", (
                f"old_string matched in Unicode form {form}, the file's; new_string was written in {form} too"
            )
    s_old = old.translate(_STRAIGHTEN)
    if s_old != old:
        yield s_old, new.translate(_STRAIGHTEN), "with straight quotes instead of typographic ones", (
            "old_string had typographic quotes where the file has straight ones; "
            "new_string's typographic quotes were made straight too"
        )


def _reread(doc: _File, old: str, new: str, replace_all: bool, shown: str, notes: list[str]) -> _Edit | None:
    """An edit under another reading of old_string that matches once (or, with replace_all, anywhere)."""
    for r_old, r_new, how, note in _readings(old, new):
        found = _Finder(doc, r_old).overlapping()
        if not found:
            continue
        line = _LineNumbers(doc.text).at(found[0][0])
        prefixes = how.startswith("without read_file")
        if r_new is None:
            why = (
                "new_string has read_file's line-number prefixes on some lines only"
                if prefixes else "new_string has real line breaks while old_string has \\n escapes"
            )
            note = f"old_string matches {how} (line {line}), but {why}; send both the same way."
            if note not in notes:
                notes.append(note)
            continue
        if len(found) == 1 or (replace_all and not prefixes):
            if r_old == r_new:
                raise ToolError(f"old_string and new_string are identical {how}; there is nothing to change")
            return _exact(doc, r_old, r_new, replace_all, found, f" ({note})")
        lines = [_LineNumbers(doc.text).at(s) for s, _ in found[:_LISTED]]
        notes.append(f"{how[0].upper()}{how[1:]} old_string occurs {_count_text(len(found))} times "
                     f"(lines {_line_list(lines, len(found))}); add surrounding lines to make it unique.")
    return None


def _class_pattern(old: str, classes: dict[str, str]) -> re.Pattern[str]:
    return re.compile("".join(classes.get(c) or (r"\r?\n" if c == "\n" else re.escape(c)) for c in old))


def _diagnose(doc: _File, old: str, shown: str) -> list[str]:
    """One or two lines naming a difference the model can fix: quotes, escapes, undecodable bytes."""
    notes: list[str] = []
    text = doc.text
    if any(c in old for c in "'\"" + _SINGLE + _DOUBLE):
        single, double = f"(['{_SINGLE}])", f"([\"{_DOUBLE}])"
        pattern = _class_pattern(old, {**dict.fromkeys("'" + _SINGLE, single), **dict.fromkeys('"' + _DOUBLE, double)})
        m = pattern.search(text)
        if m:
            wanted = [c for c in old if c in "'\"" + _SINGLE + _DOUBLE]
            pairs = sorted({(w, g) for w, g in zip(wanted, m.groups()) if w != g})
            said = ", ".join(f"{g} (U+{ord(g):04X}) where old_string has {w} (U+{ord(w):04X})" for w, g in pairs[:3])
            if pairs:
                notes.append(f"With its quotes as the file has them old_string matches at line "
                             f"{_LineNumbers(text).at(m.start())}: the file has {said}; copy them from the file.")
    if "\n" in old and "\\n" not in old:
        where = text.find(old.replace("\n", "\\n"))
        if where >= 0:
            notes.append(f"Line {_LineNumbers(text).at(where)} of the file has the two characters \\n (an escape "
                         "inside a string) where old_string has line breaks; write \\n as the file has it.")
    if "\ufffd" in old:
        codec = doc.encoding.codec
        cls = "([\x80-\xff]+)" if codec == "latin-1" else "([^\x00-\x7f])"
        if doc.errors != "strict":
            cls = "([\udc80-\udcff]+)"
        m = _class_pattern(old, {"\ufffd": cls}).search(text)
        head = "old_string has U+FFFD (\ufffd), the mark a tool leaves for bytes it could not decode; "
        if m is None:
            notes.append(head + f"{shown} is {doc.label} and nothing matches there. Use the text read_file shows.")
        else:
            got = "".join(m.groups())
            if codec == "latin-1":
                what = "bytes " + " ".join(f"0x{ord(c):02X}" for c in got[:8]) + f" there, shown as {got[:8]!r}"
            elif doc.errors != "strict":
                what = "bytes " + " ".join(f"0x{ord(c) - 0xDC00:02X}" for c in got[:8]) + " there (not valid UTF-8)"
            else:
                what = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in got[:8]) + " there"
            notes.append(head + f"{shown} is {doc.label}, and at line {_LineNumbers(text).at(m.start())} it has "
                         f"{what}. Use the characters read_file shows.")
    return notes


# --- the closest region, for an edit that matches nowhere ---------------------------------------------


def _best_window(stripped_windows: list[tuple[Any, str]], target: str) -> tuple[Any, float]:
    """(key, similarity) of the window most like target: quick_ratio() bounds ratio() from above."""
    sm = difflib.SequenceMatcher(autojunk=False)
    sm.set_seq2(target)  # seq2 is the side SequenceMatcher caches
    bounded = []
    for key, window in stripped_windows:
        sm.set_seq1(window)
        bounded.append((sm.quick_ratio(), key, window))
    bounded.sort(key=lambda t: (-t[0], t[1]))
    best, best_key = -1.0, bounded[0][1]
    for bound, key, window in bounded:
        if bound < best:
            break
        sm.set_seq1(window)
        r = sm.ratio()
        if r > best or (r == best and key < best_key):
            best, best_key = r, key
    return best_key, max(best, 0.0)


def _closest_small(text: str, old_lines: list[str]) -> tuple[int, int, float]:
    """(offset, first line, similarity) of the window most like old_lines, every window considered.

    A token-overlap score over sliding windows (linear in the file) picks a few
    candidates; SequenceMatcher then decides among them.
    """
    file_lines = _as_lines(text)
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
    start, score = _best_window([(i, "\n".join(stripped[i : i + n])) for i in candidates], target)
    return sum(len(line) + 1 for line in file_lines[:start]), start + 1, score


def _closest_big(text: str, old_lines: list[str]) -> tuple[int, int, float] | None:
    """(offset, first line, similarity) of the window most like old_lines, looked for only where its rarest
    lines (or, failing those, its rarest words) occur: a bounded number of scans of the file."""
    want = [line.strip() for line in old_lines]
    n = len(want)

    def hits_of(anchors: list[tuple[str, int]]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        rare: list[tuple[int, int]] = []
        common: list[tuple[int, int]] = []
        for s, idx in anchors:
            found, pos = [], text.find(s)
            while pos >= 0 and len(found) <= _ANCHOR_HITS:
                found.append((pos, idx))
                pos = text.find(s, pos + 1)
            (rare if len(found) <= _ANCHOR_HITS else common).extend(found[:_ANCHOR_HITS])
        return rare, common

    by_line: dict[str, int] = {}
    for i, w in enumerate(want):
        if len(w) >= 3:
            by_line.setdefault(w, i)
    rare, common = hits_of(sorted(by_line.items(), key=lambda t: -len(t[0]))[:_ANCHORS])
    if not rare:
        by_word: dict[str, int] = {}
        for i, w in enumerate(want):
            for tok in _TOKEN.findall(w):
                if len(tok) >= 3:
                    by_word.setdefault(tok, i)
        rare, more = hits_of(sorted(by_word.items(), key=lambda t: -len(t[0]))[:_ANCHORS])
        common += more
    hits = sorted(rare or common[:_ANCHOR_HITS])
    if not hits:
        return None
    numbers = _LineNumbers(text)
    windows: dict[tuple[int, int], str] = {}
    for pos, idx in hits:
        start = _back(text, pos, idx)
        key = (numbers.at(start), start)
        if key not in windows:
            contents, _, _ = _read_lines(text, start, n)
            windows[key] = "\n".join(c.strip() for c in contents)
    (line, start), score = _best_window(sorted(windows.items()), "\n".join(want))
    return start, line, score


def _no_match(doc: _File, shown: str, old: str, notes: list[str]) -> ToolError:
    text = doc.text
    if not text:
        return ToolError(f"old_string was not found in {shown}: the file is empty; use write_file to fill it")
    old_lines = _as_lines(old) or [old]
    found = _closest_small(text, old_lines) if len(text) <= _EXHAUSTIVE_CHARS else _closest_big(text, old_lines)
    head = f"old_string was not found in {shown}, not even ignoring indentation and trailing white space."
    tail = "Copy old_string exactly from the file (read_file shows the current content) and retry."
    if found is None:
        return ToolError("\n".join([head, *notes, "No line or word of old_string occurs in the file.", tail]))
    pos, first, score = found
    shown_lines, _, _ = _read_lines(text, pos, min(len(old_lines), SNIPPET_MAX_LINES))
    region = "\n".join(_numbered(shown_lines, first))
    return ToolError("\n".join([
        head, *notes,
        f"The closest region is lines {first}-{first + len(shown_lines) - 1} ({score:.0%} similar):",
        region, tail,
    ]))


# --- what the model and the front ends are shown ------------------------------------------------------


def _groups(text: str, spans: Iterator[tuple[int, int, str]]) -> Iterator[tuple[int, int, list[tuple[int, int, str]]]]:
    """Replacements whose context lines touch, with the extent (whole lines) of that context."""
    current: list[tuple[int, int, str]] = []
    cs = ce = 0
    for s, e, rep in spans:
        start = _back(text, s, CONTEXT_LINES)
        end = _forward(text, max(s, e - 1), CONTEXT_LINES)
        if current and start <= ce:
            current.append((s, e, rep))
            ce = max(ce, end)
            continue
        if current:
            yield cs, ce, current
        current, cs, ce = [(s, e, rep)], start, end
    if current:
        yield cs, ce, current


def _keep_lines(s: str) -> list[str]:
    """Lines split at "\\n" only (as line numbers count them), each ending in "\\n" for the diff."""
    pieces = s.split("\n")
    out = [p.removesuffix("\r") + "\n" for p in pieces[:-1]]
    if pieces[-1]:
        out.append(pieces[-1] + "\n")
    return out


_HUNK = re.compile(r"^@@ -(\d+)((?:,\d+)?) \+(\d+)((?:,\d+)?) @@")


def _report(text: str, edit: _Edit, shown: str) -> tuple[str, str]:
    """The new text of each changed place with line numbers (for the model), and a unified diff of it
    (for people), both made from the changed lines only, whatever the size of the file."""
    numbers = _LineNumbers(text)
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
                snippet += _numbered(b[start : start + min(end - start, room)], new_first + start)
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


# --- the tool --------------------------------------------------------------------------------------------


def _bytes(doc: _File, edit: _Edit, shown: str) -> bytes:
    """The file's new bytes: the old ones with the replaced ranges spliced, or the new text encoded."""
    bom = doc.encoding.bom
    if edit.whole is None:
        (s, e, rep), = list(edit.spans())
        rep_b = doc.encode(rep, shown)
        seg_b = doc.encode(doc.text[s:e], shown)
        bs = len(bom) + doc.encoded_len(0, s)
        raw = memoryview(doc.raw)
        if raw[bs : bs + len(seg_b)] == seg_b:
            return b"".join((raw[:bs], rep_b, raw[bs + len(seg_b) :]))
        return bom + doc.encode(doc.text[:s] + rep + doc.text[e:], shown)  # offsets disagree: never guess
    return bom + doc.encode(edit.whole(), shown)


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
    doc = _load(raw, shown)
    del raw
    old, new = _lf(old), _lf(new)
    if old == new:
        raise ToolError("old_string and new_string are identical; there is nothing to change")

    edit: _Edit | None = None
    found = _Finder(doc, old).overlapping()
    if len(found) > 1 and not replace_all:
        raise _ambiguous(doc, shown, found)
    if found:
        edit = _exact(doc, old, new, replace_all, found)
    if edit is None:
        edit = _fuzzy(doc, old, new, shown)
    notes: list[str] = []
    if edit is None:
        edit = _reread(doc, old, new, replace_all, shown, notes)
    if edit is None:
        raise _no_match(doc, shown, old, notes + _diagnose(doc, old, shown))

    data = _bytes(doc, edit, shown)
    ctx.before_write(path, data)
    try:
        atomic_write(ctx.policy, path, data, stat.S_IMODE(st.st_mode))
    finally:
        ctx.after_write(path)
    ctx.saw(path)
    del data
    snippet, diff = _report(doc.text, edit, shown)
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
