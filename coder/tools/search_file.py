"""search_file: regex search over files with ripgrep, as `path:line:text`.

rg gives .gitignore handling, binary-file skipping and speed for free. It runs
from the search folder (so `glob` is anchored there, like glob_files) on the
absolute path, and the workspace prefix is cut from each line, so results read
relative to the workspace.
"""

from __future__ import annotations

from typing import Any

from coder.tools import rg
from coder.tools.base import MAX_OUTPUT_CHARS, Param, Tool, ToolContext, ToolError
from coder.tools.pathhints import resolve_existing

MAX_LINES = 200
MAX_CONTEXT = 10
BUDGET = MAX_OUTPUT_CHARS - 500
TIMEOUT = 30.0


def _rg_error(stderr: str) -> str:
    lines = [ln.removeprefix("rg: ").rstrip() for ln in stderr.strip().splitlines()]
    # rg's multiline hint names a flag the model cannot pass; leave it out.
    useful = [ln for ln in lines if ln.strip() and "multiline" not in ln]
    return "\n".join(useful[:6])


def _joined(line: str) -> str:
    """`path NUL 12:text` (a match) or `path NUL 12-text` (context) back to rg's usual `path:12:text`."""
    path, nul, rest = line.partition("\0")
    if not nul:
        return line  # a `--` separator between context groups
    digits = len(rest) - len(rest.lstrip("0123456789"))
    return path + rest[digits : digits + 1] + rest


def run(ctx: ToolContext, args: dict[str, Any]) -> str:
    policy = ctx.policy
    pattern: str = args["pattern"]
    path: str = args.get("path") or "."
    real, shown = resolve_existing(policy, path)
    cwd = real if real.is_dir() else real.parent

    glob = args.get("glob")
    argv = [
        "--line-number",
        "--with-filename",
        "--null",  # path NUL line: the path is read back exactly, to check it against the deny list
        "--no-heading",
        "--max-columns",
        "300",
        "--max-columns-preview",
        "--sort",
        "path",
        *rg.base_args(policy, cwd, [glob] if glob else []),
    ]
    if args.get("case_insensitive"):
        argv.append("-i")
    context = args.get("context_lines")
    if context:
        argv += ["-C", str(max(0, min(MAX_CONTEXT, context)))]
    argv += ["-e", pattern, "--", str(real)]

    def keep(line: str) -> bool:
        path, nul, _ = line.partition("\0")
        return not nul or rg.allowed(policy, path)

    res = rg.run_rg(argv, cwd, timeout=TIMEOUT, max_lines=MAX_LINES, cancel=ctx.cancel, keep=keep)
    where = shown + (f" (glob {glob})" if glob else "")
    if res.returncode == 1 and not res.total:
        return f"No matches for /{pattern}/ in {where}"
    if res.returncode == 2 and not res.total:
        msg = _rg_error(res.stderr)
        if "regex" in msg:
            raise ToolError(f"invalid regular expression: {msg}")
        raise ToolError(f"search failed: {msg or 'rg exited with status 2'}")
    if res.timed_out and not res.total:
        raise ToolError(
            f"search in {where} stopped after {TIMEOUT:.0f} s with no matches yet; "
            "narrow the path or glob"
        )

    out: list[str] = []
    size = 0
    for line in res.lines:
        line = rg.strip_prefix(_joined(line), policy.workspace)
        if size + len(line) + 1 > BUDGET:
            break
        out.append(line)
        size += len(line) + 1
    more = res.total - len(out)
    if more:
        out.append(f"[{more} more lines not shown; narrow the pattern, path or glob]")
    if res.returncode == 2:
        first = _rg_error(res.stderr).splitlines()[:1]
        out.append(f"[some files could not be searched: {first[0] if first else 'unknown error'}]")
    if res.timed_out:
        out.append(f"[search stopped after {TIMEOUT:.0f} s; results are incomplete]")
    return "\n".join(out)


TOOL = Tool(
    name="search_file",
    description=(
        "Search file contents for a regular expression (ripgrep/Rust regex syntax) and list "
        "matching lines as path:line:text, sorted by path. Searches a folder recursively "
        "(default: the workspace root) or a single file. Files ignored by .gitignore/.ignore, "
        f"binary files and VCS folders are skipped. At most {MAX_LINES} lines are shown."
    ),
    params={
        "pattern": Param(
            "string",
            "Regular expression, e.g. `def \\w+_handler` or `TODO|FIXME`; escape literal "
            "special characters like `\\(`.",
        ),
        "path": Param(
            "string", "Folder or file to search (default: the workspace root).", optional=True
        ),
        "glob": Param(
            "string",
            "Only search files matching this glob, e.g. `*.py` (any depth) or `src/**/*.ts` "
            "(relative to path); prefix with ! to exclude.",
            optional=True,
        ),
        "case_insensitive": Param("boolean", "Ignore case (default false).", optional=True),
        "context_lines": Param(
            "integer",
            f"Lines of context to show around each match (0-{MAX_CONTEXT}, default 0).",
            optional=True,
        ),
    },
    run=run,
    key_arg="pattern",
)
