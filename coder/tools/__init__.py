"""The registry of the seven SWE tools and the one way to call them.

`call_tool` never raises for anything the model did: malformed JSON, an
unknown tool, bad arguments, a refused path or a tool that crashes all become
an output text that tells the model what went wrong, so every function_call
gets exactly one output and the run goes on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coder.tools import (
    edit_file,
    glob_files,
    list_dir,
    read_file,
    run_command,
    search_file,
    write_file,
)
from coder.tools.base import Output, Tool, ToolContext, ToolError, truncate_middle
from sandbox.paths import PathDenied

TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        read_file.TOOL,
        write_file.TOOL,
        edit_file.TOOL,
        search_file.TOOL,
        list_dir.TOOL,
        run_command.TOOL,
        glob_files.TOOL,
    )
}


@dataclass(frozen=True)
class ToolResult:
    """A call's outcome: the text the model reads, and the facts (see Output) nobody should parse it for.

    `ok` is False for a tool error and for a command that failed: a non-zero exit, a timeout, a stop,
    a sandbox refusal.
    """

    output: str
    ok: bool
    diff: str = ""  # a file change, for front ends to show
    content: tuple[dict[str, Any], ...] = ()  # for the model, after the text: an image read_file returns
    exit_code: int | None = None
    timed_out: bool = False
    interrupted: bool = False
    denied: bool = False
    denial: str = ""
    output_tail: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, out: Output) -> "ToolResult":
        """The result of a tool that ran and returned `out`."""
        return cls(truncate_middle(out.text), not out.failed, out.diff, out.content, out.exit_code, out.timed_out,
                   out.interrupted, out.denied, out.denial, out.output_tail, dict(out.counts))


def schemas(names: list[str] | None = None) -> list[dict[str, Any]]:
    return [t.schema() for n, t in TOOLS.items() if names is None or n in names]


def parse_arguments(raw: str) -> Any:
    """Decode a call's arguments; an empty string means no arguments."""
    if raw is None or not str(raw).strip():
        return {}
    try:
        return json.loads(raw)
    except RecursionError:  # the model's JSON, nested past what the parser can take: as malformed as any
        raise json.JSONDecodeError("nested too deeply", str(raw), 0) from None


def call_tool(ctx: ToolContext, name: str, raw_arguments: str) -> ToolResult:
    tool = TOOLS.get(name)
    if tool is None:
        known = ", ".join(TOOLS)
        return ToolResult(f"Error: unknown tool {name!r}. Available tools: {known}.", False)
    try:
        args = tool.validate_args(parse_arguments(raw_arguments))
    except json.JSONDecodeError as e:
        return ToolResult(
            f"Error: the arguments for {name} are not valid JSON ({e.msg} at position {e.pos}). "
            "Send a JSON object matching the tool's schema.",
            False,
        )
    except ToolError as e:
        return ToolResult(f"Error: {name}: {e}", False)
    try:
        output = tool.run(ctx, args)
        return ToolResult.of(output if isinstance(output, Output) else Output(output))
    except (ToolError, PathDenied) as e:
        text = f"Error: {e}"
    except OSError as e:  # the file system said no: permissions, a file where a folder should be
        where = f": {e.filename}" if e.filename else ""
        text = f"Error: {name}: {e.strerror or e}{where}"
    except Exception as e:  # a tool bug must not end the run or orphan the call
        text = f"Error: {name} failed unexpectedly: {type(e).__name__}: {e}"
    return ToolResult(truncate_middle(text), False)
