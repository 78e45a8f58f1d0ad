"""The REPL's output: the agent's events as terminal lines, each printed once.

Everything is printed above the prompt (prompt_toolkit's patch_stdout), so
nothing is ever repainted: streamed Markdown is printed a block at a time as
each block completes, a running tool call lives in the status line under the
output (see `Status`), and its one-line result is printed when it finishes.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text

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

_FENCE = re.compile(r"^\s*(```|~~~)")
_EXIT = re.compile(r"^Exit code: (\d+)", re.M)


@dataclass
class Status:
    """What the toolbar and the status line show; written by the turn thread, read by the prompt."""

    running: bool = False
    activity: str = ""  # "thinking", or the tool call that runs
    since: float = 0.0
    context_tokens: int = 0  # what the next request carries: the last usage, plus what was appended since
    context_window: int | None = None
    total: Usage = field(default_factory=Usage)
    queued: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, activity: str) -> None:
        with self.lock:
            self.activity, self.since = activity, time.monotonic()


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


class MarkdownStream:
    """Prints streamed Markdown one finished block at a time, each block exactly once."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.pending = ""

    def feed(self, text: str) -> None:
        self.pending += text
        cut = block_boundary(self.pending)
        if cut:
            block, self.pending = self.pending[:cut], self.pending[cut:]
            self._print(block)

    def finish(self) -> None:
        block, self.pending = self.pending, ""
        self._print(block)

    def _print(self, block: str) -> None:
        if block.strip():
            from rich.markdown import Markdown

            self.console.print(Markdown(block.strip("\n"), code_theme="monokai"))


def result_summary(event: ToolCallFinished) -> str:
    """One short phrase for a finished call: lines read, matches found, exit code."""
    out = event.output
    if not event.ok:
        return out.splitlines()[0].removeprefix("Error: ")[:160] if out else "failed"
    if event.name == "run_command":
        if out.startswith("Command timed out"):
            return "timed out"
        if out.startswith("Command interrupted"):
            return "interrupted"
        code = _EXIT.search(out)
        return f"exit {code.group(1) if code else '?'}"
    lines = [line for line in out.splitlines() if line.strip()]
    if event.name == "read_file":
        shown = sum(1 for line in lines if re.match(r"^\s*\d+\t", line))
        return f"{shown} lines" if shown else (lines[0][:120] if lines else "")
    if event.name == "search_file":
        return lines[0][:120] if out.startswith("No matches") else f"{len(lines)} matches"
    if event.name in ("glob_files", "list_dir"):
        return f"{len(lines)} {'entry' if len(lines) == 1 else 'entries'}"
    return lines[0][:160] if lines else ""


def diff_text(diff: str) -> Text:
    text = Text()
    for line in diff.splitlines():
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


def error_hint(message: str) -> str:
    """What to do next, for the errors people meet most."""
    if "HTTP 401" in message or "HTTP 403" in message:
        return "check the API key (OPENAI_API_KEY or api_key_env) and that it may use this model"
    if "HTTP 404" in message:
        return "check the model name (/model) and the endpoint (OPENAI_BASE_URL)"
    if "connection error" in message or "timed out" in message:
        return "check the network and OPENAI_BASE_URL, then send your message again"
    if "max_turns" in message:
        return "say 'continue' to let it go on, or raise max_turns"
    if "context window" in message or "compact" in message:
        return "/compact to shrink the conversation, or /clear to start a new one"
    if message == "interrupted":
        return "the conversation is intact; type your next message"
    return "send your message again, or /clear to start over"


class Renderer:
    """Prints the events of one turn; `show_reasoning` can be toggled between turns."""

    def __init__(self, console: Console, status: Status, show_reasoning: bool = True) -> None:
        self.console = console
        self.status = status
        self.show_reasoning = show_reasoning
        self.markdown = MarkdownStream(console)
        self.reasoning = ""
        self.turn_started = 0.0
        self.summaries: dict[str, str] = {}  # call_id -> key argument, from tool.started

    def _flush_reasoning(self) -> None:
        if self.reasoning.strip() and self.show_reasoning:
            self.console.print(Text(self.reasoning.strip(), style="dim italic"))
        self.reasoning = ""

    def __call__(self, event: Event) -> None:
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
            self.status.set("writing")
            self.markdown.feed(event.text)
        elif isinstance(event, MessageDone):
            self.markdown.finish()
        elif isinstance(event, ToolCallStarted):
            self.markdown.finish()
            self.summaries[event.call_id] = event.summary
            self.status.set(f"{event.name} {_one_line(event.summary, 60)}".strip())
        elif isinstance(event, ToolCallFinished):
            self._tool_line(event)
            self.status.set("thinking")
        elif isinstance(event, FollowUpDelivered):
            with self.status.lock:
                self.status.queued = max(0, self.status.queued - 1)
            self.console.print(Text(f"↳ delivered to the model: {_one_line(event.text)}", style="magenta"))
        elif isinstance(event, UsageReport):
            with self.status.lock:
                self.status.context_tokens, self.status.context_window = event.context_tokens, event.context_window
                self.status.total = event.total
        elif isinstance(event, Compacted):
            self.markdown.finish()
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
            self.markdown.finish()
            self.console.print(Text(f"note: {event.message}", style="yellow"))
        elif isinstance(event, Error):
            self.markdown.finish()
            self.console.print(Text(f"error: {event.message}", style="bold red"))
            self.console.print(Text(f"  → {error_hint(event.message)}", style="red"))
        elif isinstance(event, TurnDone):
            self.markdown.finish()
            u = event.usage
            took = time.monotonic() - self.turn_started if self.turn_started else 0.0
            cost = f" · ${u.cost:.4f}" if u.cost else ""
            self.console.print(Text(
                f"{event.status} · {took:.1f}s · tokens in {u.input_tokens:,} (cached {u.cached_tokens:,}) · "
                f"out {u.output_tokens:,} (reasoning {u.reasoning_tokens:,}){cost}", style="dim"))

    def _tool_line(self, event: ToolCallFinished) -> None:
        mark = Text("  ✓ ", style="green") if event.ok else Text("  ✗ ", style="red")
        line = mark + Text(event.name, style="cyan")
        summary = _one_line(self.summaries.pop(event.call_id, ""))
        if summary:
            line += Text(f" {summary}")
        line += Text(f" · {result_summary(event)} · {event.duration:.2f}s", style="dim")
        self.console.print(line)
        if event.diff:
            self.console.print(diff_text(event.diff))


def _one_line(text: str, width: int = 100) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def show_history(console: Console, items: list[dict], last: int = 6) -> None:
    """The tail of a resumed conversation: who said what, so the user knows where they are."""
    said: list[tuple[str, str]] = []
    for item in items:
        if item.get("type") != "message" or item.get("role", "assistant") not in ("user", "assistant") \
                or not isinstance(item.get("content"), list):
            continue
        parts = [p.get("text", "") for p in item["content"] if isinstance(p, dict)]
        text = next((t for t in parts if t and not t.startswith("<environment_context>")), "")
        if text:
            said.append((item.get("role", "assistant"), text))
    for role, text in said[-last:]:
        if role == "user":
            console.print(Text("› " + _one_line(text, 200), style="bold dim"))
        else:
            console.print(Text(_one_line(text, 300), style="dim"))
