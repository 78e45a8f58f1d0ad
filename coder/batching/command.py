"""`coder batch PROMPT_FILE --files GLOB...`: the command-line front end of coder.batching.

Exit codes: 0 every target succeeded (now or in an earlier run), 1 some did not, 2 usage error,
130 stopped (Ctrl-C; 128+N for signal N; 141 when the reader of --json's lines went away).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from coder.config import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_PIPE = 0, 1, 130, 141


def run_batch(args: Any) -> int:
    from coder import batching
    from coder.batching import display
    from coder.batching.state import default_path
    from coder.config import check_workspace, load_config, workspace_dir
    from coder.exec import stop_on_hangup
    from coder.userfiles import read_text

    stopped_by = stop_on_hangup()  # from the start: a SIGTERM at any point is 143, not 130
    workspace = workspace_dir(args.cd)
    prompt_file = Path(args.prompt_file).expanduser().absolute()
    template = read_text(args.prompt_file, "the prompt file")
    if not template.strip():
        raise ConfigError(f"{args.prompt_file} is empty: write the task in it, with {{file}} where the target's path goes")
    config, notices = load_config(
        workspace, model=args.model, sandbox=args.sandbox, max_turns=args.max_turns, max_tokens=args.max_tokens,
        max_cost=args.max_cost, base_url=args.base_url, network=True if args.network else None,
        background=True if args.completion_window else None, completion_window=args.completion_window,
        approval="never",
    )
    check_workspace(workspace, config.sandbox, explicit=args.cd is not None)
    config.api_key()
    err = sys.stderr
    lines = display.Lines(sys.stdout if args.json else None)
    closed: list[BaseException] = []

    def on_result(result: Any) -> None:
        if args.json:
            try:
                lines.write(display.json_line(result))
            except BrokenPipeError as e:  # `| head`: no one reads the rest; stop paying for it
                closed.append(e)
                raise
        elif not args.quiet and not (err.isatty() and result.ok):
            lines.write(display.plain_line(result, runner.progress))

    state = Path(args.state).expanduser().absolute() if args.state else default_path(prompt_file)
    runner, more = batching.prepare(template, workspace, config, globs=args.files, from_list=args.from_list,
                                     shard=args.shard, state=state, own=[prompt_file], jobs=args.jobs,
                                     scope=args.scope, on_result=on_result)

    def loaded(batch: Any) -> None:
        for notice in [*notices, *more]:
            err.write(f"coder: note: {notice}\n")
        if batch.state.stale:
            err.write(f"coder: note: the prompt changed since {batch.state.path.name} was written: its "
                      f"{batch.state.stale} record(s) are not used, every target runs again\n")
        if batch.state.unreadable:
            err.write(f"coder: warning: {batch.state.unreadable} record(s) of the state file are not a batch's "
                      "records (edited by hand, or damaged): those targets run again\n")
        skipped = sum(1 for t in batch.targets if batch.state.done(t))
        if skipped:
            err.write(f"coder: {skipped} of {len(batch.targets)} target(s) were done in an earlier run: skipped\n")
        if batch.scope == "file" and not _sandboxed(batch):
            err.write("coder: warning: no sandbox is available here: commands will be refused (the file tools "
                      "still work); see the README's Sandbox section\n")

    if err.isatty() and not args.quiet and not args.json:
        with display.live(runner.progress, err):
            report = batching.run(runner, loaded)
    else:
        report = batching.run(runner, loaded)
    if report.interrupted:  # stopped: a second Ctrl-C must not cut the report short
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if closed:
        try:  # what is still buffered for the closed pipe goes nowhere, quietly, at exit too
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_PIPE
    if runner.callback_error is not None:
        raise runner.callback_error
    if not args.quiet or not report.ok:
        display.summary(report, runner.progress, err)
    if report.interrupted:
        return 128 + stopped_by[0] if stopped_by else EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_FAILED


def _sandboxed(batch: Any) -> bool:
    """Whether commands get a sandbox here (the same backend every session will choose)."""
    from sandbox import backends
    from sandbox.policy import Mode, Policy

    policy = Policy.for_workspace(batch.workspace, Mode.parse(batch.config.sandbox))
    return backends.select(policy, batch.config.sandbox_backend).name != "none"
