"""list_dir: a folder as an indented tree, minus what git would ignore.

`rg --files` supplies the non-ignored files (with .gitignore semantics the model
expects and no need for a git repo); folders are their ancestors. A scandir
pass over the shown folders adds what rg cannot report: empty folders and
symlinks. Folders below the requested depth are collapsed to a file count so a
big tree still fits in one reply.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from coder.tools import rg
from coder.tools.base import Param, Tool, ToolContext, ToolError
from coder.tools.pathhints import resolve_existing
from sandbox.policy import Policy

DEFAULT_DEPTH = 2
MAX_DEPTH = 10
MAX_ENTRIES = 400
MAX_NODES = 50_000  # entries kept in memory before the listing is called incomplete
EMPTY_SCAN_BUDGET = 200  # folders looked into to decide that a folder holds no files
TIMEOUT = 20.0


class _Dir:
    __slots__ = ("children", "files")

    def __init__(self) -> None:
        # name -> _Dir (folder), None (file) or str (symlink target)
        self.children: dict[str, _Dir | str | None] = {}
        self.files = 0  # files below a collapsed folder


def _add_file(root: _Dir, parts: tuple[str, ...], depth: int) -> int:
    """Record one file; returns how many new entries were stored."""
    node, new = root, 0
    for level, part in enumerate(parts[:-1], start=1):
        child = node.children.get(part)
        if not isinstance(child, _Dir):
            child = node.children[part] = _Dir()
            new += 1
        node = child
        if level == depth:
            node.files += 1
            return new
    if parts[-1] not in node.children:
        node.children[parts[-1]] = None
        new += 1
    return new


def _empty_tree(path: Path, budget: list[int], policy: Policy) -> _Dir | None:
    """A _Dir for `path` if it holds no files at all (only empty folders), else None."""
    budget[0] -= 1
    if budget[0] < 0 or not rg.allowed(policy, str(path)):
        return None
    node = _Dir()
    try:
        with os.scandir(path) as it:
            entries = list(it)
    except OSError:
        return None
    for entry in entries:
        if entry.name in rg.VCS_NAMES:
            continue
        if not entry.is_dir(follow_symlinks=False):
            return None
        sub = _empty_tree(Path(entry.path), budget, policy)
        if sub is None:
            return None
        node.children[entry.name] = sub
    return node


def _add_unlisted(node: _Dir, path: Path, level: int, depth: int, policy: Policy) -> None:
    """Add the empty folders and symlinks rg does not list, in folders that are expanded."""
    if level >= depth:
        return
    try:
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if name in node.children or name in rg.VCS_NAMES or not rg.allowed(policy, entry.path):
            continue
        if entry.is_symlink():
            try:
                node.children[name] = os.readlink(entry.path)
            except OSError:
                pass
        elif entry.is_dir(follow_symlinks=False):
            empty = _empty_tree(Path(entry.path), [EMPTY_SCAN_BUDGET], policy)
            if empty is not None:
                node.children[name] = empty
    for name, child in node.children.items():
        if isinstance(child, _Dir):
            _add_unlisted(child, path / name, level + 1, depth, policy)


def _render(node: _Dir, level: int, depth: int) -> Iterator[str]:
    indent = "  " * level
    for name in sorted(node.children, key=lambda n: (n.lower(), n)):
        child = node.children[name]
        if child is None:
            yield indent + name
        elif isinstance(child, str):
            yield f"{indent}{name} -> {child}"
        elif level + 1 >= depth:
            yield f"{indent}{name}/ ({child.files} file{'' if child.files == 1 else 's'})"
        else:
            yield f"{indent}{name}/"
            yield from _render(child, level + 1, depth)


def run(ctx: ToolContext, args: dict[str, Any]) -> str:
    policy = ctx.policy
    path: str = args.get("path") or "."
    depth = args.get("depth")
    depth = DEFAULT_DEPTH if depth is None else max(1, min(MAX_DEPTH, depth))
    real, shown = resolve_existing(policy, path)
    if not real.is_dir():
        raise ToolError(f"{shown} is a file, not a directory; use read_file to read it")

    tree = _Dir()
    nodes = 0
    too_many = False
    argv = ["--files", *rg.base_args(policy, real), "--", str(real)]
    with rg.RgStream(argv, real, timeout=TIMEOUT, cancel=ctx.cancel) as stream:
        for line in stream:
            if not rg.allowed(policy, line):
                continue
            rel = rg.strip_prefix(line, real)
            nodes += _add_file(tree, tuple(rel.split(os.sep)), depth)
            if nodes > MAX_NODES:
                too_many = True
                break
    if stream.returncode == 2 and not tree.children and stream.stderr.strip():
        raise ToolError(f"cannot list {shown}: {stream.stderr.strip().splitlines()[0]}")
    _add_unlisted(tree, real, 0, depth, policy)

    if not tree.children:
        return f"{shown} is empty (files ignored by .gitignore and VCS folders are not listed)"
    out: list[str] = []
    more = 0
    for line in _render(tree, 0, depth):
        if len(out) < MAX_ENTRIES:
            out.append(line)
        else:
            more += 1
    if more:
        out.append(f"[{more} more entries not shown; list a subfolder or use a smaller depth]")
    if too_many or stream.timed_out:
        why = "too many files" if too_many else f"stopped after {TIMEOUT:.0f} s"
        out.append(f"[listing incomplete ({why}); folder counts are lower bounds]")
    return "\n".join(out)


TOOL = Tool(
    name="list_dir",
    description=(
        "List a folder as a tree: folders end with `/`, each level is indented two spaces, "
        "entries are sorted by name. Files and folders ignored by .gitignore/.ignore and VCS "
        "folders (.git) are left out. Folders below `depth` are shown collapsed with their file "
        f"count, e.g. `lib/ (37 files)`. At most {MAX_ENTRIES} entries are shown."
    ),
    params={
        "path": Param(
            "string", "Folder to list (default: the workspace root).", optional=True
        ),
        "depth": Param(
            "integer",
            f"How many levels to expand (default {DEFAULT_DEPTH}, 1-{MAX_DEPTH}).",
            optional=True,
        ),
    },
    run=run,
)
