"""Text files the user names on the command line (a prompt, a target list, a schema): read whole, or one line
saying why not, naming the file the way the user named it."""

from __future__ import annotations

from pathlib import Path

from coder.config import ConfigError


def read_text(path: str, what: str) -> str:
    """The file as UTF-8 text; ConfigError("WHAT PATH: why") when it is missing, unreadable, binary or not UTF-8."""
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as e:
        raise ConfigError(f"{what} {path}: cannot read: {e.strerror}") from None
    if b"\0" in data:
        raise ConfigError(f"{what} {path}: binary (it holds NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path}: not UTF-8 text") from None
