"""What an image file is: its format by signature, its pixel size, and whether it is whole.

A provider refuses every request that carries an image it cannot decode, and an image stays in the
history once sent, so one damaged file would block the session. read_file (images the model looks at)
and coder.images (images the user attaches) both check here before anything is sent: the structure
is walked (PNG chunks to IEND, JPEG segments to a scan and FFD9, GIF blocks to the trailer, WebP's
RIFF size), and the pixel size must be within MAX_IMAGE_SIDE and MAX_IMAGE_PIXELS.
"""

from __future__ import annotations

from collections.abc import Iterator

# Images handed to the model as an image (Responses `input_image` content), by signature.
IMAGE_TYPES = {
    "PNG image": "image/png",
    "JPEG image": "image/jpeg",
    "GIF image": "image/gif",
    "WebP image": "image/webp",
}
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_SIDE = 10_000  # pixels, each of width and height
MAX_IMAGE_PIXELS = 50_000_000  # width * height
IMAGE_HEAD_BYTES = 256 * 1024  # where the pixel size of an image too large to send is looked for


def image_size(kind: str, data: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels from an image's header, when it can be read from `data`."""
    try:
        if kind == "PNG image" and data[12:16] == b"IHDR":
            return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if kind == "GIF image" and len(data) >= 10:
            return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
        if kind == "WebP image":
            chunk = data[12:16]
            if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a" and len(data) >= 30:
                return (int.from_bytes(data[26:28], "little") & 0x3FFF,
                        int.from_bytes(data[28:30], "little") & 0x3FFF)
            if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8X" and len(data) >= 30:
                return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
            return None
        if kind == "JPEG image":
            return _jpeg_size(data)
    except IndexError:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk a JPEG's segments to its frame header (SOFn), which holds the pixel size."""
    try:
        for i, marker, _end in _jpeg_segments(data):
            if marker == 0xDA:  # start of scan: no frame header before it
                return None
            if marker in _JPEG_FRAMES:
                return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
    except _Damaged:
        return None
    return None


_PAST_END = "a {} runs past the end of the file"
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn; C4/C8/CC are other segments


def _png_problem(data: bytes) -> str | None:
    """Chunks walked within the file: IHDR first, at least one IDAT, IEND last (CRCs not checked)."""
    if len(data) < 33 or data[12:16] != b"IHDR" or int.from_bytes(data[8:12], "big") != 13:
        return "no complete IHDR chunk first"
    i, idat = 8, False
    while i + 8 <= len(data):
        kind = data[i + 4:i + 8]
        end = i + 12 + int.from_bytes(data[i:i + 4], "big")
        if end > len(data):
            return _PAST_END.format("chunk")
        if kind == b"IEND":
            return None if idat else "no IDAT chunk (image data)"
        idat = idat or kind == b"IDAT"
        i = end
    return _PAST_END.format("chunk") if i < len(data) else "no IEND chunk at its end"


class _Damaged(Exception):
    """Why a JPEG's segments cannot be walked."""


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(where, marker, end) of each segment that has a length, in order; _Damaged where the walk breaks."""
    i = 2
    while i < len(data):
        if data[i] != 0xFF:
            raise _Damaged(f"not a segment marker at byte {i}")
        if i + 1 >= len(data):
            raise _Damaged(_PAST_END.format("segment"))
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker in (0x00, 0xD8, 0xD9):
            raise _Damaged("no start of scan" if marker == 0xD9 else f"not a segment marker at byte {i}")
        if i + 4 > len(data):
            raise _Damaged(_PAST_END.format("segment"))
        end = i + 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if end < i + 4:
            raise _Damaged(f"a segment of a length under 2 at byte {i}")
        if end > len(data):
            raise _Damaged(_PAST_END.format("segment"))
        yield i, marker, end
        i = end


def _jpeg_problem(data: bytes) -> str | None:
    """Segments walked to a frame header and the start of scan; an end-of-image marker after the scan."""
    frame = False
    try:
        for _i, marker, end in _jpeg_segments(data):
            frame = frame or marker in _JPEG_FRAMES
            if marker == 0xDA:
                if not frame:
                    return "no frame header before the start of scan"
                # FFD9 cannot occur inside scan data (an FF there is followed by 00 or a restart marker).
                return None if data.rfind(b"\xff\xd9") >= end else "no end-of-image marker (FFD9) after the scan"
    except _Damaged as e:
        return str(e)
    return "no start of scan"


def _gif_sub_blocks(data: bytes, i: int) -> int:
    """Where the data sub-blocks starting at `i` end (after their empty terminator); -1 past the end."""
    while i < len(data):
        size = data[i]
        i += 1 + size
        if size == 0:
            return i
    return -1


def _gif_problem(data: bytes) -> str | None:
    """Screen descriptor and colour table, then blocks (extensions, images) up to the trailer."""
    if len(data) < 13:
        return _PAST_END.format("block")
    i = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # the global colour table
    images = 0
    while i < len(data):
        block = data[i]
        if block == 0x3B:
            return None if images else "no image descriptor"
        if block == 0x21:  # extension: a label, then sub-blocks
            i = _gif_sub_blocks(data, i + 2)
        elif block == 0x2C:  # image: descriptor, local colour table, LZW code size, sub-blocks
            if i + 10 > len(data):
                return _PAST_END.format("block")
            packed = data[i + 9]
            i += 10 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
            i = _gif_sub_blocks(data, i + 1)
            images += 1
        else:
            return f"an unknown block at byte {i}"
        if i < 0 or i > len(data):
            return _PAST_END.format("block")
    return "no trailer (0x3B) at its end"


def _webp_problem(data: bytes) -> str | None:
    """RIFF size matching the file, a VP8/VP8L/VP8X chunk first, image data (VP8, VP8L or ANMF)."""
    riff = int.from_bytes(data[4:8], "little")
    if riff != len(data) - 8:
        return f"its RIFF size ({riff}) is not the file size less 8 ({len(data) - 8})"
    if data[12:16] not in (b"VP8 ", b"VP8L", b"VP8X"):
        return "no VP8, VP8L or VP8X chunk first"
    i, kinds = 12, set()
    while i + 8 <= len(data):
        size = int.from_bytes(data[i + 4:i + 8], "little")
        if i + 8 + size > len(data):
            return _PAST_END.format("chunk")
        kinds.add(data[i:i + 4])
        i += 8 + size + (size & 1)  # padded to an even size (the last chunk's pad may be missing)
    if i < len(data):
        return _PAST_END.format("chunk")
    if not kinds & {b"VP8 ", b"VP8L", b"ANMF"}:
        return "no VP8, VP8L or ANMF chunk (image data)"
    return None


_STRUCTURE = {"PNG image": _png_problem, "JPEG image": _jpeg_problem, "GIF image": _gif_problem,
              "WebP image": _webp_problem}


def image_problem(kind: str, data: bytes) -> str | None:
    """Why the whole image `data` of `kind` (a key of IMAGE_TYPES) cannot be decoded, as far as its
    structure tells (a provider refuses such an image); None when it looks whole."""
    why = _STRUCTURE[kind](data)
    if why is None:
        pixels = image_size(kind, data)
        if not pixels or 0 in pixels:
            why = "no readable size in its header"
    return why


def too_many_pixels(pixels: tuple[int, int]) -> bool:
    """Whether an image of this size is over MAX_IMAGE_SIDE a side or MAX_IMAGE_PIXELS in all."""
    width, height = pixels
    return width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS


PIXEL_LIMIT = (f"at most {MAX_IMAGE_SIDE} pixels a side and {MAX_IMAGE_PIXELS // 1_000_000} megapixels")
