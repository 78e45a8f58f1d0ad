"""read_file on real files: numbering, windows, cuts, binary/encoding handling, refusals."""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib
from pathlib import Path

import pytest

from coder.tools import call_tool, read_file
from coder.tools.base import MAX_OUTPUT_CHARS, ToolContext, ToolError
from sandbox.paths import PathDenied


def read(ctx: ToolContext, **args) -> str:
    return read_file.TOOL.run(ctx, read_file.TOOL.validate_args(args))


def call(ctx: ToolContext, **args) -> tuple[str, bool]:
    res = call_tool(ctx, "read_file", json.dumps(args))
    return res.output, res.ok


def numbered(n: int, text: str) -> str:
    return f"{n:>6}\t{text}"


def test_numbered_lines_exact(ctx, workspace: Path):
    (workspace / "f.txt").write_text("alpha\nbeta\n\ngamma")
    assert read(ctx, path="f.txt") == "     1\talpha\n     2\tbeta\n     3\t\n     4\tgamma"


def test_crlf_line_endings_are_not_shown(ctx, workspace: Path):
    (workspace / "w.txt").write_bytes(b"one\r\ntwo\r\n")
    assert read(ctx, path="w.txt") == "     1\tone\n     2\ttwo"


def test_offset_and_limit_window_with_continue_note(ctx, workspace: Path):
    (workspace / "f.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    out = read(ctx, path="f.txt", offset=3, limit=2)
    assert out.splitlines() == [
        numbered(3, "line 3"),
        numbered(4, "line 4"),
        "",
        "(showing lines 3-4 of 10; call read_file with offset=5 to read more)",
    ]


def test_window_reaching_the_end_has_no_note(ctx, workspace: Path):
    (workspace / "f.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    assert read(ctx, path="f.txt", offset=9, limit=50) == "\n".join(
        [numbered(9, "line 9"), numbered(10, "line 10")]
    )


def test_default_window_of_long_file(ctx, workspace: Path):
    (workspace / "big.txt").write_text("".join(f"x{i}\n" for i in range(1, 2501)))
    lines = read(ctx, path="big.txt").splitlines()
    assert lines[0] == numbered(1, "x1")
    assert lines[1999] == numbered(2000, "x2000")
    assert lines[2000:] == [
        "",
        "(showing lines 1-2000 of 2500; call read_file with offset=2001 to read more)",
    ]
    assert read(ctx, path="big.txt", offset=2001).splitlines()[-1] == numbered(2500, "x2500")


def test_offset_past_end_says_how_many_lines(ctx, workspace: Path):
    (workspace / "f.txt").write_text("a\nb\nc\n")
    out, ok = call(ctx, path="f.txt", offset=4)
    assert not ok
    assert out == "Error: offset 4 is past the end of f.txt: the file has 3 lines"


def test_bad_offset_and_limit(ctx, workspace: Path):
    (workspace / "f.txt").write_text("a\n")
    assert read(ctx, path="f.txt", offset=0) == numbered(1, "a")  # 0 is read as "from the top"
    with pytest.raises(ToolError, match="offset must be a 1-based line number"):
        read(ctx, path="f.txt", offset=-5)
    with pytest.raises(ToolError, match="limit must be at least 1"):
        read(ctx, path="f.txt", limit=0)


def test_long_line_is_cut_with_marker(ctx, workspace: Path):
    (workspace / "min.js").write_text("a" * 12345 + "\nshort\n")
    assert read(ctx, path="min.js").splitlines() == [
        numbered(1, "a" * 2000 + "... [line truncated: 12345 chars]"),
        numbered(2, "short"),
    ]


def test_binary_file_refused_with_size(ctx, workspace: Path):
    (workspace / "blob.bin").write_bytes(b"ELF\x00" + bytes(range(256)) * 4)
    assert read(ctx, path="blob.bin") == "Binary file: blob.bin (1028 bytes); not shown"


def test_latin1_is_shown_decoded_with_a_first_line_saying_so(ctx, workspace: Path):
    (workspace / "latin.txt").write_bytes(b"caf\xe9 cr\xe8me\r\nok\n")
    assert read(ctx, path="latin.txt") == (
        "(not valid UTF-8: shown as latin-1, one character per byte)\n     1\tcaf\u00e9 cr\u00e8me\n     2\tok"
    )


def test_empty_file(ctx, workspace: Path):
    (workspace / "empty.txt").write_bytes(b"")
    assert read(ctx, path="empty.txt") == "empty.txt is empty (0 bytes)"


def test_missing_file_suggests_near_names(ctx, workspace: Path):
    (workspace / "src").mkdir()
    (workspace / "src" / "main.py").write_text("x\n")
    (workspace / "src" / "mains.py").write_text("x\n")
    (workspace / "src" / "other.txt").write_text("x\n")
    out, ok = call(ctx, path="src/mian.py")
    assert not ok
    assert out == (
        "Error: No such file or directory: src/mian.py\n"
        "Did you mean: src/main.py, src/mains.py?"
    )


def test_missing_folder_in_path_suggests_the_folder(ctx, workspace: Path):
    (workspace / "src").mkdir()
    out, ok = call(ctx, path="scr/main.py")
    assert out == "Error: No such file or directory: scr/main.py\nDid you mean: src?"


def test_missing_file_without_near_names(ctx, workspace: Path):
    out, ok = call(ctx, path="nothing_like_it.txt")
    assert (out, ok) == ("Error: No such file or directory: nothing_like_it.txt", False)


def test_directory_points_to_list_dir(ctx, workspace: Path):
    (workspace / "pkg").mkdir()
    out, ok = call(ctx, path="pkg")
    assert (out, ok) == ("Error: pkg is a directory, not a file; use list_dir to see its contents", False)


def test_deny_listed_secret_refused(ctx, secret_dir: Path):
    with pytest.raises(PathDenied, match="not allowed"):
        read(ctx, path=str(secret_dir / "id_rsa"))
    out, ok = call(ctx, path=str(secret_dir / "id_rsa"))
    assert not ok and "PRIVATE KEY" not in out


def test_symlink_into_secret_refused(ctx, workspace: Path, secret_dir: Path):
    (workspace / "innocent.txt").symlink_to(secret_dir / "id_rsa")
    out, ok = call(ctx, path="innocent.txt")
    assert not ok
    assert out.startswith("Error: reading innocent.txt is not allowed")


def test_file_outside_workspace_not_denied_is_readable(ro_ctx, tmp_path: Path):
    outside = tmp_path / "outside.txt"
    outside.write_text("hello from outside\n")
    assert read(ro_ctx, path=str(outside)) == numbered(1, "hello from outside")


def test_output_stays_bounded(ctx, workspace: Path):
    (workspace / "wide.txt").write_text("".join(f"{i:05d}" + "y" * 195 + "\n" for i in range(1, 5001)))
    out = read(ctx, path="wide.txt", limit=5000)
    assert len(out) < MAX_OUTPUT_CHARS
    *body, blank, note = out.splitlines()
    last = len(body)
    assert 150 <= last < 5000
    assert body == [numbered(i, f"{i:05d}" + "y" * 195) for i in range(1, last + 1)]
    assert blank == ""
    assert note == (
        f"(showing lines 1-{last} of 5000; output limit of {MAX_OUTPUT_CHARS} chars reached; "
        f"call read_file with offset={last + 1} to read more)"
    )
    # The suggested offset continues exactly where the window stopped.
    nxt = read(ctx, path="wide.txt", offset=last + 1, limit=1).splitlines()[0]
    assert nxt == numbered(last + 1, f"{last + 1:05d}" + "y" * 195)



def test_own_environment_through_proc_refused(ctx: ToolContext) -> None:
    """coder's own /proc/self/environ holds the API key: the file tools never open /proc."""
    for path in ("/proc/self/environ", "/proc/thread-self/environ", "../../../../../proc/self/environ",
                 f"/proc/{os.getpid()}/environ"):
        out, ok = call(ctx, path=path)
        assert not ok and "kernel interface the file tools do not open" in out


# --- Encodings -------------------------------------------------------------------------------------------

TEXT = "first line\r\nsecond: caf\u00e9 \u20ac\r\n\r\nlast, no newline"
WINDOW = "\n".join([numbered(1, "first line"), numbered(2, "second: caf\u00e9 \u20ac"), numbered(3, ""),
                    numbered(4, "last, no newline")])


@pytest.mark.parametrize("codec,bom,header", [
    ("utf-16-le", True, "(UTF-16-LE text with BOM, shown decoded)"),
    ("utf-16-be", True, "(UTF-16-BE text with BOM, shown decoded)"),
    ("utf-16-le", False, "(UTF-16-LE text, shown decoded)"),
    ("utf-16-be", False, "(UTF-16-BE text, shown decoded)"),
    ("utf-32-le", True, "(UTF-32-LE text with BOM, shown decoded)"),
    ("utf-32-be", False, "(UTF-32-BE text, shown decoded)"),
    ("utf-8", True, "(UTF-8 with BOM; the BOM is not shown)"),
], ids=["utf16le-bom", "utf16be-bom", "utf16le", "utf16be", "utf32le-bom", "utf32be", "utf8-bom"])
def test_unicode_encodings_are_shown_decoded_with_crlf_and_offsets(ctx, workspace: Path, codec, bom, header):
    (workspace / "t.txt").write_bytes((("\ufeff" if bom else "") + TEXT).encode(codec))
    assert read(ctx, path="t.txt") == f"{header}\n{WINDOW}"
    assert read(ctx, path="t.txt", offset=2, limit=2) == "\n".join([
        header, numbered(2, "second: caf\u00e9 \u20ac"), numbered(3, ""), "",
        "(showing lines 2-3 of 4; call read_file with offset=4 to read more)"])
    assert read(ctx, path="t.txt", offset=4) == f"{header}\n{numbered(4, 'last, no newline')}"
    out, ok = call(ctx, path="t.txt", offset=5)
    assert (out, ok) == ("Error: offset 5 is past the end of t.txt: the file has 4 lines", False)


def test_only_a_bom_is_said_to_have_no_text(ctx, workspace: Path):
    (workspace / "bom.txt").write_bytes(b"\xff\xfe")
    assert read(ctx, path="bom.txt") == "bom.txt has no text: only a UTF-16-LE byte-order mark (2 bytes)"


def test_wide_text_keeps_within_the_output_budget(ctx, workspace: Path):
    (workspace / "wide.txt").write_bytes(("\ufeff" + "".join(f"{i:05d}" + "w" * 195 + "\r\n"
                                                             for i in range(1, 3001))).encode("utf-16-le"))
    out = read(ctx, path="wide.txt", limit=5000)
    assert len(out) < MAX_OUTPUT_CHARS
    header, *body, blank, note = out.splitlines()
    last = len(body)
    assert header == "(UTF-16-LE text with BOM, shown decoded)"
    assert 150 <= last < 3000 and body[-1] == numbered(last, f"{last:05d}" + "w" * 195)
    assert note.startswith(f"(showing lines 1-{last} of 3000; output limit of {MAX_OUTPUT_CHARS} chars reached")


def test_pdf_without_nul_bytes_is_binary(ctx, workspace: Path):
    pdf = b"%PDF-1.7\n" + b"".join(b"%d 0 obj << /Type /Page >> endobj\n" % i for i in range(400))
    assert b"\x00" not in pdf[:8192]
    (workspace / "doc.pdf").write_bytes(pdf)
    assert read(ctx, path="doc.pdf") == f"Binary file: doc.pdf (PDF document, {len(pdf)} bytes); not shown"


# --- Large files: a late offset, and line ends across chunk edges -------------------------------------


def test_late_offset_in_a_big_file_whose_last_line_is_latin1(ctx, workspace: Path):
    """Whether the file is UTF-8 is decided over all of it (as edit_file and write_file decode it)."""
    lines = [f"line {i} " + "z" * 20 for i in range(1, 150_001)] + ["caf\xe9"]
    (workspace / "big.txt").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    assert (workspace / "big.txt").stat().st_size > 4_000_000
    header = "(not valid UTF-8: shown as latin-1, one character per byte)"
    assert read(ctx, path="big.txt", offset=149_999) == "\n".join(
        [header, numbered(149_999, lines[149_998]), numbered(150_000, lines[149_999]), numbered(150_001, "caf\xe9")])
    assert read(ctx, path="big.txt", limit=1).splitlines()[:2] == [header, numbered(1, lines[0])]


def test_late_offset_in_a_big_utf16_file(ctx, workspace: Path):
    lines = [f"row {i} \u00e9" for i in range(1, 200_001)]
    (workspace / "big16.txt").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-16-be"))
    assert read(ctx, path="big16.txt", offset=199_999, limit=5) == "\n".join([
        "(UTF-16-BE text with BOM, shown decoded)", numbered(199_999, lines[-2]), numbered(200_000, lines[-1])])


CHUNKY = ["a\u00e9\u20ac\U0001F600", "", "\r", "crlf here", "x" * 9, "tail"]


@pytest.mark.parametrize("codec,bom", [("utf-8", False), ("utf-16-le", True)])
def test_lines_across_chunk_edges(ctx, workspace: Path, monkeypatch, codec, bom):
    """Every chunk size from 1 byte up puts a chunk edge inside each line, line end and character."""
    (workspace / "c.txt").write_bytes((("\ufeff" if bom else "") + "\r\n".join(CHUNKY)).encode(codec))
    expected = [numbered(i, line) for i, line in enumerate(CHUNKY, 1)]
    for size in range(1, 14):
        monkeypatch.setattr(read_file, "SCAN_CHUNK", size)
        monkeypatch.setattr(read_file, "CHUNK", size)
        for offset in range(1, len(CHUNKY) + 1):
            out = read(ctx, path="c.txt", offset=offset, limit=2).split("\n")  # (a lone "\r" is in a line)
            if bom:
                assert out.pop(0) == "(UTF-16-LE text with BOM, shown decoded)"
            assert out[:2] == expected[offset - 1:offset + 1], (size, offset)
        monkeypatch.setattr(read_file, "MAX_LINE_CHARS", 3)
        assert numbered(5, "xxx... [line truncated: 9 chars]") in read(ctx, path="c.txt", offset=5, limit=1).split("\n")
        monkeypatch.setattr(read_file, "MAX_LINE_CHARS", 2000)


def test_invalid_utf8_split_by_chunk_edges_past_the_sniffed_head(ctx, workspace: Path, monkeypatch):
    """A lead byte, ASCII, then a continuation byte: invalid however the chunks fall, even when the middle
    chunk is all ASCII."""
    (workspace / "late.txt").write_bytes(b"ok\n" * 3000 + b"caf\xc3x\xa9\n")
    for size in (1, 2, 3, 4, 1 << 20):
        monkeypatch.setattr(read_file, "SCAN_CHUNK", size)
        assert read(ctx, path="late.txt", offset=3001) == (
            "(not valid UTF-8: shown as latin-1, one character per byte)\n" + numbered(3001, "caf\u00c3x\u00a9"))


# --- Images -----------------------------------------------------------------------------------------------


def png(width: int, height: int, pixels: bytes | None = None, level: int = 9) -> bytes:
    """A valid RGB PNG, built by hand: signature, IHDR, IDAT (zlib of filtered rows), IEND."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = width * 3
    pixels = pixels if pixels is not None else bytes((x * 40) % 256 for x in range(row * height))
    raw = b"".join(b"\x00" + pixels[y * row:(y + 1) * row] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b""))


# The classic 1x1 GIF: header, logical screen, 2-colour table, image descriptor, LZW data, trailer.
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
# SOI, a JFIF APP0 segment, SOF0 (8-bit, height 3, width 5, one component), a scan (SOS and its data), EOI.
JPEG = (b"\xff\xd8" + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\xff\xc0\x00\x0b\x08\x00\x03\x00\x05\x01\x01\x11\x00"
        + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\x12\x34\xff\x00\x56" + b"\xff\xd9")


def webp(chunk: bytes, payload: bytes) -> bytes:
    body = b"WEBP" + chunk + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


# VP8L: signature 0x2F, then width-1 and height-1 in 14 bits each (7x4 here).
WEBP_LOSSLESS = webp(b"VP8L", b"\x2f" + struct.pack("<I", (7 - 1) | ((4 - 1) << 14)) + b"\x00" * 8)
# VP8X: flags, 3 reserved bytes, then canvas width-1 and height-1 in 24 bits each (300x200 here), then
# the image itself (a VP8L chunk): a VP8X chunk alone holds no picture.
_VP8X = webp(b"VP8X", b"\x00\x00\x00\x00" + (300 - 1).to_bytes(3, "little") + (200 - 1).to_bytes(3, "little"))
_VP8L = b"VP8L" + struct.pack("<I", 13) + b"\x2f" + struct.pack("<I", 299 | (199 << 14)) + b"\x00" * 8 + b"\x00"
WEBP_EXTENDED = b"RIFF" + struct.pack("<I", len(_VP8X) - 8 + len(_VP8L)) + _VP8X[8:] + _VP8L


@pytest.mark.parametrize("name,data,mime,pixels", [
    ("dot.png", png(3, 2), "image/png", "3x2"),
    ("dot.gif", GIF, "image/gif", "1x1"),
    ("photo.jpg", JPEG, "image/jpeg", "5x3"),
    ("lossless.webp", WEBP_LOSSLESS, "image/webp", "7x4"),
    ("extended.webp", WEBP_EXTENDED, "image/webp", "300x200"),
], ids=["png", "gif", "jpeg", "webp-vp8l", "webp-vp8x"])
def test_images_are_handed_to_the_model(ctx, workspace: Path, name, data, mime, pixels):
    (workspace / name).write_bytes(data)
    out = read(ctx, path=name)
    kind = {"image/png": "PNG", "image/gif": "GIF", "image/jpeg": "JPEG", "image/webp": "WebP"}[mime]
    assert out.text == f"Image: {name} ({kind} image, {pixels} pixels, {len(data)} bytes), attached below for you to view"
    assert out.content == ({"type": "input_image", "detail": "auto",
                            "image_url": f"data:{mime};base64,{base64.b64encode(data).decode()}"},)
    result = call_tool(ctx, "read_file", json.dumps({"path": name}))
    assert result.ok and result.output == out.text and result.content == out.content


def test_image_over_the_limit_is_refused_with_its_size(ctx, workspace: Path):
    data = png(1400, 1400, os.urandom(1400 * 1400 * 3), level=0)
    assert len(data) > read_file.MAX_IMAGE_BYTES
    (workspace / "huge.png").write_bytes(data)
    assert read(ctx, path="huge.png") == (
        f"Image not shown: huge.png (PNG image, 1400x1400 pixels, {len(data)} bytes) is larger than the "
        f"5 MB ({read_file.MAX_IMAGE_BYTES} bytes) limit for images")


def test_image_without_a_readable_header_is_not_sent(ctx, workspace: Path):
    """A provider refuses a request holding an image it cannot decode: a damaged one is only described."""
    (workspace / "cut.png").write_bytes(png(3, 2)[:20])
    assert read(ctx, path="cut.png") == (
        "Image not shown: cut.png (PNG image, 20 bytes): damaged or truncated (no complete IHDR chunk first)")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG_SIG = b"\x89PNG\r\n\x1a\n"
IHDR = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 8, 2, 0, 0, 0))
JFIF = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
SOF = b"\xff\xc0\x00\x0b\x08\x00\x03\x00\x05\x01\x01\x11\x00"
SOS = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x12\x34\xff\x00\x56"  # header, then scan data


DAMAGED = [
    # PNG: chunks walked within the file, IHDR first, image data, IEND last.
    ("sig-ihdr.png", PNG_SIG + IHDR, "no IEND chunk at its end"),
    ("no-idat.png", PNG_SIG + IHDR + png_chunk(b"IEND", b""), "no IDAT chunk (image data)"),
    ("cut.png", png(3, 2)[:-20], "a chunk runs past the end of the file"),
    ("idat-first.png", PNG_SIG + png_chunk(b"IDAT", b"x") + IHDR + png_chunk(b"IEND", b""),
     "no complete IHDR chunk first"),
    ("text.png", PNG_SIG + b"just some text after a PNG signature\n", "no complete IHDR chunk first"),
    # JPEG: segments walked to a frame header and the start of scan, the file ends with EOI.
    ("fake.jpg", b"\xff\xd8\xff" + b"\xff\xe0\x00\x02" * 3 + b"\xff\xc0\x00\x11\x08\x00\x10\x00\x20",
     "a segment runs past the end of the file"),
    ("no-scan.jpg", b"\xff\xd8" + JFIF + SOF + b"\xff\xd9", "no start of scan"),
    ("no-frame.jpg", b"\xff\xd8" + JFIF + SOS + b"\xff\xd9", "no frame header before the start of scan"),
    ("cut.jpg", b"\xff\xd8" + JFIF + SOF + SOS, "no end-of-image marker (FFD9) after the scan"),
    ("junk.jpg", b"\xff\xd8" + JFIF + b"hello" + SOF + SOS + b"\xff\xd9", "not a segment marker at byte 20"),
    # GIF: screen descriptor, colour table, blocks up to an image and the trailer.
    ("hello.gif", b"GIF89a hello this is text\n", "an unknown block at byte 13"),
    ("no-trailer.gif", GIF[:-1], "no trailer (0x3B) at its end"),
    ("cut.gif", GIF[:-6], "a block runs past the end of the file"),
    ("no-image.gif", GIF[:19] + b";", "no image descriptor"),
    # WebP: RIFF size matching the file, a VP8/VP8L/VP8X chunk first, image data.
    ("short.webp", WEBP_LOSSLESS[:-4], "its RIFF size (25) is not the file size less 8 (21)"),
    ("alpha.webp", webp(b"ALPH", b"\x00" * 4), "no VP8, VP8L or VP8X chunk first"),
    ("header-only.webp", webp(b"VP8X", b"\x00" * 4 + (299).to_bytes(3, "little") + (199).to_bytes(3, "little")),
     "no VP8, VP8L or ANMF chunk (image data)"),
    ("bad-vp8l.webp", webp(b"VP8L", b"\x00" * 12), "no readable size in its header"),
]


@pytest.mark.parametrize("name,data,why", DAMAGED, ids=[case[0] for case in DAMAGED])
def test_damaged_images_are_described_not_sent(ctx, workspace: Path, name, data, why):
    """Only the header used to be checked: these were all sent, and the provider then refused every request."""
    (workspace / name).write_bytes(data)
    kind = {"png": "PNG", "jpg": "JPEG", "gif": "GIF", "webp": "WebP"}[name.rsplit(".", 1)[1]]
    assert read(ctx, path=name) == (
        f"Image not shown: {name} ({kind} image, {len(data)} bytes): damaged or truncated ({why})")
    result = call_tool(ctx, "read_file", json.dumps({"path": name}))
    assert result.ok and not result.content


@pytest.mark.parametrize("width,height", [(4_000_000_000, 4_000_000_000), (10_001, 10), (8000, 7000)])
def test_images_over_the_pixel_limit_are_described_not_sent(ctx, workspace: Path, width, height):
    data = (PNG_SIG + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))
    (workspace / "big.png").write_bytes(data)
    assert read(ctx, path="big.png") == (
        f"Image not shown: big.png (PNG image, {width}x{height} pixels, {len(data)} bytes) is over the limit "
        "for images: at most 10000 pixels a side and 50 megapixels")


def test_images_with_many_chunks_segments_and_blocks_are_sent(ctx, workspace: Path):
    """Structures that are walked, not just their first bytes: split image data, text chunks, EXIF
    segments, a progressive JPEG's several scans, an animated GIF, an extended WebP with image data."""
    rows = b"".join(b"\x00" + bytes(range(9)) for _ in range(2))
    z = zlib.compress(rows)
    split_png = (PNG_SIG + IHDR + png_chunk(b"tEXt", b"Comment\x00hi") + png_chunk(b"IDAT", z[:5])
                 + png_chunk(b"IDAT", z[5:]) + png_chunk(b"IEND", b""))
    exif = b"\xff\xe1\x00\x08Exif\x00\x00"
    progressive = b"\xff\xd8" + exif + b"\xff\xc2\x00\x0b\x08\x00\x03\x00\x05\x01\x01\x11\x00" + SOS + SOS + b"\xff\xd9"
    animated = GIF[:19] + b"!\xf9\x04\x00\x0a\x00\x00\x00" + GIF[19:-1] + GIF[19:]
    vp8l = (b"VP8L" + struct.pack("<I", 13) + b"\x2f" + struct.pack("<I", (7 - 1) | ((4 - 1) << 14))
            + b"\x00" * 8 + b"\x00")
    extended = webp(b"VP8X", b"\x00" * 4 + (6).to_bytes(3, "little") + (3).to_bytes(3, "little"))
    extended = b"RIFF" + struct.pack("<I", len(extended) - 8 + len(vp8l)) + extended[8:] + vp8l
    for name, data, pixels in (("split.png", split_png, "3x2"), ("exif.jpg", progressive, "5x3"),
                               ("anim.gif", animated, "1x1"), ("ext.webp", extended, "7x4")):
        (workspace / name).write_bytes(data)
        out = read(ctx, path=name)
        assert not isinstance(out, str), (name, out)
        assert out.text.startswith(f"Image: {name} (") and f"{pixels} pixels" in out.text, out.text


def test_a_read_records_what_the_model_saw(ctx, workspace: Path):
    f = workspace / "seen.txt"
    f.write_text("v1\n")
    read(ctx, path="seen.txt")
    assert not ctx.changed_since_seen(f)
    f.write_text("version 2\n")
    assert ctx.changed_since_seen(f)
