"""The conversation: the list of input items we replay on every request.

The Responses API is stateless, so this list *is* the conversation. Its rules:
output items are kept verbatim (reasoning with `encrypted_content`, function
calls, messages: the dicts from the wire, never reshaped); every function_call
gets exactly one function_call_output; a user message never lands between a
call and its output. Follow-ups typed while the agent works wait in a queue
and join the list only when no call is open.

Each item is JSON-encoded once, when it joins, and requests are built by
joining those pieces: an item sent once is sent byte for byte the same in every
later request (what prompt caching rewards), and a request costs a join, not an
encode of the whole history. Only compaction (`replace`) and shrinking old tool
outputs (`shrink`) change what was sent; both are recorded by the transcript.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

Item = dict[str, Any]
INTERRUPTED = "Interrupted by the user before this call finished; it may not have run."
BLOCK = 256 * 1024  # the encoded history is kept in blocks this big, so a request is a few large pieces


class ConversationError(Exception):
    pass


def encode(item: Item) -> str:
    """An item as it goes on the wire (and into the transcript)."""
    text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (bytes that were not UTF-8): escaped instead
        text = json.dumps(item, separators=(",", ":"))
    return text


def user_message(text: str, context: str | None = None, images: Sequence[Item] = ()) -> Item:
    """A user message: the text (first, even empty), the images (input_image parts), then the context."""
    parts: list[Item] = [{"type": "input_text", "text": text}, *images]
    if context:
        parts.append({"type": "input_text", "text": context})
    return {"type": "message", "role": "user", "content": parts}


def developer_message(text: str) -> Item:
    return {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": text}]}


def text_of(item: Item) -> str:
    """The text of a message item (every text part, joined)."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("text"))


IMAGE_WEIGHT = 4000  # bytes an image counts for in `size`: about what providers charge for one, in tokens x 4


def call_output_text(item: Item) -> str:
    """A function_call_output's text; content that is not text (an image) shows as a marker."""
    output = item.get("output", "")
    if isinstance(output, str):
        return output
    return "\n".join(p.get("text", "") if p.get("type") == "input_text" else f"[{p.get('type', 'content')}]"
                     for p in output if isinstance(p, dict))


def _weight(item: Item, data: bytes) -> int:
    """What an item counts for in the history's size: its bytes, but an image as what it costs in tokens."""
    output = item.get("output") if "output" in item else item.get("content")  # a call's output, a user message
    if not isinstance(output, list):
        return len(data)
    images = [p for p in output if isinstance(p, dict) and p.get("type") == "input_image"]
    return len(data) - sum(len(str(p.get("image_url") or "")) for p in images) + IMAGE_WEIGHT * len(images)


def output_weight(output: str | list[dict[str, Any]]) -> int:
    """What a call's output counts for (see _weight)."""
    if isinstance(output, str):
        return len(output)
    return sum(IMAGE_WEIGHT if p.get("type") == "input_image" else len(str(p.get("text", "")))
               for p in output if isinstance(p, dict))


def output_text(item: Item) -> str:
    """The text of an assistant message (its output_text parts)."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "output_text")


class Conversation:
    def __init__(self, items: list[Item] | None = None) -> None:
        self.items: list[Item] = []
        self._encoded: list[bytes] = []  # each item's UTF-8 JSON, as first sent
        self._blocks: list[bytes] = []  # the same, comma-joined in blocks of BLOCK bytes, for sending
        self._blocked = 0  # how many items the blocks hold
        self._loose = 0  # bytes of the items after them
        self.size = 0  # bytes of the encoded history: what a request's input costs, roughly
        self.unencrypted = 0  # reasoning items without encrypted_content (a store=false request skips them)
        self._open: dict[str, Item] = {}
        self._queue: list[str] = []
        self._lock = threading.Lock()
        self.on_append: Callable[[Item, str], None] | None = None  # a transcript sees every item as it joins
        # ... and every rewrite: ("compaction", record fields) or ("shrink", {"outputs": {call_id: text}})
        self.on_rewrite: Callable[[str, dict[str, Any]], None] | None = None
        for item in items or []:
            self._add(item)

    def _add(self, item: Item) -> str:
        text = encode(item)
        data = text.encode("utf-8")
        self.items.append(item)
        self._encoded.append(data)
        self.size += _weight(item, data) + 1
        self._loose += len(data) + 1
        if self._loose >= BLOCK:
            self._blocks.append(b",".join(self._encoded[self._blocked:]))
            self._blocked, self._loose = len(self._encoded), 0
        if item.get("type") == "reasoning" and not item.get("encrypted_content"):
            self.unencrypted += 1
        self._track(item)
        return text

    def _rebuild(self, items: list[Item]) -> None:
        self.items, self._encoded, self.size, self.unencrypted = [], [], 0, 0
        self._blocks, self._blocked, self._loose = [], 0, 0
        for item in items:
            self._add(item)

    def _append(self, item: Item) -> None:
        text = self._add(item)
        if self.on_append is not None:
            self.on_append(item, text)

    def _track(self, item: Item) -> None:
        kind = item.get("type")
        if kind == "function_call":
            self._open[item["call_id"]] = item
        elif kind == "function_call_output":
            self._open.pop(item.get("call_id"), None)

    def input_parts(self, start: int = 0, *, zdr: bool = False, then: list[Item] = ()) -> list[bytes]:
        """The items from `start` on (and `then` after them) as the pieces of a JSON array: the bytes encoded
        when each item joined, never encoded or copied again, however long the history.

        `zdr`: leave out reasoning that arrived without `encrypted_content`: a store=false request
        cannot replay it (the server keeps nothing), and would be refused for it.
        """
        extra = [encode(i).encode("utf-8") for i in then]
        if start == 0 and not (zdr and self.unencrypted):
            pieces = [*self._blocks, *self._encoded[self._blocked:], *extra]
        else:
            pieces = [p for i, p in zip(self.items[start:], self._encoded[start:])
                      if not (zdr and i.get("type") == "reasoning" and not i.get("encrypted_content"))] + extra
        if not pieces:
            return [b"[]"]
        parts = [b","] * (2 * len(pieces) + 1)
        parts[0], parts[-1] = b"[", b"]"
        parts[1:-1:2] = pieces
        return parts

    def open_calls(self) -> list[Item]:
        """Function calls still waiting for their output, in order."""
        return list(self._open.values())

    def add_user(self, text: str, context: str | None = None) -> None:
        self.add_message(user_message(text, context))

    def add_message(self, item: Item) -> None:
        """A user or developer message; never between a call and its output."""
        if self._open:
            raise ConversationError("a message cannot go between a function_call and its output")
        self._append(item)

    def add_output(self, output: list[Item]) -> None:
        """Append a response's output items exactly as received."""
        for item in output:
            self._append(item)

    def add_call_output(self, call_id: str, output: str, content: tuple[dict[str, Any], ...] = ()) -> None:
        """A call's answer: its text, or (with `content`, e.g. an image) the text and then the content parts."""
        if call_id not in self._open:
            raise ConversationError(f"no open function_call with call_id {call_id!r}")
        value: str | list[dict[str, Any]] = [{"type": "input_text", "text": output}, *content] if content else output
        self._append({"type": "function_call_output", "call_id": call_id, "output": value})

    def close_open_calls(self, reason: str) -> list[str]:
        """Answer every open call with `reason`, so the history stays valid."""
        closed = [c["call_id"] for c in self.open_calls()]
        for call_id in closed:
            self.add_call_output(call_id, reason)
        return closed

    # --- rewrites: the only changes to what was already sent ---
    def replace(self, items: list[Item], record: dict[str, Any]) -> None:
        """Start over from `items` (a compacted history); `record` says how, for the transcript."""
        if self._open:
            raise ConversationError("cannot compact while a function_call waits for its output")
        self._rebuild(items)
        if self.on_rewrite is not None:
            self.on_rewrite("compaction", {**record, "items": list(items)})

    def shrink(self, outputs: dict[str, str]) -> None:
        """Give the function_call_outputs named by call_id a new (shorter) text."""
        self._rebuild([{**i, "output": outputs[i["call_id"]]} if i.get("type") == "function_call_output"
                       and i.get("call_id") in outputs else i for i in self.items])
        if self.on_rewrite is not None:
            self.on_rewrite("shrink", {"outputs": outputs})

    # Follow-ups: safe to call from another thread while a turn runs.
    def queue(self, text: str) -> None:
        with self._lock:
            self._queue.append(text)

    def has_queued(self) -> bool:
        with self._lock:
            return bool(self._queue)

    def deliver_queued(self) -> list[str]:
        """Move queued follow-ups into the history; only legal when no call is open."""
        if self._open:
            return []
        with self._lock:
            texts, self._queue = self._queue, []
        for text in texts:
            self._append(user_message(text))
        return texts
