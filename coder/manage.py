"""`coder sessions`, `coder undo` and `coder init`: the commands around sessions and projects."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from coder.config import ConfigError, check_workspace, workspace_dir

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


def sessions(args: Any) -> int:
    from rich.console import Console
    from rich.table import Table

    from coder.sessions import list_sessions

    workspace = _workspace(args)
    found = list_sessions(None if args.all else workspace)[: max(1, args.n)]
    console = Console(highlight=False)
    if not found:
        where = "" if args.all else f" for {workspace} (--all shows every project)"
        console.print(f"no sessions yet{where}")
        return 0
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "when", *(("project",) if args.all else ()), "turns", "tokens", "first prompt"):
        table.add_column(column, justify="right" if column in ("turns", "tokens") else "left",
                         overflow="ellipsis", no_wrap=column != "first prompt")
    for info in found:
        row = [info.id, ago(info.updated), *((info.project,) if args.all else ()), str(info.turns),
               f"{info.tokens:,}", info.first_prompt or "-"]
        table.add_row(*row)
    console.print(table)
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
