"""run_command: one shell command in the workspace, Codex style.

A non-zero exit is a normal result, not an error: the model needs the output
to see what failed. Only a bad workdir is the model's mistake. The output is
what a terminal would show (no colour codes, only the last frame of a progress
bar), so neither the model's context nor the head-and-tail bounds go to redraws.
"""

from __future__ import annotations

import re
from typing import Any

from coder.approvals import sandbox_denial
from coder.tools.base import Output, Param, Tool, ToolContext, ToolError
from sandbox import backends, cgroups, placeholders, process
from sandbox.paths import display, resolve_read
from sandbox.policy import Mode

MIN_TIMEOUT, MAX_TIMEOUT = 1, 3600
# How programs say an allocation failed (RLIMIT_DATA makes malloc fail; it kills nothing).
_OUT_OF_MEMORY = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory|"
                            r"JavaScript heap out of memory|OutOfMemoryError", re.IGNORECASE)

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


TAIL_LINES, TAIL_LINE_CHARS = 20, 400  # what a front end gets to show of a command's output


def _seconds(value: float) -> str:
    return f"{value:g}"


def _tail(output: str) -> str:
    lines = output.rstrip("\r\n").splitlines()[-TAIL_LINES:]
    return "\n".join(line if len(line) <= TAIL_LINE_CHARS else line[:TAIL_LINE_CHARS] + "…" for line in lines)


def run(ctx: ToolContext, args: dict[str, Any]) -> Output:
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

    env = dict(ctx.env)
    env.update(_EXTRA_ENV)
    try:
        guard = placeholders.hold(backends.guarded_paths(backend, policy), ctx.placeholder_registry)
    except placeholders.Unavailable as e:
        raise ToolError(f"the command was not run: {e.strerror} (without it, the command could create a "
                        "protected name such as .git)") from None
    cgroup = None
    ctx.before_command()
    try:
        cgroup = cgroups.create(policy.limits) if backend.name in ("landlock", "bwrap") else None
        result = process.run(command, cwd=cwd, env=env, timeout=timeout, cancel=ctx.cancel,
                             wrap=lambda argv: backends.wrap(backend, policy, argv, policy.limits, cgroup), clean=True)
    finally:
        oom = cgroup is not None and cgroup.oom_killed()
        cgroups.remove(cgroup)
        problems = placeholders.release(guard)
        for problem in problems:
            ctx.warn(problem)  # the user hears of it too, not only the model
        ctx.after_command()

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
    memory = policy.limits.get("memory", 0) >> 20
    if oom:
        lines.append(f"Killed: out of memory (the command may use {memory} MiB in all; [limits] memory_mb)")
    elif backend.isolates and result.exit_code and _OUT_OF_MEMORY.search(result.output[-4000:]):
        lines.append(f"Note: this looks like the memory limit ({memory} MiB per process; [limits] memory_mb)")
    if result.output:
        lines.append(label)
        lines.append(result.output.rstrip("\r\n"))
    else:
        lines.append(f"{label} (none)")
    for problem in problems:
        lines.append(f"Warning: {problem}")
    # Only a sandbox can refuse: the same words from a command that ran without one are the system's own.
    sandboxed = backend.isolates and policy.mode is not Mode.FULL_ACCESS
    denial = (sandbox_denial(result.output) or "") if sandboxed and result.exit_code else ""
    return Output("\n".join(lines), exit_code=result.exit_code, timed_out=result.timed_out,
                  interrupted=result.cancelled and not result.timed_out, denied=bool(denial), denial=denial,
                  output_tail=_tail(result.output))


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
