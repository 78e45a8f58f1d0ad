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
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from coder.config import Config, ConfigError, base_url_origin

# Fields coder sets itself; extra_body may add fields but never replace these.
_FIXED = ("model", "input", "tools", "stream", "store", "include", "background", "instructions",
          "previous_response_id", "prompt_cache_key")
REASONING_MODEL_PREFIXES = ("gpt-5", "o1", "o3", "o4")
DEFAULT_EFFORT = "medium"  # sent to reasoning models when reasoning_effort is not set
# Error codes (of an `error` event or a failed response) naming a passing fault, worth another try:
# the same faults an HTTP 429 or 5xx would be, however they arrive.
RETRYABLE_CODES = ("rate_limit", "server_error", "overloaded", "timeout", "unavailable")
# Seconds to connect (TCP, then TLS) before the try fails as a timeout and is retried: an endpoint that
# has not answered a SYN or a ClientHello by then is not there, and `timeout` (10 minutes by default,
# for a model that thinks long before its first byte) is no time to wait for that.
CONNECT_TIMEOUT = 15.0
T = TypeVar("T")


CONTEXT_FULL = "context_length_exceeded"
# How endpoints other than OpenAI's say the same, in the message when there is no code.
_CONTEXT_FULL_TEXT = re.compile(r"context[ _](length|window)|maximum context|too many (input )?tokens|prompt is too long"
                                r"|input is too long|exceeds? the (model's )?(context|maximum)", re.I)
_STATED_WINDOW = re.compile(r"maximum context length is (\d[\d,]*) tokens", re.I)


def stated_window(message: str) -> int | None:
    """The window an overflow error names, where it names one (vLLM and older OpenAI messages do)."""
    found = _STATED_WINDOW.search(message or "")
    return int(found.group(1).replace(",", "")) if found else None


_tls_lock = threading.Lock()
_tls: dict[str, Any] = {}


def _shared_tls(client_class: type) -> dict[str, Any]:
    """`verify=` one TLS context for every client of the process, made as the HTTP library makes its default.
    Making one loads the CA bundle (~25 ms of CPU), which a batch would otherwise pay for every target.
    Nothing (the library's own default) when the library cannot make it so."""
    with _tls_lock:
        if "verify" not in _tls:
            try:
                import importlib

                base = next(c for c in client_class.__mro__ if c.__module__.split(".")[0] in ("httpx", "httpx2"))
                _tls["verify"] = importlib.import_module(base.__module__.split(".")[0]).create_ssl_context()
            except Exception:
                _tls["verify"] = None
        return {"verify": _tls["verify"]} if _tls["verify"] is not None else {}


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


_SSE_FIELDS = ("data", "event", "id", "retry", "")  # "": a comment line


class UnexpectedReply(Exception):
    """The endpoint answered, but not with what the Responses API sends: a wrong URL (a bridge's 404 page
    served as HTTP 200), a proxy's login page, JSON where a stream was asked for, `null`. Asking again
    would get the same, so it is never retried; the message shows what came instead."""

    def __init__(self, expected: str, head: bytes | str, request: str = "POST /responses") -> None:
        super().__init__(f"not {expected}")
        self.expected, self.head, self.request = expected, head, request


def first_bytes(data: bytes | str, limit: int = 200) -> str:
    """The start of a reply, safe to print in one line: control characters and terminal escapes blanked,
    whitespace folded, at most `limit` characters."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    text = " ".join("".join(c if c.isprintable() else " " for c in text[: limit * 4]).split())
    if not text:
        return "(an empty body)"
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _head(first: str, rest: Iterator[str], limit: int = 200) -> str:
    """The first line of a reply that is not an event stream, and enough after it to show what it is."""
    parts = [first]
    size = len(first)
    for line in rest:
        if size >= limit or len(parts) > 20:
            break
        parts.append(line)
        size += len(line) + 1
    return "\n".join(parts)


def parse_sse(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Decode a text/event-stream into event dicts (semantic events carry their `type`).

    A reply whose first line is no event-stream field (an HTML page, a JSON document) raises
    UnexpectedReply at once rather than ending as a stream that stopped early (which is retried).
    """
    data: list[str] = []
    event_name = None
    checked = False
    lines = iter(lines)
    for line in lines:
        if not checked and line:
            checked = True
            if line.lstrip("\ufeff").partition(":")[0] not in _SSE_FIELDS:
                raise UnexpectedReply("an event stream", _head(line, lines))
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


# HTTP statuses that show the endpoint understood the request (it is the body or the rate that is wrong):
# the only ones whose message does not name the URL.
_UNDERSTOOD = (400, 409, 413, 422, 429)
DEFAULT_BASE_URL = "https://api.openai.com/v1"  # the official client's, when base_url is not set


def _response_object(response: Any, request: str) -> dict[str, Any]:
    """A reply that must be a response object (JSON with an id): anything else is an UnexpectedReply,
    one clear line rather than an AttributeError later."""
    data = response.read()
    try:
        value = json.loads(data)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise UnexpectedReply("a response object", data, request)
    return value


def _shut(sock: socket.socket) -> None:
    """Shut a socket down for both directions: unlike close(), this wakes a thread blocked reading it."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's: an SSL socket's would drop its state
    except OSError:
        pass  # already closed, or never connected


class Stopped(Exception):
    """A request of a run or a compaction that a stop (abort) ended, or that was asked for after it."""

    def __init__(self) -> None:
        super().__init__("the request was stopped")


class _Call:
    """One stoppable request, made on a worker thread: its outcome, or that a stop left it behind."""

    __slots__ = ("done", "stopped", "value", "error", "spares")

    def __init__(self) -> None:
        self.done = threading.Event()  # set by the worker when it is done, or by abort()
        self.stopped = False  # abort() left it: its connections are shut as they open, a late answer closed
        self.value: Any = None
        self.error: BaseException | None = None
        # A duplicate of each socket it connected: shutting one down ends a TLS handshake on the socket
        # (wrap_socket detaches the socket object the trace reported; the connection is the same).
        self.spares: list[socket.socket] = []


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
        # abort() from another thread: a blocked read (before the headers, in a silent stream) is woken by
        # shutting its socket down; closing it would not wake it. So every connection's socket is known.
        self.stop = threading.Event()  # set: our requests end now, and new ones at once (an Agent shares its cancel)
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._sockets_lock = threading.Lock()
        self._calls: set[_Call] = set()  # stoppable requests on their workers, not yet answered
        self._local = threading.local()  # .call: the stoppable request this (worker) thread is making
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
                timeout=openai.Timeout(self.config.timeout, connect=min(self.config.timeout, CONNECT_TIMEOUT)),
                default_headers={"User-Agent": f"coder/{__version__} OpenAI/Python {openai.__version__}",
                                 **self.config.extra_headers},
                http_client=openai.DefaultHttpxClient(event_hooks={"request": [self._traced]},
                                                      **_shared_tls(openai.DefaultHttpxClient)),
            )
        return self._openai

    def _traced(self, request: Any) -> None:
        """Each request reports the connections it opens (httpcore's trace extension) to `_connected`."""
        request.extensions["trace"] = self._connected

    def _connected(self, name: str, info: dict[str, Any]) -> None:
        if not name.endswith((".connect_tcp.complete", ".connect_unix_socket.complete", ".start_tls.complete")):
            return
        try:
            sock = info["return_value"].get_extra_info("socket")
        except Exception:
            return
        if sock is None:
            return
        call: _Call | None = getattr(self._local, "call", None)
        with self._sockets_lock:
            self._sockets.add(sock)
            if call is None:
                return
            if call.stopped:
                _shut(sock)  # stopped while it connected: it ends at its first write, nothing goes out
            elif not name.endswith(".start_tls.complete"):
                try:
                    call.spares.append(sock.dup())
                except OSError:
                    pass

    def _stoppable(self, work: Callable[[], T]) -> T:
        """`work` (a request of a run or a compaction) done on a worker thread, while this one waits for
        its outcome or for abort(), whichever comes first: a stop lands at once at every stage, even
        where no socket is there to shut down yet (resolving the name, connecting, a TLS handshake).

        The worker left behind ends soon: its sockets are shut down (a connection that opens later, at
        once), so nothing it would still send goes out, and an answer that comes anyway is closed."""
        call = _Call()
        with self._sockets_lock:
            if self.stop.is_set():
                raise Stopped()
            self._calls.add(call)
        threading.Thread(target=self._work, args=(call, work), name="coder-request", daemon=True).start()
        try:
            call.done.wait()
        except BaseException:  # a KeyboardInterrupt in this thread: leave the worker as a stop would
            with self._sockets_lock:
                pending = call in self._calls
                if pending:
                    self._left(call)
            if not pending and hasattr(call.value, "close"):
                call.value.close()
            raise
        if call.stopped:
            raise Stopped()
        if call.error is not None:
            error, call.error = call.error, None
            raise error
        return call.value

    def _work(self, call: _Call, work: Callable[[], Any]) -> None:
        self._local.call = call
        value = error = None
        try:
            value = work()
        except BaseException as e:  # handed to the waiting thread
            error = e
        with self._sockets_lock:
            self._calls.discard(call)
            spares, call.spares = call.spares, []
            left = call.stopped
            if not left:
                call.value, call.error = value, error
            call.done.set()
        for spare in spares:
            spare.close()
        if left and hasattr(value, "close"):
            value.close()  # an answer nobody waits for any more

    def _left(self, call: _Call) -> None:
        """Leave a request behind (the lock held): its waiter stops waiting, its connections are shut."""
        call.stopped = True
        self._calls.discard(call)
        for spare in call.spares:
            _shut(spare)
        call.done.set()

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
        text_format: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`text_format`: the structured answer's format (text.format, json_schema), when one is asked for."""
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
                raise ConfigError(cfg.background_refusal())
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
        if cfg.verbosity or text_format:
            body["text"] = {**({"format": text_format} if text_format else {}),
                            **({"verbosity": cfg.verbosity} if cfg.verbosity else {})}
        if background:
            body["background"] = True
            if cfg.completion_window:  # 2h and 8h: discounted, answered within that window
                body["background_options"] = {"completion_window": cfg.completion_window,
                                              **({"continuation_id": cache_key[:64]} if cache_key else {})}
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
        response = self._stoppable(lambda: self._post("/responses", body, idempotency_key, request_id))
        try:
            yield from parse_sse(response.iter_lines())
        finally:
            response.close()

    def abort(self) -> None:
        """Stop our requests in flight, from another thread, at any stage (resolving, connecting, the TLS
        handshake, waiting for the headers, reading a stream that sends nothing): whoever waits for one
        raises Stopped at once, and its sockets are shut down, so a blocked read ends at once with a
        connection error and the endpoint sees the connection go. Idle pooled connections go too; the
        pool drops them (they read as closed) and the next request connects anew.
        `stop` stays set until whoever owns it clears it (Agent.run does); until then new requests of
        ours raise Stopped."""
        self.stop.set()
        with self._sockets_lock:
            for call in list(self._calls):
                self._left(call)
            for sock in list(self._sockets):
                _shut(sock)

    def create_background(self, body: dict[str, Any], idempotency_key: str | None = None,
                          request_id: str | None = None) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            response = self._post("/responses", body, idempotency_key, request_id)
            try:
                return _response_object(response, "POST /responses")
            finally:
                response.close()

        return self._stoppable(work)

    def compact(self, body: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
        """POST /responses/compact: the endpoint's own compaction of the history in `body`."""
        def work() -> dict[str, Any]:
            response = self._post("/responses/compact", body, None, request_id)
            try:
                return response.json()
            finally:
                response.close()

        return self._stoppable(work)

    def retrieve(self, response_id: str) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            with self.openai.responses.with_streaming_response.retrieve(response_id) as response:
                return _response_object(response, f"GET /responses/{response_id}")

        return self._stoppable(work)

    def cancel(self, response_id: str, timeout: float | None = None) -> None:
        """Cancel a background response; sent even after a stop (that is when it is needed)."""
        with self.openai.responses.with_streaming_response.cancel(
                response_id, **({"timeout": timeout} if timeout is not None else {})) as response:
            response.read()

    def where(self, request: Any = "POST /responses") -> str:
        """The request as tried, with where its URL came from: 'POST http://…/v1/responses (base_url from …)'.

        `request` is an httpx request, or 'METHOD /path' under base_url. A password and query values in
        the URL are shown as *** (coder.redact.scrub_url): this line goes to errors, --json and the transcript."""
        from coder.redact import scrub_url

        if isinstance(request, str):
            method, _, path = request.partition(" ")
            url = (self.config.base_url or DEFAULT_BASE_URL).rstrip("/") + path
        else:
            method, url = request.method, str(request.url)
        return f"{method} {scrub_url(url)} ({base_url_origin(self.config)})"

    def classify(self, exc: BaseException) -> Failure:
        """Decide whether a failed request is worth another try, and say what went wrong where.

        The URL and where it came from are named whenever the endpoint itself may be the mistake
        (no connection, a timeout, a refused key, a missing path or model, a reply of the wrong kind).
        """
        import openai

        if isinstance(exc, UnexpectedReply):
            hint = ""
            url = (self.config.base_url or DEFAULT_BASE_URL).rstrip("/")
            if "/v1" not in url:
                hint = "; OpenAI-compatible endpoints usually end in /v1"
            return Failure(f"the endpoint did not answer with {exc.expected}: {self.where(exc.request)} "
                           f"sent {first_bytes(exc.head)}{hint}", False, code="unexpected_reply")
        request = getattr(exc, "request", None) if isinstance(exc, openai.APIError) else None
        where = self.where(request if request is not None else "POST /responses")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            body = exc.body
            if isinstance(body, dict):
                text = _error_text(body, exc.message)
            else:  # an HTML page, plain text, a JSON null: its start, printable
                text = exc.response.reason_phrase or "no reason given"
                if body:
                    text = f"{text}; the reply began {first_bytes(body if isinstance(body, str) else json.dumps(body))}"
            code = error_code(_error_code(body), text if status in (400, 413) else "")
            retryable = (status in (408, 409, 429) or status >= 500) and code != CONTEXT_FULL
            if status not in _UNDERSTOOD:
                text = f"{text.rstrip('.')}; tried {where}"
            return Failure(f"HTTP {status}: {text}", retryable, _retry_after(exc.response.headers), status, code)
        if isinstance(exc, Stopped):
            return Failure(str(exc), False)
        if isinstance(exc, openai.APITimeoutError):
            if type(exc.__cause__).__name__ == "ConnectTimeout":  # connecting, or the TLS handshake
                return Failure(f"connecting timed out after {min(self.config.timeout, CONNECT_TIMEOUT):g} s; "
                               f"tried {where}", True)
            return Failure(f"the request timed out after {self.config.timeout:g} s; tried {where}", True,
                           code="timeout")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return Failure(f"connection error: {cause}; tried {where}", True, code="connection_error")
        if isinstance(exc, json.JSONDecodeError):
            return Failure(f"the endpoint sent malformed JSON in the stream: {exc.msg}", True)
        if isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore"):
            return Failure(f"the stream broke off: {type(exc).__name__}: {exc}", True, code="connection_error")
        if isinstance(exc, openai.APIError):
            return Failure(f"API error: {exc}", False)
        return Failure(f"{type(exc).__name__}: {exc}", False)
