"""The file being edited, as text, and the bytes an edit turns it into.

An edit must give back every byte it did not mean to change: the encoding and BOM textcodec
found, the bad bytes of a UTF-8 file with a BOM (kept as lone surrogates), and, for a single
replacement, the untouched bytes themselves, spliced in rather than encoded again.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from coder.tools.base import ToolError
from coder.tools.textcodec import BinaryFile, Encoding, decode

_ENCODE_CHUNK = 1 << 20  # characters encoded at a time to find a byte offset


@dataclass
class Document:
    raw: bytes
    text: str
    encoding: Encoding
    errors: str  # "surrogateescape" keeps the bad bytes of a UTF-8 file with BOM as they were
    dominant: str  # the line ending most lines have: what new lines get
    has_cr: bool  # some line ends in CRLF
    mixed: bool  # some in CRLF and some in LF: only then does each line's own ending need working out
    _folded: str | None = field(default=None, init=False, repr=False)

    @property
    def folded(self) -> str:
        """The text with every CRLF read as LF (made once, and only for a file of mixed endings)."""
        if self._folded is None:
            self._folded = self.text.replace("\r\n", "\n")
        return self._folded

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
                f"{shown} is {self.label}, which cannot store {bad[:20]!r}{'...' if len(bad) > 20 else ''} "
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


def load(raw: bytes, shown: str) -> Document:
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
    return Document(raw, text, encoding, errors, "\r\n" if crlf > lf else "\n", crlf > 0, crlf > 0 and lf > 0)


@dataclass
class Edit:
    spans: Callable[[], Iterator[tuple[int, int, str]]]  # (start, end, replacement), in order, never overlapping
    count: int
    note: str = ""
    whole: Callable[[], str] | None = None  # the whole new text, when there are many replacements


def single(start: int, end: int, replacement: str, note: str = "") -> Edit:
    return Edit(lambda: iter([(start, end, replacement)]), 1, note)


def new_bytes(doc: Document, edit: Edit, shown: str) -> bytes:
    """The file's new bytes: the old ones with the replaced range spliced, or the new text encoded."""
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
