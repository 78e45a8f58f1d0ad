"""The conversation: the list of input items we replay on every request.

The Responses API is stateless, so this list *is* the conversation. Its rules:
output items are kept verbatim (reasoning with `encrypted_content`, function
calls, messages: the dicts from the wire, never reshaped); every function_call
gets exactly one function_call_output; a user message never lands between a
call and its output. Follow-ups typed while the agent works wait in a queue
and join the list only when no call is open.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Item = dict[str, Any]


class ConversationError(Exception):
    pass


def user_message(text: str, context: str | None = None) -> Item:
    parts = [{"type": "input_text", "text": text}]
    if context:
        parts.append({"type": "input_text", "text": context})
    return {"type": "message", "role": "user", "content": parts}


class Conversation:
    def __init__(self, items: list[Item] | None = None) -> None:
        self.items: list[Item] = list(items or [])
        self._open: dict[str, Item] = {}
        self._queue: list[str] = []
        self._lock = threading.Lock()
        self.on_append: Callable[[Item], None] | None = None  # a transcript sees every item as it joins
        for item in self.items:
            self._track(item)

    def _append(self, item: Item) -> None:
        self.items.append(item)
        self._track(item)
        if self.on_append is not None:
            self.on_append(item)

    def _track(self, item: Item) -> None:
        kind = item.get("type")
        if kind == "function_call":
            self._open[item["call_id"]] = item
        elif kind == "function_call_output":
            self._open.pop(item.get("call_id"), None)

    def open_calls(self) -> list[Item]:
        """Function calls still waiting for their output, in order."""
        return list(self._open.values())

    def add_user(self, text: str, context: str | None = None) -> None:
        if self._open:
            raise ConversationError("a user message cannot go between a function_call and its output")
        self._append(user_message(text, context))

    def add_output(self, output: list[Item]) -> None:
        """Append a response's output items exactly as received."""
        for item in output:
            self._append(item)

    def add_call_output(self, call_id: str, output: str) -> None:
        if call_id not in self._open:
            raise ConversationError(f"no open function_call with call_id {call_id!r}")
        self._append({"type": "function_call_output", "call_id": call_id, "output": output})

    def close_open_calls(self, reason: str) -> list[str]:
        """Answer every open call with `reason`, so the history stays valid."""
        closed = [c["call_id"] for c in self.open_calls()]
        for call_id in closed:
            self.add_call_output(call_id, reason)
        return closed

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
