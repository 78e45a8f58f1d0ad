"""What the model may have meant when old_string matches nowhere as written.

Models paste read_file's line-number prefixes, write line breaks as literal \\n escapes, send
another Unicode normalization or typographic quotes. Each such reading is applied only when it
matches exactly one place (or, with replace_all, any), and said in the result; otherwise the
difference is named in the error, so the model's next try can be right.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from coder.tools.base import ToolError
from coder.tools.editing.document import Document, Edit
from coder.tools.editing.exact import Finder, exact_edit
from coder.tools.editing.lines import count_text, line_at, listed

_PREFIX = re.compile(r" *(\d+)\t")  # read_file's `{n:>6}\t`
_ESCAPE = re.compile(r"\\(r\\n|n|t|\"|'|\\)")
_ESCAPES = {"r\\n": "\n", "n": "\n", "t": "\t", '"': '"', "'": "'", "\\": "\\"}
_SINGLE, _DOUBLE = "\u2018\u2019\u201a\u201b", "\u201c\u201d\u201e\u201f"
_QUOTES = "'\"" + _SINGLE + _DOUBLE
_STRAIGHT = {**dict.fromkeys(_SINGLE, "'"), **dict.fromkeys(_DOUBLE, '"')}
_STRAIGHTEN = str.maketrans(_STRAIGHT)
_AROUND_FFFD = 100  # characters of old_string either side of its first U+FFFD looked for in the file


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


def reread(doc: Document, old: str, new: str, replace_all: bool, shown: str, notes: list[str]) -> Edit | None:
    """An edit under another reading of old_string that matches once (or, with replace_all, anywhere)."""
    for r_old, r_new, how, note in _readings(old, new):
        found = Finder(doc, r_old).overlapping()
        if not found:
            continue
        line = line_at(doc.text, found[0][0])
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
            return exact_edit(doc, r_old, r_new, replace_all, found, f" ({note})")
        notes.append(f"{how[0].upper()}{how[1:]} old_string occurs {count_text(len(found))} times "
                     f"(lines {listed(doc.text, [s for s, _ in found])}); add surrounding lines to make it unique.")
    return None


def _quotes(doc: Document, old: str) -> str | None:
    """Where old_string matches with its quotes as the file has them, and which those are."""
    text = doc.text
    straight = text
    for curly in _SINGLE + _DOUBLE:
        if curly in straight:
            straight = straight.replace(curly, _STRAIGHT[curly])  # as long as the text: offsets hold
    span = Finder(doc, old.translate(_STRAIGHTEN), None if straight is text else straight).first()
    if span is None:
        return None
    got = text[span[0] : span[1]].replace("\r\n", "\n")  # as long as old_string again
    pairs = sorted({(w, g) for w, g in zip(old, got) if w in _QUOTES and w != g})
    if not pairs:
        return None
    said = ", ".join(f"{g} (U+{ord(g):04X}) where old_string has {w} (U+{ord(w):04X})" for w, g in pairs[:3])
    return (f"With its quotes as the file has them old_string matches at line {line_at(text, span[0])}: "
            f"the file has {said}; copy them from the file.")


def _replacement_marks(doc: Document, old: str, shown: str) -> str:
    """What the file has where old_string has U+FFFD, looked for with the part of old_string around the
    first one (the whole of it, as a pattern, could take quadratic time to search for)."""
    text, codec = doc.text, doc.encoding.codec
    cls = "([\x80-\xff]+)" if codec == "latin-1" else "([^\x00-\x7f])"
    if doc.errors != "strict":
        cls = "([\udc80-\udcff]+)"
    at = old.index("\ufffd")
    line_end = old.find("\n", at)
    piece = old[max(old.rfind("\n", 0, at) + 1, at - _AROUND_FFFD) : min(
        len(old) if line_end < 0 else line_end, at + _AROUND_FFFD + 1)]
    m = re.compile("".join(cls if c == "\ufffd" else re.escape(c) for c in piece)).search(text)
    head = "old_string has U+FFFD (\ufffd), the mark a tool leaves for bytes it could not decode; "
    if m is None:
        return head + f"{shown} is {doc.label} and nothing matches there. Use the text read_file shows."
    got = "".join(m.groups())
    if codec == "latin-1":
        what = "bytes " + " ".join(f"0x{ord(c):02X}" for c in got[:8]) + f" there, shown as {got[:8]!r}"
    elif doc.errors != "strict":
        what = "bytes " + " ".join(f"0x{ord(c) - 0xDC00:02X}" for c in got[:8]) + " there (not valid UTF-8)"
    else:
        what = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in got[:8]) + " there"
    return (head + f"{shown} is {doc.label}, and at line {line_at(text, m.start())} it has "
            f"{what}. Use the characters read_file shows.")


def diagnose(doc: Document, old: str, shown: str) -> list[str]:
    """One or two lines naming a difference the model can fix: quotes, escapes, undecodable bytes."""
    notes: list[str] = []
    text = doc.text
    if any(c in old for c in _QUOTES):
        said = _quotes(doc, old)
        if said:
            notes.append(said)
    if "\n" in old and "\\n" not in old:
        where = text.find(old.replace("\n", "\\n"))
        if where >= 0:
            notes.append(f"Line {line_at(text, where)} of the file has the two characters \\n (an escape "
                         "inside a string) where old_string has line breaks; write \\n as the file has it.")
    if "\ufffd" in old:
        notes.append(_replacement_marks(doc, old, shown))
    return notes
