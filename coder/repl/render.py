"""The REPL's output: the agent's events as terminal lines, each printed once.

Everything is printed above the prompt (prompt_toolkit's patch_stdout), so
nothing is ever repainted: streamed Markdown is printed a block at a time as
each block completes, a running tool call lives in the status line under the
output (see `Status`), and its one-line result is printed when it finishes.
Commentary (what the model says before it goes on to call tools) is dim; the
final answer is not. Lines that arrive while an answer streams (a message the
user queued) wait until the answer reaches a break.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text

from coder import fmt
from coder.events import (
    Compacted,
    Error,
    Event,
    FollowUpDelivered,
    MessageDone,
    Notice,
    ReasoningDelta,
    RequestStarted,
    Retrying,
    Shrunk,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnDone,
    Usage,
    UsageReport,
)
from coder.repl.toolcalls import FinishedCall, details, one_line, tool_line

_FENCE = re.compile(r"^\s*(```|~~~)")
KEPT_CALLS = 100  # finished calls /last can show
COMMENTARY = "dim"
REASONING = "dim italic"


@dataclass
class Status:
    """What the toolbar and the status line show; written by the turn thread, read by the prompt."""

    running: bool = False
    activity: str = ""  # "thinking", or the tool call that runs
    since: float = 0.0
    context_tokens: int = 0  # what the next request carries: the last usage, plus what was appended since
    context_window: int | None = None
    total: Usage = field(default_factory=Usage)
    cost: float = 0.0  # dollars of the requests that could be priced
    unpriced: set[str] = field(default_factory=set)  # models some requests were made with that have no price
    queued: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, activity: str) -> None:
        with self.lock:
            self.activity, self.since = activity, time.monotonic()

    def add_cost(self, model: str, dollars: float | None) -> None:
        with self.lock:
            if dollars is None:
                self.unpriced.add(model)
            else:
                self.cost += dollars


def block_boundary(text: str) -> int:
    """Where the complete Markdown blocks of `text` end: after the last blank line outside a code fence."""
    cut, pos, fenced = 0, 0, False
    for line in text.splitlines(keepends=True):
        pos += len(line)
        if not line.endswith("\n"):
            break
        if _FENCE.match(line):
            fenced = not fenced
            if not fenced:  # a closed code block is a block of its own
                cut = pos
        elif not fenced and not line.strip():
            cut = pos
    return cut


def markdown(text: str, style: str = "") -> object:
    from rich.markdown import Markdown

    return Markdown(text, code_theme="monokai", style=style or "none")


class MarkdownStream:
    """Prints streamed Markdown one finished block at a time, each block exactly once."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.pending = ""
        self.printed = False  # a block of this message is on screen: the next one is set apart by a blank line

    def feed(self, text: str, style: str = "") -> None:
        self.pending += text
        cut = block_boundary(self.pending)
        if cut:
            block, self.pending = self.pending[:cut], self.pending[cut:]
            self._print(block, style)

    def finish(self, style: str = "") -> None:
        block, self.pending = self.pending, ""
        self._print(block, style)
        self.printed = False

    def _print(self, block: str, style: str) -> None:
        if block.strip():
            if self.printed:  # as the whole message rendered at once would be: paragraphs apart
                self.console.print()
            self.console.print(markdown(block.strip("\n"), style))
            self.printed = True


def error_hint(error: Error) -> str:
    """What to do next, judged by the failure's HTTP status and code (never by the message's words, which
    name URLs and quote the endpoint); nothing when no hint fits."""
    from coder.client import CONTEXT_FULL, retryable_code

    status, code = error.status, error.code or ""
    if code in ("max_turns", "max_tokens", "max_cost"):  # each turn is a run: the limit counts afresh
        return f"say 'continue' to let it go on, or raise {code}"
    if code == CONTEXT_FULL:
        return "/compact to shrink the conversation, or /clear to start a new one"
    if status in (401, 403) or code == "invalid_api_key":
        return "check the API key (OPENAI_API_KEY or api_key_env) and that it may use this model"
    if code == "model_not_found":
        return "/model lists the models this endpoint offers"
    if code == "unexpected_reply":  # never retried: the same URL answers the same way
        return "check base_url: it should be the API's root, which for OpenAI-compatible endpoints usually ends in /v1"
    if status == 404:
        return "check the endpoint (base_url, which usually ends in /v1) and the model name (/model)"
    if code in ("connection_error", "timeout"):
        return "check the network and the endpoint (base_url, OPENAI_BASE_URL), then send your message again"
    if status in (408, 409, 429) or (status or 0) >= 500 or retryable_code(code):
        return "send your message again in a moment, or /clear to start over"
    return ""


class Renderer:
    """Prints the events of one turn; `show_reasoning` can be toggled between turns.

    `price(usage)` gives the model in force and a request's cost in dollars with it (None: no price known).
    Finished calls are kept in `calls` for /last.
    """

    def __init__(self, console: Console, status: Status, show_reasoning: bool = True,
                 price: Callable[[Usage], tuple[str, float | None]] | None = None) -> None:
        self.console = console
        self.status = status
        self.show_reasoning = show_reasoning
        self.price = price
        self.markdown = MarkdownStream(console)
        self.reasoning = ""
        self.turn_started = 0.0
        self.summaries: dict[str, str] = {}  # call_id -> key argument, from tool.started
        self.calls: deque[FinishedCall] = deque(maxlen=KEPT_CALLS)
        self.lock = threading.RLock()  # the turn thread prints events; the main thread may print in between
        self.streaming = False  # an assistant message is being printed
        self.style = ""  # of the message being streamed: the answer's, or commentary's
        self.deferred: list[Text] = []

    # --- lines from outside the turn ---
    def later(self, *lines: Text) -> None:
        """Print `lines` now, or, while a message streams, when it reaches a break (not inside it)."""
        with self.lock:
            if self.streaming:
                self.deferred.extend(lines)
                return
            for line in lines:
                self.console.print(line)

    def _flush_deferred(self) -> None:
        self.streaming = False
        lines, self.deferred = self.deferred, []
        for line in lines:
            self.console.print(line)

    def _flush_reasoning(self) -> None:
        text, self.reasoning = self.reasoning.strip(), ""
        if text and self.show_reasoning:
            self.console.print(markdown(text, REASONING))

    def _end_message(self, style: str = "") -> None:
        self.markdown.finish(style or self.style)
        self.style = ""
        self._flush_deferred()

    # --- the events ---
    def __call__(self, event: Event) -> None:
        with self.lock:
            self._render(event)

    def _render(self, event: Event) -> None:
        if isinstance(event, ReasoningDelta):
            self.reasoning += event.text
            self.status.set("thinking")
            return
        self._flush_reasoning()
        if isinstance(event, RequestStarted):
            if event.turn == 1:
                self.turn_started = time.monotonic()
            self.status.set("thinking")
        elif isinstance(event, TextDelta):
            if not self.streaming:
                self.streaming = True
                self.style = COMMENTARY if getattr(event, "phase", None) == "commentary" else ""
            self.status.set("writing")
            self.markdown.feed(event.text, self.style)
        elif isinstance(event, MessageDone):
            self._end_message(COMMENTARY if getattr(event, "phase", "") == "commentary" else self.style)
        elif isinstance(event, ToolCallStarted):
            self._end_message(COMMENTARY)  # text before a call is commentary, whatever it said it was
            self.summaries[event.call_id] = event.summary
            self.status.set(f"{event.name} {one_line(event.summary, 60)}".strip())
        elif isinstance(event, ToolCallFinished):
            self._tool_line(event)
            self.status.set("thinking")
        elif isinstance(event, FollowUpDelivered):
            with self.status.lock:
                self.status.queued = max(0, self.status.queued - 1)
            self.console.print(Text(f"↳ delivered to the model: {one_line(event.text)}", style="magenta"))
        elif isinstance(event, UsageReport):
            with self.status.lock:
                self.status.context_tokens, self.status.context_window = event.context_tokens, event.context_window
                self.status.total = event.total
            if self.price is not None:
                self.status.add_cost(*self.price(event.request))
        elif isinstance(event, Compacted):
            self._end_message()
            with self.status.lock:
                self.status.context_tokens = event.tokens_after
            self.console.print(Text(event.line(), style="cyan"))
        elif isinstance(event, Shrunk):
            with self.status.lock:
                self.status.context_tokens = event.tokens_after
            self.console.print(Text(event.line(), style="dim"))
        elif isinstance(event, Retrying):
            self.console.print(Text(f"retry {event.attempt} in {event.delay:.1f}s: {event.reason}", style="yellow"))
        elif isinstance(event, Notice):
            self._end_message()
            self.console.print(Text(f"note: {event.message}", style="yellow"))
        elif isinstance(event, Error):
            self._end_message()
            if event.message == "interrupted":  # a stop the user asked for: turn.done says it, calmly
                return
            if event.message.startswith("interrupted:"):  # e.g. /compact stopped: what did not happen
                self.console.print(Text(f"stopped:{event.message.removeprefix('interrupted:')}", style="yellow"))
                return
            self.console.print(Text(f"error: {event.message}", style="bold red"))
            hint = error_hint(event)
            if hint:
                self.console.print(Text(f"  → {hint}", style="red"))
        elif isinstance(event, TurnDone):
            self._end_message()
            self.console.print(self.turn_line(event))

    def flush(self) -> None:
        """The turn ended without its last events (a bug on its thread): print what is held back."""
        with self.lock:
            self._end_message()

    def turn_line(self, event: TurnDone) -> Text:
        took = time.monotonic() - self.turn_started if self.turn_started else 0.0
        dollars = self.price(event.usage)[1] if self.price is not None else None
        usage = fmt.usage(event.usage, dollars)
        if event.status == "interrupted":
            return Text(f"stopped · {took:.1f}s · {usage}", style="yellow")
        return Text(f"{event.status} · {took:.1f}s · {usage}", style="dim")

    def _tool_line(self, event: ToolCallFinished) -> None:
        summary = self.summaries.pop(event.call_id, "")
        self.calls.append(FinishedCall(event, summary))
        width = self.console.width
        self.console.print(tool_line(event, summary, width), no_wrap=True, overflow="ellipsis")
        more = details(event, width, 1)
        if more is not None:
            self.console.print(more, no_wrap=True, overflow="ellipsis")
        if event.diff:  # the line above names the file: the diff's own header would say it twice more
            self.console.print(diff_text(event.diff, headers=event.diff.count("\n+++ ") > 1))


def diff_text(diff: str, headers: bool = True) -> Text:
    text = Text()
    for line in diff.splitlines():
        if line.startswith(("+++ ", "--- ")) and not headers:
            continue
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        else:
            style = "dim"
        text.append(line + "\n", style=style)
    return text
