"""What every tool shares: its description for the model, its context, its errors.

A tool is a plain function plus a strict JSON schema. Strict means every
parameter is listed in `required` and optional ones accept null, which is what
the Responses API wants for `strict: true`; `validate_args` still accepts calls
that leave optional keys out, because not every provider enforces strictness.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import backends
from sandbox.policy import Policy

# No tool may put more than this many characters into the model's context.
MAX_OUTPUT_CHARS = 40_000


class ToolError(Exception):
    """A failure the model should read and can act on (bad path, no match, ...)."""


@dataclass(frozen=True)
class Param:
    type: str  # "string", "integer" or "boolean"
    description: str
    optional: bool = False


@dataclass
class ToolContext:
    """Everything a tool may use; built once per session by the agent."""

    policy: Policy
    env: Mapping[str, str] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    default_timeout: float = 120.0
    backend: backends.Backend | None = None  # None: chosen from the policy

    def __post_init__(self) -> None:
        if self.backend is None:
            self.backend = backends.select(self.policy)

    @property
    def workspace(self) -> Path:
        return self.policy.workspace


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    params: Mapping[str, Param]
    run: Callable[[ToolContext, dict[str, Any]], str]
    read_only: bool = True  # read-only tools may run concurrently
    key_arg: str = "path"  # the argument a front end shows next to the tool name

    def schema(self) -> dict[str, Any]:
        """The function tool definition sent to the model."""
        props: dict[str, Any] = {}
        for name, p in self.params.items():
            props[name] = {
                "type": [p.type, "null"] if p.optional else p.type,
                "description": p.description,
            }
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": props,
                "required": list(self.params),
                "additionalProperties": False,
            },
        }

    def validate_args(self, args: Any) -> dict[str, Any]:
        """Check decoded arguments; fill absent optional ones with None."""
        if not isinstance(args, dict):
            raise ToolError(f"arguments must be a JSON object, got {type(args).__name__}")
        unknown = sorted(set(args) - set(self.params))
        if unknown:
            raise ToolError(
                f"unknown argument(s) {', '.join(unknown)}; {self.name} takes: {', '.join(self.params)}"
            )
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            value = args.get(name)
            if value is None:
                if not p.optional:
                    raise ToolError(f"missing required argument {name!r} ({p.type})")
                out[name] = None
                continue
            out[name] = _coerce(name, p.type, value)
        return out


def _coerce(name: str, kind: str, value: Any) -> Any:
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "integer" and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    raise ToolError(f"argument {name!r} must be {kind}, got {value!r}")


def truncate_middle(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Keep the head and tail of an over-long text, with a note of what was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    omitted = len(text) - 2 * half
    head, tail = text[:half], text[-half:]
    return f"{head}\n[... {omitted} characters omitted ...]\n{tail}"
