"""Command-line entry point: parse arguments and hand over to a front end.

Imports nothing heavy at module level: `coder --version` and `--help` must
answer in well under 0.1 s.
"""

from __future__ import annotations

import argparse
import sys

from coder import __version__

SANDBOX_MODES = ["read-only", "workspace-write", "full-access"]


SHARED = {  # flags that may come before or after the command: `coder -C dir exec ...` = `coder exec -C dir ...`
    "model": (("-m", "--model"), {"help": "model name (default from config, else gpt-5.3-codex)"}),
    "cd": (("-C", "--cd"), {"metavar": "DIR", "help": "project directory (default: the current one)"}),
    "sandbox": (("--sandbox",), {"choices": SANDBOX_MODES, "help": "default: workspace-write"}),
    "approval": (("--approval",), {"choices": ["never", "on-request", "untrusted"],
                                   "help": "when to ask before a command runs (default: on-request)"}),
    "network": (("--network",), {"action": "store_true", "help": "allow network access for commands"}),
    "base_url": (("--base-url",), {"help": "Responses endpoint (default: $OPENAI_BASE_URL or OpenAI)"}),
    "auto_commit": (("--auto-commit",), {"action": "store_true", "help": "commit each turn's changes (only those)"}),
    "vi": (("--vi",), {"action": "store_true", "help": "vi keys at the prompt (default: emacs)"}),
}
SESSION_FLAGS = ("model", "cd", "sandbox", "approval", "network", "base_url", "auto_commit", "vi")


def _flags(p: argparse.ArgumentParser, names: tuple[str, ...], top: bool = False) -> None:
    """Add shared flags; below the top level their default is "not given", so a value given before
    the command survives (argparse would otherwise let the subcommand's default overwrite it)."""
    for name in names:
        flags, options = SHARED[name]
        p.add_argument(*flags, **options, **({} if top else {"default": argparse.SUPPRESS}))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coder", description="A terminal coding agent over the OpenAI Responses API. "
        "With no command, starts an interactive session in the project."
    )
    parser.add_argument("--version", action="version", version=f"coder {__version__}")
    _flags(parser, SESSION_FLAGS, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ex = sub.add_parser("exec", help="run one task to completion (for shells, scripts and CI)")
    ex.add_argument("prompt", metavar="PROMPT", help="the task; - reads it from standard input")
    _flags(ex, ("model", "cd", "sandbox", "network", "base_url", "auto_commit"))
    ex.add_argument("--max-turns", type=int, metavar="N", help="stop after N model requests (default 100)")
    ex.add_argument("--json", action="store_true", help="print one JSON event per line on stdout")
    ex.add_argument("-o", "--output", metavar="FILE", help="also write the final answer to FILE")
    ex.add_argument("--tool-choice", metavar="CHOICE", help="auto, required, none, or a tool name")
    ex.add_argument("--reasoning-effort", choices=["none", "minimal", "low", "medium", "high", "xhigh"])
    ex.add_argument("--background", action="store_true", help="create the response in background mode and poll")
    which = ex.add_mutually_exclusive_group()
    which.add_argument("--resume", metavar="ID", help="continue session ID (coder sessions lists them)")
    which.add_argument("--last", action="store_true", help="continue this project's latest session")

    rs = sub.add_parser("resume", help="reopen a session in the interactive session")
    rs.add_argument("id", nargs="?", metavar="ID", help="the session (default: this project's latest)")
    rs.add_argument("--last", action="store_true", help="this project's latest session (the default)")
    _flags(rs, SESSION_FLAGS)

    ls = sub.add_parser("sessions", help="list recent sessions of this project")
    ls.add_argument("--all", action="store_true", help="every project's sessions")
    ls.add_argument("-n", type=int, default=20, metavar="N", help="how many (default 20)")
    _flags(ls, ("cd",))

    un = sub.add_parser("undo", help="put back the files the last turn of a session changed")
    un.add_argument("--session", metavar="ID", help="the session (default: this project's latest)")
    un.add_argument("--force", action="store_true",
                    help="undo even files changed since the turn (your versions are kept in the session's folder)")
    _flags(un, ("cd",))

    it = sub.add_parser("init", help="write a starter AGENTS.md for the project (the agent surveys it)")
    _flags(it, ("model", "cd", "base_url"))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from coder import credentials
    from coder.config import ConfigError

    credentials.seal()  # before anything can start a child process

    try:
        if args.command in (None, "resume"):
            from coder.repl import run_repl

            return run_repl(args)
        if args.command == "exec":
            from coder.exec import run_exec

            return run_exec(args)
        from coder import manage

        return {"sessions": manage.sessions, "undo": manage.undo, "init": manage.init}[args.command](args)
    except ConfigError as e:
        sys.stderr.write(f"coder: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("coder: interrupted\n")
        return 130
