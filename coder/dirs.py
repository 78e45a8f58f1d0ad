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


def lib_dir() -> Path:
    """What commands must be able to run, so kept apart from the private directories above:
    `~/.local/lib/coder`, holding install.sh's virtual environment (`venv/`) and the tools folder."""
    return Path.home() / ".local" / "lib" / APP


def tools_dir() -> Path:
    """The folder put on commands' PATH, holding only the tools coder gives them: `~/.local/lib/coder/bin`."""
    return lib_dir() / "bin"


def provide_tools(tools: dict[str, str]) -> Path | None:
    """Make tools_dir() hold exactly `tools` (name: the binary it links to); None if it cannot be made.

    Each start checks it (a readlink per tool) and mends what differs; a link is swapped in atomically,
    so two coders starting at once each leave a working folder.
    """
    folder = tools_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in os.listdir(folder):
            if name not in tools and not name.startswith(tuple(f".{t}." for t in tools)):  # not another's temp
                path = folder / name
                if path.is_dir() and not path.is_symlink():
                    import shutil

                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        for name, target in tools.items():
            link = folder / name
            try:
                if os.readlink(link) == target:
                    continue
            except OSError:
                pass
            temp = folder / f".{name}.{os.getpid()}"
            temp.unlink(missing_ok=True)
            os.symlink(target, temp)
            os.replace(temp, link)
    except OSError:
        return None
    return folder
