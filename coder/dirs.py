"""coder's own directories, in one place.

The sandbox's deny list keeps the model out of these (the user's config, every
session's transcript, prompt history, trust decisions), so everything that
reads or writes them must agree on where they are: they are computed here and
nowhere else, from the XDG variables at the time of the call.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "coder"


def _xdg(variable: str, *default: str) -> Path:
    value = os.environ.get(variable, "")
    base = Path(value) if os.path.isabs(value) else Path.home().joinpath(*default)
    return base / APP


def config_dir() -> Path:
    """The user's settings and AGENTS.md: `$XDG_CONFIG_HOME/coder` (`~/.config/coder`)."""
    return _xdg("XDG_CONFIG_HOME", ".config")


def data_dir() -> Path:
    """Session transcripts and checkpoint stores: `$XDG_DATA_HOME/coder` (`~/.local/share/coder`)."""
    return _xdg("XDG_DATA_HOME", ".local", "share")


def state_dir() -> Path:
    """Prompt history, trust decisions, placeholders in use: `$XDG_STATE_HOME/coder` (`~/.local/state/coder`)."""
    return _xdg("XDG_STATE_HOME", ".local", "state")


def user_config_path() -> Path:
    return config_dir() / "config.toml"


def sessions_dir() -> Path:
    return data_dir() / "sessions"


def history_dir() -> Path:
    return state_dir() / "history"


def private() -> tuple[Path, ...]:
    """What no command or file tool may read: all of coder's own directories."""
    return (config_dir(), data_dir(), state_dir())
