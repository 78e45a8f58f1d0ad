"""`coder exec`: run one task to completion without asking anything.

The final answer goes to stdout; progress goes to stderr (rich, only when
stderr is a terminal); `--json` replaces both with one JSON event per line on
stdout. Exit codes: 0 done, 1 failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any, Callable, TextIO

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

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _preload_openai() -> None:
    """Import the client on a side thread while the main thread sets up (start-up latency)."""

    def load() -> None:
        try:
            import openai  # noqa: F401
        except Exception:
            pass

    threading.Thread(target=load, daemon=True).start()


def json_renderer(out: TextIO) -> Callable[[Event], None]:
    def render(event: Event) -> None:
        out.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        out.flush()

    return render


def progress_renderer(err: TextIO) -> Callable[[Event], None]:
    """Compact progress lines for a person watching stderr.

    An assistant message is held back until a tool call shows it was commentary:
    the final answer goes to stdout, so printing it here too would show it twice.
    """
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=err, highlight=False)
    pending: dict[str, str] = {"message": "", "reasoning": ""}

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
            console.print(f"[cyan]→ {event.name}[/] {escape(event.summary[:120])}")
        elif isinstance(event, ToolCallFinished):
            first = event.output.splitlines()[0] if event.output else ""
            mark = "[green]✓[/]" if event.ok else "[red]✗[/]"
            console.print(f"  {mark} [dim]{escape(first[:160])} ({event.duration:.2f}s)[/]")
        elif isinstance(event, Notice):
            console.print(f"[dim]{escape(event.message)}[/]")
        elif isinstance(event, Compacted):
            console.print(f"[cyan]{escape(event.line())}[/]")
        elif isinstance(event, Shrunk):
            console.print(f"[dim]{escape(event.line())}[/]")
        elif isinstance(event, Retrying):
            console.print(f"[yellow]retry {event.attempt} in {event.delay:.1f}s: {escape(event.reason)}[/]")
        elif isinstance(event, Error):
            console.print(f"[red]error: {escape(event.message)}[/]")
        elif isinstance(event, TurnDone):
            u = event.usage
            console.print(
                f"[dim]{event.status} · tokens in {u.input_tokens} (cached {u.cached_tokens}) · "
                f"out {u.output_tokens} (reasoning {u.reasoning_tokens})[/]"
            )

    return render


def quiet_renderer(err: TextIO) -> Callable[[Event], None]:
    """Non-terminal stderr: only what went wrong or must be known, one line each."""

    def render(event: Event) -> None:
        if isinstance(event, Error):
            err.write(f"coder: error: {event.message}\n")
            err.flush()
        elif isinstance(event, (Notice, Compacted)):
            err.write(f"coder: note: {event.message if isinstance(event, Notice) else event.line()}\n")
            err.flush()

    return render


def _stop_on_hangup() -> list[int]:
    """SIGTERM and SIGHUP stop the run the way Ctrl-C does (commands killed, calls answered, placeholders
    released); the list gets the signal's number, for the exit status."""
    import signal

    stopped: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        if not stopped:
            stopped.append(signum)
            raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    return stopped


def run_exec(args: Any) -> int:
    from coder.config import ConfigError, check_workspace, load_config, workspace_dir

    _preload_openai()
    workspace = workspace_dir(args.cd)
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not prompt or not prompt.strip():
        raise ConfigError("the prompt is empty: give the task as an argument, or - to read it from stdin")
    config, notices = load_config(
        workspace,
        model=args.model,
        sandbox=args.sandbox,
        max_turns=args.max_turns,
        base_url=args.base_url,
        tool_choice=args.tool_choice,
        reasoning_effort=args.reasoning_effort,
        background=True if args.background else None,
        network=True if args.network else None,
        auto_commit=True if args.auto_commit else None,
        approval="never",  # nobody to ask: what the sandbox refuses becomes the tool's error output
    )
    check_workspace(workspace, config.sandbox, explicit=args.cd is not None)
    config.api_key()  # fail now, in one line, rather than at the first request

    if args.json:
        render = json_renderer(sys.stdout)
    elif sys.stderr.isatty():
        render = progress_renderer(sys.stderr)
    else:
        render = quiet_renderer(sys.stderr)
    for notice in notices:
        sys.stderr.write(f"coder: note: {notice}\n")

    from coder.sessions import RecordingError, open_session
    from coder.transcript import TranscriptError

    try:
        session = open_session(config, workspace, resume=args.resume, last=args.last, auto_commit=config.auto_commit,
                               model_given=args.model is not None, sandbox_given=args.sandbox is not None)
    except TranscriptError as e:
        raise ConfigError(str(e)) from None
    except RecordingError as e:  # nothing ran: nothing is lost
        sys.stderr.write(f"coder: error: {e}\n")
        return EXIT_FAILED
    for warning in session.warnings:
        sys.stderr.write(f"coder: warning: {warning}\n")
    agent = session.agent
    backend = agent.tool_ctx.backend
    if backend.name == "none":
        sys.stderr.write(
            f"coder: warning: no sandbox is available here ({backend.detail}); commands will be refused. "
            "Rerun with --sandbox full-access to run them without isolation.\n"
        )
    done: TurnDone | None = None
    stopped_by = _stop_on_hangup()
    events = session.run(prompt)
    try:
        started = agent.started_event()
        started.session = session.id
        render(started)
        for event in events:
            render(event)
            if isinstance(event, TurnDone):
                done = event
    except KeyboardInterrupt:
        events.close()  # answers open calls, kills running commands, records the checkpoint
        render(Error("interrupted"))
        return 128 + stopped_by[0] if stopped_by else EXIT_INTERRUPTED
    finally:
        session.close()
    assert done is not None
    if args.output:
        try:
            Path(args.output).write_text(done.final_text + ("\n" if done.final_text else ""), encoding="utf-8")
        except OSError as e:
            sys.stderr.write(f"coder: error: cannot write {args.output}: {e.strerror}\n")
            return EXIT_FAILED
    if not args.json and done.final_text:
        sys.stdout.write(done.final_text.rstrip("\n") + "\n")
        sys.stdout.flush()
    if done.status == "interrupted":
        return 128 + stopped_by[0] if stopped_by else EXIT_INTERRUPTED
    return EXIT_OK if done.ok else EXIT_FAILED
