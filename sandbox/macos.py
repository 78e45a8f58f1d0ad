"""The macOS backend: a deny-by-default `sandbox-exec` profile generated from the policy.

Seatbelt evaluates rules in order and the last match wins, so the profile
denies everything, allows what a command needs to run, reads everywhere, then
takes the deny list back out; writes go to the writable roots only, with the
protected names taken back out after them; a file root (a file scope's
target) is allowed as a `literal`, that exact path, not a `subpath`. It cannot
run on Linux; its tests check the generated text.
"""

from __future__ import annotations

from sandbox.policy import Policy

SANDBOX_EXEC = "/usr/bin/sandbox-exec"


def _quote(path: object) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def profile(policy: Policy) -> str:
    lines = [
        "(version 1)",
        "(deny default)",
        "(allow process-exec process-fork signal (target same-sandbox))",
        "(allow sysctl-read mach-lookup ipc-posix-shm-read-data ipc-posix-shm-write-data)",
        "(allow file-read*)",
    ]
    for denied in policy.deny_read:
        lines.append(f"(deny file-read* (subpath {_quote(denied)}))")
    lines.append('(allow file-write* (literal "/dev/null") (literal "/dev/zero") (literal "/dev/tty"))')
    for root in policy.writable_roots:
        if root in policy.writable_files:  # a file scope's target: that path alone, nothing beside or below it
            lines.append(f"(allow file-write* (literal {_quote(root)}))")
            continue
        lines.append(f"(allow file-write* (subpath {_quote(root)}))")
        for name in policy.protected_names:
            lines.append(f"(deny file-write* (subpath {_quote(root / name)}))")
    for path in policy.protected_paths:
        lines.append(f"(deny file-write* (subpath {_quote(path)}))")
    if policy.network:
        lines.append("(allow network*)")
    return "\n".join(lines) + "\n"


def wrap(policy: Policy, argv: list[str]) -> list[str]:
    return [SANDBOX_EXEC, "-p", profile(policy), *argv]
