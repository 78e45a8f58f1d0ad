"""What `coder batch` shows: a live view on a terminal, a line per target otherwise, a summary at the end.

All of it goes to stderr; stdout carries only `--json`'s result lines, one per target.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from coder import fmt
from coder.batching.runner import Progress, TargetResult


def _headline(p: Progress) -> str:
    with p.lock:
        done, failed, running, skipped = p.done, p.failed, len(p.running), p.skipped
        usage = p.usage
        elapsed = time.monotonic() - p.started
        line = (f"{done + skipped}/{p.total} done · {running} running · {failed} failed · "
                f"{fmt.tokens(usage.total_tokens)} tokens")
        if usage.cost is not None:
            line += f" · {fmt.cost(usage.cost)}"
    return f"{line} · {fmt.seconds(elapsed)}"


@contextmanager
def live(progress: Progress, err: TextIO, show_running: int = 8) -> Iterator[None]:
    """A rich view, redrawn a few times a second: a bar, the counts, and the targets running now."""
    from rich.console import Console, Group
    from rich.live import Live
    from rich.markup import escape
    from rich.progress_bar import ProgressBar
    from rich.text import Text

    console = Console(file=err, highlight=False)

    def view() -> Group:
        with progress.lock:
            finished = progress.done + progress.failed + progress.skipped
            running = sorted(progress.running.items(), key=lambda kv: kv[1])[:show_running]
        now = time.monotonic()
        rows: list[Any] = [ProgressBar(total=max(1, progress.total), completed=finished, width=40),
                           Text(_headline(progress))]
        rows += [Text.from_markup(f"[dim]  {escape(t)} · {fmt.seconds(now - since)}[/]") for t, since in running]
        return Group(*rows)

    with Live(view(), console=console, refresh_per_second=4, transient=True, get_renderable=view):
        yield


def plain_line(result: TargetResult, progress: Progress) -> str:
    """One finished target, for a log: its place, its status, its figures, its reason."""
    with progress.lock:
        n = progress.done + progress.failed + progress.skipped
    figures = f"{fmt.seconds(result.seconds)}, {fmt.tokens(result.usage.total_tokens)} tokens"
    head = f"[{n}/{progress.total}] {result.status:<11} {result.target}"
    if result.status == "skipped":
        return f"{head} (done in an earlier run)"
    if result.ok:
        return f"{head} ({figures})"
    return f"{head}: {result.error or result.status} ({figures})"


def json_line(result: TargetResult) -> str:
    return json.dumps(result.to_dict(), ensure_ascii=False)


def summary(report: Any, progress: Progress, err: TextIO) -> None:
    """The table of counts, then each target that did not succeed (a coder.batching.BatchReport's `failed`) with
    its reason and how to go on with it."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=err, highlight=False, soft_wrap=True)
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    table = Table(title="coder batch", show_header=True, header_style="bold")
    table.add_column("status")
    table.add_column("targets", justify="right")
    for status in sorted(counts, key=lambda s: (s != "completed", s != "skipped", s)):
        table.add_row(status, str(counts[status]))
    with progress.lock:
        usage = progress.usage
    table.add_row("tokens", fmt.tokens(usage.total_tokens))
    if usage.cost is not None:
        table.add_row("cost", fmt.cost(usage.cost))
    table.add_row("elapsed", fmt.seconds(time.monotonic() - progress.started))
    if report.rate_limited:
        table.add_row("rate limited", f"{report.rate_limited} time(s)")
    console.print(table)
    failed = report.failed
    if failed:
        console.print(f"[bold red]{len(failed)} target(s) did not succeed:[/]")
        for r in failed:
            line = f"  {escape(r.target)}: {escape(r.error or r.status)}"
            if r.session_id:
                line += f"  [dim](coder resume {escape(r.session_id)})[/]"
            console.print(line)
    if report.state_error:
        console.print(f"[bold red]coder: error: {escape(report.state_error)}[/]")
    waiting = counts.get("not_started", 0)
    if report.state_error:
        return  # without the state file a re-run would start over: no advice that says otherwise
    if report.interrupted:
        console.print(f"stopped: {waiting} target(s) not started; run the same command again to go on "
                      "(targets that succeeded are skipped)")
    elif failed:
        console.print("run the same command again to retry them (targets that succeeded are skipped)")


class Lines:
    """Per-target output that stays readable when several threads finish at once. `out` None: stderr as it
    is at the time of writing (under the live view, rich's proxy, which prints above the view)."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self.lock = threading.Lock()

    def write(self, text: str) -> None:
        import sys

        with self.lock:
            out = self.out or sys.stderr
            out.write(text + "\n")
            out.flush()
