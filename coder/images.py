"""Images the user sends with a message (`coder exec -i shot.png`, `@shot.png` in the REPL).

Checked before anything is sent, the way read_file checks the images it hands the model: the format by
the file's signature (PNG, JPEG, GIF, WebP: what the Responses API takes), the size within
MAX_IMAGE_BYTES, and a whole structure and pixel size within limits (coder.tools.imageformat: a
request with an image the provider cannot decode is refused, and the image would stay in the history).
Every refusal is one line naming the file.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from coder.tools.imageformat import IMAGE_TYPES, MAX_IMAGE_BYTES, PIXEL_LIMIT, image_problem, image_size, too_many_pixels
from coder.tools.textcodec import SNIFF_BYTES, binary_kind


class ImageError(ValueError):
    """An image that cannot be sent; the message is one line that names the file."""


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def load_image(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The file as a Responses `input_image` content part (a data URL), or ImageError."""
    shown = str(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if Path(path).is_dir():
                raise ImageError(f"{shown}: a folder, not an image")
            if size > MAX_IMAGE_BYTES:
                raise ImageError(f"{shown}: {_megabytes(size)}, over the {MAX_IMAGE_BYTES // (1024 * 1024)} MB "
                                 "limit for images")
            data = f.read(MAX_IMAGE_BYTES + 1)
    except IsADirectoryError:
        raise ImageError(f"{shown}: a folder, not an image") from None
    except OSError as e:
        raise ImageError(f"{shown}: cannot read it: {e.strerror or e}") from None
    if len(data) > MAX_IMAGE_BYTES:  # it grew while being read
        raise ImageError(f"{shown}: over the {MAX_IMAGE_BYTES // (1024 * 1024)} MB limit for images")
    kind = binary_kind(data[:SNIFF_BYTES]) if data else None
    if kind not in IMAGE_TYPES:
        what = "an empty file" if not data else kind or "not an image"
        raise ImageError(f"{shown}: {what}; images can be PNG, JPEG, GIF or WebP")
    why = image_problem(kind, data)
    if why:
        raise ImageError(f"{shown}: a {kind}, damaged or truncated ({why})")
    pixels = image_size(kind, data)
    if pixels is None or too_many_pixels(pixels):
        raise ImageError(f"{shown}: a {kind} of {pixels[0]}x{pixels[1]} pixels, over the limit for images: "
                         f"{PIXEL_LIMIT}" if pixels else f"{shown}: a {kind} without a readable size")
    url = f"data:{IMAGE_TYPES[kind]};base64,{base64.b64encode(data).decode('ascii')}"
    return {"type": "input_image", "image_url": url, "detail": "auto"}
