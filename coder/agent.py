"""The agent loop: request, replay, dispatch tool calls, repeat until the model is done.

`Agent.run(prompt)` is a generator of typed events (coder.events). Front ends
iterate it and render; the loop itself knows nothing about terminals. Closing
the generator or a KeyboardInterrupt ends the run with every open call
answered, so the conversation is always valid for the next message.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generator

from coder import dirs
from coder.approvals import Approvals
from coder.client import CONTEXT_FULL, Failure, Raw, ResponsesClient, error_code, new_request_id, retryable_code
from coder.config import Config, ConfigError
from coder.context import Meter
from coder.conversation import INTERRUPTED, Conversation, developer_message, output_text, user_message
from coder.images import ImageError, load_image
from coder.keeping import ContextFull, ContextKeeping
from coder.events import (
    ApprovalRequest,
    Error,
    Event,
    FollowUpDelivered,
    MessageDone,
    Notice,
    ReasoningDelta,
    RequestStarted,
    Retrying,
    RunStarted,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnDone,
    Usage,
    UsageReport,
)
from coder.instructions import build_instructions, environment_context, sandbox_note
from coder.tools import TOOLS, ToolResult, call_tool, parse_arguments, schemas
from coder.tools.base import ToolContext
from coder.tools.custom import FunctionTool
from coder.throttle import Gate
from sandbox.backends import Backend
from sandbox.policy import Mode, Policy, default_deny_read, make_private_temp_dir

if TYPE_CHECKING:
    from coder.tasks import Result

POLL_INTERVAL = (0.25, 2.0)  # background mode: first and largest wait between polls
SLOW_POLL = 30.0  # the largest wait between polls with a 2h or 8h completion window
CONTEXT_GAP = "\n\n"  # before the environment context in the first message
STOPPED_AT_QUESTION = "The user stopped the turn at the approval question; the command did not run."
CANCEL_TIMEOUT = 2.0  # how long a stopped run waits to tell the endpoint to cancel a background response


class StreamFault(Exception):
    """The stream ended badly (no final event, or an `error` event), or the response failed.

    `answered`: the server itself reported the failure, so that response is over and a retry is a
    new one (a new idempotency key; the old one would only replay the failure).
    """

    def __init__(self, failure: Failure, answered: bool = False) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.answered = answered


@dataclass
class ResponseResult:
    status: str = "completed"
    output: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    response_id: str | None = None
    error_code: str | None = None  # a failed response's error code: what decides whether to try again
    error_status: int | None = None  # the HTTP status a refused request ended with


class Agent(ContextKeeping):
    def __init__(
        self,
        config: Config,
        workspace: Path | str,
        *,
        policy: Policy | None = None,
        client: ResponsesClient | None = None,
        conversation: Conversation | None = None,
        instructions: str | None = None,
        writable_files: Sequence[str | os.PathLike[str]] | None = None,
        gate: Gate | None = None,
        project_notes: str | None = None,
    ) -> None:
        """`writable_files`: the only files this agent may write (its tools and its commands), the rest of
        the workspace being read-only to it (a batch's --scope file); `gate`: a back-off shared with other
        agents of a pool (coder.throttle); `project_notes`: the project's AGENTS.md text as read once for
        many agents (a batch), instead of from disk now."""
        self.config = config
        self.workspace = Path(os.path.realpath(workspace))
        if config.tool_choice not in ("auto", "required", "none") and config.tool_choice not in TOOLS:
            raise ConfigError(
                f"tool_choice must be auto, required, none or a tool name ({', '.join(TOOLS)}), "
                f"got {config.tool_choice!r}"
            )
        if config.background and config.zdr:
            raise ConfigError(config.background_refusal())
        if config.max_cost is not None:
            from coder.pricing import require_price

            require_price(config)
        self._owned_temp: Path | None = None
        if policy is None:
            self._owned_temp = make_private_temp_dir()
            try:
                policy = Policy.for_workspace(
                    self.workspace, Mode.parse(config.sandbox), network=config.network, temp_dir=self._owned_temp,
                    deny_read=deny_list(config, self.workspace),
                    limits=config.sandbox_limits(),
                    writable_files=tuple(Path(f) for f in writable_files) if writable_files is not None else None,
                )
            except ValueError as e:
                shutil.rmtree(self._owned_temp, ignore_errors=True)
                raise ConfigError(str(e)) from None
        self.policy = policy
        # The file scope, kept apart from the policy: a read-only spell (which has no writable files) and
        # back must not lift it.
        self.scope = tuple(policy.writable_files) or tuple(
            Path(os.path.realpath(self.workspace / f)) for f in writable_files or ())
        self.client = client or ResponsesClient(config)
        self.conversation = conversation or Conversation()
        self.instructions = instructions if instructions is not None else build_instructions(policy, project_notes)
        self.described_mode = policy.mode  # the sandbox the instructions describe (a resume may say otherwise)
        self.tools = schemas()
        self.custom_tools: dict[str, FunctionTool] = {}
        self.output_schema: dict[str, Any] | None = None  # the final answer's JSON schema (set_output_schema)
        self.gate = gate
        self._tools_json = Raw(json.dumps(self.tools, separators=(",", ":")).encode())  # the same bytes every time
        self.approvals = Approvals(config.approval or "never")
        self.usage = Usage()
        self.cancel_event = threading.Event()
        self.client.stop = self.cancel_event  # a cancel also ends the request in flight, at whatever stage
        self._told_unreplayable = False  # the notice about reasoning that cannot be replayed, given once
        self.meter = Meter(fixed=len(self.instructions) + len(self._tools_json))
        self._chain: tuple[str, int] | None = None  # chain = true: (last response id, items it covers)
        self._unconfirmed = False  # a compaction whose effect no response has reported yet
        self._learned_window: int | None = None  # a model not in the table: what its overflow taught us
        self.session_id = uuid.uuid4().hex  # the prompt cache key; a Session sets its own id
        self.tool_ctx = ToolContext(
            policy=policy,
            env=self._child_env(),
            cancel=self.cancel_event,
            default_timeout=config.command_timeout,
            registry=dirs.state_dir() / "placeholders",
            backend_choice=config.sandbox_backend,
        )

    # --- what a script adds ---
    def add_tool(self, name: str, description: str, json_schema: dict[str, Any],
                 function: Callable[[dict[str, Any]], Any]) -> None:
        """Offer the model one more function tool. `json_schema` (the arguments, an object) must suit strict
        mode; `function(arguments)` runs in this process, outside the sandbox, and returns the output (a str,
        or anything JSON can encode); what it raises becomes an error output the model reads. Add tools
        before the first run: a changed tool list makes the provider's cached prefix useless. ValueError
        (one line) when the tool is not acceptable."""
        from coder.tools import custom

        tool = custom.make(name, description, json_schema, function, set(TOOLS) | set(self.custom_tools))
        self.custom_tools[name] = tool
        self.tools = [*self.tools, tool.schema()]
        self._tools_json = Raw(json.dumps(self.tools, separators=(",", ":")).encode())
        self.meter.fixed = len(self.instructions) + len(self._tools_json)

    def set_output_schema(self, schema: dict[str, Any] | None) -> None:
        """Ask for the final answer as JSON matching `schema` (text.format json_schema, strict); None: plain
        text again. SchemaError (one line) when strict mode cannot take the schema."""
        if schema is not None:
            from coder import schemas as checks

            checks.check_strict(schema, "the output schema")
        self.output_schema = schema

    @contextmanager
    def schema_for_task(self, schema: dict[str, Any] | None) -> Iterator[None]:
        """`schema` (when given) for the task run inside, then the schema there was before."""
        kept = self.output_schema
        if schema is not None:
            self.set_output_schema(schema)
        try:
            yield
        finally:
            self.output_schema = kept

    def _text_format(self) -> dict[str, Any] | None:
        if self.output_schema is None:
            return None
        return {"type": "json_schema", "name": "answer", "schema": self.output_schema, "strict": True}

    def run_task(self, prompt: str, images: Sequence[str | os.PathLike[str]] = (), *,
                 output_schema: dict[str, Any] | None = None,
                 on_event: Callable[[Event], None] | None = None) -> "Result":
        """Run one task to its end and return what came of it (coder.tasks.Result), for scripts that want
        the outcome rather than the events; `on_event` sees each event as it comes. Never raises for what
        the model or the endpoint did: a failure is in the Result's status and error. With an approval
        policy that asks, every question is answered no (nobody is there to answer it)."""
        from coder.tasks import collect

        with self.schema_for_task(output_schema):
            return collect(self.run(prompt, images), self.session_id, on_event)

    def _child_env(self) -> dict[str, str]:
        from coder import credentials

        env = credentials.child_environment(self.config.api_key_env, self.config.env_passthrough,
                                            workspace=self.workspace)  # coder's venv off PATH, rg on it
        if self.policy.temp_dir:
            env["TMPDIR"] = str(self.policy.temp_dir)
        return env

    # --- controls usable from another thread (a front end's UI thread) ---
    def queue(self, text: str) -> None:
        """A follow-up for the model, delivered after the running calls' outputs."""
        self.conversation.queue(text)

    def cancel(self) -> None:
        """Stop the current run, from any thread, at once: running commands are killed and the request in
        flight is dropped whatever it waits for (the headers, a silent stream, a retry's pause, a poll).
        The run then ends with TurnDone(status="interrupted") and every call answered; once is enough,
        and calling it again does no harm."""
        self.cancel_event.set()
        self.client.abort()

    # --- settings a front end may change between turns ---
    def set_model(self, model: str) -> None:
        self.config = replace(self.config, model=model)
        self.client.config = self.config
        self._learned_window = None  # what an overflow taught was about the other model

    @property
    def session_id(self) -> str:
        return self.client.session_id

    @session_id.setter
    def session_id(self, value: str) -> None:
        """Sent as the prompt_cache_key and the session_id header: a provider routes a session to one cache."""
        self.client.session_id = value

    def set_sandbox(self, mode: Mode) -> None:
        """Switch the sandbox mode; the backend is chosen again.

        The instructions stay as they were sent (the cached prefix stays valid); the model hears of
        the change in a developer message appended to the conversation, as Codex does.
        """
        p = self.policy
        try:
            self.policy = Policy.for_workspace(
                p.workspace, mode, network=self.config.network, temp_dir=p.temp_dir, deny_read=p.deny_read,
                limits=p.limits, writable_files=self.scope or None,  # a batch's file scope stays
            )
        except ValueError as e:  # the scope's target is gone: no sandbox change, one line
            raise ConfigError(f"{e}: the sandbox stays {p.mode.value}") from None
        self.tool_ctx = replace(self.tool_ctx, policy=self.policy, backend=None)
        if self.conversation.items:
            self.conversation.add_message(developer_message(sandbox_note(self.policy)))
        else:
            self._fresh_instructions()

    def _fresh_instructions(self) -> None:
        """Instructions for the sandbox now in force, when the present ones describe another: only before
        anything was sent (they are the start of the cached prefix)."""
        if self.policy.mode is not self.described_mode:
            self.instructions = build_instructions(self.policy)
            self.described_mode = self.policy.mode
            self.meter.fixed = len(self.instructions) + len(self._tools_json)

    def _tell_sandbox(self) -> None:
        """After a compaction: the sandbox, if it is not the one the instructions describe."""
        if self.policy.mode is not self.described_mode and self.conversation.items:
            self.conversation.add_message(developer_message(sandbox_note(self.policy)))

    def reset(self) -> None:
        """Start a new conversation (same settings)."""
        self.conversation = Conversation()
        self.usage = Usage()
        self.meter.forget()
        self._chain = None
        self._unconfirmed = False
        self._fresh_instructions()

    def close(self) -> None:
        if self._owned_temp is not None:
            shutil.rmtree(self._owned_temp, ignore_errors=True)
            self._owned_temp = None

    def started_event(self) -> RunStarted:
        return RunStarted(
            model=self.config.model,
            workspace=str(self.workspace),
            sandbox={
                "mode": self.policy.mode.value,
                "backend": self.tool_ctx.backend.name,
                "detail": self.tool_ctx.backend.detail,
                "network": self.policy.network,
            },
            store=not self.config.zdr,
        )

    # --- the loop ---
    def run(self, prompt: str | None, images: Sequence[str | os.PathLike[str]] = ()) -> Iterator[Event]:
        """One turn: `prompt` (None: go on, e.g. with queued follow-ups), with `images` (files: PNG, JPEG, GIF,
        WebP, see coder.images) sent in the same user message. An image that cannot be sent ends the run
        before anything is sent or kept: an Error naming it, then TurnDone(status="failed")."""
        self.cancel_event.clear()
        self.tool_ctx.written.clear()
        self.conversation.close_open_calls(INTERRUPTED)  # a resumed, cut-off turn
        try:
            parts = [load_image(path) for path in images]
        except ImageError as e:
            yield Error(str(e))
            yield TurnDone(status="failed", final_text="")
            return
        if prompt or parts:
            # The first message of a conversation also says where and when it is: a part of its own, after a
            # blank line, so an endpoint that joins the parts does not glue it to the last sentence.
            context = environment_context(self.policy) if not self.conversation.items else None
            self.conversation.add_message(user_message(prompt or "", CONTEXT_GAP + context if context else None, parts))
        for text in self.conversation.deliver_queued():  # follow-ups that came after the last request
            yield FollowUpDelivered(text)
        run_usage = Usage()
        final_text, status, answer = "", "completed", None
        overflowed = False  # the endpoint refused the size once: compacted, tried again
        try:
            for turn in range(1, self.config.max_turns + 1):
                spent = self._over_budget(run_usage) if turn > 1 else None
                if spent is not None:
                    yield Error(spent[1], code=spent[0])
                    status = spent[0]
                    break
                yield from self._fit(run_usage)
                request_id = new_request_id()
                yield RequestStarted(turn, request_id)
                result = yield from self._request(request_id=request_id)
                if result.status == "failed" and result.error_code == CONTEXT_FULL and not overflowed:
                    overflowed = True
                    self._learn_window(result.error or "")
                    yield Notice(f"the endpoint says the conversation is over the model's context window "
                                 f"({result.error}); compacting and trying again")
                    yield from self._compact_or_stop("overflow", run_usage)
                    continue
                if result.status == "failed":
                    yield Error(result.error or "the response failed", result.error_status, result.error_code)
                    status = "failed"
                    break
                overflowed = False
                output, refused, repeated = _distinct_calls(result.output)
                if repeated:
                    yield Notice(f"the response used call_id {', '.join(repeated)} for more than one call: an exact "
                                 "repeat runs once, calls that differ are not run")
                self.conversation.add_output(output)
                yield from self._reported(result, run_usage)
                calls = [i for i in output if i.get("type") == "function_call"]
                for item in output:
                    if item.get("type") == "message" and item.get("role", "assistant") == "assistant":
                        final_text = output_text(item)
                        yield MessageDone(final_text, _phase(item, bool(calls)))
                if result.status != "completed":
                    self.conversation.close_open_calls(f"Not run: the response ended with status {result.status}.")
                    yield Error(result.error or f"the response ended with status {result.status}",
                                code=result.error_code)
                    status = result.status
                    break
                if calls:
                    final_text = ""
                    yield from self._run_calls(calls, refused)
                delivered = self.conversation.deliver_queued()
                for text in delivered:
                    yield FollowUpDelivered(text)
                if not calls and not delivered:
                    break
            else:
                yield Error(f"stopped after {self.config.max_turns} model requests (max_turns)", code="max_turns")
                status = "max_turns"
        except ContextFull as e:
            status = "failed"
            yield Error(str(e), code=CONTEXT_FULL)
        except KeyboardInterrupt:
            status = "interrupted"  # a stop the user asked for: turn.done says so, it is no error
        finally:
            self.cancel_event.set()  # stops any command still running in a worker
            self.conversation.close_open_calls(INTERRUPTED)
        if status == "completed" and self.output_schema is not None:
            from coder.schemas import parse_answer

            answer, why = parse_answer(final_text, self.output_schema)
            if why is not None:
                yield Error(why, code="output_schema")
                status = "failed"
        yield TurnDone(status=status, final_text=final_text, usage=run_usage, output=answer,
                       files_changed=self._written())

    def _written(self) -> list[str]:
        """The files the file tools wrote in this run, relative to the workspace where they are inside it."""
        out = []
        for path in self.tool_ctx.written:
            try:
                out.append(str(Path(path).relative_to(self.workspace)))
            except ValueError:
                out.append(str(path))
        return sorted(out)

    def _over_budget(self, used: Usage) -> tuple[str, str] | None:
        """(the limit, why it stops the run) when the run has spent its tokens or its money."""
        cfg = self.config
        if cfg.max_tokens is not None and used.total_tokens >= cfg.max_tokens:
            return "max_tokens", (f"stopped after {used.total_tokens:,} tokens: the run's limit is {cfg.max_tokens:,} "
                                  "(max_tokens); the conversation can be resumed")
        if cfg.max_cost is not None and (used.cost or 0.0) >= cfg.max_cost:
            from coder.fmt import dollars

            return "max_cost", (f"stopped after {dollars(used.cost or 0.0)}: the run's limit is {dollars(cfg.max_cost)} "
                                "(max_cost); the conversation can be resumed")
        return None

    def _reported(self, result: "ResponseResult", run_usage: Usage) -> Iterator[Event]:
        """A response's usage: counted, and the truth about the context's size from now on."""
        if result.usage.cost is None:
            from coder import pricing

            result.usage.cost = pricing.cost(self.config.model, result.usage, self.config)
        run_usage.add(result.usage)
        self.usage.add(result.usage)
        self.meter.reported(result.usage.input_tokens + result.usage.output_tokens, self.conversation.size)
        if self._chaining() and result.response_id:
            self._chain = (result.response_id, len(self.conversation.items))
        yield UsageReport(request=result.usage, total=replace(self.usage), context_tokens=self.context_tokens(),
                          context_window=self.window)
        self._confirm(result.usage.input_tokens)

    def _check_cancel(self) -> None:
        if self.cancel_event.is_set():
            raise KeyboardInterrupt

    def _sleep(self, seconds: float) -> None:
        if self.cancel_event.wait(seconds):
            raise KeyboardInterrupt

    def _chaining(self) -> bool:
        return self.config.chain and not self.config.zdr and not self.config.background

    def _told(self) -> Iterator[Event]:
        """Under ZDR, reasoning that arrived without `encrypted_content` is not sent (see input_parts): said once."""
        lost = self.conversation.unencrypted
        if self.config.zdr and lost and not self._told_unreplayable:
            self._told_unreplayable = True
            yield Notice(f"left out {lost} reasoning item(s) that arrived without "
                         "encrypted_content: with store=false they cannot be sent back")

    def _body(self, chained: tuple[str, int] | None) -> dict[str, Any]:
        """The next request: the whole history (encoded once per item), or with chain = true only what is new."""
        conversation = self.conversation
        if chained is not None:
            items = Raw(conversation.input_parts(start=chained[1]))
        else:
            items = Raw(conversation.input_parts(zdr=self.config.zdr))
        return self.client.request_body(items, self._tools_json, self.instructions,
                                        background=self.config.background, text_format=self._text_format(),
                                        previous_response_id=chained[0] if chained else None,
                                        cache_key=self.session_id)

    def _request(self, build: Callable[[tuple[str, int] | None], dict[str, Any]] | None = None,
                 request_id: str | None = None) -> Generator[Event, None, ResponseResult]:
        if build is None:
            yield from self._told()
            build = self._body
        chained = self._chain if build == self._body and self._chaining() else None
        body = build(chained)
        # The same for every try whose outcome is unknown (a dropped connection, a timeout, an HTTP error),
        # so the server creates the response once however often it is asked.
        key = f"coder-{uuid.uuid4()}"
        attempt = conflicts = 0
        first_conflict = 0.0
        request_id = request_id or new_request_id()
        first_limited = 0.0
        while True:
            self._check_cancel()
            if self.gate is not None:
                self.gate.wait(self.cancel_event)  # another session of the pool was rate limited
            try:
                if self.config.background and "background" in body:
                    result = yield from self._background(body, key, request_id)
                else:
                    result = yield from self._stream_once(body, key, request_id)
                if result.status == "failed" and retryable_code(result.error_code):
                    raise StreamFault(Failure(result.error or "the response failed", True, code=result.error_code),
                                      answered=True)
                if result.status == "failed" and chained is not None:
                    raise StreamFault(Failure(result.error or "the response failed", False,
                                              code=result.error_code), answered=True)
                if self.gate is not None:
                    self.gate.passed()
                return result
            except (KeyboardInterrupt, ConfigError):
                raise
            except Exception as exc:
                self._check_cancel()  # the stream was closed under us on purpose
                failure = exc.failure if isinstance(exc, StreamFault) else self.client.classify(exc)
                if isinstance(exc, StreamFault) and exc.answered:
                    key = f"coder-{uuid.uuid4()}"
            failed_id, request_id = request_id, new_request_id()
            if chained is not None and not failure.retryable and failure.code != CONTEXT_FULL:
                # The endpoint lost the chain (previous_response_not_found) or will not continue it: send it all.
                chained = self._chain = None
                body, key = build(None), f"coder-{uuid.uuid4()}"
                yield Notice(f"chaining to the previous response failed ({failure.message}); "
                             "sending the whole conversation")
                continue
            if failure.code == CONTEXT_FULL:
                return ResponseResult(status="failed", error=failure.message, error_code=CONTEXT_FULL,
                                      error_status=failure.status)
            if failure.status == 409:
                # An earlier try of this request (same key) is still being answered: wait for it, as
                # long as one request may take, without spending a retry on it.
                conflicts += 1
                first_conflict = first_conflict or time.monotonic()
                if time.monotonic() - first_conflict > self.config.timeout:
                    return ResponseResult(status="failed", error=f"{failure.message} (still after "
                                          f"{self.config.timeout:g} s of waiting for the earlier try)",
                                          error_code=failure.code, error_status=failure.status)
            elif self.gate is not None and failure.status == 429 and failure.retryable:
                # Rate limited in a pool: the whole pool waits (see coder.throttle), and this costs no retry,
                # only time: the request gives up when it has been limited for as long as one may take.
                first_limited = first_limited or time.monotonic()
                if time.monotonic() - first_limited > self.config.timeout:
                    return ResponseResult(status="failed", error=f"{failure.message} (still rate limited after "
                                          f"{self.config.timeout:g} s)", error_code=failure.code,
                                          error_status=failure.status)
                if failure.retry_after is None or failure.retry_after <= self.config.max_retry_wait:
                    pause = self.gate.limited(failure.retry_after, self.config.max_retry_wait)
                    yield Retrying(attempt=attempt + conflicts + 1, delay=round(pause, 2), reason=failure.message,
                                   request_id=failed_id)
                    continue
            else:
                attempt += 1
                if not failure.retryable or attempt > self.config.max_retries:
                    return ResponseResult(status="failed", error=failure.message, error_code=failure.code,
                                          error_status=failure.status)
            cap = self.config.max_retry_wait
            delay = failure.retry_after
            if delay is not None and delay > cap:
                return ResponseResult(status="failed", error=f"{failure.message} (the endpoint asks to wait "
                                      f"{delay:g} s before retrying, more than max_retry_wait = {cap:g} s)",
                                      error_code=failure.code, error_status=failure.status)
            if delay is None:
                n = attempt if failure.status != 409 else conflicts
                delay = min(cap, min(20.0, 0.5 * 2 ** (n - 1)) * random.uniform(0.8, 1.2))
            yield Retrying(attempt=attempt + conflicts, delay=round(delay, 2), reason=failure.message,
                           request_id=failed_id)
            self._sleep(delay)

    def _stream_once(self, body: dict[str, Any], key: str, request_id: str) -> Generator[Event, None, ResponseResult]:
        done_items: list[dict[str, Any]] = []
        final: dict[str, Any] | None = None
        events = self.client.stream(body, key, request_id)
        phase: str | None = None  # of the message being streamed
        try:
            for ev in events:
                self._check_cancel()
                kind = ev.get("type")
                if kind == "response.output_text.delta":
                    yield TextDelta(ev.get("delta", ""), phase)
                elif kind == "response.output_item.added":
                    phase = _known_phase((ev.get("item") or {}).get("phase"))
                elif kind == "response.reasoning_summary_text.delta":
                    yield ReasoningDelta(ev.get("delta", ""))
                elif kind == "response.output_item.done":
                    done_items.append(ev["item"])
                elif kind in ("response.completed", "response.incomplete", "response.failed"):
                    final = ev.get("response") or {}
                    break
                elif kind == "error":
                    code = str(ev.get("code") or (ev.get("error") or {}).get("code") or "")
                    msg = ev.get("message") or (ev.get("error") or {}).get("message") or "unknown error"
                    raise StreamFault(Failure(f"stream error {code}: {msg}".replace("  ", " "), retryable_code(code),
                                              code=error_code(code, msg)), answered=True)
        finally:
            events.close()
        if final is None:
            raise StreamFault(Failure("the stream ended before response.completed", True))
        return self._result(final, done_items)

    def _result(self, response: dict[str, Any], done_items: list[dict[str, Any]]) -> ResponseResult:
        status = response.get("status") or "completed"
        output = response.get("output") or done_items
        error = code = None
        if status == "failed":
            err = response.get("error") or {}
            code = error_code(err.get("code"), str(err.get("message") or ""))
            error = f"the response failed: {err.get('code') or ''} {err.get('message') or ''}".strip()
        elif status == "incomplete":
            reason = (response.get("incomplete_details") or {}).get("reason", "unknown reason")
            error = f"the response is incomplete: {reason}"
        elif status == "completed" and all(i.get("type") == "reasoning" for i in output):
            # No message and no call: nothing was answered, however the response calls itself.
            status, error = "incomplete", "the response is incomplete: it completed with no answer and no tool call"
        result = ResponseResult(status, list(output), Usage.from_response(response.get("usage")), None,
                                response.get("id"), code)
        if status == "failed":
            result.output, result.error = [], error
        elif status != "completed":
            result.error = error
        return result

    def _background(self, body: dict[str, Any], key: str, request_id: str) -> Generator[Event, None, ResponseResult]:
        response = self.client.create_background(body, key, request_id)
        rid = response.get("id")
        wait, failures = POLL_INTERVAL[0], 0
        # A 2h or 8h completion window is answered in minutes or hours: polled every half minute at most.
        longest = POLL_INTERVAL[1] if self.config.completion_window in (None, "soonest") else SLOW_POLL
        try:
            while response.get("status") in ("queued", "in_progress"):
                self._sleep(wait)
                wait = min(longest, wait * 1.5)
                try:
                    response = self.client.retrieve(rid)
                    failures = 0
                except KeyboardInterrupt:
                    raise
                except Exception as exc:
                    self._check_cancel()  # the poll was cut off by a stop
                    failure = self.client.classify(exc)
                    failures += 1
                    if not failure.retryable or failures > self.config.max_retries:
                        raise
                    yield Retrying(attempt=failures, delay=wait, reason=failure.message)
        except KeyboardInterrupt:
            try:
                self.client.cancel(rid, timeout=CANCEL_TIMEOUT)  # briefly: the user is waiting for the stop
            except Exception:
                pass
            raise
        if response.get("status") == "cancelled":
            return ResponseResult(status="failed", error="the background response was cancelled")
        return self._result(response, [])

    def _run_calls(self, calls: list[dict[str, Any]], refused: dict[str, str]) -> Iterator[Event]:
        """Run calls in order; consecutive read-only calls run concurrently; `refused` ones are answered, not run."""
        batches: list[list[dict[str, Any]]] = []
        for call in calls:
            tool = TOOLS.get(call.get("name", ""))
            parallel = tool is not None and tool.read_only and call["call_id"] not in refused
            if parallel and batches and batches[-1][0].get("_parallel"):
                batches[-1].append({**call, "_parallel": True})
            else:
                batches.append([{**call, "_parallel": parallel}])
        for batch in batches:
            self._check_cancel()
            for call in batch:
                yield ToolCallStarted(call["call_id"], call.get("name", ""), call.get("arguments", ""), _summary(call))
            if len(batch) == 1 and batch[0]["call_id"] in refused:
                results = [(ToolResult(refused[batch[0]["call_id"]], False), 0.0)]
            elif len(batch) == 1 and batch[0].get("name") == "run_command" and self.approvals.policy != "never":
                results = [(yield from self._run_with_approval(batch[0]))]
            elif len(batch) == 1:
                results = [self._execute(batch[0])]
            else:
                with ThreadPoolExecutor(max_workers=min(8, len(batch))) as pool:
                    results = list(pool.map(self._execute, batch))
            for call, (result, duration) in zip(batch, results):
                self.conversation.add_call_output(call["call_id"], result.output, result.content)
                yield finished_event(call, result, duration)

    def _execute(self, call: dict[str, Any], ctx: ToolContext | None = None) -> tuple[ToolResult, float]:
        start = time.monotonic()
        custom = self.custom_tools.get(call.get("name", ""))
        if custom is not None:
            text, ok = custom.call(call.get("arguments", ""))
            return ToolResult(text, ok), round(time.monotonic() - start, 3)
        result = call_tool(ctx or self.tool_ctx, call.get("name", ""), call.get("arguments", ""))
        return result, round(time.monotonic() - start, 3)

    def _unsandboxed(self) -> ToolContext:
        policy = replace(self.policy, mode=Mode.FULL_ACCESS)
        return replace(self.tool_ctx, policy=policy, backend=Backend("unsandboxed", "approved by the user"))

    def _ask(self, call: dict[str, Any], command: str, reason: str, escalate: bool) -> Generator[Event, None, ApprovalRequest]:
        request = ApprovalRequest(call["call_id"], command, reason, escalate=escalate)
        yield request
        if request.approved and request.always and not self.cancel_event.is_set():
            self.approvals.trust(command)
        return request

    def _run_with_approval(self, call: dict[str, Any]) -> Generator[Event, None, tuple[ToolResult, float]]:
        """run_command under an approval policy.

        Asks first when the policy is `untrusted`, or for every command when this
        machine has no sandbox at all; under `on-request`, offers to re-run
        outside the sandbox a command the sandbox blocked.
        """
        command = _summary(call)
        approvals = self.approvals
        backend = self.tool_ctx.backend
        no_sandbox = not backend.isolates and self.policy.mode is not Mode.FULL_ACCESS
        if no_sandbox or approvals.ask_first(command):
            if not approvals.is_trusted(command):
                reason = (f"no sandbox is available here ({backend.detail}); it would run without isolation"
                          if no_sandbox else "not on the read-only allow list")
                request = yield from self._ask(call, command, reason, escalate=no_sandbox)
                if self.cancel_event.is_set():  # a stop at the question is a stop, not a no
                    return ToolResult(STOPPED_AT_QUESTION, False, interrupted=True), 0.0
                if not request.approved:
                    return ToolResult(f"The user denied this command; it did not run.{_note(request)}", False), 0.0
            if no_sandbox:
                return self._execute(call, self._unsandboxed())
        if approvals.may_escalate() and backend.isolates and approvals.is_trusted(command):
            return self._execute(call, self._unsandboxed())
        result, duration = self._execute(call)
        if not (approvals.may_escalate() and backend.isolates and result.denied):
            return result, duration
        request = yield from self._ask(call, command, f"the sandbox blocked it: {result.denial}", escalate=True)
        if self.cancel_event.is_set():
            return replace(result, output=f"{result.output}\nThe user stopped the turn at the approval question; the "
                                          "command was not re-run outside the sandbox.", interrupted=True), duration
        if not request.approved:
            declined = f"{result.output}\nThe user declined to re-run this command outside the sandbox.{_note(request)}"
            return replace(result, output=declined), duration
        rerun, more = self._execute(call, self._unsandboxed())
        return replace(rerun, output=f"Re-run outside the sandbox with the user's approval.\n{rerun.output}"), duration + more


def _distinct_calls(output: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str], list[str]]:
    """The output with one function_call per call_id, the calls that must not run (id: the output they get),
    and the ids that were repeated.

    A call_id can be answered only once, so a repeat is dropped before anything runs. An exact repeat
    (same tool, same arguments) runs once; calls that share an id but differ run not at all, since
    either could be the one the model meant.
    """
    first: dict[str, dict[str, Any]] = {}
    kept: list[dict[str, Any]] = []
    refused: dict[str, str] = {}
    repeated: list[str] = []
    for item in output:
        if item.get("type") != "function_call":
            kept.append(item)
            continue
        call_id = item.get("call_id")
        seen = first.setdefault(call_id, item)
        if seen is item:
            kept.append(item)
            continue
        if call_id not in repeated:
            repeated.append(call_id)
        if (seen.get("name"), seen.get("arguments")) != (item.get("name"), item.get("arguments")):
            refused[call_id] = (f"Error: not run: call_id {call_id} was given to more than one call with different "
                                "arguments in one response; make each call again with its own call_id.")
    return kept, refused, repeated


def finished_event(call: dict[str, Any], result: ToolResult, duration: float) -> ToolCallFinished:
    return ToolCallFinished(call["call_id"], call.get("name", ""), result.ok, result.output, duration, result.diff,
                            exit_code=result.exit_code, timed_out=result.timed_out, interrupted=result.interrupted,
                            denied=result.denied, denial=result.denial, output_tail=result.output_tail,
                            counts=dict(result.counts))


PHASES = ("commentary", "final_answer")


def _known_phase(value: Any) -> str | None:
    return value if value in PHASES else None


def _phase(item: dict[str, Any], with_calls: bool) -> str:
    """A message's phase: as the item says, else commentary when the model also made calls."""
    return _known_phase(item.get("phase")) or ("commentary" if with_calls else "final_answer")


def _note(request: ApprovalRequest) -> str:
    return f" Their note: {request.note}" if request.note else ""


def deny_list(config: Config, workspace: Path) -> tuple[Path, ...]:
    """What nothing may read: the built-in list and the config's `deny_read` (~ is home, relative is the workspace)."""
    extra = (Path(p).expanduser() for p in config.deny_read)
    return (default_deny_read(Path.home()) + dirs.private()
            + tuple(p if p.is_absolute() else workspace / p for p in extra))


def _summary(call: dict[str, Any]) -> str:
    tool = TOOLS.get(call.get("name", ""))
    try:
        args = parse_arguments(call.get("arguments", ""))
    except ValueError:
        return ""
    if tool is None or not isinstance(args, dict):
        return ""
    value = args.get(tool.key_arg)
    return str(value) if value is not None else ""
