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
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from coder.config import Config, ConfigError

# Fields coder sets itself; extra_body may add fields but never replace these.
_FIXED = ("model", "input", "tools", "stream", "store", "include", "background", "instructions",
          "previous_response_id", "prompt_cache_key")
REASONING_MODEL_PREFIXES = ("gpt-5", "o1", "o3", "o4")
DEFAULT_EFFORT = "medium"  # sent to reasoning models when reasoning_effort is not set
# Error codes (of an `error` event or a failed response) naming a passing fault, worth another try:
# the same faults an HTTP 429 or 5xx would be, however they arrive.
RETRYABLE_CODES = ("rate_limit", "server_error", "overloaded", "timeout", "unavailable")


CONTEXT_FULL = "context_length_exceeded"
# How endpoints other than OpenAI's say the same, in the message when there is no code.
_CONTEXT_FULL_TEXT = re.compile(r"context[ _](length|window)|maximum context|too many (input )?tokens|prompt is too long"
                                r"|input is too long|exceeds? the (model's )?(context|maximum)", re.I)
_STATED_WINDOW = re.compile(r"maximum context length is (\d[\d,]*) tokens", re.I)


def stated_window(message: str) -> int | None:
    """The window an overflow error names, where it names one (vLLM and older OpenAI messages do)."""
    found = _STATED_WINDOW.search(message or "")
    return int(found.group(1).replace(",", "")) if found else None


@dataclass(frozen=True)
class Failure:
    message: str
    retryable: bool
    retry_after: float | None = None
    status: int | None = None
    code: str | None = None  # the endpoint's error code, or CONTEXT_FULL when its message says so


def error_code(code: Any, message: str) -> str | None:
    """The error's code, with a context-window overflow recognised however the endpoint words it."""
    if code == CONTEXT_FULL or (not code and _CONTEXT_FULL_TEXT.search(message or "")):
        return CONTEXT_FULL
    return str(code) if code else None


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


def _error_code(body: Any) -> Any:
    if isinstance(body, dict):
        err = body.get("error") if isinstance(body.get("error"), dict) else body
        return err.get("code")
    return None


def new_request_id() -> str:
    """A request's own id (X-Client-Request-Id), for tracing it at the provider."""
    return f"req_{uuid.uuid4().hex}"


class Raw:
    """JSON that goes into a request body as it is: the pieces of the history, each encoded once."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[bytes] | bytes) -> None:
        self.parts = [parts] if isinstance(parts, bytes) else parts

    def __len__(self) -> int:
        return sum(map(len, self.parts))


class Body:
    """A request body sent straight from the parts it is made of: no copy of the whole history is made.

    httpx takes its length from tell/seek (so it goes with a Content-Length) and sends what iterating
    yields: the large parts as they are, the small ones gathered into pieces of about 64 KB.
    """

    GATHER = 65536

    def __init__(self, parts: list[bytes]) -> None:
        self._parts = parts
        self._length = sum(map(len, parts))
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == 0 else self._pos + offset if whence == 1 else self._length + offset
        return self._pos

    def __iter__(self) -> Iterator[bytes]:
        small: list[bytes] = []
        size = 0
        for part in self._parts:
            if len(part) >= self.GATHER:
                if small:
                    yield b"".join(small)
                    small, size = [], 0
                yield part
            else:
                small.append(part)
                size += len(part)
                if size >= self.GATHER:
                    yield b"".join(small)
                    small, size = [], 0
        if small:
            yield b"".join(small)

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


def encode_body(body: dict[str, Any]) -> Body:
    """The request body as sent: `Raw` values are spliced in, not encoded (or copied) again."""
    raws = [(k, v) for k, v in body.items() if isinstance(v, Raw)]
    rest = {k: v for k, v in body.items() if not isinstance(v, Raw)}
    head = json.dumps(rest, separators=(",", ":")).encode("utf-8")
    if not raws:
        return Body([head])
    parts = [head[:-1]]
    for n, (key, value) in enumerate(raws):
        parts.append(("," if n or rest else "").encode() + json.dumps(key).encode() + b":")
        parts.extend(value.parts)
    parts.append(b"}")
    return Body(parts)


class ResponsesClient:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._openai = None
        self._streaming: Any = None  # the response being read, so another thread can abort it
        self.session_id = ""  # sent as the session_id header, so a provider can route a session to one cache

    @property
    def openai(self):
        """The official client, built on first use (importing openai costs ~0.3 s)."""
        if self._openai is None:
            import openai

            from coder import __version__

            self._openai = openai.OpenAI(
                api_key=self.config.api_key(),
                base_url=self.config.base_url or None,
                max_retries=0,  # retries are ours: they must be visible and never re-run a tool
                timeout=self.config.timeout,
                default_headers={"User-Agent": f"coder/{__version__} OpenAI/Python {openai.__version__}",
                                 **self.config.extra_headers},
            )
        return self._openai

    def request_body(
        self,
        items: list[dict[str, Any]] | Raw,
        tools: list[dict[str, Any]] | None,
        instructions: str | None,
        *,
        background: bool = False,
        previous_response_id: str | None = None,
        cache_key: str | None = None,
        tool_choice: str | None = None,
    ) -> dict[str, Any]:
        cfg = self.config
        body: dict[str, Any] = {k: v for k, v in cfg.extra_body.items() if k not in _FIXED}
        body["model"] = cfg.model
        if instructions:
            body["instructions"] = instructions
        if tools:
            body["tools"] = tools
            body["tool_choice"] = tool_choice or self.tool_choice()
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
        if previous_response_id:
            body["previous_response_id"] = previous_response_id
        if cache_key:
            body["prompt_cache_key"] = cache_key[:64]
        reasoning = self.reasoning()
        if reasoning:
            body["reasoning"] = reasoning
        if cfg.verbosity:
            body["text"] = {"verbosity": cfg.verbosity}
        if background:
            body["background"] = True
        else:
            body["stream"] = True
        body["input"] = items  # last: the only part that grows
        return body

    def tool_choice(self) -> str | dict[str, str]:
        choice = self.config.tool_choice
        if choice in ("auto", "required", "none"):
            return choice
        return {"type": "function", "name": choice}

    def reasoning(self) -> dict[str, str]:
        cfg = self.config
        out: dict[str, str] = {}
        reasoning_model = cfg.model.lower().rsplit("/", 1)[-1].startswith(REASONING_MODEL_PREFIXES)
        effort = cfg.reasoning_effort or (DEFAULT_EFFORT if reasoning_model else None)
        if effort:
            out["effort"] = effort
        summary = cfg.reasoning_summary
        if summary is None and reasoning_model:
            summary = "auto"
        if summary and summary != "none":
            out["summary"] = summary
        return out

    def _headers(self, idempotency_key: str | None, request_id: str | None) -> dict[str, str]:
        headers = {"X-Stainless-Raw-Response": "stream"}  # hand back the response unread: we parse it ourselves
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if request_id:
            headers["X-Client-Request-Id"] = request_id
        if self.session_id:
            headers["session_id"] = self.session_id
        return headers

    def _post(self, path: str, body: dict[str, Any], idempotency_key: str | None, request_id: str | None) -> Any:
        """POST an already-built body through the official client (its auth, errors, timeouts), unread.

        The body goes as bytes: the history in it was encoded once, item by item, when it joined.
        """
        return self.openai.post(path, cast_to=object, content=encode_body(body),
                                options={"headers": self._headers(idempotency_key, request_id)})

    def stream(self, body: dict[str, Any], idempotency_key: str | None = None,
               request_id: str | None = None) -> Iterator[dict[str, Any]]:
        """POST the body with stream=true and yield the decoded SSE events.

        `idempotency_key` is the same for every try of one logical request, so a retry after a
        dropped connection cannot make the server create (and bill) a second response.
        """
        response = self._post("/responses", body, idempotency_key, request_id)
        self._streaming = response
        try:
            yield from parse_sse(response.iter_lines())
        finally:
            self._streaming = None
            response.close()

    def abort(self) -> None:
        """Close the stream being read (from another thread): a blocked read ends at once."""
        response = self._streaming
        if response is not None:
            try:
                response.close()
            except Exception:
                pass

    def create_background(self, body: dict[str, Any], idempotency_key: str | None = None,
                          request_id: str | None = None) -> dict[str, Any]:
        response = self._post("/responses", body, idempotency_key, request_id)
        try:
            return response.json()
        finally:
            response.close()

    def compact(self, body: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
        """POST /responses/compact: the endpoint's own compaction of the history in `body`."""
        response = self._post("/responses/compact", body, None, request_id)
        try:
            return response.json()
        finally:
            response.close()

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
            code = error_code(_error_code(exc.body), text if status in (400, 413) else "")
            retryable = (status in (408, 409, 429) or status >= 500) and code != CONTEXT_FULL
            return Failure(f"HTTP {status}: {text}", retryable, _retry_after(exc.response.headers), status, code)
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
