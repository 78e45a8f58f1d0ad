"""Compaction: replacing a history that fills the context window by a short one that carries the work on.

Two ways, chosen per endpoint (`compaction = auto | endpoint | local | off`):
- `endpoint`: the provider's `POST /responses/compact`; its output items (a
  `compaction` item with `encrypted_content`, kept user messages) are the new
  history, replayed verbatim like any output. It works under Zero Data Retention.
- `local`: an ordinary request, without tools, asks the model for a hand-off
  note; the new history is the user's own messages (recent ones whole, older
  ones trimmed), the note, and the latest tool outputs. When even that request
  would not fit, the model summarizes a text rendering of the history cut to fit.
`auto` tries the endpoint's and falls back to `local` for good (remembered per
base URL) when the endpoint answers 404 or 400 to it.
"""

from __future__ import annotations

import json
from typing import Any

from coder.context import CHARS_PER_TOKEN
from coder.conversation import Item, call_output_text, text_of, user_message

SUMMARY_PROMPT = """[coder] The conversation has grown too long for the model's context window. Another engineer \
(an instance of you with none of this conversation) will take over from a hand-off note you write now. \
Write that note so they can carry on without redoing anything:
1. The task: what the user asked for, with every requirement, constraint and preference they stated.
2. Done so far: decisions made and why; each file created or changed (path) and what changed in it; \
commands run and what they showed (tests passing or failing, errors, numbers).
3. The current state: what works, what is broken, anything half-done.
4. What is left: the next concrete steps, in order.
Be specific (paths, names, commands, exact error messages) and brief. Do not call tools; answer with the note only."""

SUMMARY_PREFIX = ("[coder] The earlier conversation was compacted to fit the context window. The hand-off note "
                  "written from it:\n\n")
LATEST_PREFIX = "[coder] The latest tool results before the compaction:\n"
RENDERED_PREFIX = ("[coder] Below is a text rendering of the conversation so far (tool outputs and older parts "
                   "cut to fit).\n\n")

USER_SHARE = 0.15  # of the window: the user's own messages kept after a local compaction ...
USER_CAP = 20_000  # ... at most this many tokens of them
TRIMMED_USER = 600  # characters kept of an older user message that does not fit whole
LATEST_SHARE = 0.10  # of the window: the latest tool outputs kept
RENDER_SHARE = 0.5  # of the window: the text rendering summarized when the history itself does not fit


def summary_prompt(focus: str | None) -> str:
    if focus:
        return f"{SUMMARY_PROMPT}\nPay particular attention to: {focus}"
    return SUMMARY_PROMPT


def _cut(text: str, limit: int) -> str:
    """Head and tail of `text` within `limit` characters, with a note of what was left out."""
    if len(text) <= limit:
        return text
    half = max(limit // 2, 1)
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters left out ...]\n{text[-half:]}"


def _is_ours(text: str) -> bool:
    return text.startswith((SUMMARY_PREFIX, LATEST_PREFIX, RENDERED_PREFIX, SUMMARY_PROMPT[:40]))


CONTEXT_TAG = "<environment_context>"


def _parts(item: Item) -> list[str]:
    content = item.get("content")
    if isinstance(content, str):
        return [content]
    return [p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("text")]


def user_texts(items: list[Item]) -> list[str]:
    """The user's own messages, in order (not the notes an earlier compaction left, nor the environment)."""
    texts = ["\n".join(t for t in _parts(i) if not t.lstrip().startswith(CONTEXT_TAG))
             for i in items if i.get("type") == "message" and i.get("role") == "user"]
    return [t for t in texts if t.strip() and not _is_ours(t)]


def environment(items: list[Item]) -> str | None:
    """The description of where the conversation started, which the first message carried."""
    for item in items:
        if item.get("type") == "message" and item.get("role") == "user":
            found = next((t for t in _parts(item) if t.lstrip().startswith(CONTEXT_TAG)), None)
            if found:
                return found
    return None


def _keep_users(texts: list[str], budget: int) -> list[str]:
    """Recent messages whole while they fit, older ones trimmed while there is room; the first (the task)
    always, trimmed if it must be."""
    chosen: dict[int, str] = {}
    room = budget // 2  # for the trimmed ones
    for n in range(len(texts) - 1, -1, -1):
        text = texts[n]
        if len(text) <= budget:
            chosen[n] = text
            budget -= len(text)
        elif room > 0 or n == 0:
            chosen[n] = _cut(text, 4 * TRIMMED_USER if n == 0 else TRIMMED_USER)
            room -= len(chosen[n])
    return [chosen[n] for n in sorted(chosen)]


def latest_outputs(items: list[Item]) -> list[tuple[Item, str]]:
    """The calls of the last response that ran, with their outputs."""
    calls = {i["call_id"]: i for i in items if i.get("type") == "function_call"}
    outputs: list[Item] = []
    for item in reversed(items):
        kind = item.get("type")
        if kind == "function_call_output":
            outputs.append(item)
        elif kind == "message" and item.get("role") in ("user", "developer") and not outputs:
            continue  # follow-ups after the outputs
        else:
            break
    return [(calls.get(o["call_id"], {}), call_output_text(o)) for o in reversed(outputs)]


def _call_line(call: Item) -> str:
    args = call.get("arguments", "")
    try:
        args = json.dumps(json.loads(args), ensure_ascii=False)
    except (TypeError, ValueError):
        pass
    return f"{call.get('name', 'tool')}({_cut(str(args), 400)})"


def compacted_history(items: list[Item], summary: str, window: int) -> list[Item]:
    """The history after a local compaction."""
    budget = min(int(window * USER_SHARE), USER_CAP) * CHARS_PER_TOKEN
    new = [user_message(t) for t in _keep_users(user_texts(items), budget)]
    if new and environment(items):
        new[0] = user_message(text_of(new[0]), environment(items))
    new.append(user_message(SUMMARY_PREFIX + (summary.strip() or "(the model wrote no note)")))
    latest = latest_outputs(items)
    if latest:
        room = int(window * LATEST_SHARE) * CHARS_PER_TOKEN // len(latest)
        parts = [f"### {_call_line(call)}\n{_cut(output, room)}" for call, output in latest]
        new.append(user_message(LATEST_PREFIX + "\n\n".join(parts)))
    return new


def render(items: list[Item], window: int) -> str:
    """The history as text, cut to fit in RENDER_SHARE of the window (its start and its end kept)."""
    lines: list[str] = []
    for item in items:
        kind = item.get("type")
        if kind == "message":
            role = "USER" if item.get("role") in ("user", "developer") else "ASSISTANT"
            lines.append(f"{role}: {_cut(text_of(item), 4000)}")
        elif kind == "function_call":
            lines.append(f"TOOL CALL {_call_line(item)}")
        elif kind == "function_call_output":
            lines.append(f"TOOL OUTPUT: {_cut(call_output_text(item), 1200)}")
        elif kind == "reasoning":
            summary = " ".join(p.get("text", "") for p in item.get("summary") or [] if isinstance(p, dict))
            if summary.strip():
                lines.append(f"REASONING: {_cut(summary, 1000)}")
        elif kind == "compaction":
            lines.append("[an earlier compaction of the conversation, not readable as text]")
    text = "\n\n".join(lines)
    return RENDERED_PREFIX + _cut(text, int(window * RENDER_SHARE) * CHARS_PER_TOKEN)


def _from_model(item: Item) -> bool:
    kind = item.get("type")
    return kind in ("reasoning", "function_call") or (kind == "message" and item.get("role") == "assistant")


def fitting(items: list[Item], budget: int) -> list[Item]:
    """The history cut from its start to fit `budget` bytes for a compaction request: the first user message
    (the task) and the latest items. It is cut only where a response or a user message begins and no call
    waits for its output, so a call keeps its reasoning and its output."""
    sizes = [len(json.dumps(i)) for i in items]
    total = sum(sizes)
    first = next((i for i in items if i.get("type") == "message" and i.get("role") == "user"), None)
    keep = len(json.dumps(first)) if first else 0
    open_calls: set[str] = set()
    for n, item in enumerate(items):
        starts = n and (not _from_model(item) and item.get("type") != "function_call_output"
                        or _from_model(item) and not _from_model(items[n - 1]))
        if starts and not open_calls and total + keep <= budget:
            return ([first] if first and first is not item else []) + items[n:]
        if item.get("type") == "function_call":
            open_calls.add(item.get("call_id"))
        elif item.get("type") == "function_call_output":
            open_calls.discard(item.get("call_id"))
        total -= sizes[n]
    return [first] if first else items[-1:]


def compact_output(response: dict[str, Any]) -> list[Item]:
    """The new history from a /responses/compact answer; ValueError when it has none."""
    output = response.get("output") if isinstance(response, dict) else None
    if not isinstance(output, list) or not output or not all(isinstance(i, dict) and i.get("type") for i in output):
        raise ValueError("the endpoint's compaction returned no items")
    return output
