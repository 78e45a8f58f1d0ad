"""read_file: a window of a text file with line numbers, like `cat -n`.

Numbered lines let the model cite and edit precisely; the window, the per-line
cut and the character budget keep any file, however large, within one reply.
The file is never loaded whole: one pass in large chunks counts its lines
(counting b"\\n" bytes, so a late offset costs about as much as an early one)
and finds where the window starts, then only the window is decoded.

What the bytes are comes from `textcodec`: UTF-8 (a BOM is not shown), UTF-16
and UTF-32 (with or without BOM, decoded incrementally), and anything else that
is not valid UTF-8 is shown as latin-1 with a first line saying so, the way
edit_file and write_file read it back. Files with a binary signature are
described in one line; PNG, JPEG, GIF and WebP images within MAX_IMAGE_BYTES
are handed to the model as an image, once their structure is walked (`image_problem`)
and their pixel size is within MAX_IMAGE_SIDE and MAX_IMAGE_PIXELS: a provider
refuses every later request while an image it cannot decode stays in the history,
so a damaged or oversized one is only described.
"""

from __future__ import annotations

import base64
import codecs
import os
import stat
from typing import Any, BinaryIO

from coder.tools.base import MAX_OUTPUT_CHARS, Output, Param, Tool, ToolContext, ToolError
from coder.tools.imageformat import (
    IMAGE_HEAD_BYTES,
    IMAGE_TYPES,
    MAX_IMAGE_BYTES,
    PIXEL_LIMIT,
    image_problem,
    image_size,
    too_many_pixels,
)
from coder.tools.pathhints import missing_path_message
from coder.tools.textcodec import SNIFF_BYTES, BinaryFile, Encoding, binary_kind, sniff
from sandbox.paths import NotRegularFile, display, open_file, resolve_read

DEFAULT_LIMIT = 2000
MAX_LIMIT = 5000
MAX_LINE_CHARS = 2000
CHUNK = 64 * 1024  # read size while decoding the window
SCAN_CHUNK = 1 << 20  # read size while counting lines
# Room left under MAX_OUTPUT_CHARS for the closing note.
BUDGET = MAX_OUTPUT_CHARS - 500

_BYTE_CODECS = ("utf-8", "latin-1")  # one b"\n" byte is one line end, at any offset


class _Lines:
    """The lines of a binary file from its current position, decoded as they are read.

    Only what a line shows is kept (MAX_LINE_CHARS), so a line of any length costs
    little memory; a line ends at "\\n" only, and a "\\r" before it is not shown.
    """

    def __init__(self, f: BinaryIO, codec: str) -> None:
        self.f = f
        self.decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        self.buf = ""
        self.pos = 0
        self.eof = False

    def _fill(self) -> bool:
        """Decode the next piece of the file into the (used up) buffer; False when nothing is left."""
        if self.eof:
            return False
        raw = self.f.read(CHUNK)
        text = self.decoder.decode(raw, final=not raw)
        self.eof = not raw
        self.buf, self.pos = text, 0
        return bool(text) or not self.eof

    def skip(self, count: int) -> None:
        """Pass over `count` lines."""
        while count > 0:
            if self.pos >= len(self.buf) and not self._fill():
                return
            ends = self.buf.count("\n", self.pos)
            if ends < count:
                count -= ends
                self.pos = len(self.buf)
                continue
            for _ in range(count):
                self.pos = self.buf.find("\n", self.pos) + 1
            return

    def read(self) -> str | None:
        """The next line without its line ending, cut to MAX_LINE_CHARS with a marker; None at the end."""
        kept: list[str] = []
        kept_len = total = 0
        got = ended = cr = False
        while True:
            if self.pos >= len(self.buf):
                if not self._fill():
                    break
                continue
            got = True
            i = self.buf.find("\n", self.pos)
            end = i if i >= 0 else len(self.buf)
            if end > self.pos:
                if kept_len < MAX_LINE_CHARS:
                    part = self.buf[self.pos:min(end, self.pos + MAX_LINE_CHARS - kept_len)]
                    kept.append(part)
                    kept_len += len(part)
                total += end - self.pos
                cr = self.buf[end - 1] == "\r"
            if i >= 0:
                self.pos = i + 1
                ended = True
                break
            self.pos = end
        if not got:
            return None
        line = "".join(kept)
        if ended and cr:
            total -= 1
            line = line[:total]
        if total > MAX_LINE_CHARS:
            line += f"... [line truncated: {total} chars]"
        return line


def _scan_bytes(f: BinaryIO, start: int, offset: int, check_utf8: bool) -> tuple[int, int | None, bool]:
    """One pass from `start`: (lines, byte position where line `offset` starts or None, valid UTF-8).

    Counts b"\\n" in large chunks; valid UTF-8 is checked only when asked, and ASCII chunks skip it.
    """
    f.seek(start)
    decoder = codecs.getincrementaldecoder("utf-8")() if check_utf8 else None
    valid = True
    lines = 0
    where = start if offset == 1 else None
    pos = start
    last = b""
    while chunk := f.read(SCAN_CHUNK):
        ends = chunk.count(b"\n")
        if where is None and lines + ends >= offset - 1:
            i = -1
            for _ in range(offset - 1 - lines):
                i = chunk.index(b"\n", i + 1)
            where = pos + i + 1
        lines += ends
        pos += len(chunk)
        last = chunk
        if decoder is not None and valid and not (chunk.isascii() and not decoder.getstate()[0]):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                valid = False
    if decoder is not None and valid:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            valid = False
    if last and not last.endswith(b"\n"):
        lines += 1
    if where is not None and where >= pos:  # the offset is the line after a final newline: there is none
        where = None
    return lines, where, valid


def _count_decoded(f: BinaryIO, start: int, codec: str) -> int:
    """Lines of a file in a codec where b"\\n" bytes are not line ends (UTF-16/32), decoded in chunks."""
    f.seek(start)
    decoder = codecs.getincrementaldecoder(codec)(errors="replace")
    lines = 0
    last = ""
    while True:
        raw = f.read(SCAN_CHUNK)
        text = decoder.decode(raw, final=not raw)
        lines += text.count("\n")
        if text:
            last = text[-1]
        if not raw:
            break
    return lines + (1 if last and last != "\n" else 0)


def _header(encoding: Encoding, valid_utf8: bool) -> str | None:
    """The first line of the output when the file is not plain UTF-8 (None when it is)."""
    if encoding.codec == "latin-1":
        return "(not valid UTF-8: shown as latin-1, one character per byte)"
    if encoding.codec == "utf-8":
        if not encoding.bom:
            return None
        if not valid_utf8:
            return "(UTF-8 with BOM, the BOM not shown; bytes that are not valid UTF-8 are shown as \ufffd)"
        return "(UTF-8 with BOM; the BOM is not shown)"
    return f"({encoding.codec.upper()} text{' with BOM' if encoding.bom else ''}, shown decoded)"


def _read_text(f: BinaryIO, size: int, encoding: Encoding, shown: str, offset: int, limit: int) -> str:
    start = len(encoding.bom)
    valid = True
    if encoding.codec in _BYTE_CODECS:
        total, where, valid = _scan_bytes(f, start, offset, check_utf8=encoding.codec == "utf-8")
        if not valid and not encoding.bom:
            encoding = Encoding("latin-1")  # as textcodec.decode takes it, so edits match what was shown
    else:
        total, where = _count_decoded(f, start, encoding.codec), None
    if total == 0:
        return f"{shown} has no text: only a {encoding.codec.upper()} byte-order mark ({size} bytes)"
    if offset > total:
        raise ToolError(f"offset {offset} is past the end of {shown}: the file has {total} lines")
    f.seek(start if where is None else where)
    lines = _Lines(f, encoding.codec)
    if where is None:  # UTF-16/32: found by decoding
        lines.skip(offset - 1)
    out: list[str] = []
    header = _header(encoding, valid)
    if header:
        out.append(header)
    size_used = 0
    last = offset - 1
    budget_hit = False
    while last < min(total, offset + limit - 1):
        line = lines.read()
        if line is None:
            break
        entry = f"{last + 1:>6}\t{line}"
        if last >= offset and size_used + len(entry) + 1 > BUDGET:
            budget_hit = True
            break
        out.append(entry)
        size_used += len(entry) + 1
        last += 1
    if last < total:
        why = f"output limit of {MAX_OUTPUT_CHARS} chars reached; " if budget_hit else ""
        out.append(
            f"\n(showing lines {offset}-{last} of {total}; {why}"
            f"call read_file with offset={last + 1} to read more)"
        )
    return "\n".join(out)



def _read_image(f: BinaryIO, kind: str, size: int, shown: str) -> str | Output:
    f.seek(0)
    data = f.read(MAX_IMAGE_BYTES + 1 if size <= MAX_IMAGE_BYTES else IMAGE_HEAD_BYTES)
    pixels = image_size(kind, data)
    what = f"{kind}, " + (f"{pixels[0]}x{pixels[1]} pixels, " if pixels else "")
    if size > MAX_IMAGE_BYTES or len(data) > MAX_IMAGE_BYTES:  # (or it grew while being read)
        size = max(size, os.fstat(f.fileno()).st_size)
        return (f"Image not shown: {shown} ({what}{size} bytes) is larger than the "
                f"{MAX_IMAGE_BYTES // (1024 * 1024)} MB ({MAX_IMAGE_BYTES} bytes) limit for images")
    # The provider refuses a request with an image it cannot decode, and the image would stay in the history.
    why = image_problem(kind, data)
    if why:
        return f"Image not shown: {shown} ({kind}, {len(data)} bytes): damaged or truncated ({why})"
    assert pixels is not None
    if too_many_pixels(pixels):
        return f"Image not shown: {shown} ({what}{len(data)} bytes) is over the limit for images: {PIXEL_LIMIT}"
    url = f"data:{IMAGE_TYPES[kind]};base64,{base64.b64encode(data).decode('ascii')}"
    return Output(
        text=f"Image: {shown} ({what}{len(data)} bytes), attached below for you to view",
        content=({"type": "input_image", "image_url": url, "detail": "auto"},),
    )


def run(ctx: ToolContext, args: dict[str, Any]) -> str | Output:
    policy = ctx.policy
    real = resolve_read(policy, args["path"])
    shown = display(policy, real)
    offset = args.get("offset")
    limit = args.get("limit")
    offset = 1 if offset is None or offset == 0 else offset
    if offset < 0:
        raise ToolError(f"offset must be a 1-based line number (1 = first line), got {offset}")
    limit = DEFAULT_LIMIT if limit is None else limit
    if limit < 1:
        raise ToolError(f"limit must be at least 1, got {limit}")
    limit = min(limit, MAX_LIMIT)

    try:
        fd = open_file(policy, real)
    except (FileNotFoundError, NotADirectoryError):
        raise ToolError(missing_path_message(policy, args["path"], real)) from None
    except NotRegularFile as e:
        if stat.S_ISDIR(e.mode):
            raise ToolError(f"{shown} is a directory, not a file; use list_dir to see its contents") from None
        raise ToolError(f"{shown} is not a regular file (device, pipe or socket); not read") from None
    except PermissionError:
        raise ToolError(f"permission denied: cannot read {shown}") from None
    except OSError as e:
        raise ToolError(f"{shown} cannot be opened: {e.strerror}") from None
    st = os.fstat(fd)
    with os.fdopen(fd, "rb") as f:
        if st.st_size == 0:
            result: str | Output = f"{shown} is empty (0 bytes)"
        else:
            head = f.read(SNIFF_BYTES)
            kind = binary_kind(head)
            if kind in IMAGE_TYPES:
                result = _read_image(f, kind, st.st_size, shown)
            else:
                try:
                    encoding = sniff(head)
                except BinaryFile as e:
                    what = "" if str(e) == "binary data" else f"{e}, "
                    result = f"Binary file: {shown} ({what}{st.st_size} bytes); not shown"
                else:
                    result = _read_text(f, st.st_size, encoding, shown, offset, limit)
    # What the model saw is the file as it was opened: a change made during the read still counts as unseen.
    ctx.saw(real, st)
    return result


TOOL = Tool(
    name="read_file",
    description=(
        "Read a text file, with line numbers (cat -n style: number, tab, line). "
        f"Shows up to {DEFAULT_LIMIT} lines from `offset` (max {MAX_LIMIT}); lines longer than "
        f"{MAX_LINE_CHARS} characters are cut. When the file goes on, a final note says which "
        "offset to read next. Text not in UTF-8 is shown decoded, after a line naming its encoding. "
        f"PNG, JPEG, GIF and WebP images (up to {MAX_IMAGE_BYTES // (1024 * 1024)} MB) are shown to you as "
        "images; other binary files are not shown. Relative paths are taken from the workspace root."
    ),
    params={
        "path": Param("string", "File to read, relative to the workspace root or absolute."),
        "offset": Param(
            "integer", "1-based line number to start at (default 1).", optional=True
        ),
        "limit": Param(
            "integer",
            f"Maximum number of lines to show (default {DEFAULT_LIMIT}, max {MAX_LIMIT}).",
            optional=True,
        ),
    },
    run=run,
)
