"""The typed events the agent core emits; front ends render them, the core never prints.

Every event has a stable `type` string and `to_dict()`, which is exactly what
`coder exec --json` writes, one per line. Each is documented, with an example, in
events.schema.json (a JSON Schema shipped in the package: `schema()`) and docs/events.md;
`run.started` carries the SCHEMA_VERSION the lines follow.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

# Raised when a field changes meaning or goes away; new fields may come within a version.
SCHEMA_VERSION = 1


def schema() -> dict[str, Any]:
    """The JSON Schema every `to_dict()` validates against (oneOf, by `type`)."""
    from importlib.resources import files

    return json.loads(files("coder").joinpath("events.schema.json").read_text(encoding="utf-8"))


@dataclass
class Usage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    cost: float | None = None  # USD: the provider's figure, else priced by coder.pricing; None: unknown

    @classmethod
    def from_response(cls, usage: dict[str, Any] | None) -> "Usage":
        u = usage or {}
        return cls(
            input_tokens=int(u.get("input_tokens") or 0),
            cached_tokens=int((u.get("input_tokens_details") or {}).get("cached_tokens") or 0),
            output_tokens=int(u.get("output_tokens") or 0),
            reasoning_tokens=int((u.get("output_tokens_details") or {}).get("reasoning_tokens") or 0),
            total_tokens=int(u.get("total_tokens") or 0),
            cost=_number(u.get("cost")),
        )

    def add(self, other: "Usage") -> None:
        self.input_tokens += other.input_tokens
        self.cached_tokens += other.cached_tokens
        self.output_tokens += other.output_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.total_tokens += other.total_tokens
        if other.cost is not None:  # a sum of what is known; None only while nothing is
            self.cost = (self.cost or 0.0) + other.cost


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass
class Event:
    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}


@dataclass
class RunStarted(Event):
    type: ClassVar[str] = "run.started"
    model: str
    workspace: str
    sandbox: dict[str, Any]
    store: bool
    session: str | None = None  # the transcript's id, for coder resume
    schema_version: int = SCHEMA_VERSION


@dataclass
class RequestStarted(Event):
    """One model request; `turn` counts requests in this run (the max-turns guard)."""

    type: ClassVar[str] = "request.started"
    turn: int
    request_id: str = ""  # the X-Client-Request-Id of its first try, to trace it at the provider


@dataclass
class TextDelta(Event):
    """A piece of an assistant message as it streams; `phase` as the message item says (else None)."""

    type: ClassVar[str] = "text.delta"
    text: str
    phase: str | None = None


@dataclass
class ReasoningDelta(Event):
    type: ClassVar[str] = "reasoning.delta"
    text: str


@dataclass
class MessageDone(Event):
    """A whole assistant message (commentary between tool calls, or the final answer)."""

    type: ClassVar[str] = "message.done"
    text: str
    # "commentary" (the model goes on: it made tool calls in the same response) or "final_answer": the
    # message item's own `phase` where the endpoint sends one, else judged by whether calls came with it.
    phase: str = "final_answer"


@dataclass
class ToolCallStarted(Event):
    type: ClassVar[str] = "tool.started"
    call_id: str
    name: str
    arguments: str
    summary: str  # the key argument: a path, a pattern, a command


@dataclass
class ToolCallFinished(Event):
    """A call answered. `ok` is False for a tool error and for a command that failed (non-zero exit,
    timeout, stop, sandbox refusal); the command's facts are fields, so nobody parses `output`."""

    type: ClassVar[str] = "tool.finished"
    call_id: str
    name: str
    ok: bool
    output: str  # exactly what the model reads
    duration: float
    diff: str = ""  # unified diff when the call changed a file (write_file, edit_file)
    exit_code: int | None = None  # run_command: the exit status; None when killed, refused, or not a command
    timed_out: bool = False  # run_command: killed at its timeout
    interrupted: bool = False  # run_command: killed because the user stopped the run
    denied: bool = False  # run_command: the sandbox refused something it tried
    denial: str = ""  # the output line that shows the refusal
    output_tail: str = ""  # run_command: the last lines (up to 20) of its own output, without our header
    counts: dict[str, int] = field(default_factory=dict)  # what a tool counted: matches, files, lines, entries


@dataclass
class ApprovalRequest(Event):
    """The agent needs a yes or no before going on; answer before taking the next event.

    `escalate` means running the command *outside* the sandbox. An unanswered
    request counts as denied. `approve(always=True)` also allows later commands
    with the same prefix for the rest of the session.
    """

    type: ClassVar[str] = "approval.request"
    call_id: str
    command: str
    reason: str
    escalate: bool

    def __post_init__(self) -> None:
        self.approved: bool | None = None
        self.always = False
        self.note = ""

    def approve(self, always: bool = False) -> None:
        self.approved, self.always = True, always

    def deny(self, note: str = "") -> None:
        self.approved, self.note = False, note


@dataclass
class FollowUpDelivered(Event):
    type: ClassVar[str] = "followup.delivered"
    text: str


@dataclass
class UsageReport(Event):
    """Tokens of one request and of the session; `context_tokens` is how full the window now is."""

    type: ClassVar[str] = "usage"
    request: Usage
    total: Usage
    context_tokens: int = 0
    context_window: int | None = None


@dataclass
class Shrunk(Event):
    """Long tool outputs of older turns cut to their head and tail, before compaction is needed."""

    type: ClassVar[str] = "context.shrunk"
    outputs: int
    tokens_before: int
    tokens_after: int

    def line(self) -> str:
        return (f"shrank {self.outputs} older tool output(s) to their first and last lines: "
                f"{self.tokens_before:,} -> {self.tokens_after:,} tokens")


@dataclass
class Compacted(Event):
    """The history was replaced by a shorter one (`endpoint`: the provider's compaction; `local`: a summary)."""

    type: ClassVar[str] = "context.compacted"
    strategy: str
    reason: str  # auto (the threshold), overflow (the endpoint refused the size), manual (/compact)
    tokens_before: int
    tokens_after: int
    items_before: int
    items_after: int

    def line(self) -> str:
        how = "by the endpoint" if self.strategy == "endpoint" else "into a summary"
        return (f"context compacted {how}: {self.tokens_before:,} -> {self.tokens_after:,} tokens "
                f"({self.items_before} -> {self.items_after} items)")


@dataclass
class Retrying(Event):
    type: ClassVar[str] = "retrying"
    attempt: int
    delay: float
    reason: str
    request_id: str = ""  # the try that failed


@dataclass
class Notice(Event):
    """Something worth a line that is not an error: a checkpoint that failed, an auto-commit made."""

    type: ClassVar[str] = "notice"
    message: str


@dataclass
class Error(Event):
    """What stopped the run; `status` and `code`, where known, say what kind of failure it was, for a front
    end to act on without reading the message."""

    type: ClassVar[str] = "error"
    message: str
    status: int | None = None  # the HTTP status the endpoint refused the request with
    # The endpoint's error code (model_not_found, context_length_exceeded, rate_limit_exceeded, ...), or
    # coder's own: unexpected_reply (an answer that is not the Responses API's, e.g. a wrong URL),
    # connection_error, timeout, max_turns, max_tokens, max_cost, output_schema (the answer did not match it).
    code: str | None = None


@dataclass
class TurnDone(Event):
    """The run is over. status: completed, failed, incomplete, max_turns, max_tokens, max_cost, interrupted.

    `output`: the final answer parsed as JSON, when an output schema was given and it matched;
    `files_changed`: the workspace paths the run changed (its file tools', and in a recorded session
    in a git repository its commands' too)."""

    type: ClassVar[str] = "turn.done"
    status: str
    final_text: str
    usage: Usage = field(default_factory=Usage)
    output: Any = None
    files_changed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "completed"


@dataclass
class RecordingFailed(Event):
    """The session can no longer be recorded (disk full, a file-size limit, a folder gone).

    The user's files are as they are. A front end that can ask calls `go_on()` if the user agrees
    to continue without a transcript (and without undo for what follows); otherwise the turn stops.
    """

    type: ClassVar[str] = "recording.failed"
    message: str

    def __post_init__(self) -> None:
        self.going_on = False

    def go_on(self) -> None:
        self.going_on = True
