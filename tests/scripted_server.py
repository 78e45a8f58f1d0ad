"""A scripted Responses endpoint: a real HTTP server on 127.0.0.1 for the tests.

It speaks the wire format (JSON bodies and semantic SSE streams with chunked
transfer encoding), plays scripted model turns in order, and records every
request so tests can assert on exactly what the agent sent. Faults are part of
the script: HTTP errors with Retry-After, streams that stop early or break off,
`error` events, failed and incomplete responses, and background responses
that need polling, and replies of the wrong kind (`raw`: a bridge's HTML page served
as HTTP 200, JSON where a stream was asked for, `null`). Like the real endpoint, it refuses a store=false request
that replays a reasoning item without its `encrypted_content`, and a request
whose history leaves a function_call unanswered or answers a call it does not
hold (HTTP 400, no script step used).

Context windows are part of it too: with `window` set, a request whose body is
over it (4 characters a token) is refused with `context_length_exceeded`, and
usage reports the body's size. `/v1/responses/compact` compacts like OpenAI's
(kept user messages and a `compaction` item), or answers `compact_status`.
Stored responses (store=true) can be chained with `previous_response_id`.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


def message(text: str, phase: str | None = None) -> dict[str, Any]:
    item = {
        "id": _id("msg"),
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }
    if phase:
        item["phase"] = phase
    return item


def call(name: str, args: dict[str, Any] | str, call_id: str | None = None) -> dict[str, Any]:
    return {
        "id": _id("fc"),
        "type": "function_call",
        "status": "completed",
        "call_id": call_id or _id("call"),
        "name": name,
        "arguments": args if isinstance(args, str) else json.dumps(args),
    }


def reasoning(summary: str = "", encrypted: str | None = None) -> dict[str, Any]:
    return {
        "id": _id("rs"),
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": summary}] if summary else [],
        "encrypted_content": encrypted if encrypted is not None else f"gAAAA{_id('enc')}==",
    }


@dataclass
class Reply:
    """One scripted model turn, or one fault."""

    output: list[dict[str, Any]] = field(default_factory=list)
    status: str = "completed"  # or incomplete / failed
    usage: dict[str, Any] | None = None
    http_status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None  # body of an HTTP error, or the failed response's error
    cut_after: int | None = None  # send this many events, then drop the connection
    end_early: int | None = None  # send this many events, then end the stream cleanly
    stream_error: dict[str, Any] | None = None  # an `error` event instead of completion
    delay: float = 0.0  # before answering
    event_delay: float = 0.0  # between events
    polls: int = 2  # background: retrieves answered in_progress before the final state
    raw: bytes | None = None  # sent as it is with http_status and content_type, instead of any of the above
    content_type: str = "text/html; charset=utf-8"  # of `raw`: a bridge's 404 page served as HTTP 200, JSON, ...
    # A model that thinks in silence: `hold` seconds before the headers, or `silence` seconds after the first
    # `silent_after` events (0: right after the headers). Either ends early when the client hangs up, which
    # `hangups` records ("headers", "stream", or "poll" for poll_delay), as a real endpoint would stop generating.
    hold: float = 0.0
    silence: float = 0.0
    silent_after: int = 0
    poll_delay: float = 0.0  # background: each retrieve answers after this long


def usage(inp: int = 100, out: int = 20, cached: int = 0, reasoning_tokens: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": inp + out,
    }


def _response(reply: Reply, body: dict[str, Any], rid: str, status: str, output: list) -> dict[str, Any]:
    resp = {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": body.get("model"),
        "output": output,
        "usage": reply.usage or usage(),
        "error": None,
        "incomplete_details": None,
        "store": body.get("store", True),
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
    }
    if status == "failed":
        resp["error"] = reply.error or {"code": "server_error", "message": "the model failed"}
    if status == "incomplete":
        resp["incomplete_details"] = {"reason": "max_output_tokens"}
    return resp


def _chunks(text: str, size: int = 7) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def sse_events(reply: Reply, body: dict[str, Any]) -> list[dict[str, Any]]:
    rid = _id("resp")
    events: list[dict[str, Any]] = []

    def emit(kind: str, **data: Any) -> None:
        events.append({"type": kind, "sequence_number": len(events), **data})

    emit("response.created", response=_response(reply, body, rid, "in_progress", []))
    emit("response.in_progress", response=_response(reply, body, rid, "in_progress", []))
    for idx, item in enumerate(reply.output):
        kind = item["type"]
        added = copy.deepcopy(item)
        if kind == "message":
            added.update(status="in_progress", content=[])
        elif kind == "function_call":
            added.update(status="in_progress", arguments="")
        elif kind == "reasoning":
            added["summary"] = []
        emit("response.output_item.added", output_index=idx, item=added)
        if kind == "message":
            for ci, part in enumerate(item["content"]):
                empty = {**part, "text": ""}
                emit("response.content_part.added", item_id=item["id"], output_index=idx, content_index=ci, part=empty)
                for piece in _chunks(part["text"]):
                    emit("response.output_text.delta", item_id=item["id"], output_index=idx,
                         content_index=ci, delta=piece, logprobs=[])
                emit("response.output_text.done", item_id=item["id"], output_index=idx, content_index=ci,
                     text=part["text"], logprobs=[])
                emit("response.content_part.done", item_id=item["id"], output_index=idx, content_index=ci, part=part)
        elif kind == "function_call":
            for piece in _chunks(item["arguments"], 16):
                emit("response.function_call_arguments.delta", item_id=item["id"], output_index=idx, delta=piece)
            emit("response.function_call_arguments.done", item_id=item["id"], output_index=idx,
                 arguments=item["arguments"])
        elif kind == "reasoning":
            for si, part in enumerate(item.get("summary", [])):
                emit("response.reasoning_summary_part.added", item_id=item["id"], output_index=idx,
                     summary_index=si, part={"type": "summary_text", "text": ""})
                for piece in _chunks(part["text"]):
                    emit("response.reasoning_summary_text.delta", item_id=item["id"], output_index=idx,
                         summary_index=si, delta=piece)
                emit("response.reasoning_summary_text.done", item_id=item["id"], output_index=idx,
                     summary_index=si, text=part["text"])
                emit("response.reasoning_summary_part.done", item_id=item["id"], output_index=idx,
                     summary_index=si, part=part)
        emit("response.output_item.done", output_index=idx, item=item)
    if reply.stream_error:
        emit("error", **reply.stream_error)
    else:
        final = {"completed": "response.completed", "incomplete": "response.incomplete", "failed": "response.failed"}
        output = [] if reply.status == "failed" else reply.output
        emit(final[reply.status], response=_response(reply, body, rid, reply.status, output))
    return events


def unreplayable(body: Any) -> str | None:
    """The id of a reasoning item a store=false request cannot replay (no encrypted_content), else None."""
    if not isinstance(body, dict) or body.get("store", True) or not isinstance(body.get("input"), list):
        return None
    for item in body["input"]:
        if isinstance(item, dict) and item.get("type") == "reasoning" and not item.get("encrypted_content"):
            return str(item.get("id"))
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-stream (interrupts, scripted cut-offs) are expected here


def history_error(items: Any) -> str | None:
    """What the real endpoint says of a history with an unanswered call or an output without its call."""
    if not isinstance(items, list):
        return None
    calls: set[str] = set()
    answered: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call":
            calls.add(item.get("call_id"))
        elif item.get("type") == "function_call_output":
            if item.get("call_id") not in calls:
                return f"No tool call found for function call output with call_id {item.get('call_id')}."
            answered.add(item.get("call_id"))
    missing = sorted(calls - answered)
    return f"No tool output found for function call {missing[0]}." if missing else None


def tokens_of(body: dict[str, Any]) -> int:
    """The scripted endpoint's token count: 4 characters of the request's JSON a token."""
    return len(json.dumps([body.get("instructions"), body.get("tools"), body.get("input")])) // 4


def prefix_shares(raw: list[bytes]) -> list[float]:
    """For each request body, how much of it the next one repeats byte for byte (instructions, tools,
    then the input items in order): what a provider's prompt cache can reuse."""
    def prompt(body: bytes) -> str:
        data = json.loads(body)
        return json.dumps([data.get("instructions"), data.get("tools")]) + "".join(json.dumps(i) for i in data["input"])

    shares = []
    for a, b in zip(raw, raw[1:]):
        sa, sb = prompt(a), prompt(b)
        common = next((n for n, (x, y) in enumerate(zip(sa, sb)) if x != y), min(len(sa), len(sb)))
        shares.append(common / len(sa))
    return shares


class ScriptedServer:
    def __init__(self) -> None:
        self.script: list[Reply | Callable[[dict[str, Any]], Reply]] = []
        self.requests: list[dict[str, Any]] = []
        self.background: dict[str, dict[str, Any]] = {}
        self.cancelled: list[str] = []
        self.hangups: list[str] = []  # where a client hung up during a hold or a silence
        self.models: list[str] | None = None  # GET /v1/models lists these; None: 404, as endpoints without it
        self.models_delay = 0.0  # seconds GET /v1/models takes to answer
        self.window: int | None = None  # tokens: larger requests get context_length_exceeded
        self.compact_status = 200  # 404: an endpoint without /responses/compact
        self.compact_delay = 0.0  # seconds before /responses/compact answers
        self.compactions: list[dict[str, Any]] = []  # the bodies /responses/compact received
        self.stored: dict[str, list[dict[str, Any]]] = {}  # store=true: response id -> its whole context
        self.inputs: list[list[dict[str, Any]]] = []  # each /responses request's whole input, chains resolved
        # Answers every request once the script is used up: body -> Reply, for many sessions at once (a batch),
        # deciding from the body (the target named in the prompt, whether the last item is a call's output).
        self.responder: Callable[[dict[str, Any]], Reply] | None = None
        self._lock = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def add(self, *replies: Reply | Callable[[dict[str, Any]], Reply]) -> None:
        with self._lock:
            self.script.extend(replies)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["method"] == "POST" and r["path"] == "/v1/responses"]

    @property
    def raw_bodies(self) -> list[bytes]:
        """The /responses request bodies exactly as they came over the wire."""
        return [r["raw"] for r in self.requests if r["method"] == "POST" and r["path"] == "/v1/responses"]

    def headers(self) -> list[dict[str, str]]:
        return [r["headers"] for r in self.requests if r["method"] == "POST" and r["path"] == "/v1/responses"]

    def _compact(self, body: dict[str, Any]) -> dict[str, Any]:
        """What OpenAI's compaction returns: the user messages, then one opaque compaction item."""
        kept = [{"type": "message", "role": "user", "content": i["content"]} for i in body.get("input") or []
                if isinstance(i, dict) and i.get("type") == "message" and i.get("role") == "user"]
        blob = "gAAAA" + f"{len(self.compactions):04d}" + "c" * 60
        output = [*kept, {"id": _id("cmp"), "type": "compaction", "encrypted_content": blob}]
        return {"id": _id("resp"), "object": "response.compaction", "created_at": int(time.time()), "output": output,
                "usage": usage(tokens_of(body), 50)}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if not self.script and self.responder is not None:
                step = self.responder
            elif not self.script:
                return Reply(http_status=500, error={"error": {"message": "script exhausted", "type": "test"}})
            else:
                step = self.script.pop(0)
        return step(body) if callable(step) else step

    def _handler(server_self) -> type[BaseHTTPRequestHandler]:  # noqa: N805
        srv = server_self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _record(self, body: Any, raw: bytes = b"") -> None:
                with srv._lock:
                    srv.requests.append({"method": self.command, "path": self.path, "raw": raw, "body": body,
                                         "headers": {k.lower(): v for k, v in self.headers.items()}})

            def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # retrieve
                self._record(None)
                if self.path.rstrip("/").endswith("/models"):
                    time.sleep(srv.models_delay)
                    if srv.models is None:
                        return self._json(404, {"error": {"message": "Not found", "type": "invalid_request_error"}})
                    return self._json(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "scripted"} for m in srv.models]})
                rid = self.path.rsplit("/", 1)[-1]
                state = srv.background.get(rid)
                if state is None:
                    return self._json(404, {"error": {"message": f"no response {rid}"}})
                if state["reply"].poll_delay and self._quiet(state["reply"].poll_delay, "poll"):
                    return
                if state["status"] != "cancelled":
                    state["polls"] -= 1
                    if state["polls"] < 0:
                        state["status"] = state["reply"].status
                resp = _response(state["reply"], state["body"], rid, state["status"],
                                 state["reply"].output if state["status"] == "completed" else [])
                self._json(200, resp)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                body = json.loads(raw) if raw else None
                self._record(body, raw)
                if self.path.endswith("/responses/compact"):
                    srv.compactions.append(body)
                    time.sleep(srv.compact_delay)
                    if srv.compact_status != 200:
                        return self._json(srv.compact_status, {"error": {"message": "Not found", "type": "invalid_request_error"}})
                    if srv.window is not None and tokens_of(body) > srv.window:
                        return self._too_long(body)
                    return self._json(200, srv._compact(body))
                if self.path.endswith("/cancel"):
                    rid = self.path.split("/")[-2]
                    srv.cancelled.append(rid)
                    if rid in srv.background:
                        srv.background[rid]["status"] = "cancelled"
                    return self._json(200, {"id": rid, "object": "response", "status": "cancelled"})
                lost = unreplayable(body)
                if lost is not None:
                    return self._json(400, {"error": {
                        "message": f"Item with id '{lost}' not found. Items are not persisted when `store` is set "
                                   "to false. Try again with `store` set to true, or remove this item from your input.",
                        "type": "invalid_request_error", "param": "input", "code": None}})
                whole = list(body.get("input") or []) if isinstance(body.get("input"), list) else []
                previous = body.get("previous_response_id")
                if previous:
                    if previous not in srv.stored:
                        return self._json(400, {"error": {
                            "message": f"Previous response with id '{previous}' not found.",
                            "type": "invalid_request_error", "param": "previous_response_id",
                            "code": "previous_response_not_found"}})
                    whole = srv.stored[previous] + whole
                broken = history_error(whole)
                if broken:
                    return self._json(400, {"error": {"message": broken, "type": "invalid_request_error",
                                                      "param": "input", "code": None}})
                if srv.window is not None and tokens_of({**body, "input": whole}) > srv.window:
                    return self._too_long({**body, "input": whole})
                srv.inputs.append(whole)
                reply = srv._next(body)
                if srv.window is not None and reply.usage is None:
                    reply = copy.copy(reply)
                    reply.usage = usage(tokens_of({**body, "input": whole}), 20)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.hold and self._quiet(reply.hold, "headers"):
                    return
                if reply.raw is not None:
                    return self._raw(reply)
                if reply.http_status != 200:
                    return self._json(reply.http_status, reply.error or {"error": {"message": "scripted"}},
                                      reply.headers)
                if body.get("background"):
                    rid = _id("resp")
                    srv.background[rid] = {"reply": reply, "body": body, "polls": reply.polls, "status": "queued"}
                    return self._json(200, _response(reply, body, rid, "queued", []))
                if not body.get("stream"):
                    return self._json(200, _response(reply, body, _id("resp"), reply.status, reply.output))
                self._stream(reply, body, whole)

            def _quiet(self, seconds: float, where: str) -> bool:
                """Send nothing for `seconds`; True (and recorded) when the client hung up meanwhile."""
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    readable, _, _ = select.select([self.connection], [], [], 0.02)
                    if readable:
                        try:
                            gone = self.connection.recv(1, socket.MSG_PEEK) == b""
                        except OSError:
                            gone = True
                        if gone:
                            srv.hangups.append(where)
                            self.close_connection = True
                            return True
                        time.sleep(0.02)  # data (a pipelined request?): not ours to read
                return False

            def _raw(self, reply: Reply) -> None:
                self.send_response(reply.http_status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.raw or b"")))
                self.end_headers()
                self.wfile.write(reply.raw or b"")

            def _too_long(self, body: dict[str, Any]) -> None:
                self._json(400, {"error": {
                    "message": "Your input exceeds the context window of this model. Please adjust your input and "
                               "try again.",
                    "type": "invalid_request_error", "param": "input", "code": "context_length_exceeded"}})

            def _stream(self, reply: Reply, body: dict[str, Any], whole: list[dict[str, Any]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                events = sse_events(reply, body)
                if body.get("store") and reply.status == "completed" and not reply.stream_error:
                    srv.stored[events[-1]["response"]["id"]] = whole + reply.output
                for n, event in enumerate(events):
                    if reply.silence and n == reply.silent_after:
                        self.wfile.flush()
                        if self._quiet(reply.silence, "stream"):
                            return
                    if reply.cut_after is not None and n >= reply.cut_after:
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if reply.end_early is not None and n >= reply.end_early:
                        break
                    data = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                    if reply.event_delay:
                        time.sleep(reply.event_delay)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        return Handler


@contextlib.contextmanager
def backlog_full(srv: ScriptedServer) -> Iterator[None]:
    """While inside, `srv` accepts nothing and its listen queue is full: a new connection hangs in SYN_SENT
    (Linux drops the SYN), as one to an endpoint behind a dead route would. After, it serves again, and a
    connect still retrying gets through."""
    srv.httpd.shutdown()  # the accept loop ends
    listener = srv.httpd.socket
    listener.listen(0)
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(srv.httpd.server_address)
            fillers.append(filler)
        probe = socket.socket()
        probe.setblocking(False)
        probe.connect_ex(srv.httpd.server_address)
        fillers.append(probe)
        assert not select.select([], [probe], [], 0.3)[1], "the listen queue is not full"
        yield
    finally:
        for filler in fillers:
            filler.close()
        listener.listen(srv.httpd.request_queue_size)
        srv.thread = threading.Thread(target=srv.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        srv.thread.start()


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts and never speaks: a TLS handshake to it waits for the server's
    hello forever. It records what each connection sent, and how many of them the client has closed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.received: list[bytes] = []
        self.hangups = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            with self._lock:
                n = len(self.received)
                self.received.append(b"")
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    with self._lock:
                        self.hangups += 1
                    return
                with self._lock:
                    self.received[n] += data

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        except OSError:
            pass
        self.listener.close()
