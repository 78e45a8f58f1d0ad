"""How full the model's context window is, and the cheap ways to keep it from filling.

The endpoint's `usage` after each response is the truth; between responses the
tokens appended since are estimated from the encoded size (4 characters a
token). Before compaction is needed, old tool outputs can be shrunk to their
head and tail, in batches, so the replayed prefix changes rarely and each
output at most once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coder.conversation import call_output_text, output_weight

# Input windows by model family (longest prefix wins). For the gpt-5 family this is the input limit
# (272k of its 400k; the rest is reserved for output), which is what a request must stay under.
WINDOWS = {"gpt-5": 272_000, "gpt-4.1": 1_047_576, "gpt-4o": 128_000, "o1": 200_000, "o3": 200_000,
           "o4": 200_000}
CHARS_PER_TOKEN = 4
SHRINK_OVER = 4096  # characters: outputs longer than this are shrunk ...
KEEP_RECENT = 3  # ... once more than this many responses have come after them ...
SHRINK_KEEP = 1024  # ... to this many characters of their head and of their tail
SHRINK_NOTE = "[coder: {n} characters of this output were dropped to save context; run the tool again to see them]"
IMAGE_NOTE = "[coder: the image was dropped to save context; read the file again to see it]"


def window_for(model: str, configured: int | None = None) -> int | None:
    """The model's input window in tokens: the config's `context_window`, else the table, else unknown."""
    if configured:
        return configured
    name = model.lower().rsplit("/", 1)[-1]
    best = max((p for p in WINDOWS if name.startswith(p)), key=len, default=None)
    return WINDOWS[best] if best else None


def estimate(chars: int) -> int:
    return chars // CHARS_PER_TOKEN


@dataclass
class Meter:
    """Tokens the next request will carry: the last reported usage plus an estimate of what came since.

    `fixed` is the part of every request that is not the history (instructions, tool schemas).
    """

    fixed: int = 0  # characters
    known_tokens: int | None = None  # reported by the last response (input + output)
    known_size: int = 0  # the history's encoded size when that was reported

    def tokens(self, size: int) -> int:
        if self.known_tokens is None:
            return estimate(self.fixed + size)
        return self.known_tokens + estimate(max(0, size - self.known_size))

    def reported(self, tokens: int, size: int) -> None:
        if tokens > 0:
            self.known_tokens, self.known_size = tokens, size

    def shrunk(self, chars: int) -> None:
        """The history lost `chars` characters in place (old outputs shrunk)."""
        if self.known_tokens is not None:
            self.known_tokens = max(0, self.known_tokens - chars // CHARS_PER_TOKEN)
            self.known_size -= chars

    def forget(self) -> None:
        """The history was rewritten: estimate it afresh until the next response reports."""
        self.known_tokens = None


def shrunk_text(output: str) -> str:
    dropped = len(output) - 2 * SHRINK_KEEP
    return f"{output[:SHRINK_KEEP]}\n{SHRINK_NOTE.format(n=dropped)}\n{output[-SHRINK_KEEP:]}"


def shrinkable(items: list[dict[str, Any]]) -> dict[str, str]:
    """Old, long tool outputs and their shrunk text: those followed by more than KEEP_RECENT responses."""
    responses = 0
    previous_was_model = False
    found: dict[str, str] = {}
    for item in reversed(items):
        kind = item.get("type")
        from_model = kind in ("reasoning", "function_call") or (kind == "message" and item.get("role") == "assistant")
        if from_model and not previous_was_model:
            responses += 1  # the start (seen from the end) of one response's output
        previous_was_model = from_model
        if kind != "function_call_output" or responses <= KEEP_RECENT:
            continue
        output = item.get("output")
        if isinstance(output, str) and len(output) > SHRINK_OVER:  # a shrunk one is far shorter: never twice
            found[item["call_id"]] = shrunk_text(output)
        elif isinstance(output, list) and any(isinstance(p, dict) and p.get("type") == "input_image" for p in output):
            found[item["call_id"]] = f"{call_output_text(item)}\n{IMAGE_NOTE}"
    return found


def savings(items: list[dict[str, Any]], outputs: dict[str, str]) -> int:
    """Tokens that shrinking `outputs` would save."""
    before = sum(output_weight(i["output"]) for i in items
                 if i.get("type") == "function_call_output" and i.get("call_id") in outputs)
    return estimate(before - sum(len(t) for t in outputs.values()))
