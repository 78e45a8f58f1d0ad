"""The typed events the agent core emits; front ends render them, the core never prints.

Every event has a stable `type` string and `to_dict()`, which is exactly what
`coder exec --json` writes, one per line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass
class Usage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    cost: float = 0.0  # in the provider's currency, where it reports one (e.g. usage.cost)

    @classmethod
    def from_response(cls, usage: dict[str, Any] | None) -> "Usage":
        u = usage or {}
        return cls(
            input_tokens=int(u.get("input_tokens") or 0),
            cached_tokens=int((u.get("input_tokens_details") or {}).get("cached_tokens") or 0),
            output_tokens=int(u.get("output_tokens") or 0),
            reasoning_tokens=int((u.get("output_tokens_details") or {}).get("reasoning_tokens") or 0),
            total_tokens=int(u.get("total_tokens") or 0),
            cost=float(u.get("cost") or 0.0) if isinstance(u.get("cost"), (int, float)) else 0.0,
        )

    def add(self, other: "Usage") -> None:
        self.input_tokens += other.input_tokens
        self.cached_tokens += other.cached_tokens
        self.output_tokens += other.output_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.total_tokens += other.total_tokens
        self.cost += other.cost


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


@dataclass
class RequestStarted(Event):
    """One model request; `turn` counts requests in this run (the max-turns guard)."""

    type: ClassVar[str] = "request.started"
    turn: int
    request_id: str = ""  # the X-Client-Request-Id of its first try, to trace it at the provider


@dataclass
class TextDelta(Event):
    type: ClassVar[str] = "text.delta"
    text: str


@dataclass
class ReasoningDelta(Event):
    type: ClassVar[str] = "reasoning.delta"
    text: str


@dataclass
class MessageDone(Event):
    """A whole assistant message (commentary between tool calls, or the final answer)."""

    type: ClassVar[str] = "message.done"
    text: str


@dataclass
class ToolCallStarted(Event):
    type: ClassVar[str] = "tool.started"
    call_id: str
    name: str
    arguments: str
    summary: str  # the key argument: a path, a pattern, a command


@dataclass
class ToolCallFinished(Event):
    type: ClassVar[str] = "tool.finished"
    call_id: str
    name: str
    ok: bool
    output: str
    duration: float
    diff: str = ""  # unified diff when the call changed a file (write_file, edit_file)


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
    type: ClassVar[str] = "error"
    message: str


@dataclass
class TurnDone(Event):
    """The run is over. status: completed, failed, incomplete, max_turns, interrupted."""

    type: ClassVar[str] = "turn.done"
    status: str
    final_text: str
    usage: Usage = field(default_factory=Usage)

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
