"""`coder sessions`, `coder undo` and `coder init`: the commands around sessions and projects."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from coder.config import ConfigError, check_workspace, workspace_dir
from coder.redact import HIDDEN

INIT_PROMPT = """Survey this repository and write a starter AGENTS.md at its root, for coding agents working here.
Look before you write: the README, the package or build files (pyproject.toml, package.json, Cargo.toml, go.mod, \
Makefile, ...), the CI configuration, the test layout, and the linters' settings.
AGENTS.md should be short (under 60 lines) and concrete:
- what the project is, in two or three lines;
- how to set it up, build it, and run its tests (exact commands; one test file or one test too, if the tools allow);
- the lint, format and type-check commands;
- the code style and conventions you can see in the code;
- anything surprising a newcomer would trip over.
Only give commands you found evidence for. Create the file with write_file, then say in one line what you wrote."""


def _workspace(args: Any) -> Path:
    return workspace_dir(getattr(args, "cd", None))


def ago(then: float) -> str:
    seconds = max(0, time.time() - then)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


_STATUS_STYLE = {"failed": "red", "interrupted": "yellow", "running": "cyan", "empty": "dim"}


def sessions(args: Any) -> int:
    """`coder sessions`: one line per session, cut to the width on a terminal and whole in a pipe; or JSON lines."""
    from coder.sessions import listing

    workspace = _workspace(args)
    found = listing(None if args.all else workspace, show_all=args.all, limit=max(1, args.n))
    if getattr(args, "json", False):
        for info in found.sessions:
            sys.stdout.write(json.dumps(info.to_json(), ensure_ascii=False) + "\n")
        return 0
    terminal = sys.stdout.isatty()
    hidden = (f"{found.hidden} empty session(s) not shown (failed before any reply, or never given a task); "
              "--all shows them") if found.hidden else ""
    if not found.sessions:
        where = "" if args.all else f" for {workspace} (--all shows every project)"
        print(f"no sessions yet{where}" if not found.hidden else hidden)
        return 0
    columns = ("id", "when", *(("project",) if args.all else ()), "status", "turns", "tokens", "first prompt")
    rows = [[info.id, ago(info.updated), *((info.project,) if args.all else ()), info.status, str(info.turns),
             f"{info.tokens:,}", info.first_prompt or "-"] for info in found.sessions]
    widths = [max(len(r[i]) for r in [list(columns), *rows]) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if name in ("turns", "tokens") else c.ljust(w)
                       for name, c, w in zip(columns, row, widths)).rstrip() for row in [list(columns), *rows]]
    if not terminal:  # a pipe or a file: one line per session, never wrapped or cut
        print("\n".join(lines))
        if hidden:
            sys.stderr.write(hidden + "\n")
        return 0
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False)
    status_at = columns.index("status")
    at = sum(widths[:status_at]) + 2 * status_at
    for n, line in enumerate(lines):  # on a terminal: one line each too, cut to its width
        text = Text(line, style="bold" if n == 0 else "")
        if n and rows[n - 1][status_at] in _STATUS_STYLE:
            text.stylize(_STATUS_STYLE[rows[n - 1][status_at]], at, at + widths[status_at])
        text.truncate(console.width, overflow="ellipsis")
        console.print(text, no_wrap=True, overflow="ellipsis")
    if hidden:
        console.print(f"[dim]{hidden}[/]")
    console.print("[dim]coder resume ID reopens one; coder exec --resume ID \"...\" continues it in a script[/]")
    return 0


def undo(args: Any) -> int:
    from coder.checkpoints import CheckpointError, undo_report
    from coder.sessions import find, undo_session
    from coder.transcript import TranscriptError

    from coder.agent import deny_list
    from coder.config import load_config

    workspace = _workspace(args)
    config, _ = load_config(workspace, decide_base_url=lambda path, url: False)  # only the deny list matters
    try:
        result = undo_session(find(args.session, workspace), deny_list(config, workspace), force=args.force)
    except (TranscriptError, CheckpointError) as e:
        sys.stderr.write(f"coder: error: {e}\n")
        return 1
    if result.refused:
        sys.stderr.write(f"coder: {result.message}\n")
        sys.stdout.write(result.diff)
        return 1
    print("\n".join(undo_report(result)))
    return 1 if result.not_restored else 0


def init(args: Any) -> int:
    from coder.exec import run_exec

    workspace = _workspace(args)
    check_workspace(workspace, "workspace-write", explicit=getattr(args, "cd", None) is not None)
    target = workspace / "AGENTS.md"
    if target.exists():
        raise ConfigError(f"{target} already exists; edit it, or remove it to have a new one written")
    task = argparse.Namespace(
        prompt=INIT_PROMPT, model=args.model, cd=str(workspace), sandbox=None, max_turns=None, json=False,
        output=None, base_url=args.base_url, tool_choice=None, reasoning_effort=None, background=False,
        network=False, auto_commit=False, resume=None, last=False,
    )
    code = run_exec(task)
    if code == 0 and not target.exists():
        sys.stderr.write("coder: error: the agent finished without writing AGENTS.md; run coder init again\n")
        return 1
    if code == 0:
        sys.stderr.write(f"coder: wrote {target}\n")
    return code


# What an unset (None) setting means, for `coder config`.
_UNSET = {
    "base_url": "OpenAI's endpoint", "reasoning_effort": "the model's default", "approval": "exec: never, REPL: on-request",
    "reasoning_summary": "auto for reasoning models", "context_window": "the model's built-in window",
    "verbosity": "not sent",
}


def config(args: Any) -> int:
    """`coder config`: the effective settings for this project, and the layer each came from."""
    from coder.config import load_config, project_config_path
    from coder.dirs import user_config_path

    workspace = _workspace(args)
    flags = {name: getattr(args, name, None) for name in ("model", "sandbox", "approval", "base_url")}
    flags.update({name: True if getattr(args, name, False) else None for name in ("network", "auto_commit")})
    cfg, notices = load_config(workspace, decide_base_url=lambda path, url: False, **flags)
    files = [{"kind": kind, "path": str(path), "exists": path.is_file()}
             for kind, path in (("user", user_config_path()), ("project", project_config_path(workspace)))]
    rows = _setting_rows(cfg)
    for notice in notices:
        sys.stderr.write(f"coder: note: {notice}\n")
    if getattr(args, "json", False):
        settings = {key: _shown(key, value) for key, value in vars(cfg).items() if key != "sources"}
        sources = {key: {"kind": src.kind, **({"where": src.where} if src.where else {})} for key, _, src in rows}
        out = {"workspace": str(workspace), "config_files": files, "settings": settings, "sources": sources}
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2, default=list) + "\n")
        return 0
    for f in files:
        print(f"# {f['kind']} config: {f['path']}{'' if f['exists'] else ' (none)'}")
    shown = [(key, "(not set: " + _UNSET.get(key, "default") + ")" if value is None else _toml(value), str(src))
             for key, value, src in rows]
    key_width = max(len(k) for k, _, _ in shown)
    value_width = min(40, max(len(v) for _, v, _ in shown))
    for key, value, src in shown:
        print(f"{key:<{key_width}}  {value:<{value_width}}  # {src}")
    return 0


def _setting_rows(cfg: Any) -> list[tuple[str, Any, Any]]:
    """(key, value, source) for every setting; a table's entries one by one (limits.memory_mb)."""
    from coder.config import _toml_key

    from coder.config import Source

    rows = []
    for key, value in vars(cfg).items():
        if key == "sources":
            continue
        entries = [(f"{key}.{_toml_key(k)}", v, _shown(key, v, k)) for k, v in value.items()] \
            if isinstance(value, dict) and value else [(key, value, _shown(key, value))]
        for name, real, shown in entries:
            src = cfg.source(name)
            if shown != real and src.kind == "-c":  # the -c item as typed holds the value too
                src = Source("-c", src.where.split("=", 1)[0] + "=" + HIDDEN)
            rows.append((name, shown, src))
    return rows


def _shown(key: str, value: Any, entry: str | None = None) -> Any:
    """A value as it may be shown (coder.redact.shown): URLs without passwords or query values, and
    values that look like credentials, or sit under a header or body field name that says so, hidden."""
    from coder.redact import shown

    return shown(key, value, entry)


def _toml(value: Any) -> str:
    """A value written as TOML would have it (strings quoted, true/false, [lists], {tables})."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value == HIDDEN else json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        from coder.config import _toml_key

        return "{" + ", ".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return repr(value)
