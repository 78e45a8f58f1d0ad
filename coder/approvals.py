"""When to ask the user before a command runs, and what counts as the sandbox saying no.

Policies: `never` (nothing is asked; what the sandbox refuses stays refused,
exec's default), `on-request` (a command the sandbox blocked may be re-run
outside it if the user approves), `untrusted` (every command that is not a
plain read-only one needs a yes first). Prefixes the user allowed "always"
stay allowed for the session.
"""

from __future__ import annotations

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


def prefix(command: str) -> str:
    words = _words(command)
    if not words:
        return command.strip()
    if words[0] in TWO_WORD_TOOLS and len(words) > 1 and not words[1].startswith("-"):
        return " ".join(words[:2])
    return words[0]


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
        """Allowed "always" by the user: the same prefix, and nothing chained or substituted after it."""
        return not any(c in SHELL_SYNTAX for c in command) and prefix(command) in self.trusted

    def ask_first(self, command: str) -> bool:
        return self.policy == "untrusted" and not is_read_only(command) and not self.is_trusted(command)

    def may_escalate(self) -> bool:
        return self.policy == "on-request"
