"""glob_files: find files by name pattern, most recently modified first.

Newest-first puts the files someone is working on at the top. `rg --files -g`
gives gitignore-aware matching; it runs from the search folder, so patterns
with a slash are anchored there. Only the newest MAX_RESULTS are kept while
streaming, so a huge tree costs time, not memory.

rg matches a glob literally against paths relative to the search folder, so the
forms models write are read as meant first: `./` `//` `/./` dropped, an absolute
or `~` pattern under the search folder made relative, a repeated search folder
(`path="src"`, `src/**/*.py`) dropped. A pattern that points elsewhere is refused
with the call to make instead; the refusal is decided from the text alone, so it
tells nothing about what exists there. An empty result says why when a quick look
can tell, from at most two extra walks that share half a second (HINT_BUDGET) and
stop at HINT_FILES files. The pattern is only a filter: every reported path is
checked against the deny list.
"""

from __future__ import annotations

import heapq
import os
import time
from pathlib import Path
from typing import Any

from coder.tools import rg
from coder.tools.base import Param, Tool, ToolContext, ToolError
from coder.tools.pathhints import resolve_existing
from sandbox.paths import denied_by, display, within
from sandbox.policy import Policy

MAX_RESULTS = 200
TIMEOUT = 30.0
HINT_BUDGET = 0.5  # seconds for all the extra looks taken to explain an empty result
HINT_FILES = 20  # an extra look stops counting here
GLOB_META = frozenset("*?[{\\")


def _present(policy: Policy, path: Path) -> bool:
    """Whether `path` exists and may be read (a denied path is never told apart from a missing one)."""
    return rg.allowed(policy, str(path)) and os.path.lexists(path)


def _anchored(parts: list[str] | tuple[str, ...]) -> str:
    """A glob anchored at the search folder (a lone name needs the leading `/`)."""
    return "/".join(parts) if len(parts) > 1 else "/" + parts[0]


def _refusal(policy: Policy, pattern: str, target: Path, rest: list[str], shown: str) -> ToolError:
    where = "the workspace" if shown == "." else f"the search folder {shown}"
    denied = denied_by(policy, target)
    if denied is not None:
        return ToolError(f"pattern {pattern} points outside {where}, into {denied}, which may not be read")
    return ToolError(
        f"pattern {pattern} points outside {where} (patterns match relative to path); "
        f'call glob_files with path="{display(policy, target)}" and pattern="{"/".join(rest)}"'
    )


def normalize(policy: Policy, pattern: str, real: Path, shown: str) -> str:
    """The glob rg must get to match what the model meant (see the module docstring)."""
    text = pattern.strip()
    neg = "!" if text.startswith("!") else ""
    text = text[len(neg) :]
    if text == "~" or text.startswith("~/"):
        text = str(Path.home()) + text[1:]
    absolute = text.startswith("/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts:
        return neg + "**"
    if text.endswith("/"):
        parts.append("**")  # `src/` means the files under src
    n = 0  # leading folder names free of glob syntax
    while n < len(parts) - 1 and not GLOB_META & set(parts[n]):
        n += 1
    literal, rest = parts[:n], parts[n:]

    if absolute or ".." in literal:
        target = Path(os.path.normpath(Path("/" if absolute else real, *literal)))
        cands = [target] if denied_by(policy, target) else [target, Path(os.path.realpath(target))]
        for cand in cands:  # the realpath: the workspace named through a symlink
            if within(cand, real):
                return neg + _anchored([*cand.relative_to(real).parts, *rest])
        if absolute and (not literal or _present(policy, real / literal[0])):
            return neg + "/" + "/".join(parts)  # gitignore style: `/src/*.py` is anchored at the search folder
        raise _refusal(policy, pattern.strip(), target, rest, shown)

    repeated = 0  # `src/**/*.py` searched in src: the model repeated the folder (unless src/src exists)
    if not _present(policy, real / parts[0]):
        names = real.parts[1:]
        repeated = next(
            (k for k in range(min(len(names), len(parts) - 1), 0, -1) if tuple(parts[:k]) == names[-k:]), 0
        )
    parts = parts[repeated:]
    if repeated or text.startswith("./"):
        return neg + _anchored(parts)
    return neg + "/".join(parts)


def _look(ctx: ToolContext, real: Path, pattern: str, deadline: float, *flags: str) -> tuple[int, str | None, bool]:
    """How many allowed files another look finds (up to HINT_FILES, by `deadline`), the first, and
    whether there may be more (it stopped at HINT_FILES or at the deadline)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return 0, None, False
    argv = ["--files", *flags, *rg.base_args(ctx.policy, real, [pattern]), "--", str(real)]
    count, first = 0, None
    with rg.RgStream(argv, real, timeout=remaining, cancel=ctx.cancel) as stream:
        for line in stream:
            if rg.allowed(ctx.policy, line):
                count += 1
                first = first or display(ctx.policy, Path(line))
                if count >= HINT_FILES:
                    break
    return count, first, count >= HINT_FILES or stream.timed_out


def _files(n: int, more: bool) -> str:
    return f"{n}{'+' if more else ''} file{'' if n == 1 and not more else 's'}"


def _why_nothing(ctx: ToolContext, real: Path, shown: str, pattern: str) -> str:
    """Why a pattern matched nothing, when a quick look can tell (the looks share HINT_BUDGET); else ''."""
    if pattern.startswith("!"):
        return ""
    bare = pattern.lstrip("/")
    if shown != "." and bare.split("/")[0] == real.name:
        return f"; patterns are relative to path {shown}, so this looked for {shown}/{bare}"
    folder = real / bare
    if "/" not in bare and not GLOB_META & set(bare) and _present(ctx.policy, folder) and folder.is_dir():
        return f"; {bare} is a folder: use {bare}/** for the files under it"
    deadline = time.monotonic() + HINT_BUDGET
    if "/" in pattern and not bare.startswith("**/"):
        n, first, more = _look(ctx, real, "**/" + bare, deadline)
        if n:
            return (f"; a pattern with / is anchored at the search folder, "
                    f"and **/{bare} matches {_files(n, more)} (e.g. {first})")
    n, first, more = _look(ctx, real, pattern, deadline, "--no-ignore")
    if n:
        verb = "matches but is" if n == 1 and not more else "match but are"
        return f"; {_files(n, more)} {verb} ignored by .gitignore/.ignore (e.g. {first})"
    return ""


def run(ctx: ToolContext, args: dict[str, Any]) -> str:
    policy = ctx.policy
    original: str = args["pattern"]
    if not original.strip():
        raise ToolError("pattern must not be empty; use e.g. `*.py` or `src/**/*.ts`")
    path: str = args.get("path") or "."
    real, shown = resolve_existing(policy, path)
    if not real.is_dir():
        raise ToolError(f"{shown} is a file, not a directory; give the folder to search in")
    pattern = normalize(policy, original, real, shown)

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
        if stream.timed_out:
            return f"No files matching {original} in {shown} (search stopped early: timed out)"
        read_as = f" (read as {pattern})" if pattern != original.strip() else ""
        return f"No files matching {original}{read_as} in {shown}{_why_nothing(ctx, real, shown, pattern)}"
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
        "A leading `./` or an absolute path inside the search path is accepted. "
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
