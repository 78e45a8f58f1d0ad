"""Command-line entry point: parse arguments and hand over to a front end.

Imports nothing heavy at module level: `coder --version` and `--help` must
answer in well under 0.1 s.
"""

from __future__ import annotations

import argparse
import sys

from coder import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coder", description="A terminal coding agent over the OpenAI Responses API."
    )
    parser.add_argument("--version", action="version", version=f"coder {__version__}")
    # With no command: the interactive session.
    parser.add_argument("-m", "--model", help="model name (default from config, else gpt-5.3-codex)")
    parser.add_argument("-C", "--cd", metavar="DIR", help="project directory (default: the current one)")
    parser.add_argument("--sandbox", choices=["read-only", "workspace-write", "full-access"],
                        help="default: workspace-write")
    parser.add_argument("--approval", choices=["never", "on-request", "untrusted"],
                        help="when to ask before a command runs (default: on-request)")
    parser.add_argument("--network", action="store_true", help="allow network access for commands")
    parser.add_argument("--base-url", help="Responses endpoint (default: $OPENAI_BASE_URL or OpenAI)")
    parser.add_argument("--vi", action="store_true", help="vi keys at the prompt (default: emacs)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ex = sub.add_parser("exec", help="run one task to completion (for shells, scripts and CI)")
    ex.add_argument("prompt", metavar="PROMPT", help="the task; - reads it from standard input")
    ex.add_argument("-m", "--model", help="model name (default from config, else gpt-5.3-codex)")
    ex.add_argument("-C", "--cd", metavar="DIR", help="workspace directory (default: the current one)")
    ex.add_argument("--sandbox", choices=["read-only", "workspace-write", "full-access"], help="default: workspace-write")
    ex.add_argument("--max-turns", type=int, metavar="N", help="stop after N model requests (default 100)")
    ex.add_argument("--json", action="store_true", help="print one JSON event per line on stdout")
    ex.add_argument("-o", "--output", metavar="FILE", help="also write the final answer to FILE")
    ex.add_argument("--base-url", help="Responses endpoint (default: $OPENAI_BASE_URL or OpenAI)")
    ex.add_argument("--tool-choice", metavar="CHOICE", help="auto, required, none, or a tool name")
    ex.add_argument("--reasoning-effort", choices=["none", "minimal", "low", "medium", "high", "xhigh"])
    ex.add_argument("--background", action="store_true", help="create the response in background mode and poll")
    ex.add_argument("--network", action="store_true", help="allow network access for commands")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from coder.config import ConfigError

    try:
        if args.command is None:
            from coder.repl import run_repl

            return run_repl(args)
        if args.command == "exec":
            from coder.exec import run_exec

            return run_exec(args)
    except ConfigError as e:
        sys.stderr.write(f"coder: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("coder: interrupted\n")
        return 130
    return 2
