"""Function tools a script adds next to the seven (`Agent.add_tool`).

The function runs in coder's own process, in the agent's thread, outside the sandbox: it is the
script's code, not the model's. Whatever the model sends or the function does, the call gets one
output: arguments that do not match the schema, and any exception the function raises, become an
error text the model reads; nothing is raised through the loop.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coder.tools.base import truncate_middle

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class FunctionTool:
    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[[dict[str, Any]], Any]

    def schema(self) -> dict[str, Any]:
        return {"type": "function", "name": self.name, "description": self.description,
                "parameters": self.parameters, "strict": True}

    def call(self, raw_arguments: str) -> tuple[str, bool]:
        """(the output text, whether the call succeeded)."""
        from coder import schemas

        try:
            args = json.loads(raw_arguments) if raw_arguments and raw_arguments.strip() else {}
        except json.JSONDecodeError as e:
            return f"Error: the arguments for {self.name} are not valid JSON ({e.msg} at position {e.pos}).", False
        except RecursionError:
            return f"Error: the arguments for {self.name} are nested too deeply.", False
        why = schemas.mismatch(args, self.parameters)
        if why:
            return f"Error: {self.name}: the arguments do not match the tool's schema: {why}", False
        try:
            value = self.function(args)
        except Exception as e:  # the script's bug or refusal: the model reads it, the run goes on
            return truncate_middle(f"Error: {self.name} failed: {type(e).__name__}: {e}"), False
        if value is None:
            text = ""
        elif isinstance(value, str):
            text = value
        else:
            try:
                text = json.dumps(value, ensure_ascii=False, default=str)
            except (TypeError, ValueError):
                text = str(value)
        return truncate_middle(text), True


def make(name: str, description: str, parameters: dict[str, Any], function: Callable[[dict[str, Any]], Any],
         taken: set[str] | frozenset[str]) -> FunctionTool:
    """A checked tool, or ValueError (one line) saying what is wrong with it."""
    from coder import schemas

    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"tool name {name!r}: use 1-64 letters, digits, _ or -")
    if name in taken:
        raise ValueError(f"tool name {name!r} is already taken")
    if not callable(function):
        raise ValueError(f"tool {name}: the function is not callable")
    if not isinstance(description, str) or not description.strip():
        raise ValueError(f"tool {name}: describe what it does (the model reads the description)")
    try:
        schemas.check_strict(parameters, f"tool {name}")
    except schemas.SchemaError as e:
        raise ValueError(str(e)) from None
    return FunctionTool(name, description, json.loads(json.dumps(parameters)), function)
