"""Helpful errors for paths that do not exist: a typo should cost one retry, not a search."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from coder.tools.base import ToolError
from sandbox.paths import denied_by, display, resolve_read
from sandbox.policy import Policy

MAX_NAMES = 10_000  # names scanned in the parent directory
MAX_SUGGESTIONS = 5


def _nearest_existing(real: Path) -> tuple[Path, str] | None:
    """The deepest existing directory above `real` and the path component just below it."""
    child = real
    for parent in real.parents:
        if parent.is_dir():
            return parent, child.name
        child = parent
    return None


def suggestions(real: Path, policy: Policy | None = None) -> list[Path]:
    """Existing paths whose names are close to the first missing component of `real` (never a denied one)."""
    found = _nearest_existing(real)
    if found is None:
        return []
    parent, wanted = found
    names: dict[str, str] = {}
    try:
        with os.scandir(parent) as it:
            for i, entry in enumerate(it):
                if i >= MAX_NAMES:
                    break
                names.setdefault(entry.name.lower(), entry.name)
    except OSError:
        return []
    if policy is not None:
        names = {k: v for k, v in names.items() if denied_by(policy, parent / v) is None}
    close = difflib.get_close_matches(wanted.lower(), list(names), n=MAX_SUGGESTIONS, cutoff=0.6)
    return [parent / names[c] for c in close]


def missing_path_message(policy: Policy, path_str: str, real: Path) -> str:
    """`No such file or directory: X`, plus up to five near names that do exist."""
    msg = f"No such file or directory: {display(policy, real)}"
    near = suggestions(real, policy)
    if near:
        msg += "\nDid you mean: " + ", ".join(display(policy, p) for p in near) + "?"
    return msg


def resolve_existing(policy: Policy, path_str: str) -> tuple[Path, str]:
    """The real path of something that must exist, and its name as the model should see it."""
    real = resolve_read(policy, path_str)
    if not real.exists():
        raise ToolError(missing_path_message(policy, path_str, real))
    return real, display(policy, real)
