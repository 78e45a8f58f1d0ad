"""`coder` with no subcommand: the interactive session (prompt_toolkit input, rich output).

A front end over the agent's events; it holds no agent logic of its own.
"""

from __future__ import annotations

import sys
from typing import Any


def run_repl(args: Any) -> int:
    from coder.config import ConfigError, load_config, workspace_dir

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ConfigError('the interactive session needs a terminal; in scripts use: coder exec "TASK" (or -)')
    workspace = workspace_dir(args.cd)
    config, notices = load_config(
        workspace, model=args.model, sandbox=args.sandbox, base_url=args.base_url,
        network=True if args.network else None, approval=args.approval,
        auto_commit=True if args.auto_commit else None,
    )
    if config.approval is None:
        config = config.with_overrides(approval="on-request")
    config.api_key()  # one clear line now rather than at the first message

    from rich.console import Console
    from rich.text import Text

    from coder.repl.app import Repl, history_path, state_dir
    from coder.sessions import open_session
    from coder.transcript import TranscriptError

    console = Console(highlight=False)
    for notice in notices:
        console.print(Text.assemble(("note: ", "yellow"), notice))
    resuming = args.command == "resume"
    try:
        session = open_session(config, workspace, resume=args.id if resuming else None,
                               last=resuming and not args.id, auto_commit=config.auto_commit,
                               model_given=args.model is not None, sandbox_given=args.sandbox is not None)
    except TranscriptError as e:
        raise ConfigError(str(e)) from None
    repl = Repl(session, console, history_path(state_dir(), session.agent.workspace), vi=args.vi)
    return repl.run()
