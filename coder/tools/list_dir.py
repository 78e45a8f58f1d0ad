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


def _total(node: _Dir) -> int:
    """Files (and links) anywhere below `node`."""
    return node.files + sum(_total(c) if isinstance(c, _Dir) else 1 for c in node.children.values())


def _key(name: str) -> tuple[str, str]:
    return (name.lower(), name)


def _fair(wants: list[int], budget: int) -> list[int]:
    """Max-min fair shares of `budget` lines: a folder gets all it wants, or an equal cut of what is left."""
    shares = [0] * len(wants)
    left = budget
    order = sorted(range(len(wants)), key=wants.__getitem__)
    for k, i in enumerate(order):
        shares[i] = min(wants[i], left // (len(order) - k))
        left -= shares[i]
    return shares


def _shown(node: _Dir, share: int) -> list[str]:
    """The children shown in `share` lines: all, or (keeping a line for the rest) folders first, by name."""
    names = sorted(node.children, key=_key)
    if share >= len(names):
        return names
    picked = sorted(names, key=lambda n: not isinstance(node.children[n], _Dir))[: max(0, share - 1)]
    return sorted(picked, key=_key)


def _plan(root: _Dir, depth: int, budget: int) -> tuple[dict[int, int], bool]:
    """Lines per expanded folder (by id) and whether anything had to be left out.

    Shared level by level, fairly among the folders of a level, so one huge folder cannot push its
    siblings out; a level leaves up to half of what is left to the levels below it.
    """
    wants: list[int] = []  # entries wanted at each level (every expandable folder counted)
    nodes = [root]
    while nodes:
        wants.append(sum(len(n.children) for n in nodes))
        if len(wants) >= depth:
            break
        nodes = [c for n in nodes for c in n.children.values() if isinstance(c, _Dir)]
    plan: dict[int, int] = {}
    cut = False
    level, nodes = 0, [root]
    while nodes:
        room = budget - min(sum(wants[level + 1 :]), budget // 2)
        if room <= 0:
            return plan, cut or any(n.children for n in nodes)
        shares = _fair([len(n.children) for n in nodes], room)
        below: list[_Dir] = []
        for node, share in zip(nodes, shares):
            if share < len(node.children):
                cut = True
                if share <= 1:
                    continue  # no room for one entry and the rest line: shown collapsed, with its count
            plan[id(node)] = share
            budget -= share
            if level + 1 < depth:
                below += [c for n in _shown(node, share) if isinstance(c := node.children[n], _Dir)]
        level, nodes = level + 1, below
    return plan, cut


def _rest(node: _Dir, shown: list[str]) -> str:
    """`… 19,600 more files`: what a cut folder leaves out."""
    hidden = [node.children[n] for n in set(node.children) - set(shown)]
    folders = sum(isinstance(c, _Dir) for c in hidden)
    files = len(hidden) - folders
    parts = [f"{files:,} more file{'' if files == 1 else 's'}"] if files else []
    if folders:
        parts.append(f"{folders:,} more folder{'' if folders == 1 else 's'}")
    return "… " + " and ".join(parts)


def _render(node: _Dir, level: int, plan: dict[int, int]) -> Iterator[str]:
    indent = "  " * level
    shown = _shown(node, plan[id(node)])
    for name in shown:
        child = node.children[name]
        if child is None:
            yield indent + name
        elif isinstance(child, str):
            yield f"{indent}{name} -> {child}"
        elif id(child) not in plan:
            n = _total(child)
            yield f"{indent}{name}/ ({n:,} file{'' if n == 1 else 's'})"
        else:
            yield f"{indent}{name}/"
            yield from _render(child, level + 1, plan)
    if len(shown) < len(node.children):
        yield indent + _rest(node, shown)


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
    plan, cut = _plan(tree, depth, MAX_ENTRIES)
    out = list(_render(tree, 0, plan))
    if cut:
        out.append(f"[at most {MAX_ENTRIES} entries are shown, each folder a fair share; "
                   "list a subfolder or use a smaller depth for the rest]")
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
