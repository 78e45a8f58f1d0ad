"""run_command: one shell command in the workspace, Codex style.

A non-zero exit is a normal result, not an error: the model needs the output
to see what failed. Only a bad workdir is the model's mistake.
"""

from __future__ import annotations

from typing import Any

from coder.tools.base import Param, Tool, ToolContext, ToolError
from sandbox import backends, cgroups, process
from sandbox.paths import display, resolve_read
from sandbox.policy import Mode

MIN_TIMEOUT, MAX_TIMEOUT = 1, 3600

# Keep tools that would page or prompt from waiting on a terminal nobody sees.
_EXTRA_ENV = {"PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0"}

DESCRIPTION = (
    "Run a shell command with bash -c in the workspace (or in workdir) and return its exit code, "
    "wall time and combined stdout+stderr (long output keeps its head and tail). "
    "stdin is closed: do not run interactive programs (editors, pagers, REPLs, prompts); "
    "pass flags such as --yes or --no-pager instead. "
    "The default timeout is 120 s; on timeout the command and everything it started are killed. "
    "Prefer the file tools for reading, searching and editing files."
)


def _seconds(value: float) -> str:
    return f"{value:g}"


def run(ctx: ToolContext, args: dict[str, Any]) -> str:
    command = args["command"]
    if not command.strip():
        raise ToolError("command is empty; give the shell command to run")
    timeout = args.get("timeout_seconds")
    timeout = ctx.default_timeout if timeout is None else timeout
    timeout = min(max(timeout, MIN_TIMEOUT), MAX_TIMEOUT)

    workdir = args.get("workdir")
    cwd = ctx.workspace if workdir is None else resolve_read(ctx.policy, workdir)
    if not cwd.is_dir():
        what = "does not exist" if not cwd.exists() else "is not a directory"
        shown = display(ctx.policy, cwd)
        named = workdir if shown == workdir else f"{workdir} ({shown})"
        raise ToolError(f"workdir {named} {what}; give an existing directory")

    backend = ctx.backend
    assert backend is not None
    if not backend.isolates and ctx.policy.mode is not Mode.FULL_ACCESS:
        raise ToolError(
            f"commands are refused: no sandbox is available on this machine ({backend.detail}); "
            "they run only when the user chooses --sandbox full-access"
        )
    policy = ctx.policy

    cgroup = cgroups.create(policy.limits["nproc"]) if backend.name in ("landlock", "bwrap") else None

    def wrap(argv: list[str]) -> list[str]:
        return backends.wrap(backend, policy, argv, policy.limits, cgroup)

    env = dict(ctx.env)
    env.update(_EXTRA_ENV)
    absent = backends.absent_protected(policy) if backend.isolates else []
    try:
        result = process.run(command, cwd=cwd, env=env, timeout=timeout, cancel=ctx.cancel, wrap=wrap)
    finally:
        cgroups.remove(cgroup)
    removed = backends.remove_created(absent)

    if result.timed_out:
        lines = [f"Command timed out after {_seconds(timeout)} s; its process group was killed."]
        label = "Output (partial):"
    elif result.cancelled:
        lines = ["Command interrupted; its process group was killed."]
        label = "Output (partial):"
    else:
        lines = [f"Exit code: {result.exit_code}"]
        label = "Output:"
    lines.append(f"Wall time: {result.duration:.2f} s")
    if result.output:
        lines.append(label)
        lines.append(result.output.rstrip("\n"))
    else:
        lines.append(f"{label} (none)")
    for path in removed:
        lines.append(f"Note: the command created {display(policy, path)}, which is protected; it was removed.")
    return "\n".join(lines)


TOOL = Tool(
    name="run_command",
    description=DESCRIPTION,
    params={
        "command": Param("string", "The bash command line to run, e.g. `pytest -q tests/test_x.py`."),
        "timeout_seconds": Param(
            "integer", "Seconds before the command is killed (1-3600). Null for the default, 120.", optional=True
        ),
        "workdir": Param(
            "string", "Directory to run in, relative to the workspace. Null for the workspace root.", optional=True
        ),
    },
    run=run,
    read_only=False,
    key_arg="command",
)
