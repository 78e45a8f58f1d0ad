"""coder's own directories, in one place.

The sandbox's deny list keeps the model out of these (the user's config, every
session's transcript, prompt history, trust decisions), so everything that
reads or writes them must agree on where they are: they are computed here and
nowhere else, from the XDG variables at the time of the call.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

APP = "coder"


def _xdg(variable: str, *default: str) -> Path:
    value = os.environ.get(variable, "")
    base = Path(value) if os.path.isabs(value) else Path.home().joinpath(*default)
    return base / APP


_sysconfig = threading.Lock()


def install_path(name: str, scheme: str | None = None) -> str | None:
    """sysconfig.get_path, one thread at a time: on Python 3.11 sysconfig publishes its settings before it
    has filled them in, so agents made at once in a batch's threads would read half of them ('userbase')."""
    import sysconfig

    with _sysconfig:
        try:
            return sysconfig.get_path(name, scheme) if scheme else sysconfig.get_path(name)
        except KeyError:  # a scheme this Python does not have
            return None


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


class ToolsRefused(Exception):
    """lib_dir() or tools_dir() is not as coder makes it: coder leaves it alone and commands get no tools folder."""


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _own_dir(path: Path, parent_fd: int | None = None) -> int:
    """An open descriptor of the folder `path` (its last part opened relative to `parent_fd` if given),
    made (0755) if missing; ToolsRefused unless it is a real folder (not a symbolic link), the user's,
    and writable by nobody else."""
    name = path.name if parent_fd is not None else str(path)
    try:
        os.mkdir(name, 0o755, dir_fd=parent_fd)
    except FileExistsError:
        pass
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except OSError as e:
        raise ToolsRefused(f"{path} cannot be read ({e.strerror})") from e
    if stat.S_ISLNK(st.st_mode):
        raise ToolsRefused(f"{path} is a symbolic link")
    if not stat.S_ISDIR(st.st_mode):
        raise ToolsRefused(f"{path} is not a folder")
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)  # O_NOFOLLOW: no link swapped in since the check
    try:
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode):
            raise ToolsRefused(f"{path} is not a folder")
        if st.st_uid != os.getuid():
            raise ToolsRefused(f"{path} belongs to another user")
        if st.st_mode & 0o022:
            raise ToolsRefused(f"{path} is writable by others (chmod go-w it)")
    except BaseException:
        os.close(fd)
        raise
    return fd


def provide_tools(tools: dict[str, str]) -> Path | None:
    """Make tools_dir() hold exactly `tools` (name: the binary it links to); None if it cannot be made.

    Each start checks it (a readlink per tool) and mends what differs; a link is swapped in atomically
    (a temporary name, then a rename), so two coders starting at once each leave a working folder.
    A workspace holding ~/.local lets commands write there, so nothing is followed or trusted: every
    folder from lib_dir() down must be a real folder of the user's that no one else may write, and the
    tools folder may hold symbolic links only (coder makes nothing else), of which coder removes those
    it no longer gives. Anything else raises ToolsRefused, before anything is changed.
    """
    folder = tools_dir()
    fds: list[int] = []
    try:
        folder.parent.parent.mkdir(parents=True, exist_ok=True)  # ~/.local/lib
        fds.append(_own_dir(folder.parent))
        fds.append(_own_dir(folder, fds[-1]))
        fd = fds[-1]
        stale = []
        for name in os.listdir(fd):
            if not stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                raise ToolsRefused(f"{folder} holds {name}, which coder did not put there")
            if name not in tools and not name.startswith(tuple(f".{t}." for t in tools)):  # not another's temp
                stale.append(name)
        for name in stale:
            os.unlink(name, dir_fd=fd)  # a symbolic link: its target is not touched
        for name, target in tools.items():
            try:
                if os.readlink(name, dir_fd=fd) == target:
                    continue
            except OSError:
                pass
            temp = f".{name}.{os.getpid()}"
            try:
                os.unlink(temp, dir_fd=fd)
            except FileNotFoundError:
                pass
            os.symlink(target, temp, dir_fd=fd)
            os.rename(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
    except OSError:
        return None
    finally:
        for fd in fds:
            os.close(fd)
    return folder
