"""What a file's bytes are: text in some encoding (and which), or binary.

The file tools share this so that a file read is edited and written back in the
encoding it came in: UTF-8 (with or without BOM), UTF-16 and UTF-32 (by BOM,
or by the pattern of NUL bytes ASCII text leaves in them), and anything else
that is not UTF-8 as latin-1, which maps every byte to one character and back
(lossless). Binary means: a known binary signature (PDF, images, archives,
executables), or NUL bytes that are not a UTF-16/32 pattern.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

SNIFF_BYTES = 8192

_BOMS = (  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Signatures of binary formats whose first 8 KiB may hold no NUL byte (a PDF often does not).
BINARY_SIGNATURES = {
    b"%PDF-": "PDF document",
    b"\x89PNG\r\n\x1a\n": "PNG image",
    b"\xff\xd8\xff": "JPEG image",
    b"GIF87a": "GIF image",
    b"GIF89a": "GIF image",
    b"PK\x03\x04": "zip archive",
    b"\x7fELF": "executable (ELF)",
    b"\x1f\x8b": "gzip archive",
    b"BZh": "bzip2 archive",
    b"\xfd7zXZ\x00": "xz archive",
    b"7z\xbc\xaf\x27\x1c": "7z archive",
    b"SQLite format 3\x00": "SQLite database",
}


class BinaryFile(Exception):
    """The bytes are not text; the message says what they look like."""


@dataclass(frozen=True)
class Encoding:
    """How to turn a file's text back into its bytes."""

    codec: str  # a Python codec name: utf-8, utf-16-le, utf-16-be, utf-32-le, utf-32-be, latin-1
    bom: bytes = b""  # written before the text, as the file had it

    @property
    def unicode(self) -> bool:
        """Whether any character can be stored (latin-1 cannot store most)."""
        return self.codec != "latin-1"

    def describe(self) -> str:
        return self.codec.upper() + (" with BOM" if self.bom else "")


def binary_kind(head: bytes) -> str | None:
    """What a file whose first bytes are `head` is, when that is not text."""
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP image"
    for signature, kind in BINARY_SIGNATURES.items():
        if head.startswith(signature):
            return kind
    if b"\x00" in head and _wide(head) is None:
        return "binary data"
    return None


def _wide(head: bytes) -> str | None:
    """UTF-16/32 without a BOM, told by where ASCII text leaves its NUL bytes."""
    sample = head[: SNIFF_BYTES - SNIFF_BYTES % 4]
    if len(sample) < 4:
        return None
    quads = [sample[i:i + 4] for i in range(0, len(sample) - 3, 4)]
    if sum(q[1:] == b"\0\0\0" for q in quads) > len(quads) * 0.9:
        return "utf-32-le"
    if sum(q[:3] == b"\0\0\0" for q in quads) > len(quads) * 0.9:
        return "utf-32-be"
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > len(odd) * 0.9 and even.count(0) < len(even) * 0.1:
        return "utf-16-le"
    if even.count(0) > len(even) * 0.9 and odd.count(0) < len(odd) * 0.1:
        return "utf-16-be"
    return None


def sniff(head: bytes) -> Encoding:
    """The encoding of a text file from its first bytes (BinaryFile when it is not text)."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return Encoding(codec, bom)
    wide = _wide(head)
    if wide:
        return Encoding(wide)
    kind = binary_kind(head)
    if kind:
        raise BinaryFile(kind)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # not just a character cut at the end of the sample
            return Encoding("latin-1")
    return Encoding("utf-8")


def decode(raw: bytes) -> tuple[str, Encoding]:
    """The text of a whole file and how to write it back; BinaryFile when it is not text."""
    encoding = sniff(raw[:SNIFF_BYTES])
    body = raw[len(encoding.bom):]
    try:
        return body.decode(encoding.codec), encoding
    except UnicodeDecodeError:
        if encoding.codec == "utf-8" and not encoding.bom:
            return body.decode("latin-1"), Encoding("latin-1")
        raise BinaryFile(f"not valid {encoding.describe()}") from None


def encode(text: str, encoding: Encoding) -> bytes:
    """`text` in the file's own encoding; UnicodeEncodeError when the encoding cannot store a character."""
    return encoding.bom + text.encode(encoding.codec)
