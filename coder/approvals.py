"""When to ask the user before a command runs, and what counts as the sandbox saying no.

Policies: `never` (nothing is asked; what the sandbox refuses stays refused,
exec's default), `on-request` (a command the sandbox blocked may be re-run
outside it if the user approves), `untrusted` (every command that is not a
plain read-only one needs a yes first). Prefixes the user allowed "always"
stay allowed for the session.
"""

from __future__ import annotations

import re
import shlex

POLICIES = ("never", "on-request", "untrusted")

READ_ONLY_COMMANDS = frozenset(
    {"ls", "cat", "head", "tail", "wc", "pwd", "echo", "rg", "grep", "file", "stat", "which", "tree", "du", "df", "find"}
)
READ_ONLY_GIT = frozenset({"status", "diff", "log", "show", "branch", "rev-parse", "ls-files", "blame"})
FIND_ACTIONS = frozenset({"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0", "-fprintf", "-fls"})
SHELL_SYNTAX = frozenset(";|&<>`$(){}\n")
TWO_WORD_TOOLS = frozenset({"git", "npm", "pnpm", "yarn", "pip", "uv", "cargo", "go", "make", "docker", "python", "python3"})
# What tools print when Landlock, seccomp, a read-only mount or a missing network said no.
DENIAL_SIGNS = (
    "Permission denied", "Read-only file system", "Operation not permitted",
    "Network is unreachable", "Temporary failure in name resolution", "Could not resolve host",
)


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return []


def is_read_only(command: str) -> bool:
    """A single plain command from the read-only allow list, with no shell syntax at all."""
    if any(c in SHELL_SYNTAX for c in command):
        return False
    words = _words(command)
    if not words:
        return False
    if words[0] == "git":
        return len(words) > 1 and words[1] in READ_ONLY_GIT
    if words[0] == "find" and FIND_ACTIONS.intersection(words):
        return False
    return words[0] in READ_ONLY_COMMANDS


# Commands that run another command or program they are given: allowing one "always" by its name would
# allow anything at all, so "always" covers only the exact command.
RUNS_OTHERS = frozenset({
    "env", "sudo", "doas", "su", "nice", "ionice", "nohup", "timeout", "time", "xargs", "exec", "command",
    "builtin", "eval", "source", ".", "bash", "sh", "dash", "zsh", "ksh", "fish", "watch", "strace", "setsid",
    "ssh", "parallel", "flock", "chroot", "unshare", "busybox", "stdbuf", "script",
})
INTERPRETERS = frozenset({"python", "python3", "node", "ruby", "perl", "php", "deno"})
# Tools that fetch or run what their next word names (npx prettier), and subcommands that do (uv run pytest).
PACKAGE_RUNNERS = frozenset({"npx", "uvx", "bunx", "pnpx"})
RUNNER_SUBCOMMANDS = {"uv": {"run", "tool"}, "npm": {"exec", "x"}, "pnpm": {"exec", "dlx"}, "yarn": {"dlx", "exec"},
                      "bun": {"x", "run"}, "docker": {"run", "exec"}, "pipx": {"run"}}
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def prefix(command: str) -> str:
    """What allowing `command` "always" covers: its leading words (the tool, and a subcommand or module or
    script where the tool has them), or the exact command whenever a prefix would allow more than the user
    saw: chained or piped commands, subshells, redirections, substitutions, and commands that run others
    (`sleep 5 && pytest` is allowed as it is, never as `sleep`)."""
    exact = command.strip()
    if any(c in SHELL_SYNTAX for c in exact):
        return exact
    words = _words(exact)
    n = 0
    while n < len(words) and _ASSIGNMENT.match(words[n]):
        n += 1  # FOO=1 pytest: the assignments belong to the prefix (they can change what runs)
    if n == len(words):
        return exact
    name, rest = words[n].rsplit("/", 1)[-1], words[n + 1:]
    if name in RUNS_OTHERS or (name == "find" and FIND_ACTIONS.intersection(rest)):
        return exact
    if name in INTERPRETERS or name.startswith("python3."):
        if rest[:1] == ["-m"] and len(rest) > 1:
            take = 3  # python3 -m pytest
        elif rest and not rest[0].startswith("-"):
            take = 2  # python3 script.py
        else:
            return exact  # python3 -c CODE, or a bare REPL
    elif name in PACKAGE_RUNNERS:
        if not rest or rest[0].startswith("-"):
            return exact
        take = 2
    elif name in RUNNER_SUBCOMMANDS and rest[:1] and rest[0] in RUNNER_SUBCOMMANDS[name]:
        if len(rest) < 2 or rest[1].startswith("-"):
            return exact  # docker run --privileged ...: what it runs comes after options
        take = 3  # uv run pytest, never uv run (anything)
    elif name in TWO_WORD_TOOLS and rest:
        if rest[0].startswith("-"):
            return exact  # git -C x push: the options come before what it does
        take = 2
    else:
        take = 1
    return shlex.join(words[:n + take])


def sandbox_denial(output: str) -> str | None:
    """The line of a failed command's output that shows the sandbox refused something."""
    for line in output.splitlines():
        if any(sign in line for sign in DENIAL_SIGNS):
            return line.strip()[:200]
    return None


class Approvals:
    def __init__(self, policy: str = "never") -> None:
        if policy not in POLICIES:
            raise ValueError(f"approval policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        self.policy = policy
        self.trusted: set[str] = set()

    def trust(self, command: str) -> None:
        self.trusted.add(prefix(command))

    def is_trusted(self, command: str) -> bool:
        """Allowed "always" by the user: the same prefix, and nothing chained or substituted after it
        (a command with any of that has only itself as its prefix)."""
        return prefix(command) in self.trusted

    def ask_first(self, command: str) -> bool:
        return self.policy == "untrusted" and not is_read_only(command) and not self.is_trusted(command)

    def may_escalate(self) -> bool:
        return self.policy == "on-request"
