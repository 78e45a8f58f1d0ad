"""What the user decided about a folder, kept outside it (`$XDG_STATE_HOME/coder/trust.json`).

Nothing in a workspace can vouch for itself: a repository (or a command the
model ran) could plant any file there. So the answers to "trust this folder?"
and "send the API key to the base_url this project's config names?" live in
coder's state directory, which commands cannot read or write (it is on the
sandbox's deny list). What coder learned about an endpoint (whether it has
`/responses/compact`) is kept here too, for the same reason. The file is small JSON, read-modify-written under a lock so two sessions
cannot lose each other's answers.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from coder.dirs import state_dir


def _path() -> Path:
    return state_dir() / "trust.json"


def _read() -> dict[str, Any]:
    try:
        data = json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _update(key: str, name: str, value: Any) -> None:
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = _read()
        data.setdefault(key, {})[name] = value
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)


def folder_trusted(folder: Path) -> bool:
    return _read().get("folders", {}).get(str(folder)) is True


def trust_folder(folder: Path) -> None:
    _update("folders", str(folder), True)


def base_url_decision(config_path: Path, url: str) -> bool | None:
    """The user's earlier answer for this project config and URL (None: never asked)."""
    answer = _read().get("base_urls", {}).get(f"{config_path} {url}")
    return answer if isinstance(answer, bool) else None


def decide_base_url(config_path: Path, url: str, allowed: bool) -> None:
    _update("base_urls", f"{config_path} {url}", allowed)



def compact_supported(base_url: str) -> bool | None:
    """Whether the endpoint answered /responses/compact before (None: not tried yet)."""
    answer = _read().get("compact", {}).get(base_url)
    return answer if isinstance(answer, bool) else None


def remember_compact(base_url: str, supported: bool) -> None:
    _update("compact", base_url, supported)
