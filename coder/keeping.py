"""Keeping the conversation under the model's context window, as part of the agent loop.

`ContextKeeping` is the part of `Agent` that knows how full the window is and
acts on it: old tool outputs shrunk before a request when that is worth it,
compaction at the threshold, after the endpoint refused a request for its
size, or on demand (`compact`), and a stop instead of compacting in a loop.
What a compaction produces is decided in coder.compaction; here it is run,
with the agent's own request machinery (retries, cancel, idempotency).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generator, TypeVar

from coder import compaction
from coder.client import CONTEXT_FULL, DEFAULT_BASE_URL, Raw, new_request_id, stated_window
from coder.context import CHARS_PER_TOKEN, savings, shrinkable, window_for
from coder.conversation import INTERRUPTED, output_text, user_message
from coder.events import Compacted, Event, Notice, ReasoningDelta, Retrying, Shrunk, TextDelta, Usage

if TYPE_CHECKING:
    from coder.agent import ResponseResult

SHRINK_FROM = 0.5  # of the compaction threshold: old tool outputs may be shrunk from here on ...
SHRINK_WORTH = 0.05  # ... in batches that save at least this share of the window (the prefix changes rarely)
T = TypeVar("T")
FALLBACK_WINDOW = 128_000  # what a summary is cut to fit when the window is not known at all


class ContextFull(Exception):
    """The conversation cannot be brought under the window: stop the run, say why (one line)."""


class ContextKeeping:
    """Mixed into Agent: uses its config, conversation, client, instructions, meter and request machinery."""

    @property
    def window(self) -> int | None:
        return window_for(self.config.model, self.config.context_window) or self._learned_window

    def _learn_window(self, message: str) -> None:
        """The endpoint refused a request for its size: for a model whose window is not known, the window the
        error names, else a guess between the last request that fitted and the one refused."""
        if window_for(self.config.model, self.config.context_window):
            return
        refused, fitted = self.context_tokens(), self.meter.known_tokens
        guess = (fitted + refused) // 2 if fitted and fitted < refused else int(refused * 0.75)
        learned = stated_window(message) or guess
        self._learned_window = min(learned, self._learned_window or learned)

    def context_tokens(self) -> int:
        """How many tokens the next request carries (reported, plus an estimate of what came since)."""
        return self.meter.tokens(self.conversation.size)

    def _threshold(self) -> int | None:
        window, share = self.window, self.config.auto_compact_at
        if window is None or not share or self.config.compaction == "off":
            return None
        return int(window * share)

    def _confirm(self, input_tokens: int) -> None:
        """The first response after a compaction says whether it worked: if not, stop rather than loop.
        An endpoint that reports no usage is judged by the estimate."""
        if not self._unconfirmed:
            return
        self._unconfirmed = False
        threshold, counted = self._threshold(), input_tokens or self.context_tokens()
        if threshold is not None and counted >= threshold:
            raise ContextFull(
                f"after compacting, the endpoint still counts {counted:,} input tokens, over the compaction "
                f"threshold of {threshold:,}; stopped instead of compacting again (start a new conversation, "
                "or check context_window and auto_compact_at)")

    def _fit(self, run_usage: Usage) -> Iterator[Event]:
        """Before a request: shrink old tool outputs when that is worth it, compact when over the threshold."""
        threshold = self._threshold()
        if threshold is None:
            return
        tokens = self.context_tokens()
        if self.config.shrink_tool_outputs and tokens >= threshold * SHRINK_FROM:
            items = self.conversation.items
            outputs = shrinkable(items)
            saved = savings(items, outputs) if outputs else 0
            if saved and (tokens >= threshold or saved >= (self.window or 0) * SHRINK_WORTH):
                size = self.conversation.size
                self.conversation.shrink(outputs)
                self.meter.shrunk(size - self.conversation.size)
                self._chain = None
                yield Shrunk(len(outputs), tokens, self.context_tokens())
                tokens = self.context_tokens()
        if tokens >= threshold:
            yield from self._compact_or_stop("auto", run_usage)

    def _compact_or_stop(self, reason: str, run_usage: Usage) -> Iterator[Event]:
        """Compact, or raise ContextFull: never compact again and again without getting under the threshold."""
        if self._unconfirmed:
            raise ContextFull("the conversation is still over the context threshold right after a compaction; "
                              "stopped instead of compacting again (start a new conversation)")
        if self.config.compaction == "off":
            raise ContextFull("the conversation is over the model's context window and compaction is off "
                              "(compaction = \"off\"); /compact it, or start a new conversation")
        done = yield from self._compact(None, reason, run_usage)
        if not done:
            raise ContextFull("the conversation is over the model's context window and could not be compacted; "
                              "start a new conversation (/clear), or try /compact")
        threshold, tokens = self._threshold(), self.context_tokens()
        limit = threshold if threshold is not None else self.window
        if limit is not None and tokens >= limit:
            raise ContextFull(f"compaction left {tokens:,} tokens, still over {limit:,}; stopped instead of "
                              "compacting again (start a new conversation)")

    def compact(self, focus: str | None = None) -> Iterator[Event]:
        """Compact the conversation now, between runs (/compact); a `context.compacted` event says it was done.

        `focus`: what the compaction must keep in particular. A cancel() from the moment this is called
        stops it (KeyboardInterrupt), and the history then stays as it was.
        """
        self.cancel_event.clear()
        return self._compact(focus, "manual", None)

    def _compact(self, focus: str | None, reason: str, run_usage: Usage | None) -> Generator[Event, None, bool]:
        """Replace the history by a compacted one (the endpoint's, or a local summary); True when done.

        The loop runs this before a request that would not fit, and after the endpoint refused one for
        its size; a front end, through `compact`.
        """
        items = self.conversation.items
        if not items:
            return False
        self.conversation.close_open_calls(INTERRUPTED)
        before, count = self.context_tokens(), len(items)
        strategy = self._strategy()
        new: list[dict[str, Any]] | None = None
        if strategy == "endpoint":
            new = yield from self._compact_on_endpoint(focus, run_usage)
        if new is None:
            strategy = "local"
            summary = yield from self._summarize(focus, run_usage)
            if summary is None:
                return False
            new = compaction.compacted_history(self.conversation.items, summary, self.window or FALLBACK_WINDOW)
        self._check_cancel()  # stopped while it was being made: the history stays as it was
        self.conversation.replace(new, {"strategy": strategy, "reason": reason, "tokens_before": before})
        self._tell_sandbox()  # a sandbox change told in a message the compaction did not keep
        self.meter.forget()
        self._chain = None
        self._unconfirmed = True
        yield Compacted(strategy, reason, before, self.context_tokens(), count, len(new))
        return True

    def _strategy(self) -> str:
        chosen = self.config.compaction
        if chosen in ("auto", "endpoint", "off"):  # off: only on demand, then as auto would
            from coder import trust

            if chosen == "endpoint" or trust.compact_supported(self._base_url()) is not False:
                return "endpoint"
        return "local"

    def _base_url(self) -> str:
        return self.config.base_url or DEFAULT_BASE_URL

    def _compact_on_endpoint(self, focus: str | None,
                             run_usage: Usage | None) -> Generator[Event, None, list[dict[str, Any]] | None]:
        """The endpoint's compaction, retried like a request; None (with a notice) falls back to local."""
        from coder import trust

        focused = [user_message(f"[coder] Compacting the conversation; keep in particular: {focus}")] if focus else []
        parts = self.conversation.input_parts(zdr=self.config.zdr, then=focused)
        window, trimmed = self.window, False
        if window and self.context_tokens() >= window * 0.95:  # the compaction request itself must fit
            trimmed = True
            items = [i for i in self.conversation.items if not (self.config.zdr and i.get("type") == "reasoning"
                                                                 and not i.get("encrypted_content"))]
            kept = compaction.fitting(items, int(window * 0.9) * CHARS_PER_TOKEN - self.meter.fixed)
            yield Notice(f"left the {len(items) - len(kept)} oldest items out of the compaction so that it fits")
            parts = [json.dumps(kept + focused).encode()]
        body = {"model": self.config.model, "instructions": self.instructions, "input": Raw(parts),
                "prompt_cache_key": self.session_id[:64]}
        attempt = 0
        while True:
            self._check_cancel()
            try:
                response = self._cancellable(lambda: self.client.compact(body, new_request_id()))
                new = compaction.compact_output(response)
                break
            except KeyboardInterrupt:
                raise
            except ValueError as e:
                yield Notice(f"{e}; summarizing here instead")
                return None
            except Exception as exc:
                self._check_cancel()
                failure = self.client.classify(exc)
            if failure.status in (400, 404, 405) and failure.code != CONTEXT_FULL:
                # An endpoint without /responses/compact. Unless the body was cut here (the cut could be what
                # it refused), that is remembered for the base URL.
                if not trimmed:
                    self._remember_compact(False)
                yield Notice(f"the endpoint has no compaction ({failure.message}); summarizing here instead"
                             + ("" if trimmed else ", from now on for this endpoint"))
                return None
            attempt += 1
            if not failure.retryable or attempt > self.config.max_retries:
                yield Notice(f"the endpoint's compaction failed ({failure.message}); summarizing here instead")
                return None
            delay = failure.retry_after if failure.retry_after is not None else min(20.0, 0.5 * 2 ** (attempt - 1))
            if delay > self.config.max_retry_wait:
                yield Notice(f"the endpoint's compaction failed ({failure.message}); summarizing here instead")
                return None
            yield Retrying(attempt=attempt, delay=round(delay, 2), reason=failure.message)
            self._sleep(delay)
        if trust.compact_supported(self._base_url()) is not True:
            self._remember_compact(True)
        usage = Usage.from_response(response.get("usage"))
        self.usage.add(usage)
        if run_usage is not None:
            run_usage.add(usage)
        return new

    def _remember_compact(self, supported: bool) -> None:
        from coder import trust

        try:
            trust.remember_compact(self._base_url(), supported)
        except OSError:  # coder's state folder cannot be written: asked again next time, no harm
            pass

    def _cancellable(self, call: Callable[[], T]) -> T:
        """A blocking request that Ctrl-C can leave at once: it runs on a worker; its late answer is dropped."""
        done = threading.Event()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["value"] = call()
            except BaseException as e:  # handed to the waiting thread
                box["error"] = e
            done.set()

        threading.Thread(target=work, name="coder-compact", daemon=True).start()
        while not done.wait(0.05):
            self._check_cancel()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _summarize(self, focus: str | None, run_usage: Usage | None) -> Generator[Event, None, str | None]:
        """A hand-off note from the model: from the history itself (cache-friendly), or, when that does not
        fit, from a text rendering of it cut to fit."""
        prompt = user_message(compaction.summary_prompt(focus))
        window = self.window or FALLBACK_WINDOW
        attempts = []
        if self.context_tokens() < window * 0.95:  # the history as it is: its cached prefix makes this cheap
            attempts.append(Raw(self.conversation.input_parts(zdr=self.config.zdr, then=[prompt])))
        rendered = compaction.render(self.conversation.items, window)
        attempts.append(Raw(json.dumps([user_message(f"{rendered}\n\n{compaction.summary_prompt(focus)}")]).encode()))
        for n, items in enumerate(attempts):
            # The same tools as every request (the cached prefix holds), but none may be called.
            body = self.client.request_body(items, self._tools_json, self.instructions, cache_key=self.session_id,
                                            tool_choice="none")
            result = yield from quietly(self._request(build=lambda chained, b=body: b, request_id=new_request_id()))
            if result.status == "completed":
                if run_usage is not None:
                    run_usage.add(result.usage)
                self.usage.add(result.usage)
                text = "\n".join(output_text(i) for i in result.output
                                 if i.get("type") == "message" and i.get("role", "assistant") == "assistant")
                if text.strip():
                    return text
            if result.error_code != CONTEXT_FULL or n == len(attempts) - 1:
                yield Notice(f"could not summarize the conversation: {result.error or 'the model wrote nothing'}")
                return None
        return None


def quietly(request: Generator[Event, None, ResponseResult]) -> Generator[Event, None, ResponseResult]:
    """A request whose text is not the answer (a summary): its deltas are not shown."""
    try:
        while True:
            event = next(request)
            if not isinstance(event, (TextDelta, ReasoningDelta)):
                yield event
    except StopIteration as stop:
        return stop.value
    finally:
        request.close()
