"""Secrets leave coder's own environment at start-up and live on in memory only.

Every child coder starts (git, ripgrep, the sandboxed commands, an editor)
inherits the process environment unless told otherwise, and each of those
spawn sites is one place to forget a scrub. So the command-line program calls
`seal()` first thing: the API key and every variable that looks like a secret
(sandbox.env.is_secret) move from `os.environ` into this module, where
`get()` finds them. The user's own `!command` in the REPL gets them back
(`user_environment()`): that is the user running their own shell.

Used as a library (`coder.Agent`), nothing is sealed (a library must not
change its host's environment); every spawn site still passes a scrubbed
environment of its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sandbox.env import is_secret, scrub, separate

_taken: dict[str, str] = {}
_sealed = False


def seal() -> None:
    """Move every secret-looking variable out of os.environ.

    Proxy settings stay: coder's own connection to the endpoint goes through them (the openai
    client reads them from the environment). Every spawn site scrubs them out for its child anyway.
    """
    global _sealed
    _sealed = True
    for name, value in list(os.environ.items()):
        if is_secret(name, value) and not name.lower().endswith("_proxy"):
            _taken[name] = os.environ.pop(name)


def get(name: str) -> str:
    """A variable's value, sealed or not ('' when unset)."""
    return os.environ.get(name) or _taken.get(name, "")


def take(name: str) -> str:
    """The API key's variable: once sealed, it leaves os.environ even when its name does not look secret."""
    if _sealed and name in os.environ:
        _taken[name] = os.environ.pop(name)
    return get(name)


def values() -> list[str]:
    """Every sealed secret value, for redaction."""
    return [v for v in _taken.values() if v]


def user_environment() -> dict[str, str]:
    """The environment coder was started with, for the user's own shell commands."""
    return {**os.environ, **_taken}


def child_environment(api_key_env: str, passthrough: tuple[str, ...] = (),
                      workspace: Path | None = None) -> dict[str, str]:
    """What a command the model runs may see: no secrets, but the variables the user passes through
    on purpose (`env_passthrough`), and never a value holding the API key; coder's own virtual
    environment off PATH, and coder's tools folder (rg) at its end, unless commands in `workspace`
    could write that folder (and so put programs there for the next one)."""
    known = [get(api_key_env)] + [v for n, v in _taken.items() if n not in passthrough]
    env = scrub(user_environment(), secret_values=known, passthrough=passthrough)
    from coder.dirs import install_path

    in_venv = sys.prefix != sys.base_prefix
    return separate(env, sys.prefix if in_venv else None, install_path("scripts") if in_venv else None,
                    tools_for_commands(workspace))


def tools_for_commands(workspace: Path | None = None) -> str | None:
    """The folder of what coder gives commands (dirs.tools_dir: a link to the rg of coder's installation)."""
    from coder import dirs
    from coder.tools.base import ToolError
    from coder.tools.rg import find_rg

    try:
        rg = os.path.realpath(find_rg())
    except ToolError:
        return None
    folder = dirs.tools_dir()
    if workspace is not None:
        real, root = Path(os.path.realpath(folder)), Path(os.path.realpath(workspace))
        home = Path(os.path.realpath(Path.home()))
        # A workspace holding the home folder keeps ~/.local read-only (sandbox.policy.HOME_NAMES); one
        # inside ~/.local would let commands write there.
        if (real == root or root in real.parents) and not (home == root or root in home.parents):
            return None
    try:
        made = dirs.provide_tools({"rg": rg})
    except dirs.ToolsRefused as e:
        _warn_once(f"commands get no rg from coder: {e}; coder leaves it alone")
        return None
    return str(made) if made else None


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """One line on stderr, once per process (an Agent is made before any front end takes the terminal)."""
    if message not in _warned:
        _warned.add(message)
        sys.stderr.write(f"coder: warning: {message}\n")
