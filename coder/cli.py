"""Command-line entry point: parse arguments and hand over to a front end.

Imports nothing heavy at module level: `coder --version` and `--help` must
answer in well under 0.1 s.
"""

from __future__ import annotations

import argparse
import sys

from coder import __version__

SANDBOX_MODES = ["read-only", "workspace-write", "full-access"]


def _session_flags(p: argparse.ArgumentParser) -> None:
    """Flags of the interactive session (plain `coder` and `coder resume`)."""
    p.add_argument("-m", "--model", help="model name (default from config, else gpt-5.3-codex)")
    p.add_argument("-C", "--cd", metavar="DIR", help="project directory (default: the current one)")
    p.add_argument("--sandbox", choices=SANDBOX_MODES, help="default: workspace-write")
    p.add_argument("--approval", choices=["never", "on-request", "untrusted"],
                   help="when to ask before a command runs (default: on-request)")
    p.add_argument("--network", action="store_true", help="allow network access for commands")
    p.add_argument("--base-url", help="Responses endpoint (default: $OPENAI_BASE_URL or OpenAI)")
    p.add_argument("--auto-commit", action="store_true", help="commit each turn's changes (only those)")
    p.add_argument("--vi", action="store_true", help="vi keys at the prompt (default: emacs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coder", description="A terminal coding agent over the OpenAI Responses API. "
        "With no command, starts an interactive session in the project."
    )
    parser.add_argument("--version", action="version", version=f"coder {__version__}")
    _session_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ex = sub.add_parser("exec", help="run one task to completion (for shells, scripts and CI)")
    ex.add_argument("prompt", metavar="PROMPT", help="the task; - reads it from standard input")
    ex.add_argument("-m", "--model", help="model name (default from config, else gpt-5.3-codex)")
    ex.add_argument("-C", "--cd", metavar="DIR", help="workspace directory (default: the current one)")
    ex.add_argument("--sandbox", choices=SANDBOX_MODES, help="default: workspace-write")
    ex.add_argument("--max-turns", type=int, metavar="N", help="stop after N model requests (default 100)")
    ex.add_argument("--json", action="store_true", help="print one JSON event per line on stdout")
    ex.add_argument("-o", "--output", metavar="FILE", help="also write the final answer to FILE")
    ex.add_argument("--base-url", help="Responses endpoint (default: $OPENAI_BASE_URL or OpenAI)")
    ex.add_argument("--tool-choice", metavar="CHOICE", help="auto, required, none, or a tool name")
    ex.add_argument("--reasoning-effort", choices=["none", "minimal", "low", "medium", "high", "xhigh"])
    ex.add_argument("--background", action="store_true", help="create the response in background mode and poll")
    ex.add_argument("--network", action="store_true", help="allow network access for commands")
    ex.add_argument("--auto-commit", action="store_true", help="commit the task's changes (only those)")
    which = ex.add_mutually_exclusive_group()
    which.add_argument("--resume", metavar="ID", help="continue session ID (coder sessions lists them)")
    which.add_argument("--last", action="store_true", help="continue this project's latest session")

    rs = sub.add_parser("resume", help="reopen a session in the interactive session")
    rs.add_argument("id", nargs="?", metavar="ID", help="the session (default: this project's latest)")
    rs.add_argument("--last", action="store_true", help="this project's latest session (the default)")
    _session_flags(rs)

    ls = sub.add_parser("sessions", help="list recent sessions of this project")
    ls.add_argument("--all", action="store_true", help="every project's sessions")
    ls.add_argument("-n", type=int, default=20, metavar="N", help="how many (default 20)")
    ls.add_argument("-C", "--cd", metavar="DIR", help="project directory (default: the current one)")

    un = sub.add_parser("undo", help="put back the files the last turn of a session changed")
    un.add_argument("--session", metavar="ID", help="the session (default: this project's latest)")
    un.add_argument("-C", "--cd", metavar="DIR", help="project directory (default: the current one)")

    it = sub.add_parser("init", help="write a starter AGENTS.md for the project (the agent surveys it)")
    it.add_argument("-m", "--model", help="model name (default from config, else gpt-5.3-codex)")
    it.add_argument("-C", "--cd", metavar="DIR", help="project directory (default: the current one)")
    it.add_argument("--base-url", help="Responses endpoint (default: $OPENAI_BASE_URL or OpenAI)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from coder.config import ConfigError

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
