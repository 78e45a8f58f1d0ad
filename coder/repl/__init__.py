"""`coder` with no subcommand: the interactive session (prompt_toolkit input, rich output).

A front end over the agent's events; it holds no agent logic of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def _decide_base_url(path: Path, url: str) -> bool:
    """Ask once whether this project's config may send the API key to `url`; remembered outside it."""
    from coder import trust
    from coder.repl.ask import choose

    from coder.redact import scrub_url

    print(f"{path} sets base_url = {scrub_url(url)}\nYour API key would be sent there.")
    allowed = choose("Allow it for this project? [y] yes  [n] no, use my own setting, then Enter: ", "yn") == "y"
    trust.decide_base_url(path, url, allowed)
    return allowed


def _trust_folder(workspace: Path, sandbox: str) -> str:
    """A folder coder has not worked in before: ask before making it writable to the agent.

    Returns the sandbox mode to use; raises ConfigError when the user says no."""
    from coder import trust
    from coder.config import ConfigError
    from coder.repl.ask import choose

    if sandbox != "workspace-write" or trust.folder_trusted(workspace):
        return sandbox
    print(f"coder has not worked in {workspace} before. The agent will be able to change files in it "
          "(and only in it) and run commands there, under the sandbox.")
    answer = choose("Trust this folder? [y] yes  [r] read-only this time  [n] quit, then Enter: ", "yrn")
    if answer == "y":
        trust.trust_folder(workspace)
        return sandbox
    if answer == "r":
        return "read-only"
    raise ConfigError(f"not trusted: {workspace}; nothing was started")


def run_repl(args: Any) -> int:
    from coder.config import ConfigError, check_workspace, load_config, workspace_dir

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ConfigError('the interactive session needs a terminal; in scripts use: coder exec "TASK" (or -)')
    workspace = workspace_dir(args.cd)
    config, notices = load_config(
        workspace, decide_base_url=_decide_base_url, model=args.model, sandbox=args.sandbox, base_url=args.base_url,
        network=True if args.network else None, approval=args.approval,
        auto_commit=True if args.auto_commit else None,
    )
    check_workspace(workspace, config.sandbox, explicit=args.cd is not None)
    if config.approval is None:
        config = config.with_overrides(approval="on-request")
    config.api_key()  # one clear line now rather than at the first message
    chosen = _trust_folder(workspace, config.sandbox)
    sandbox_given = args.sandbox is not None or chosen != config.sandbox
    config = config.with_overrides(sandbox=chosen)

    from rich.console import Console
    from rich.text import Text

    from coder.repl.app import Repl, history_path
    from coder.repl.ask import choose
    from coder.sessions import RecordingError, open_session
    from coder.transcript import TranscriptError

    console = Console(highlight=False)
    for notice in notices:
        console.print(Text.assemble(("note: ", "yellow"), notice))
    resuming = args.command == "resume"
    options = dict(resume=args.id if resuming else None, last=resuming and not args.id, auto_commit=config.auto_commit,
                   model_given=args.model is not None, sandbox_given=sandbox_given)
    try:
        session = open_session(config, workspace, **options)
    except TranscriptError as e:
        raise ConfigError(str(e)) from None
    except RecordingError as e:
        console.print(Text(f"{e}.", style="bold red"))
        if resuming or choose("Go on without recording this session (no transcript, no resume, no undo)? "
                              "[y] yes  [n] no, then Enter: ", "yn") != "y":
            raise ConfigError(f"{e}; nothing was started") from None
        session = open_session(config, workspace, **options, recorded=False)
    repl = Repl(session, console, history_path(session.agent.workspace), vi=args.vi)
    return repl.run()
