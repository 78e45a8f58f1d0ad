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
SHELLS = ("bash", "zsh", "fish")

# Real invocations (tests/test_config_cli.py parses each one with this parser): text before the two spaces.
EXAMPLES = """examples:
  coder                                       an interactive session in this project
  coder exec "fix the failing test in tests/test_api.py"
  coder batch task.md --files 'src/**/*.py'          the same task on many files, 4 at a time
  coder resume --last                         reopen this project's latest session
  coder -c model=gpt-5.4 -c limits.memory_mb=4096   any setting for one run (-c KEY=VALUE, TOML values)
  coder config                                the effective settings, and where each came from
  coder completion bash > ~/.local/share/bash-completion/completions/coder
"""
EXEC_EXAMPLES = """examples:
  coder exec "add a test for parse_date and make it pass"
  git diff | coder exec "review this change"        piped input goes after the task
  coder exec --json "run the tests and fix what fails" > events.jsonl
  coder exec --sandbox read-only -c reasoning_effort=high - < task.md   the task from a file
  coder exec --last -o notes.md "now update the changelog"   continue the latest session
  coder exec --output-schema verdict.json --max-cost 0.50 "does this change break the API?"
"""
BATCH_EXAMPLES = """examples:
  coder batch rename.md --files 'src/**/*.py'          one session per file, 4 at a time
  coder batch port.md --from-list todo.txt --jobs 8 --json > results.jsonl
  coder batch fix.md --files 'tests/*.py' --shard 2/4   the second of four slices (a CI matrix job)
  coder batch docs.md --files README.md --scope workspace   may write anywhere in the project
"""
COMPLETION_HELP = """install:
  bash: coder completion bash > ~/.local/share/bash-completion/completions/coder
  zsh:  coder completion zsh > ~/.zfunc/_coder   (with fpath+=(~/.zfunc) before compinit in ~/.zshrc)
  fish: coder completion fish > ~/.config/fish/completions/coder.fish
"""


def _flags(p: argparse.ArgumentParser, names: tuple[str, ...], top: bool = False) -> None:
    """Add shared flags; below the top level their default is "not given", so a value given before
    the command survives (argparse would otherwise let the subcommand's default overwrite it)."""
    for name in names:
        flags, options = SHARED[name]
        p.add_argument(*flags, **options, **({} if top else {"default": argparse.SUPPRESS}))
    # -c before the command and after it are kept apart (a subcommand's list would replace the other).
    p.add_argument("-c", "--config", action="append", metavar="KEY=VALUE",
                   dest="overrides" if top else "overrides_after", **({} if top else {"default": argparse.SUPPRESS}),
                   help="set any config setting for this run, e.g. -c model=gpt-5.4 -c limits.memory_mb=4096 "
                        "(the value is TOML; a bare word is a string)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coder", description="A terminal coding agent over the OpenAI Responses API.\n"
        "With no command, starts an interactive session in the project.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"coder {__version__}")
    _flags(parser, SESSION_FLAGS, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ex = sub.add_parser("exec", help="run one task to completion (for shells, scripts and CI)",
                        epilog=EXEC_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("prompt", metavar="PROMPT", nargs="?", help="the task; - reads it from standard input. Input "
                    "piped in with a task given goes after it (git diff | coder exec \"review this\")")
    ex.add_argument("--prompt-file", metavar="FILE", help="read the task from FILE (instead of PROMPT)")
    _flags(ex, ("model", "cd", "sandbox", "network", "base_url", "auto_commit"))
    ex.add_argument("--max-turns", type=int, metavar="N", help="stop after N model requests (default 100)")
    ex.add_argument("--max-tokens", type=int, metavar="N",
                    help="stop before the next request once the run has used N tokens in all (resumable)")
    ex.add_argument("--max-cost", type=float, metavar="USD",
                    help="stop before the next request once the run has cost USD dollars (the provider's figure, "
                         "else the price table; resumable)")
    ex.add_argument("--output-schema", metavar="FILE", help="ask for the final answer as JSON matching the JSON "
                    "schema in FILE (strict); print it on stdout, exit 1 if it does not match")
    ex.add_argument("--json", action="store_true", help="print one JSON event per line on stdout (errors also on stderr)")
    ex.add_argument("-q", "--quiet", action="store_true",
                    help="no progress on stderr, only errors and notes (progress: rich on a terminal, else plain lines)")
    ex.add_argument("-i", "--image", action="append", metavar="FILE",
                    help="send an image (PNG, JPEG, GIF, WebP) with the task; repeat for more")
    ex.add_argument("-o", "--output", metavar="FILE", help="also write the final answer to FILE")
    ex.add_argument("--tool-choice", metavar="CHOICE", help="auto, required, none, or a tool name")
    ex.add_argument("--reasoning-effort", choices=["none", "minimal", "low", "medium", "high", "xhigh"])
    ex.add_argument("--background", action="store_true", help="create the response in background mode and poll; "
                    "turns store on for this run (background responses are stored), so not for codex (ZDR) models")
    which = ex.add_mutually_exclusive_group()
    which.add_argument("--resume", metavar="ID", help="continue session ID (coder sessions lists them)")
    which.add_argument("--last", action="store_true", help="continue this project's latest session")

    bt = sub.add_parser("batch", help="run one task per file, several at once (scripted refactors)",
                        epilog=BATCH_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    bt.add_argument("prompt_file", metavar="PROMPT_FILE", help="the task; {file} in it becomes each target's path")
    targets = bt.add_mutually_exclusive_group(required=True)
    targets.add_argument("--files", nargs="+", metavar="GLOB", help="the targets: files matching these patterns "
                         "(quote them; ** crosses folders), relative to the project")
    targets.add_argument("--from-list", metavar="FILE", help="the targets: one path per line in FILE")
    bt.add_argument("--jobs", type=int, metavar="N", help="sessions at a time (default 4; 1 with --scope workspace)")
    bt.add_argument("--scope", choices=["file", "workspace"], default="file",
                    help="file (default): each session may write only its own target; workspace: anywhere in it")
    bt.add_argument("--shard", metavar="I/N", help="run only the I-th of N slices of the targets (CI matrices)")
    bt.add_argument("--state", metavar="FILE", help="the state file that makes the batch resumable "
                    "(default: PROMPT_FILE.state.json)")
    bt.add_argument("--json", action="store_true", help="one JSON result line per target on stdout")
    bt.add_argument("-q", "--quiet", action="store_true", help="no progress; the summary only when a target failed")
    _flags(bt, ("model", "cd", "sandbox", "network", "base_url"))
    bt.add_argument("--max-turns", type=int, metavar="N", help="per target: stop after N model requests")
    bt.add_argument("--max-tokens", type=int, metavar="N", help="per target: stop once N tokens are used")
    bt.add_argument("--max-cost", type=float, metavar="USD", help="per target: stop once it cost USD dollars")
    bt.add_argument("--completion-window", choices=["soonest", "2h", "8h"],
                    help="run the requests in background mode with this completion window (2h, 8h: discounted "
                         "where the provider offers it; needs a model that may store responses)")

    rs = sub.add_parser("resume", help="reopen a session in the interactive session")
    rs.add_argument("id", nargs="?", metavar="ID", help="the session (default: this project's latest)")
    rs.add_argument("--last", action="store_true", help="this project's latest session (the default)")
    _flags(rs, SESSION_FLAGS)

    ls = sub.add_parser("sessions", help="list recent sessions of this project")
    ls.add_argument("--all", action="store_true",
                    help="every project's sessions, runs that failed before any reply included")
    ls.add_argument("--json", action="store_true", help="one JSON object per session, one per line")
    ls.add_argument("-n", type=int, default=20, metavar="N", help="how many (default 20)")
    _flags(ls, ("cd",))

    un = sub.add_parser("undo", help="put back the files the last turn of a session changed")
    un.add_argument("--session", metavar="ID", help="the session (default: this project's latest)")
    un.add_argument("--force", action="store_true",
                    help="undo even files changed since the turn (your versions are kept in the session's folder)")
    _flags(un, ("cd",))

    it = sub.add_parser("init", help="write a starter AGENTS.md for the project (the agent surveys it)")
    _flags(it, ("model", "cd", "base_url"))

    cf = sub.add_parser("config", help="show the effective settings and where each came from")
    cf.add_argument("--json", action="store_true", help="as one JSON object")
    _flags(cf, ("model", "cd", "sandbox", "approval", "network", "base_url", "auto_commit"))

    co = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)",
                        epilog=COMPLETION_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    co.add_argument("shell", choices=SHELLS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from coder import credentials
    from coder.config import ConfigError

    credentials.seal()  # before anything can start a child process

    try:
        from coder.config import use_overrides

        use_overrides((getattr(args, "overrides", None) or []) + (getattr(args, "overrides_after", None) or []))
        if args.command == "completion":
            return completion(args.shell)
        if args.command in (None, "resume"):
            from coder.repl import run_repl

            return run_repl(args)
        if args.command == "exec":
            from coder.exec import run_exec

            return run_exec(args)
        if args.command == "batch":
            from coder.batching.command import run_batch

            return run_batch(args)
        from coder import manage

        commands = {"sessions": manage.sessions, "undo": manage.undo, "init": manage.init, "config": manage.config}
        return commands[args.command](args)
    except ConfigError as e:
        sys.stderr.write(f"coder: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("coder: interrupted\n")
        return 130


def completion(shell: str) -> int:
    """`coder completion SHELL`: a static script generated from this parser by shtab (no coder runs at TAB)."""
    try:
        import shtab
    except ImportError:
        sys.stderr.write("coder: error: shell completion needs the shtab package: reinstall coder, "
                         "or pip install shtab into its environment\n")
        return 1
    parser = build_parser()
    parsers = [parser]
    for p in parsers:  # options naming a folder or a file complete paths
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
            elif action.metavar in ("DIR", "FILE"):
                action.complete = shtab.DIRECTORY if action.metavar == "DIR" else shtab.FILE  # type: ignore[attr-defined]
    sys.stdout.write(shtab.complete(parser, shell=shell))
    return 0
