"""What a resumed session shows first: the tail of the conversation, rendered as it was, and the
usage figures (context, tokens, cost) as the transcript left them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from coder.events import Usage
from coder.repl.render import Status, block_boundary, markdown
from coder.repl.toolcalls import one_line

RECAP_MESSAGES = 6
RECAP_LINES = 12  # of each assistant message; the rest is left out at a block boundary


def shorten(text: str, max_lines: int = RECAP_LINES) -> str:
    """At most `max_lines` lines of Markdown, cut where a block ends (never inside a code fence)."""
    lines = text.strip("\n").splitlines()
    if len(lines) <= max_lines:
        return "\n".join(lines)
    head = "\n".join(lines[:max_lines]) + "\n"
    cut = block_boundary(head)
    kept = head[:cut] if cut else head
    if not cut and sum(1 for line in kept.splitlines() if line.lstrip().startswith(("```", "~~~"))) % 2:
        kept += "```\n"
    return kept.rstrip("\n") + f"\n\n*… {len(lines) - len(kept.splitlines())} more lines*"


def recap(console: Console, items: list[dict[str, Any]], last: int = RECAP_MESSAGES) -> None:
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
            lines = text.strip().splitlines()
            shown = "\n  ".join(one_line(line, 200) for line in lines[:3]) + ("\n  …" if len(lines) > 3 else "")
            console.print(Text("› " + shown, style="bold dim"))
        else:
            console.print(markdown(shorten(text), "dim"))


def _records(path: Path, kinds: tuple[bytes, ...]) -> list[dict[str, Any]]:
    """The transcript's records that mention one of `kinds` (cheap: only those lines are parsed)."""
    out = []
    try:
        data = path.read_bytes()
    except OSError:
        return out
    for line in data.split(b"\n"):
        if any(k in line for k in kinds):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
    return out


def restore_usage(session: Any, status: Status, price: Callable[[str, Usage], float | None]) -> None:
    """Tokens and cost so far, and how full the context is, from the usage the transcript recorded."""
    path = session.transcript.path
    if path is None or not session.agent.conversation.items:
        return
    records = _records(path, (b'"type":"usage"', b'"type":"settings"', b'"type":"header"', b'"type":"compaction"',
                              b'"type":"context.compacted"'))
    model = session.info.model or session.agent.config.model
    total, cost, unpriced = Usage(), 0.0, set()
    last: dict[str, Any] | None = None
    for record in records:
        kind = record.get("type")
        if kind in ("header", "settings"):
            model = record.get("model") or model
        elif kind == "compaction":
            last = None  # the history was rewritten since: the agent's estimate is the better figure
        elif kind == "event" and isinstance(record.get("event"), dict):
            event = record["event"]
            if event.get("type") == "context.compacted":
                last = None
            if event.get("type") != "usage" or not isinstance(event.get("request"), dict):
                continue
            request = Usage(**{k: v for k, v in event["request"].items() if k in Usage.__dataclass_fields__})
            total.add(request)
            dollars = price(model, request)
            if dollars is None:
                unpriced.add(model)
            else:
                cost += dollars
            last = event
    agent = session.agent
    if total.total_tokens or total.input_tokens:
        agent.usage = total
    if last is not None and last.get("context_tokens"):
        agent.meter.reported(int(last["context_tokens"]), agent.conversation.size)
    with status.lock:
        status.total = Usage(**vars(agent.usage))
        status.context_tokens = agent.context_tokens()
        status.cost, status.unpriced = cost, unpriced
