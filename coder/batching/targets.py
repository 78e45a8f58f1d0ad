"""Which files a batch works on: globs or a list, checked, in one order, and a shard's share of them."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

from coder.config import ConfigError

SKIPPED_DIRS = {".git", ".hg", ".svn", ".coder", "node_modules", "__pycache__", ".venv", "venv"}


def _relative(workspace: Path, path: str, what: str) -> str:
    """`path` as a workspace-relative POSIX path; ConfigError when it lies outside the workspace."""
    absolute = Path(path) if os.path.isabs(path) else workspace / path
    real = Path(os.path.realpath(absolute))
    try:
        rel = real.relative_to(workspace)
    except ValueError:
        raise ConfigError(f"{what} {path}: outside the workspace {workspace}") from None
    if not rel.parts:
        raise ConfigError(f"{what} {path}: that is the workspace itself, not a file")
    return rel.as_posix()


def from_globs(workspace: Path, patterns: list[str], notes: list[str] | None = None) -> list[str]:
    """The files the patterns match (** crosses folders; hidden files and folders like .git are left out, and
    links that lead out of the workspace, said in `notes`)."""
    found: set[str] = set()
    outside: list[str] = []
    for pattern in patterns:
        matched = 0
        rooted = os.path.isabs(pattern)
        for name in glob.iglob(pattern, root_dir=None if rooted else workspace, recursive=True):
            full = Path(name) if rooted else workspace / name
            if not full.is_file() or SKIPPED_DIRS & set(Path(name).parts):
                continue
            try:
                found.add(_relative(workspace, str(full), "--files"))
            except ConfigError:
                outside.append(name)
                continue
            matched += 1
        if not matched:
            raise ConfigError(f"--files {pattern!r} matched no file in {workspace}")
    if outside and notes is not None:
        notes.append(f"left out {len(outside)} match(es) that lead out of the workspace: {', '.join(outside[:3])}"
                     + (", ..." if len(outside) > 3 else ""))
    return sorted(found)


def from_list(workspace: Path, path: str) -> list[str]:
    """One path per line (blank lines and lines starting with # left out), in the list's order."""
    from coder.userfiles import read_text

    text = read_text(path, "--from-list")
    out: list[str] = []
    for line in text.splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            rel = _relative(workspace, entry, f"--from-list {path}:")
            if rel not in out:
                out.append(rel)
    if not out:
        raise ConfigError(f"--from-list {path}: lists no file")
    return out


SHARD = re.compile(r"^(\d+)/(\d+)$")


def parse_shard(text: str) -> tuple[int, int]:
    """--shard I/N: the I-th of N slices, I counting from 1."""
    m = SHARD.match(text.strip())
    if not m:
        raise ConfigError(f"--shard {text!r}: write it as I/N, e.g. 2/4 (the second of four)")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= i <= n:
        raise ConfigError(f"--shard {text}: I must be from 1 to N (got {i}/{n})")
    return i, n


def shard(targets: list[str], i: int, n: int) -> list[str]:
    """The I-th of N slices: every N-th target of the sorted list, starting at the I-th. The same list gives
    the same slices on every machine, and the N slices together hold each target exactly once."""
    return sorted(targets)[i - 1::n]
