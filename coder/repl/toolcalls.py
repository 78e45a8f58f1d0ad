"""A finished tool call as the REPL shows it: one line that fits the terminal, and for a failed
command its exit code and last lines of output; `/last` shows the whole of it.

The facts come from the event's fields (exit_code, timed_out, denied, ...), never from parsing the
text the model reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.text import Text

from coder.events import ToolCallFinished

TAIL_LINES = 5  # lines of a failed command's output shown under its line
_DONE_VERB = re.compile(r"^(Edited|Created|Overwrote|Wrote)\s+(\S+?)(?::\s+|:$|\s+(?=\()|$)")


@dataclass
class FinishedCall:
    """A call kept for /last: the event and the key argument it was started with."""

    event: ToolCallFinished
    summary: str


def one_line(text: str, width: int = 100) -> str:
    """`text` on one line, cut to `width` with "…" (at a word boundary when one is near)."""
    line = " ".join(text.split())
    return clip(line, width)


def clip(line: str, width: int) -> str:
    if width <= 1:
        return "…" if line and width == 1 else ""
    if len(line) <= width:
        return line
    cut = line[: width - 1]
    space = cut.rfind(" ")
    if space >= width * 0.6:  # a word boundary not too far back
        cut = cut[:space]
    return cut.rstrip(" ,;:·-") + "…"


def first_sentence(text: str, name: str = "") -> str:
    """What a tool's error says, in one clause: its first line without "Error: " or the tool's name, and
    never ending on a colon that announced lines not shown."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "failed"
    line = lines[0].removeprefix("Error:").strip()
    if name:
        line = line.removeprefix(f"{name}:").strip()
    while line.endswith(":"):
        line = line[:-1].rstrip()
    return line or "failed"


def failure(event: ToolCallFinished) -> str:
    """Why a call failed, in a few words: exit 3, timed out, stopped, blocked by the sandbox, the error."""
    if event.timed_out:
        return "timed out"
    if event.interrupted:
        return "stopped"
    if event.denied:
        return f"blocked by the sandbox: {event.denial}" if event.denial else "blocked by the sandbox"
    if event.exit_code not in (None, 0):
        return f"exit {event.exit_code}"
    return first_sentence(event.output, event.name)


def success(event: ToolCallFinished, summary: str) -> str:
    """What a call that worked did: exit 0, 12 lines, 3 matches, the edit made (its path said once)."""
    out, counts = event.output, event.counts or {}
    if event.name == "run_command":
        return f"exit {event.exit_code if event.exit_code is not None else 0}"
    lines = [line for line in out.splitlines() if line.strip()]
    if event.name == "read_file":
        shown = counts.get("lines") or sum(1 for line in lines if re.match(r"^\s*\d+\t", line))
        return f"{shown} lines" if shown else (lines[0] if lines else "")
    if event.name == "search_file":
        if "matches" in counts:
            return f"{counts['matches']} matches"
        return lines[0] if out.startswith("No matches") else f"{len(lines)} matches"
    if event.name in ("glob_files", "list_dir"):
        n = counts.get("entries", counts.get("files", len(lines)))
        return f"{n} {'entry' if n == 1 else 'entries'}"
    head = lines[0] if lines else ""
    for verb in ("Edited", "Created", "Overwrote", "Wrote"):
        if summary and head.startswith(f"{verb} {summary}"):  # a path with spaces, as the call gave it
            rest = head[len(verb) + len(summary) + 1:].lstrip(":").strip()
            return rest if verb == "Edited" and rest else f"{verb.lower()} {rest}".strip()
    m = _DONE_VERB.match(head)
    if m and (not summary or m.group(2) in (summary, summary.lstrip("./")) or summary.endswith(m.group(2))):
        rest = head[m.end():].strip()
        verb = m.group(1).lower()
        if verb == "edited":  # "Edited app.py: replaced 1 occurrence" -> "replaced 1 occurrence"
            return rest or verb
        return f"{verb} {rest}".strip()
    return head


def tool_line(event: ToolCallFinished, summary: str, width: int) -> Text:
    """✓/✗, the tool, its key argument, what came of it and how long it took, within `width` columns."""
    ok = event.ok
    mark = Text("  ✓ ", style="green") if ok else Text("  ✗ ", style="bold red")
    outcome = success(event, summary) if ok else failure(event)
    took = f" · {event.duration:.2f}s"
    arg = one_line(summary)
    fixed = 4 + len(event.name) + len(took) + 3  # mark, name, " · " and the time
    room = max(0, width - fixed)
    outcome = " ".join(outcome.split())
    if arg:
        arg_room = max(12, room - min(len(outcome), max(20, room // 2)) - 1)
        arg = clip(arg, min(len(arg), arg_room))
        room -= len(arg) + 1
    outcome = clip(outcome, max(room, 8))
    line = mark + Text(event.name, style="cyan")
    if arg:
        line += Text(f" {arg}")
    if outcome:
        line += Text(" · ") + Text(outcome, style="dim" if ok else "red")
    return line + Text(took, style="dim")


def tail(event: ToolCallFinished, lines: int = TAIL_LINES) -> list[str]:
    """The last lines a failed command printed (its own output, our header left out)."""
    if event.ok or event.name != "run_command":
        return []
    return [line for line in event.output_tail.splitlines()][-lines:]


def details(event: ToolCallFinished, width: int, number: int) -> Text | None:
    """Under a failed command's line: the last lines of its output, and how to see all of it."""
    shown = tail(event)
    if not shown:
        return None
    text = Text()
    for line in shown:
        text.append("    │ ", style="red")
        text.append(clip(line.expandtabs(4), max(8, width - 6)) + "\n", style="dim")
    total = len(event.output_tail.splitlines())
    more = f"{total - len(shown)} more line(s); " if total > len(shown) else ""
    hint = "/last shows the whole output" if number == 1 else f"/last {number} shows the whole output"
    text.append(f"    {more}{hint}", style="dim")
    return text


def full_output(call: FinishedCall, number: int) -> list[Text]:
    """What /last prints: a heading line, then everything the model read of the call."""
    event = call.event
    state = ("ok · " + success(event, call.summary)) if event.ok else failure(event)
    head = Text.assemble(("── ", "dim"), (event.name, "cyan"), f" {one_line(call.summary, 200)}".rstrip(),
                         (f" · {state} · {event.duration:.2f}s", "dim" if event.ok else "red"),
                         (f" ({number} from the end)" if number > 1 else "", "dim"))
    body = Text(event.output.rstrip("\n") or "(no output)")
    return [head, body]
