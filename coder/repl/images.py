"""Images in a message: a path to a PNG, JPEG, GIF or WebP file (or `@shot.png`) is sent as an image.

A bare path counts only when the file exists (a name mentioned in passing stays text); `@name` is
meant, so a missing or unusable one is an error before anything is sent.
"""

from __future__ import annotations

import re
from pathlib import Path

SUFFIXES = ("png", "jpg", "jpeg", "gif", "webp")
_PATH = re.compile(r"""(?<![\w/.@-])(@?)(?:'([^']+)'|"([^"]+)"|((?:\\ |[^\s'"])+))""")


class ImageError(ValueError):
    """One line naming the file and what is wrong with it."""


def _image_name(word: str) -> bool:
    return word.rsplit(".", 1)[-1].lower() in SUFFIXES if "." in word else False


def attached(text: str, workspace: Path) -> list[Path]:
    """The image files `text` names, in order, each once; raises ImageError for a bad `@name`."""
    found: list[Path] = []
    for m in _PATH.finditer(text):
        at, word = m.group(1), m.group(2) or m.group(3) or (m.group(4) or "").replace("\\ ", " ")
        word = word.rstrip(",;:!?)")
        if word.endswith(".") and not _image_name(word):
            word = word.rstrip(".")
        if not _image_name(word):
            continue
        path = Path(word).expanduser()
        path = path if path.is_absolute() else workspace / path
        if not path.is_file():
            if at:
                raise ImageError(f"{word}: no such file")
            continue
        if path not in found:
            _check(path, word)
            found.append(path)
    return found


def _check(path: Path, shown: str) -> None:
    """The core's own check (format, size, a readable header): one clear line now, not a failed turn."""
    from coder.images import load_image

    try:
        load_image(path)
    except ValueError as e:
        raise ImageError(str(e).replace(str(path), shown, 1)) from None
