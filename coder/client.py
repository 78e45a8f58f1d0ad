"""Talking to a Responses endpoint: request bodies, streaming, fault classification.

All traffic goes through the official client's `responses` resource, but two
costs it would add per request are routed around (both grow with history):
the parameter transform, which walks `input` recursively, is skipped by
passing the already-plain JSON body through `extra_body`; and the SSE stream is
read raw through `with_streaming_response` and decoded with `json.loads`, so the
output items we keep are the exact dicts from the wire, not reshaped models.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from coder.config import Config, ConfigError

# Fields coder sets itself; extra_body may add fields but never replace these.
_FIXED = ("model", "input", "tools", "stream", "store", "include", "background", "instructions")
REASONING_MODEL_PREFIXES = ("gpt-5", "o1", "o3", "o4")
# Error codes (of an `error` event or a failed response) naming a passing fault, worth another try:
# the same faults an HTTP 429 or 5xx would be, however they arrive.
RETRYABLE_CODES = ("rate_limit", "server_error", "overloaded", "timeout", "unavailable")


@dataclass(frozen=True)
class Failure:
    message: str
    retryable: bool
    retry_after: float | None = None
    status: int | None = None


def parse_sse(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Decode a text/event-stream into event dicts (semantic events carry their `type`)."""
    data: list[str] = []
    event_name = None
    for line in lines:
        if not line:
            if data:
                payload = "\n".join(data)
                data = []
                if payload.strip() != "[DONE]":
                    event = json.loads(payload)
                    if isinstance(event, dict):
                        if event_name and "type" not in event:
                            event["type"] = event_name
                        yield event
            event_name = None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event_name = value
    if data and "\n".join(data).strip() != "[DONE]":
        event = json.loads("\n".join(data))
        if isinstance(event, dict):
            yield event


def retryable_code(code: str | None) -> bool:
    """Whether an error code names a passing fault (rate limit, server error, overload), not a bad request."""
    return bool(code) and any(s in str(code) for s in RETRYABLE_CODES)


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _error_text(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        err = body.get("error") if isinstance(body.get("error"), dict) else body
        msg = err.get("message") or err.get("detail")
        if msg:
            return str(msg)
    return fallback


class ResponsesClient:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._openai = None
        self._streaming: Any = None  # the response being read, so another thread can abort it

    @property
    def openai(self):
        """The official client, built on first use (importing openai costs ~0.3 s)."""
        if self._openai is None:
            import openai

            self._openai = openai.OpenAI(
                api_key=self.config.api_key(),
                base_url=self.config.base_url or None,
                max_retries=0,  # retries are ours: they must be visible and never re-run a tool
                timeout=self.config.timeout,
                default_headers=self.config.extra_headers or None,
            )
        return self._openai

    def request_body(
        self,
        items: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        instructions: str | None,
        *,
        background: bool = False,
    ) -> dict[str, Any]:
        cfg = self.config
        body: dict[str, Any] = {k: v for k, v in cfg.extra_body.items() if k not in _FIXED}
        body["model"] = cfg.model
        if instructions:
            body["instructions"] = instructions
        body["input"] = items
        if tools:
            body["tools"] = tools
            body["tool_choice"] = self.tool_choice()
            body["parallel_tool_calls"] = cfg.parallel_tool_calls
        if cfg.zdr:
            if background:
                raise ConfigError(
                    "background mode needs store=true, which Zero Data Retention forbids "
                    f"(set store = true in the config; codex models like {cfg.model} are always ZDR)"
                )
            body["store"] = False
            body["include"] = ["reasoning.encrypted_content"]
        else:
            body["store"] = True
        reasoning = self.reasoning()
        if reasoning:
            body["reasoning"] = reasoning
        if background:
            body["background"] = True
        else:
            body["stream"] = True
        return body

    def tool_choice(self) -> str | dict[str, str]:
        choice = self.config.tool_choice
        if choice in ("auto", "required", "none"):
            return choice
        return {"type": "function", "name": choice}

    def reasoning(self) -> dict[str, str]:
        cfg = self.config
        out: dict[str, str] = {}
        if cfg.reasoning_effort:
            out["effort"] = cfg.reasoning_effort
        summary = cfg.reasoning_summary
        if summary is None and cfg.model.lower().startswith(REASONING_MODEL_PREFIXES):
            summary = "auto"
        if summary and summary != "none":
            out["summary"] = summary
        return out

    def _split(self, body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k not in ("model", "stream")}

    @staticmethod
    def _key(idempotency_key: str | None) -> dict[str, str] | None:
        return {"Idempotency-Key": idempotency_key} if idempotency_key else None

    def stream(self, body: dict[str, Any], idempotency_key: str | None = None) -> Iterator[dict[str, Any]]:
        """POST the body with stream=true and yield the decoded SSE events.

        `idempotency_key` is the same for every try of one logical request, so a retry after a
        dropped connection cannot make the server create (and bill) a second response.
        """
        raw = self.openai.responses.with_streaming_response.create(
            model=body["model"], stream=True, extra_body=self._split(body), extra_headers=self._key(idempotency_key)
        )
        with raw as response:
            self._streaming = response
            try:
                yield from parse_sse(response.iter_lines())
            finally:
                self._streaming = None

    def abort(self) -> None:
        """Close the stream being read (from another thread): a blocked read ends at once."""
        response = self._streaming
        if response is not None:
            try:
                response.close()
            except Exception:
                pass

    def create_background(self, body: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        with self.openai.responses.with_streaming_response.create(
            model=body["model"], extra_body=self._split(body), extra_headers=self._key(idempotency_key)
        ) as response:
            return response.json()

    def retrieve(self, response_id: str) -> dict[str, Any]:
        with self.openai.responses.with_streaming_response.retrieve(response_id) as response:
            return response.json()

    def cancel(self, response_id: str) -> None:
        with self.openai.responses.with_streaming_response.cancel(response_id) as response:
            response.read()

    @staticmethod
    def classify(exc: BaseException) -> Failure:
        """Decide whether a failed request is worth another try."""
        import openai

        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            text = _error_text(exc.body, exc.message)
            retryable = status in (408, 409, 429) or status >= 500
            return Failure(f"HTTP {status}: {text}", retryable, _retry_after(exc.response.headers), status)
        if isinstance(exc, openai.APITimeoutError):
            return Failure("the request timed out", True)
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return Failure(f"connection error: {cause}", True)
        if isinstance(exc, json.JSONDecodeError):
            return Failure(f"the endpoint sent malformed JSON in the stream: {exc.msg}", True)
        if isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore"):
            return Failure(f"the stream broke off: {type(exc).__name__}: {exc}", True)
        if isinstance(exc, openai.APIError):
            return Failure(f"API error: {exc}", False)
        return Failure(f"{type(exc).__name__}: {exc}", False)
