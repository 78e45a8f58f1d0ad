"""A run's outcome as one value, for scripts: `Agent.run_task`, `coder.batch`, `coder batch --json`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from coder.events import ApprovalRequest, Error, Event, TurnDone, Usage


@dataclass
class Result:
    """What came of one task.

    status: completed, failed, incomplete, max_turns, max_tokens, max_cost, interrupted (as turn.done);
    `output`: the structured answer when an output schema was given and matched; `error`: the last
    error's one line (None when there was none), `error_code` its code (max_tokens, output_schema, an
    endpoint's code...)."""

    status: str
    final_text: str = ""
    output: Any = None
    usage: Usage = field(default_factory=Usage)
    files_changed: list[str] = field(default_factory=list)
    session_id: str = ""
    error: str | None = None
    error_code: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    @property
    def cost(self) -> float | None:
        """USD: the provider's figure or the price table's; None when neither knows the model."""
        return self.usage.cost

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cost": self.cost}


def collect(events: Iterator[Event], session_id: str, on_event: Callable[[Event], None] | None = None) -> Result:
    """Drive a run to its end and gather its Result. A question (approval.request) nobody answers is a no;
    a KeyboardInterrupt stops the run cleanly (every call answered) and is raised again afterwards."""
    done: TurnDone | None = None
    error: Error | None = None
    try:
        for event in events:
            if on_event is not None:
                on_event(event)
            if isinstance(event, ApprovalRequest) and event.approved is None:
                event.deny("nobody is there to approve it (a script's run)")
            elif isinstance(event, Error):
                error = event
            elif isinstance(event, TurnDone):
                done = event
    finally:
        events.close()  # type: ignore[attr-defined]
    if done is None:  # the iterator ended without its last event: only a stop does that
        return Result("interrupted", session_id=session_id, error=error.message if error else None)
    return Result(done.status, done.final_text, done.output, done.usage, list(done.files_changed), session_id,
                  error.message if error and not done.ok else None,
                  error.code if error and not done.ok else None)
