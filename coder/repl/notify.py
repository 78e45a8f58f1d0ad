"""A bell, or a desktop notification (OSC 9), when a long turn ends: the user went elsewhere.

prompt_toolkit does not report terminal focus, so "long" is the only test: a turn that took at
least `notify_after` seconds. Settings (config): `notify = "bell" | "osc9" | "off"`, `notify_after`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

HOW = ("bell", "osc9", "off")
DEFAULT_HOW = "bell"
DEFAULT_AFTER = 30.0  # seconds


def settings(config: Any) -> tuple[str, float]:
    """How to notify and after how many seconds; unknown values fall back to the defaults."""
    how = getattr(config, "notify", DEFAULT_HOW)
    how = how if how in HOW else (DEFAULT_HOW if how in (None, True) else "off" if how is False else DEFAULT_HOW)
    after = getattr(config, "notify_after", DEFAULT_AFTER)
    try:
        after = float(after)
    except (TypeError, ValueError):
        after = DEFAULT_AFTER
    return how, max(0.0, after)


def sequence(how: str, message: str) -> str:
    """What to write to the terminal: BEL, or OSC 9 (wrapped for tmux, which would swallow it)."""
    if how == "bell":
        return "\a"
    if how != "osc9":
        return ""
    text = "".join(c for c in message if c.isprintable())[:200]
    seq = f"\x1b]9;{text}\x07"
    if os.environ.get("TMUX"):
        seq = "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return seq


def notify(how: str, message: str) -> None:
    """Write the notification straight to the terminal (it moves no cursor, so it cannot garble the prompt)."""
    seq = sequence(how, message)
    if not seq:
        return
    try:
        os.write(sys.__stdout__.fileno(), seq.encode())
    except (OSError, AttributeError, ValueError):
        pass
