"""`coder exec`: run one task to completion without asking anything.

The final answer goes to stdout, progress to stderr (see coder.progress); `--json`
writes one JSON event per line on stdout instead. Input piped in with a prompt
given (`git diff | coder exec "review this"`) goes with the prompt, see
`with_piped`. Exit codes: 0 done, 1 failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from pathlib import Path
from typing import Any

from coder.config import ConfigError
from coder.events import TurnDone

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
PIPED_LIMIT = 256 * 1024  # bytes of piped input sent with a prompt (~64k tokens); more is refused, not cut
STDIN_PATIENCE = 1.0  # seconds of silence on a piped stdin before saying what coder waits for


def _preload_openai() -> None:
    """Import the client on a side thread while the main thread sets up (start-up latency)."""

    def load() -> None:
        try:
            import openai  # noqa: F401
        except Exception:
            pass

    threading.Thread(target=load, daemon=True).start()


def stdin_piped() -> bool:
    """Whether stdin brings input: a pipe, a socket or a file; not a terminal, /dev/null or a closed stdin."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISREG(mode)


def read_stdin(what: str, limit: int | None = None) -> str:
    """All of stdin as text. A pipe that stays silent gets one line on stderr saying what coder waits for
    (a parent that never closes it would otherwise look like a hang); over `limit` bytes is refused."""
    import select

    try:
        ready = select.select([0], [], [], STDIN_PATIENCE)[0]
    except (OSError, ValueError):
        ready = [0]
    if not ready:
        sys.stderr.write(f"coder: reading {what} from stdin until it ends (run with </dev/null if there is none)\n")
        sys.stderr.flush()
    chunks: list[bytes] = []
    size = 0
    while limit is None or size <= limit:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    if limit is not None and size > limit:
        raise ConfigError(f"{what} is over {limit // 1024} KiB: pipe in less (head, tail, grep), or save it "
                          "to a file in the project and ask the agent to read it")
    if b"\0" in data:
        raise ConfigError(f"{what} is binary (it holds NUL bytes): only text can go with the prompt")
    return data.decode("utf-8", "replace")


def with_piped(prompt: str, piped: str) -> str:
    """The prompt, a blank line, then the piped text in a fenced block longer than any backtick run in it
    (so the text cannot close the fence early)."""
    longest = run = 0
    for c in piped:
        run = run + 1 if c == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    body = piped[:-1] if piped.endswith("\n") else piped
    return f"{prompt.rstrip()}\n\nPiped into coder on standard input:\n{fence}\n{body}\n{fence}"


def check_output_path(path: str) -> Path:
    """-o FILE must be writable before the task runs, not found out after it (the answer would be lost)."""
    target = Path(path).expanduser().absolute()
    if target.is_dir():
        raise ConfigError(f"-o {path}: that is a folder; name a file to write the answer to")
    folder = target.parent
    if not folder.is_dir():
        raise ConfigError(f"-o {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ConfigError(f"-o {path}: not writable")
    return target


def check_images(paths: list[str]) -> list[Path]:
    """-i FILE: each image checked (kind, size, readable) before anything runs; one line for a bad one."""
    if not paths:
        return []
    from coder.images import ImageError, load_image

    out = []
    for path in paths:
        try:
            load_image(path)
        except ImageError as e:
            raise ConfigError(f"-i {e}") from None
        out.append(Path(path).expanduser().absolute())
    return out


def stop_on_hangup() -> list[int]:
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


def _renderer(args: Any, config: Any):
    from coder import progress

    if getattr(args, "json", False):
        return progress.json_renderer(sys.stdout, sys.stderr)
    if getattr(args, "quiet", False):
        return progress.quiet_renderer(sys.stderr)
    if sys.stderr.isatty():
        return progress.terminal_renderer(sys.stderr, config)
    return progress.plain_renderer(sys.stderr, config)


def _prompt(args: Any) -> str:
    """The task: the argument (or stdin for -, or --prompt-file), with piped input after it when there is some."""
    if args.prompt == "-":
        return read_stdin("the prompt")
    if args.prompt is None:
        from coder.userfiles import read_text

        prompt = read_text(args.prompt_file, "--prompt-file")
    else:
        prompt = args.prompt
    if prompt.strip() and getattr(args, "command", None) == "exec" and stdin_piped():
        piped = read_stdin("the piped input", PIPED_LIMIT)
        if piped.strip():
            return with_piped(prompt, piped)
        sys.stderr.write("coder: note: the piped input was empty; the prompt goes alone\n")
    return prompt


def run_exec(args: Any) -> int:
    from dataclasses import replace

    from coder.config import check_workspace, for_background, load_config, workspace_dir

    _preload_openai()
    workspace = workspace_dir(args.cd)
    if args.prompt is not None and getattr(args, "prompt_file", None):
        raise ConfigError("give the task as PROMPT or with --prompt-file, not both")
    if args.prompt is None and not getattr(args, "prompt_file", None):
        raise ConfigError("no task: give it as PROMPT, - to read it from stdin, or --prompt-file FILE")
    if args.prompt is not None and args.prompt != "-" and not args.prompt.strip():
        raise ConfigError("the prompt is empty: give the task as an argument, or - to read it from stdin")
    output = check_output_path(args.output) if args.output else None
    schema = None
    if getattr(args, "output_schema", None):
        from coder import schemas

        try:
            schema = schemas.load(args.output_schema)
        except schemas.SchemaError as e:
            raise ConfigError(str(e)) from None
    images = check_images(getattr(args, "image", None) or [])
    # A resumed session runs on its own model (unless -m says otherwise): background mode is judged on
    # that one, once the session is open, not on the config's.
    resuming = args.resume is not None or bool(args.last)
    config, notices = load_config(
        workspace,
        settle_background=not resuming,
        model=args.model,
        sandbox=args.sandbox,
        max_turns=args.max_turns,
        max_tokens=getattr(args, "max_tokens", None),
        max_cost=getattr(args, "max_cost", None),
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
    prompt = _prompt(args)
    if not prompt.strip():
        raise ConfigError("the prompt is empty: give the task as an argument, or - to read it from stdin")

    from coder.sessions import RecordingError, open_session
    from coder.transcript import TranscriptError

    try:
        session = open_session(replace(config, background=False) if resuming else config, workspace,
                               resume=args.resume, last=args.last, auto_commit=config.auto_commit,
                               model_given=args.model is not None, sandbox_given=args.sandbox is not None)
    except TranscriptError as e:
        raise ConfigError(str(e)) from None
    except RecordingError as e:  # nothing ran: nothing is lost
        sys.stderr.write(f"coder: error: {e}\n")
        return EXIT_FAILED
    if resuming and config.background:
        try:
            settled = for_background(replace(session.agent.config, background=True), notices)
        except ConfigError:
            session.close()
            raise
        session.agent.config = session.agent.client.config = settled

    render = _renderer(args, session.agent.config)  # the model in force: a resumed session's own
    for notice in notices:
        sys.stderr.write(f"coder: note: {notice}\n")
    for warning in session.warnings:
        sys.stderr.write(f"coder: warning: {warning}\n")
    agent = session.agent
    if schema is not None:
        agent.set_output_schema(schema)
    backend = agent.tool_ctx.backend
    if backend.name == "none":
        sys.stderr.write(
            f"coder: warning: no sandbox is available here ({backend.detail}); commands will be refused. "
            "Rerun with --sandbox full-access to run them without isolation.\n"
        )
    done: TurnDone | None = None
    stopped_by = stop_on_hangup()
    events = session.run(prompt, images=images)
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
        if done is None:
            render(TurnDone(status="interrupted", final_text=""))
        return 128 + stopped_by[0] if stopped_by else EXIT_INTERRUPTED
    finally:
        session.close()
    assert done is not None
    answer = done.final_text
    if schema is not None:  # the checked JSON, as JSON; nothing when it did not match (the error says why)
        answer = json.dumps(done.output, ensure_ascii=False, indent=2) if done.ok else ""
    if output is not None:
        try:
            output.write_text(answer + ("\n" if answer else ""), encoding="utf-8")
        except OSError as e:
            sys.stderr.write(f"coder: error: cannot write {args.output}: {e.strerror}\n")
            return EXIT_FAILED
    if not args.json and answer:
        sys.stdout.write(answer.rstrip("\n") + "\n")
        sys.stdout.flush()
    if done.status == "interrupted":
        return 128 + stopped_by[0] if stopped_by else EXIT_INTERRUPTED
    return EXIT_OK if done.ok else EXIT_FAILED
