"""glob_files: find files by name pattern, most recently modified first.

Newest-first puts the files someone is working on at the top. `rg --files -g`
gives gitignore-aware matching; it runs from the search folder, so patterns
with a slash are anchored there. Only the newest MAX_RESULTS are kept while
streaming, so a huge tree costs time, not memory.
"""

from __future__ import annotations

import heapq
import os
from pathlib import Path
from typing import Any

from coder.tools import rg
from coder.tools.base import Param, Tool, ToolContext, ToolError
from coder.tools.pathhints import resolve_existing
from sandbox.paths import display

MAX_RESULTS = 200
TIMEOUT = 30.0


def run(ctx: ToolContext, args: dict[str, Any]) -> str:
    policy = ctx.policy
    pattern: str = args["pattern"]
    if not pattern.strip():
        raise ToolError("pattern must not be empty; use e.g. `*.py` or `src/**/*.ts`")
    path: str = args.get("path") or "."
    real, shown = resolve_existing(policy, path)
    if not real.is_dir():
        raise ToolError(f"{shown} is a file, not a directory; give the folder to search in")

    argv = ["--files", *rg.base_args(policy, real, [pattern]), "--", str(real)]
    # Keep the MAX_RESULTS smallest keys (-mtime, path): a max-heap via negation.
    heap: list[tuple[float, str, str]] = []
    total = 0
    with rg.RgStream(argv, real, timeout=TIMEOUT, cancel=ctx.cancel) as stream:
        for line in stream:
            if not rg.allowed(policy, line):
                continue
            try:
                mtime = os.stat(line).st_mtime
            except OSError:
                continue
            total += 1
            shown_path = display(policy, Path(line))
            item = (mtime, _Rev(shown_path), shown_path)
            if len(heap) < MAX_RESULTS:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
    if stream.returncode == 2 and not total and stream.stderr.strip():
        first = stream.stderr.strip().splitlines()[0].removeprefix("rg: ")
        raise ToolError(f"glob failed: {first}")
    if not total:
        note = " (search stopped early: timed out)" if stream.timed_out else ""
        return f"No files matching {pattern} in {shown}{note}"
    ordered = sorted(heap, reverse=True)
    out = [p for _, _, p in ordered]
    if total > len(out):
        out.append(
            f"[{total - len(out)} more files not shown (newest {len(out)} listed); "
            "narrow the pattern or path]"
        )
    if stream.timed_out:
        out.append(f"[search stopped after {TIMEOUT:.0f} s; results are incomplete]")
    return "\n".join(out)


class _Rev(str):
    """A string that sorts backwards, so ties on mtime come out in path order."""

    def __lt__(self, other: str) -> bool:  # type: ignore[override]
        return str.__gt__(self, other)

    def __gt__(self, other: str) -> bool:  # type: ignore[override]
        return str.__lt__(self, other)


TOOL = Tool(
    name="glob_files",
    description=(
        "Find files whose path matches a glob, newest (most recently modified) first. "
        "A pattern without `/` matches file names at any depth: `*.ts`, `test_*.py`. "
        "A pattern with `/` is anchored at the search path: `src/**/*.ts` (any depth under "
        "src), `*/setup.py` (one level down). `**` spans folders, `{a,b}` alternates. "
        "Files ignored by .gitignore/.ignore and VCS folders are skipped. "
        f"At most {MAX_RESULTS} files are listed."
    ),
    params={
        "pattern": Param("string", "Glob pattern, e.g. `**/*.py` or `src/**/*.ts`."),
        "path": Param(
            "string", "Folder to search in (default: the workspace root).", optional=True
        ),
    },
    run=run,
    key_arg="pattern",
)
