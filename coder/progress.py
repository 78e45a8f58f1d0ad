"""What `coder exec` writes while it works: stdout keeps the answer alone, stderr gets the progress.

Four renderers, one chosen per run: `--json` (events on stdout, errors also on stderr),
a terminal (rich, colours), anything else (plain lines for CI logs, one per tool call and
retry, a start and an end line), and `--quiet` (errors and notes only).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, TextIO

from coder import fmt
from coder.events import (
    Compacted,
    Error,
    Event,
    MessageDone,
    Notice,
    ReasoningDelta,
    Retrying,
    RunStarted,
    Shrunk,
    ToolCallFinished,
    ToolCallStarted,
    TurnDone,
)

Render = Callable[[Event], None]
TAIL_LINES = 5  # of a failed command's output, under its failure line


def printable(text: str, limit: int = 400) -> str:
    """One line of untrusted text (the model's, a command's), safe to print: no control characters."""
    line = "".join(c if c.isprintable() else " " for c in text[: limit * 2]).rstrip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def failure(event: ToolCallFinished) -> str:
    """Why a call failed, in a few words: 'exit 1', 'timed out', 'blocked by the sandbox (exit 1)'."""
    code = getattr(event, "exit_code", None)
    exit_part = f"exit {code}" if code not in (None, 0) else ""
    if getattr(event, "timed_out", False):
        return "timed out"
    if getattr(event, "interrupted", False):
        return "stopped"
    if getattr(event, "denied", False):
        return "blocked by the sandbox" + (f", {exit_part}" if exit_part else "")
    return exit_part


def failure_details(event: ToolCallFinished) -> list[str]:
    """The lines that show why: the sandbox's refusal, or the last lines of the command's own output;
    for a tool error, the first line of what the model was told."""
    if getattr(event, "denial", ""):
        return [event.denial]
    tail = getattr(event, "output_tail", "")
    if tail:
        return tail.splitlines()[-TAIL_LINES:]
    if not failure(event) and event.output:
        return event.output.splitlines()[:1]
    return []


def _cost(config: Any, usage: Any) -> float | None:
    """The run's cost in dollars where known (reported, or priced from the table); None otherwise."""
    if config is None:
        return getattr(usage, "cost", None) or None
    try:
        from coder import pricing

        return pricing.cost(config.model, usage, config)
    except Exception:  # a price table's mistake must not end the run's report
        return getattr(usage, "cost", None) or None


def _stopped(event: Event) -> bool:
    """An Error that only says the user stopped the run (older cores), which is no error."""
    return isinstance(event, Error) and event.message == "interrupted"


def json_renderer(out: TextIO, err: TextIO) -> Render:
    """One JSON event per line on `out`; an error is also one line on `err`, for whoever reads the log."""

    def render(event: Event) -> None:
        out.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        out.flush()
        if isinstance(event, Error) and not _stopped(event):
            err.write(f"coder: error: {printable(event.message, 2000)}\n")
            err.flush()

    return render


def terminal_renderer(err: TextIO, config: Any = None) -> Render:
    """Compact progress lines for a person watching stderr.

    An assistant message is held back until a tool call shows it was commentary:
    the final answer goes to stdout, so printing it here too would show it twice.
    """
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=err, highlight=False)
    pending: dict[str, str] = {"message": "", "reasoning": ""}
    started = time.monotonic()

    def flush_reasoning() -> None:
        if pending["reasoning"].strip():
            console.print(f"[dim italic]{escape(pending['reasoning'].strip())}[/]")
        pending["reasoning"] = ""

    def render(event: Event) -> None:
        if isinstance(event, ReasoningDelta):
            pending["reasoning"] += event.text
            return
        flush_reasoning()
        if isinstance(event, RunStarted):
            sb = event.sandbox
            console.print(f"[dim]coder · {escape(event.model)} · sandbox {sb['mode']} · {escape(event.workspace)}[/]")
        elif isinstance(event, MessageDone):
            pending["message"] = event.text
        elif isinstance(event, ToolCallStarted):
            if pending["message"]:
                console.print(escape(pending["message"]))
                pending["message"] = ""
            console.print(f"[cyan]→ {event.name}[/] {escape(printable(event.summary, 120))}")
        elif isinstance(event, ToolCallFinished):
            took = fmt.seconds(event.duration)
            if event.ok:
                first = event.output.splitlines()[0] if event.output else ""
                console.print(f"  [green]✓[/] [dim]{escape(printable(first, 160))} ({took})[/]")
            else:
                why = failure(event) or printable(event.output.splitlines()[0] if event.output else "failed", 160)
                console.print(f"  [red]✗ {escape(why)}[/] [dim]({took})[/]")
                if failure(event):
                    for line in failure_details(event):
                        console.print(f"    [dim]│ {escape(printable(line))}[/]")
        elif isinstance(event, Notice):
            console.print(f"[dim]{escape(event.message)}[/]")
        elif isinstance(event, Compacted):
            console.print(f"[cyan]{escape(event.line())}[/]")
        elif isinstance(event, Shrunk):
            console.print(f"[dim]{escape(event.line())}[/]")
        elif isinstance(event, Retrying):
            console.print(f"[yellow]retry {event.attempt} in {event.delay:.1f}s: {escape(event.reason)}[/]")
        elif isinstance(event, Error) and not _stopped(event):
            console.print(f"[red]error: {escape(event.message)}[/]")
        elif isinstance(event, TurnDone):
            status = "stopped" if event.status == "interrupted" else event.status
            line = f"{status} · {fmt.seconds(time.monotonic() - started)} · {fmt.usage(event.usage, _cost(config, event.usage))}"
            console.print(f"[dim]{escape(line)}[/]")

    return render


def plain_renderer(err: TextIO, config: Any = None) -> Render:
    """Plain lines for a log (CI, a file, a pipe), each written as it happens: a start line, one line
    per tool call (and a few more under a failed one), one per retry, notes, errors, and the end."""
    started = time.monotonic()

    def say(line: str) -> None:
        err.write(f"coder: {line}\n")
        err.flush()

    def render(event: Event) -> None:
        if isinstance(event, RunStarted):
            sb = event.sandbox
            session = f" · session {event.session}" if event.session else ""
            say(f"started · {event.model} · sandbox {sb['mode']} ({sb.get('backend', '?')}) · "
                f"{event.workspace}{session}")
        elif isinstance(event, ToolCallStarted):
            say(f"tool: {event.name} {printable(event.summary, 160)}".rstrip())
        elif isinstance(event, ToolCallFinished) and not event.ok:
            why = failure(event)
            took = fmt.seconds(event.duration)
            if why:
                say(f"{event.name} failed ({why}) after {took}")
                for line in failure_details(event):
                    say(f"  | {printable(line)}")
            else:
                first = printable(event.output.splitlines()[0] if event.output else "", 300)
                say(f"{event.name} failed: {first}" if first else f"{event.name} failed")
        elif isinstance(event, Retrying):
            say(f"retry {event.attempt} in {event.delay:.1f}s: {event.reason}")
        elif isinstance(event, (Notice, Compacted, Shrunk)):
            say(f"note: {event.message if isinstance(event, Notice) else event.line()}")
        elif isinstance(event, Error) and not _stopped(event):
            say(f"error: {event.message}")
        elif isinstance(event, TurnDone):
            status = "stopped" if event.status == "interrupted" else event.status
            say(f"{status} · {fmt.seconds(time.monotonic() - started)} · "
                f"{fmt.usage(event.usage, _cost(config, event.usage))}")

    return render


def quiet_renderer(err: TextIO) -> Render:
    """--quiet: only what went wrong or must be known, one line each."""

    def render(event: Event) -> None:
        if isinstance(event, Error) and not _stopped(event):
            err.write(f"coder: error: {event.message}\n")
            err.flush()
        elif isinstance(event, (Notice, Compacted)):
            err.write(f"coder: note: {event.message if isinstance(event, Notice) else event.line()}\n")
            err.flush()
        elif isinstance(event, TurnDone) and event.status == "interrupted":
            err.write("coder: stopped\n")
            err.flush()

    return render
